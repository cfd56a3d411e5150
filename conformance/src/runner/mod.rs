//! The runner: selects cases, runs them against a target (in parallel with `jobs`), respects their
//! dependencies, bounds every case by a deadline, and turns outcomes into verdicts and an exit code.
//!
//! It may import `wire` (connections, judging) and `runner`'s own parts; it never imports `target`
//! (it is handed a [`Connector`] and, for a server it controls, a [`ServerHooks`]) nor `report`.

pub mod case;
pub mod ctx;
pub mod lists;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use case::{Case, CaseResult, Fact, Level, Outcome, Verdict};
pub use ctx::{Connector, Credentials, Ctx, Endpoint, Env, LocalServer, Unavailable};
pub use lists::{Known, ListError, Pattern};

use crate::wire::Judge;
use crate::wire::peer::Chunk;

/// Exit status: everything as expected.
pub const EXIT_OK: u8 = 0;
/// Exit status: a case failed that is not listed as known-failing.
pub const EXIT_FAILURES: u8 = 1;
/// Exit status: a case listed as known-failing passed (update the list).
pub const EXIT_STALE_KNOWN: u8 = 2;
/// Exit status: the harness could not do its job (target unreachable, bad list, a case errored).
pub const EXIT_HARNESS: u8 = 3;

/// Hooks into a server process the runner controls (the self-started libvirtd).
pub trait ServerHooks: Send + Sync {
    /// A position in the server's log, to take what a case made it write.
    fn log_mark(&self) -> u64;
    /// The server's log since `mark` (bounded in size).
    fn log_since(&self, mark: u64) -> String;
    /// Called after each case: `None` when the server is fine; otherwise what happened to it
    /// (it died, and was restarted for the next case).
    fn after_case(&self) -> Option<String>;
    /// Called after a case that failed or errored (and did not kill the server): `None` when the
    /// server still answers; otherwise the evidence that it hangs, and what was done (a server the
    /// runner controls is restarted for the next case). Default: nothing is checked.
    fn after_failure(&self) -> Option<String> {
        None
    }
    /// What cases may know of the server because it runs on this machine under the runner's
    /// control ([`Env::local`]). Default: nothing.
    fn local(&self) -> Option<LocalServer> {
        None
    }
}

/// How a run goes.
#[derive(Clone, Debug)]
pub struct Config {
    /// Longest wait for one answer.
    pub read_timeout: Duration,
    /// Longest a case may take in all.
    pub case_timeout: Duration,
    /// How long the server is left to answer a message it must not answer before the case's
    /// follow-up call on the same connection; every frame is examined until that call's reply
    /// (`Ctx::expect_no_answer_until_followup`), so a late answer is caught whatever this is.
    pub silence: Duration,
    /// Longest wait for a connection.
    pub connect_timeout: Duration,
    /// Cases run at once, each on its own connections.
    pub jobs: usize,
    /// SHOULD-level lenience ("non-strict") counts as a failure.
    pub strict: bool,
    /// Only cases matching one of these (all when empty); their needs are run too.
    pub run: Vec<Pattern>,
    /// Cases matching one of these are not run.
    pub skip: Vec<Pattern>,
    /// Cases expected to fail, with the reason.
    pub known_failing: Vec<Known>,
    /// Cases whose failure is not counted, with the reason.
    pub known_flaky: Vec<Known>,
    /// The command that reruns one case, shown with failures: the case's ID (quoted) replaces `{id}`,
    /// or is appended when there is no `{id}`.
    pub rerun: String,
    /// Keep the wire log of cases that passed too (a report that shows every case's traffic, such
    /// as `check --json`). Without it a passing case's wire is dropped as soon as its verdict is
    /// known, so a run's memory is a constant plus what the cases that did not pass need.
    pub keep_passing_wire: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            read_timeout: Duration::from_secs(5),
            case_timeout: Duration::from_secs(30),
            silence: Duration::from_millis(1000),
            connect_timeout: Duration::from_secs(10),
            jobs: 1,
            strict: false,
            run: Vec::new(),
            skip: Vec::new(),
            known_failing: Vec::new(),
            known_flaky: Vec::new(),
            rerun: "virtwire check --run".into(),
            keep_passing_wire: false,
        }
    }
}

/// Whether a case is on a known list, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "list", content = "reason", rename_all = "kebab-case")]
pub enum KnownAs {
    /// Expected to fail.
    Failing(String),
    /// Its failures are not counted.
    Flaky(String),
}

/// One connection's traffic in a case.
#[derive(Clone, Debug)]
pub struct Wire {
    /// `conn 1`, `conn 2`…
    pub label: String,
    /// The chunks, both directions, in order.
    pub chunks: Vec<Chunk>,
}

/// A case's result.
#[derive(Clone, Debug)]
pub struct CaseReport {
    /// The case.
    pub case: Case,
    /// The verdict.
    pub verdict: Verdict,
    /// What the requirement expects.
    pub expected: String,
    /// What the server did.
    pub actual: String,
    /// Notes (the server died and was restarted, …).
    pub notes: Vec<String>,
    /// How long it took.
    pub duration: Duration,
    /// On a known list?
    pub known: Option<KnownAs>,
    /// Every connection's traffic: kept for a case that did not pass (any verdict but `pass`, or on
    /// a known list), and for every case with [`Config::keep_passing_wire`]; empty otherwise.
    pub wire: Vec<Wire>,
    /// The server's log while the case ran (only for a server the runner controls, and only when
    /// the case did not pass).
    pub server_log: Option<String>,
    /// The command that reruns just this case.
    pub rerun: String,
}

impl CaseReport {
    /// True when the verdict is a failure of the server (non-strict only when `strict`).
    pub fn is_failure(&self, strict: bool) -> bool {
        self.verdict == Verdict::Fail || (strict && self.verdict == Verdict::NonStrict)
    }

    /// True when it counts against the run: a failure not on a known list.
    pub fn is_unexpected_failure(&self, strict: bool) -> bool {
        self.is_failure(strict) && self.known.is_none()
    }

    /// True when it is listed as known-failing but did not fail.
    pub fn is_stale_known(&self, strict: bool) -> bool {
        matches!(self.known, Some(KnownAs::Failing(_)))
            && !self.is_failure(strict)
            && !matches!(
                self.verdict,
                Verdict::Omitted | Verdict::Error | Verdict::Unsupported
            )
    }
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The target as users write it.
    pub target: String,
    /// Cases in catalogue order.
    pub cases: Vec<CaseReport>,
    /// When the run started.
    pub started: std::time::SystemTime,
    /// Wall time.
    pub duration: Duration,
    /// Whether non-strict counts as failure.
    pub strict: bool,
}

impl RunReport {
    /// Cases per verdict.
    pub fn counts(&self) -> BTreeMap<Verdict, usize> {
        let mut m = BTreeMap::new();
        for c in &self.cases {
            *m.entry(c.verdict).or_insert(0) += 1;
        }
        m
    }

    /// Failures not on a known list.
    pub fn unexpected_failures(&self) -> impl Iterator<Item = &CaseReport> {
        self.cases
            .iter()
            .filter(|c| c.is_unexpected_failure(self.strict))
    }

    /// Known-failing cases that did not fail.
    pub fn stale_known(&self) -> impl Iterator<Item = &CaseReport> {
        self.cases.iter().filter(|c| c.is_stale_known(self.strict))
    }

    /// The exit status: 3 when a case could not be run, else 1 for unexpected failures, else 2 when
    /// a known-failing case passed, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.cases.iter().any(|c| c.verdict == Verdict::Error) {
            EXIT_HARNESS
        } else if self.unexpected_failures().next().is_some() {
            EXIT_FAILURES
        } else if self.stale_known().next().is_some() {
            EXIT_STALE_KNOWN
        } else {
            EXIT_OK
        }
    }
}

/// Told about progress as cases run (the terminal view).
pub trait Progress: Send {
    /// The run is about to start `total` cases.
    fn start(&mut self, _total: usize) {}
    /// A case finished.
    fn finished(&mut self, _case: &CaseReport) {}
}

impl Progress for () {}

/// The cases to run, in catalogue order: those `run` selects (all when empty), with every case they
/// need, less those `skip` names. Every pattern must match a case.
pub fn select(catalogue: &[Case], cfg: &Config) -> Result<Vec<Case>, ListError> {
    let ids: Vec<&str> = catalogue.iter().map(|c| c.id.as_ref()).collect();
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    for id in &ids {
        if !seen.insert(*id) {
            return Err(ListError::DuplicateId { id: id.to_string() });
        }
    }
    for c in catalogue {
        if let Some(n) = c.needs.iter().find(|n| !seen.contains(n.as_ref())) {
            return Err(ListError::UnknownNeed {
                case: c.id.to_string(),
                need: n.to_string(),
            });
        }
    }
    lists::check_all_match(
        cfg.run
            .iter()
            .chain(&cfg.skip)
            .chain(cfg.known_failing.iter().map(|k| &k.pattern))
            .chain(cfg.known_flaky.iter().map(|k| &k.pattern)),
        &ids,
    )?;
    let mut wanted: Vec<bool> = catalogue
        .iter()
        .map(|c| cfg.run.is_empty() || cfg.run.iter().any(|p| p.matches(&c.id)))
        .collect();
    // Pull in what the wanted cases need, transitively.
    loop {
        let mut added = false;
        for i in 0..catalogue.len() {
            if !wanted[i] {
                continue;
            }
            for need in &catalogue[i].needs {
                if let Some(j) = ids.iter().position(|id| *id == need.as_ref())
                    && !wanted[j]
                {
                    wanted[j] = true;
                    added = true;
                }
            }
        }
        if !added {
            break;
        }
    }
    Ok(catalogue
        .iter()
        .zip(wanted)
        .filter(|(c, w)| *w && !cfg.skip.iter().any(|p| p.matches(&c.id)))
        .map(|(c, _)| c.clone())
        .collect())
}

fn known_as(cfg: &Config, id: &str) -> Option<KnownAs> {
    if let Some(k) = cfg.known_failing.iter().find(|k| k.pattern.matches(id)) {
        return Some(KnownAs::Failing(k.reason.clone()));
    }
    cfg.known_flaky
        .iter()
        .find(|k| k.pattern.matches(id))
        .map(|k| KnownAs::Flaky(k.reason.clone()))
}

/// What running a case left behind, for its report.
#[derive(Default)]
struct Ran {
    wire: Vec<Wire>,
    notes: Vec<String>,
    duration: Duration,
    /// Where the server's log stood when the case started.
    log_mark: u64,
}

/// Run one case in the calling thread (the runner calls this from its workers).
fn run_one(case: Case, env: &Env, case_timeout: Duration) -> (Outcome, Vec<Wire>, Vec<String>) {
    let deadline = Instant::now() + case_timeout;
    let mut ctx = Ctx::new(env, deadline);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (case.run)(&mut ctx)));
    let outcome = match result {
        Ok(Ok(o)) | Ok(Err(o)) => o,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            Outcome::error(format!("the case panicked (a virtwire bug): {what}"))
        }
    };
    let (logs, mut notes) = ctx.into_parts();
    for (label, log) in &logs {
        let (sent, received) = log.omitted();
        if sent + received > 0 {
            notes.push(format!(
                "{label}: the wire log keeps the first {} KiB each way; {sent} bytes sent and {received} received after that are not in it",
                crate::wire::peer::LOG_KEEP >> 10
            ));
        }
    }
    let wire = logs
        .into_iter()
        .map(|(label, log)| Wire {
            label,
            chunks: log.chunks(),
        })
        .collect();
    (outcome, wire, notes)
}

/// Run `cases` (already selected) against `connector`; `hooks` when the runner controls the server.
pub fn run(
    cases: &[Case],
    cfg: &Config,
    connector: Box<dyn Connector>,
    judge: Arc<Judge>,
    hooks: Option<Arc<dyn ServerHooks>>,
    progress: &mut dyn Progress,
) -> RunReport {
    let started = Instant::now();
    let started_at = std::time::SystemTime::now();
    let target = connector.describe();
    let env = Arc::new(Env {
        connector,
        judge,
        read_timeout: cfg.read_timeout,
        silence: cfg.silence,
        connect_timeout: cfg.connect_timeout,
        local: hooks.as_ref().and_then(|h| h.local()),
    });
    progress.start(cases.len());
    let mut done: HashMap<String, Verdict> = HashMap::new();
    let mut reports: Vec<Option<CaseReport>> = vec![None; cases.len()];
    let mut next = 0usize;
    let mut running: HashMap<usize, (Instant, u64)> = HashMap::new();
    let (tx, rx) = mpsc::channel::<(usize, Outcome, Vec<Wire>, Vec<String>, Duration)>();
    let jobs = cfg.jobs.max(1);
    // Grace beyond a case's own deadline before the runner gives up waiting for it.
    let grace = Duration::from_secs(5);
    // `ran` is None for a case that was not run (omitted): nothing to ask the server about it.
    let finish = |i: usize,
                  outcome: Outcome,
                  ran: Option<Ran>,
                  reports: &mut Vec<Option<CaseReport>>,
                  done: &mut HashMap<String, Verdict>,
                  progress: &mut dyn Progress| {
        let case = cases[i].clone();
        let mut outcome = outcome;
        let was_run = ran.is_some();
        let Ran {
            wire,
            mut notes,
            duration,
            log_mark,
        } = ran.unwrap_or_default();
        let mut server_log = None;
        if let Some(h) = hooks.as_ref().filter(|_| was_run) {
            if let Some(what) = h.after_case() {
                notes.push(what.clone());
                if matches!(outcome.verdict, Verdict::Pass | Verdict::NonStrict) {
                    outcome = Outcome::fail("the server keeps running", what);
                }
            } else if matches!(outcome.verdict, Verdict::Fail | Verdict::Error)
                && let Some(what) = h.after_failure()
            {
                notes.push(what);
            }
            if outcome.verdict != Verdict::Pass {
                server_log = Some(h.log_since(log_mark));
            }
        }
        let known = known_as(cfg, &case.id);
        // A pass that no list mentions shows no traffic in any report but one that asks for all.
        let passed_unlisted = outcome.verdict == Verdict::Pass && known.is_none();
        let wire = if passed_unlisted && !cfg.keep_passing_wire {
            Vec::new()
        } else {
            wire
        };
        let report = CaseReport {
            verdict: outcome.verdict,
            expected: outcome.expected,
            actual: outcome.actual,
            notes,
            duration,
            known,
            wire,
            server_log,
            rerun: if cfg.rerun.contains("{id}") {
                cfg.rerun.replace("{id}", &format!("'{}'", case.id))
            } else {
                format!("{} '{}'", cfg.rerun, case.id)
            },
            case,
        };
        done.insert(report.case.id.to_string(), report.verdict);
        progress.finished(&report);
        reports[i] = Some(report);
    };
    while done.len() < cases.len() {
        // Start what is ready, in order, while workers are free.
        while running.len() < jobs && next < cases.len() {
            let case = cases[next].clone();
            // An exclusive case waits for the others to finish, and nothing starts beside it.
            if (case.exclusive && !running.is_empty())
                || running.keys().any(|i| cases[*i].exclusive)
            {
                break;
            }
            let needs: Vec<&str> = case
                .needs
                .iter()
                .map(|n| n.as_ref())
                .filter(|n| cases.iter().any(|c| c.id == *n))
                .collect();
            if needs.iter().any(|n| !done.contains_key(*n)) {
                break; // wait for its needs to finish
            }
            if let Some(n) = needs
                .iter()
                .find(|n| !matches!(done[**n], Verdict::Pass | Verdict::NonStrict))
            {
                let o = Outcome {
                    verdict: Verdict::Omitted,
                    expected: String::new(),
                    actual: format!("needs {n}, which did not pass ({})", done[*n]),
                    facts: Vec::new(),
                };
                finish(next, o, None, &mut reports, &mut done, progress);
                next += 1;
                continue;
            }
            let mark = hooks.as_ref().map_or(0, |h| h.log_mark());
            running.insert(next, (Instant::now(), mark));
            let (tx, env, timeout, i) = (tx.clone(), env.clone(), cfg.case_timeout, next);
            std::thread::spawn(move || {
                let t = Instant::now();
                let (o, w, n) = run_one(case, &env, timeout);
                let _ = tx.send((i, o, w, n, t.elapsed()));
            });
            next += 1;
        }
        if running.is_empty() {
            if next < cases.len() {
                // Its needs can never finish before it (they come after it): a catalogue bug.
                let o = Outcome::error(format!(
                    "{} needs a case that comes after it in the catalogue",
                    cases[next].id
                ));
                finish(next, o, None, &mut reports, &mut done, progress);
                next += 1;
            }
            continue;
        }
        // Wait for one to finish, or for the earliest one to run out of time.
        let oldest = running
            .values()
            .map(|(t, _)| *t)
            .min()
            .unwrap_or_else(Instant::now);
        let limit = oldest + cfg.case_timeout + grace;
        match rx.recv_timeout(limit.saturating_duration_since(Instant::now())) {
            Ok((i, o, w, n, d)) => {
                if let Some((_, mark)) = running.remove(&i) {
                    let ran = Ran {
                        wire: w,
                        notes: n,
                        duration: d,
                        log_mark: mark,
                    };
                    finish(i, o, Some(ran), &mut reports, &mut done, progress);
                }
            }
            Err(_) => {
                let now = Instant::now();
                let late: Vec<usize> = running
                    .iter()
                    .filter(|(_, (t, _))| now >= *t + cfg.case_timeout + grace)
                    .map(|(i, _)| *i)
                    .collect();
                for i in late {
                    if let Some((t, mark)) = running.remove(&i) {
                        let o = Outcome::error(format!(
                            "the case did not finish within {:.0} s (a virtwire bug: every wait has a deadline)",
                            (cfg.case_timeout + grace).as_secs_f64()
                        ));
                        let ran = Ran {
                            duration: t.elapsed(),
                            log_mark: mark,
                            ..Ran::default()
                        };
                        finish(i, o, Some(ran), &mut reports, &mut done, progress);
                    }
                }
            }
        }
    }
    RunReport {
        target,
        cases: reports.into_iter().flatten().collect(),
        started: started_at,
        duration: started.elapsed(),
        strict: cfg.strict,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use virtwire_protocol::{Compat, Limits};

    use super::*;
    use crate::wire::peer::Transport;

    struct Nowhere;
    impl Connector for Nowhere {
        fn connect(&self, _: Duration) -> Result<Box<dyn Transport>, String> {
            Err("no server in this test".into())
        }
        fn describe(&self) -> String {
            "nowhere".into()
        }
        fn open_name(&self) -> Option<String> {
            None
        }
    }

    #[derive(Default)]
    struct Counting(AtomicUsize);
    impl ServerHooks for Counting {
        fn log_mark(&self) -> u64 {
            7
        }
        fn log_since(&self, mark: u64) -> String {
            format!("log since {mark}")
        }
        fn after_case(&self) -> Option<String> {
            self.0.fetch_add(1, Ordering::SeqCst);
            None
        }
    }

    #[test]
    fn select_refuses_duplicate_ids_and_unknown_needs() {
        let case = |id: &'static str| {
            Case::new(id, Level::Must, "r", "s", |_| Ok(Outcome::pass("x", "x")))
        };
        let dup = vec![case("a/one"), case("a/two"), case("a/one")];
        match select(&dup, &Config::default()) {
            Err(ListError::DuplicateId { id }) => assert_eq!(id, "a/one"),
            other => panic!("expected DuplicateId, got {:?}", other.map(|v| v.len())),
        }
        let missing = vec![case("a/one"), case("a/two").needs(&["a/zero"])];
        match select(&missing, &Config::default()) {
            Err(ListError::UnknownNeed { case, need }) => {
                assert_eq!((case.as_str(), need.as_str()), ("a/two", "a/zero"))
            }
            other => panic!("expected UnknownNeed, got {:?}", other.map(|v| v.len())),
        }
        assert_eq!(
            select(&dup[..2], &Config::default()).map(|v| v.len()).ok(),
            Some(2)
        );
    }

    #[test]
    fn only_cases_that_ran_ask_the_server_and_get_its_log() {
        let cases = vec![
            Case::new("a/fails", Level::Must, "r", "s", |_| {
                Ok(Outcome::fail("x", "y"))
            }),
            Case::new("a/needs-it", Level::Must, "r", "s", |_| {
                Ok(Outcome::pass("x", "x"))
            })
            .needs(&["a/fails"]),
        ];
        let hooks = Arc::new(Counting::default());
        let judge = Arc::new(Judge::new(Limits::default(), Compat::Libvirt, None));
        let report = run(
            &cases,
            &Config::default(),
            Box::new(Nowhere),
            judge,
            Some(hooks.clone() as Arc<dyn ServerHooks>),
            &mut (),
        );
        assert_eq!(report.cases[0].verdict, Verdict::Fail);
        assert_eq!(report.cases[0].server_log.as_deref(), Some("log since 7"));
        assert_eq!(report.cases[1].verdict, Verdict::Omitted);
        assert_eq!(report.cases[1].server_log, None);
        assert_eq!(
            hooks.0.load(Ordering::SeqCst),
            1,
            "after_case for the case that ran only"
        );
    }

    /// A target whose read-only endpoint is absent and whose virtlogd failed to start.
    struct WithEndpoints;
    impl Connector for WithEndpoints {
        fn connect(&self, _: Duration) -> Result<Box<dyn Transport>, String> {
            Err("no server in this test".into())
        }
        fn describe(&self) -> String {
            "with endpoints".into()
        }
        fn open_name(&self) -> Option<String> {
            None
        }
        fn endpoint(&self, which: Endpoint) -> Result<Arc<dyn Connector>, Unavailable> {
            match which {
                Endpoint::Virtlogd => {
                    Err(Unavailable::Broken("virtlogd exited with status 1".into()))
                }
                Endpoint::Admin => Ok(Arc::new(Nowhere)),
                _ => Err(Unavailable::Absent("--readonly-uri was not given".into())),
            }
        }
    }

    #[test]
    fn absent_endpoints_are_unsupported_broken_ones_errors() {
        let case = |id: &'static str, e: Endpoint| {
            Case::new(id, Level::Must, "r", "s", move |ctx| {
                let (_peer, _) = ctx.connect_to(e)?;
                Ok(Outcome::pass("x", "connected"))
            })
        };
        let cases = vec![
            case("e/readonly", Endpoint::ReadOnly),
            case("e/virtlogd", Endpoint::Virtlogd),
            case("e/admin", Endpoint::Admin),
        ];
        let judge = Arc::new(Judge::new(Limits::default(), Compat::Libvirt, None));
        let report = run(
            &cases,
            &Config::default(),
            Box::new(WithEndpoints),
            judge,
            None,
            &mut (),
        );
        let v: Vec<(Verdict, &str)> = report
            .cases
            .iter()
            .map(|c| (c.verdict, c.actual.as_str()))
            .collect();
        assert_eq!(v[0].0, Verdict::Unsupported);
        assert!(
            v[0].1.contains("no readonly endpoint: --readonly-uri"),
            "{}",
            v[0].1
        );
        assert_eq!(v[1].0, Verdict::Error);
        assert!(v[1].1.contains("virtlogd exited"), "{}", v[1].1);
        // Present: the case got as far as connecting through it (which fails here: harness error
        // naming that connector, not the target).
        assert_eq!(v[2].0, Verdict::Error);
        assert!(v[2].1.contains("cannot connect to nowhere"), "{}", v[2].1);
    }
}
