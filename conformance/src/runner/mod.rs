//! The runner: selects cases, runs them against a target (in parallel with `jobs`), respects their
//! dependencies, bounds every case by a deadline, and turns outcomes into verdicts and an exit code.
//!
//! It may import `wire` (connections, judging) and `runner`'s own parts; it never imports `target`
//! (it is handed a [`Connector`] and, for a server it controls, a [`ServerHooks`]) nor `report`.

pub mod case;
pub mod ctx;
pub mod lists;
pub mod signature;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use case::{Case, CaseResult, Fact, Level, Outcome, Verdict};
pub use ctx::{Connector, Credentials, Ctx, Endpoint, Env, LocalServer, Unavailable};
pub use lists::{Known, ListError, ListKind, Pattern};
pub use signature::Signature;

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
    /// (it, or a daemon beside it, died and was restarted for the next case), with the facts
    /// (`Fact::Signal`, `Fact::Exit`) a known-failing signature must name to absorb it.
    fn after_case(&self) -> Option<ServerEvent>;
    /// Called after a case that failed or errored (and did not kill the server as far as
    /// `after_case` saw): `None` when the server still answers; otherwise the evidence that it
    /// hangs (`Fact::Hang`) or that it was dying after all (`Fact::Signal`, `Fact::Exit`), and what
    /// was done (a server the runner controls is restarted for the next case). Default: nothing is
    /// checked.
    fn after_failure(&self) -> Option<ServerEvent> {
        None
    }
    /// What cases may know of the server because it runs on this machine under the runner's
    /// control ([`Env::local`]). Default: nothing.
    fn local(&self) -> Option<LocalServer> {
        None
    }
}

/// What happened to a server the runner controls during a case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerEvent {
    /// In words, for the case's notes: what died, how, and what was done.
    pub what: String,
    /// The same as facts: how each process that died ended.
    pub facts: Vec<Fact>,
}

impl ServerEvent {
    /// An event with no facts (a note only).
    pub fn note(what: impl Into<String>) -> Self {
        ServerEvent {
            what: what.into(),
            facts: Vec::new(),
        }
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
    /// Cases that must run: for these, unsupported and omitted count as unexpected failures.
    pub require: Vec<Pattern>,
    /// The command that reruns one case, shown with failures: the case's ID (quoted) replaces `{id}`,
    /// or is appended when there is no `{id}`.
    pub rerun: String,
    /// Keep the wire log of cases that passed too (a report that shows every case's traffic, such
    /// as `check --json`). Without it a passing case's wire is dropped as soon as its verdict is
    /// known, so a run's memory is a constant plus what the cases that did not pass need.
    pub keep_passing_wire: bool,
    /// Stop starting cases once this many unexpected failures are in (`--max-fail`): the rest are
    /// omitted, saying why, and [`RunReport::stopped`] says so.
    pub max_fail: Option<usize>,
    /// Stop starting cases once the run has taken this long (`--deadline`); cases already running
    /// finish within their own `case_timeout`.
    pub deadline: Option<Duration>,
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
            require: Vec::new(),
            rerun: "virtwire check --run".into(),
            keep_passing_wire: false,
            max_fail: None,
            deadline: None,
        }
    }
}

/// Which known list an entry is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnownList {
    /// Expected to fail, as its signature says.
    Failing,
    /// Its failures are not counted.
    Flaky,
}

/// The known-list entry that applies to a case: which list, where, the failure it expects, why, and
/// whether the case's failure fits it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KnownAs {
    /// Which list.
    pub list: KnownList,
    /// Why the case is listed.
    pub reason: String,
    /// `FILE:LINE` of the entry.
    pub at: String,
    /// The failure it expects (the signature as written), if it names one.
    pub signature: Option<String>,
    /// Set when the case failed but not as the signature says ("fails differently"): what did
    /// not hold, and what was observed. Such a failure counts as unexpected.
    pub differs: Option<String>,
}

impl KnownAs {
    /// On the known-failing list.
    pub fn is_failing(&self) -> bool {
        self.list == KnownList::Failing
    }
}

/// One connection's traffic in a case.
#[derive(Clone, Debug)]
pub struct Wire {
    /// `conn 1`, `conn 2`…
    pub label: String,
    /// The chunks, both directions, in order.
    pub chunks: Vec<Chunk>,
    /// Bytes seen but not kept because the log was full: (sent, received).
    pub cut: (usize, usize),
    /// How many bytes each way the log kept at most (`wire::peer::log_max()` when it was taken).
    pub cap: usize,
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
    /// When it started, since the run started (zero for a case that did not run).
    pub started: Duration,
    /// On a known list?
    pub known: Option<KnownAs>,
    /// Matched by `--require`: unsupported and omitted count as unexpected failures.
    pub required: bool,
    /// What was observed, as facts (the case's own, its connections', the server's), in order.
    pub facts: Vec<Fact>,
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

    /// True when a known-list entry applies but the failure is not the one it expects.
    pub fn fails_differently(&self, strict: bool) -> bool {
        self.is_failure(strict) && self.known.as_ref().is_some_and(|k| k.differs.is_some())
    }

    /// True when `--require` names the case and it did not run (unsupported or omitted).
    pub fn is_missing_required(&self) -> bool {
        self.required && matches!(self.verdict, Verdict::Unsupported | Verdict::Omitted)
    }

    /// True when it counts against the run: a failure on no known list, a failure other than the
    /// one its entry expects, or a required case that did not run.
    pub fn is_unexpected_failure(&self, strict: bool) -> bool {
        (self.is_failure(strict) && (self.known.is_none() || self.fails_differently(strict)))
            || self.is_missing_required()
    }

    /// True when it is listed as known-failing but did not fail: it passed, or it became
    /// unsupported, omitted or an error (the entry no longer shows what it claims).
    pub fn is_stale_known(&self, strict: bool) -> bool {
        self.known.as_ref().is_some_and(KnownAs::is_failing) && !self.is_failure(strict)
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
    /// Why the run stopped before every case ran (`--max-fail`, `--deadline`); the cases it did
    /// not start are omitted, their `actual` saying so.
    pub stopped: Option<String>,
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

    /// The exit status: 3 when a case could not be run, else 1 for unexpected failures, else 3 when
    /// `--deadline` cut the run short, else 2 when a known-failing case passed, else 0.
    pub fn exit_code(&self) -> u8 {
        if self.cases.iter().any(|c| c.verdict == Verdict::Error) {
            EXIT_HARNESS
        } else if self.unexpected_failures().next().is_some() {
            EXIT_FAILURES
        } else if self.stopped.is_some() {
            EXIT_HARNESS
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
            .chain(cfg.known_flaky.iter().map(|k| &k.pattern))
            .chain(&cfg.require),
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

/// The known-list entry for a case (the known-failing list first), checked against how it failed.
fn known_as(
    cfg: &Config,
    id: &str,
    strict_failure: bool,
    obs: &signature::Observed<'_>,
) -> Option<KnownAs> {
    let (list, k) = cfg
        .known_failing
        .iter()
        .find(|k| k.pattern.matches(id))
        .map(|k| (KnownList::Failing, k))
        .or_else(|| {
            cfg.known_flaky
                .iter()
                .find(|k| k.pattern.matches(id))
                .map(|k| (KnownList::Flaky, k))
        })?;
    let differs = if strict_failure {
        k.signature.as_ref().and_then(|sig| {
            sig.mismatch(obs).map(|why| {
                format!(
                    "expected {sig}, observed {}: {why}",
                    signature::observed_text(obs.facts)
                )
            })
        })
    } else {
        None
    };
    Some(KnownAs {
        list,
        reason: k.reason.clone(),
        at: k.pattern.at.clone(),
        signature: k.signature.as_ref().map(|s| s.text().to_string()),
        differs,
    })
}

/// The facts a case's connections show: each one the other side closed or reset, and each error
/// body it sent.
fn wire_facts(
    logs: &[(String, crate::wire::peer::WireLog)],
    limits: &virtwire_protocol::Limits,
) -> Vec<Fact> {
    use crate::wire::peer::Ending;
    let mut out = Vec::new();
    for (_, log) in logs {
        for e in crate::wire::facts::errors_sent(&log.chunks(), log.theirs(), limits) {
            out.push(Fact::Code {
                code: e.code,
                message: e.message.unwrap_or_default(),
            });
        }
        match log.ending() {
            Some(Ending::Closed) => out.push(Fact::Closed),
            Some(Ending::Reset) => out.push(Fact::Reset),
            None => {}
        }
    }
    out
}

/// What running a case left behind, for its report.
#[derive(Default)]
struct Ran {
    wire: Vec<Wire>,
    notes: Vec<String>,
    duration: Duration,
    /// When it started, since the run started.
    started: Duration,
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
    let mut outcome = outcome;
    let (logs, mut notes) = ctx.into_parts();
    outcome.facts.extend(wire_facts(&logs, env.judge.limits()));
    let cap = crate::wire::peer::log_max();
    for (label, log) in &logs {
        let (sent, received) = log.omitted();
        if sent + received > 0 {
            notes.push(format!(
                "{label}: the wire log was cut at {} each way; {sent} bytes sent and {received} received after that are not in it (--wire-log-max SIZE keeps more)",
                kib(cap)
            ));
        }
    }
    let wire = logs
        .into_iter()
        .map(|(label, log)| Wire {
            label,
            chunks: log.chunks(),
            cut: log.omitted(),
            cap,
        })
        .collect();
    (outcome, wire, notes)
}

/// A size in KiB, as the wire log's cap is given: `256 KiB`, `0.5 KiB`.
pub fn kib(bytes: usize) -> String {
    if bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
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
                  progress: &mut dyn Progress,
                  cut_short: bool| {
        let case = cases[i].clone();
        let mut outcome = outcome;
        let was_run = ran.is_some();
        let Ran {
            wire,
            mut notes,
            duration,
            started: case_started,
            log_mark,
        } = ran.unwrap_or_default();
        let mut server_log = None;
        if let Some(h) = hooks.as_ref().filter(|_| was_run) {
            if let Some(ev) = h.after_case() {
                notes.push(ev.what.clone());
                if matches!(outcome.verdict, Verdict::Pass | Verdict::NonStrict) {
                    let facts = std::mem::take(&mut outcome.facts);
                    outcome = Outcome::fail("the server keeps running", ev.what.clone());
                    outcome.facts = facts;
                }
                outcome.facts.extend(ev.facts);
            } else if matches!(outcome.verdict, Verdict::Fail | Verdict::Error)
                && let Some(ev) = h.after_failure()
            {
                notes.push(ev.what);
                outcome.facts.extend(ev.facts);
            }
            if outcome.verdict != Verdict::Pass {
                server_log = Some(h.log_since(log_mark));
            }
        }
        let strict_failure = outcome.verdict == Verdict::Fail
            || (cfg.strict && outcome.verdict == Verdict::NonStrict);
        let obs = signature::Observed {
            verdict: outcome.verdict,
            facts: &outcome.facts,
            actual: &outcome.actual,
            daemon_log: server_log.as_deref(),
        };
        // A case the run did not start (--max-fail, --deadline) is on no list: it is neither
        // stale nor a required case that did not run, only counted as not run.
        let cut_short = !was_run && cut_short;
        let known = known_as(cfg, &case.id, strict_failure, &obs).filter(|_| !cut_short);
        let required = !cut_short && cfg.require.iter().any(|p| p.matches(&case.id));
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
            started: case_started,
            known,
            required,
            facts: outcome.facts,
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
    // Why the run stopped starting cases (--max-fail, --deadline), once it did.
    let mut stop: Option<String> = None;
    while done.len() < cases.len() {
        if stop.is_none() {
            let failures = reports
                .iter()
                .flatten()
                .filter(|r| r.is_unexpected_failure(cfg.strict))
                .count();
            if let Some(max) = cfg.max_fail.filter(|m| failures >= *m) {
                stop = Some(format!(
                    "--max-fail {max}: the run stopped after {failures} unexpected failure{}",
                    if failures == 1 { "" } else { "s" }
                ));
            } else if let Some(d) = cfg.deadline.filter(|d| started.elapsed() >= *d) {
                stop = Some(format!(
                    "--deadline {:.0} s: the run stopped at its deadline",
                    d.as_secs_f64()
                ));
            }
        }
        if let Some(why) = &stop {
            // Nothing more starts: the rest is omitted, saying why (and counted as not run).
            while next < cases.len() {
                let o = Outcome {
                    verdict: Verdict::Omitted,
                    expected: String::new(),
                    actual: format!("not run: {why}"),
                    facts: Vec::new(),
                };
                finish(next, o, None, &mut reports, &mut done, progress, true);
                next += 1;
            }
        }
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
                finish(next, o, None, &mut reports, &mut done, progress, false);
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
                finish(next, o, None, &mut reports, &mut done, progress, false);
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
                if let Some((t, mark)) = running.remove(&i) {
                    let ran = Ran {
                        wire: w,
                        notes: n,
                        duration: d,
                        started: t.saturating_duration_since(started),
                        log_mark: mark,
                    };
                    finish(i, o, Some(ran), &mut reports, &mut done, progress, false);
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
                            started: t.saturating_duration_since(started),
                            log_mark: mark,
                            ..Ran::default()
                        };
                        finish(i, o, Some(ran), &mut reports, &mut done, progress, false);
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
        stopped: stop,
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
        fn after_case(&self) -> Option<ServerEvent> {
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

    /// A server that dies by SIGSEGV during every case (and is "restarted").
    struct Crashing;
    impl ServerHooks for Crashing {
        fn log_mark(&self) -> u64 {
            0
        }
        fn log_since(&self, _: u64) -> String {
            "error : virNetMessageEncodePayload:370 : Unable to encode message payload".into()
        }
        fn after_case(&self) -> Option<ServerEvent> {
            Some(ServerEvent {
                what: "libvirtd died during this case (was killed by signal 11 (SIGSEGV))".into(),
                facts: vec![Fact::Signal {
                    name: "SIGSEGV".into(),
                }],
            })
        }
    }

    fn listed(pattern: &str, sig: &str) -> Known {
        Known {
            pattern: Pattern::new(pattern, "list.txt:1").unwrap(),
            signature: Some(Signature::parse(sig).unwrap()),
            reason: "the reason".into(),
        }
    }

    fn run_with(cases: &[Case], cfg: &Config, hooks: Option<Arc<dyn ServerHooks>>) -> RunReport {
        let judge = Arc::new(Judge::new(Limits::default(), Compat::Libvirt, None));
        run(cases, cfg, Box::new(Nowhere), judge, hooks, &mut ())
    }

    /// A listed case whose server crashed is not the known failure unless the entry names the death.
    #[test]
    fn a_crash_inside_a_known_failing_case_is_not_absorbed() {
        let cases = vec![Case::new("limits/x/max", Level::Must, "r", "s", |_| {
            Ok(Outcome::fail("a reply", "the connection was closed").with_fact(Fact::Closed))
        })];
        let cfg = Config {
            known_failing: vec![listed(
                "limits/*/max",
                "closed; daemon-log ~ /Unable to encode/",
            )],
            ..Config::default()
        };
        let r = run_with(&cases, &cfg, Some(Arc::new(Crashing)));
        let c = &r.cases[0];
        assert!(c.fails_differently(false), "{:?}", c.known);
        let d = c.known.as_ref().unwrap().differs.clone().unwrap();
        assert!(d.contains("a process died (signal SIGSEGV)"), "{d}");
        assert_eq!(r.exit_code(), EXIT_FAILURES);
        // Named, the same failure is the known one.
        let cfg = Config {
            known_failing: vec![listed("limits/*/max", "closed; signal SIGSEGV")],
            ..Config::default()
        };
        let r = run_with(&cases, &cfg, Some(Arc::new(Crashing)));
        assert!(
            !r.cases[0].fails_differently(false),
            "{:?}",
            r.cases[0].known
        );
        assert_eq!(r.exit_code(), EXIT_OK);
    }

    /// A listed case that became unsupported or omitted is stale (exit 2), not silently absorbed.
    #[test]
    fn a_listed_case_that_does_not_run_is_stale() {
        let cases = vec![
            Case::new("a/unsupported", Level::Must, "r", "s", |_| {
                Ok(Outcome::unsupported("the target has no such driver"))
            }),
            Case::new("a/fails", Level::Must, "r", "s", |_| {
                Ok(Outcome::fail("x", "y").with_fact(Fact::Closed))
            }),
        ];
        let cfg = Config {
            known_failing: vec![listed("a/*", "closed")],
            ..Config::default()
        };
        let r = run_with(&cases, &cfg, None);
        let stale: Vec<&str> = r.stale_known().map(|c| c.case.id.as_ref()).collect();
        assert_eq!(stale, ["a/unsupported"]);
        assert_eq!(r.exit_code(), EXIT_STALE_KNOWN);
    }

    /// `--require`: a required case that is unsupported or omitted counts as an unexpected failure.
    #[test]
    fn required_cases_must_run() {
        let cases = vec![
            Case::new("keepalive/feature-supported", Level::Must, "r", "s", |_| {
                Ok(Outcome::unsupported("the server does not speak keepalive"))
            }),
            Case::new("keepalive/ping-gets-pong", Level::Must, "r", "s", |_| {
                Ok(Outcome::pass("x", "x"))
            })
            .needs(&["keepalive/feature-supported"]),
            Case::new("other/unsupported", Level::Must, "r", "s", |_| {
                Ok(Outcome::unsupported("no"))
            }),
        ];
        let r = run_with(&cases, &Config::default(), None);
        assert_eq!(r.exit_code(), EXIT_OK);
        let cfg = Config {
            require: vec![Pattern::new("keepalive/*", "--require").unwrap()],
            ..Config::default()
        };
        let r = run_with(&cases, &cfg, None);
        let missing: Vec<&str> = r
            .unexpected_failures()
            .map(|c| c.case.id.as_ref())
            .collect();
        assert_eq!(
            missing,
            ["keepalive/feature-supported", "keepalive/ping-gets-pong"]
        );
        assert_eq!(r.cases[1].verdict, Verdict::Omitted);
        assert_eq!(r.exit_code(), EXIT_FAILURES);
    }

    /// `--max-fail`: after N unexpected failures nothing more starts; the rest is omitted, saying
    /// why, on no list (not stale, not a missing required case), and the run says it stopped.
    #[test]
    fn max_fail_stops_starting_cases_and_omits_the_rest() {
        let mut cases = Vec::new();
        for id in ["a/1", "a/2", "a/3", "a/4", "a/5"] {
            cases.push(Case::new(id, Level::Must, "r", "s", |_| {
                Ok(Outcome::fail("x", "y"))
            }));
        }
        let cfg = Config {
            max_fail: Some(2),
            known_failing: vec![listed("a/5", "closed")],
            require: vec![Pattern::new("a/4", "--require").unwrap()],
            ..Config::default()
        };
        let r = run_with(&cases, &cfg, None);
        let v: Vec<Verdict> = r.cases.iter().map(|c| c.verdict).collect();
        assert_eq!(
            v,
            [
                Verdict::Fail,
                Verdict::Fail,
                Verdict::Omitted,
                Verdict::Omitted,
                Verdict::Omitted
            ]
        );
        assert!(
            r.cases[2].actual.contains("not run: --max-fail 2"),
            "{}",
            r.cases[2].actual
        );
        assert!(r.cases[4].known.is_none() && !r.cases[3].required);
        assert_eq!(r.stale_known().count(), 0);
        assert!(r.stopped.as_deref().unwrap().contains("--max-fail 2"));
        assert_eq!(r.exit_code(), EXIT_FAILURES);
        // Without it, all five run.
        let r = run_with(&cases, &Config::default(), None);
        assert!(r.cases.iter().all(|c| c.verdict == Verdict::Fail));
        assert_eq!(r.stopped, None);
    }

    /// `--deadline`: once the run has taken that long nothing more starts; exit 3 (the run did not
    /// do all it was asked) unless failures already make it 1.
    #[test]
    fn a_deadline_stops_the_run() {
        let cases: Vec<Case> = ["a/1", "a/2", "a/3"]
            .into_iter()
            .map(|id| {
                Case::new(id, Level::Must, "r", "s", |_| {
                    std::thread::sleep(Duration::from_millis(150));
                    Ok(Outcome::pass("x", "x"))
                })
            })
            .collect();
        let cfg = Config {
            deadline: Some(Duration::from_millis(100)),
            ..Config::default()
        };
        let r = run_with(&cases, &cfg, None);
        assert_eq!(r.cases[0].verdict, Verdict::Pass);
        assert_eq!(r.cases[1].verdict, Verdict::Omitted);
        assert!(
            r.cases[2].actual.contains("--deadline"),
            "{}",
            r.cases[2].actual
        );
        assert!(r.cases[1].started.is_zero() && r.cases[0].duration >= Duration::from_millis(150));
        assert_eq!(r.exit_code(), EXIT_HARNESS);
    }

    /// The facts of a case's connections come from its wire: an error body the server sent.
    #[test]
    fn wire_facts_name_the_errors_and_the_close() {
        use crate::capture::tcp::Dir;
        use crate::wire::peer::{Ending, WireLog};
        let log = WireLog::default();
        let body = virtwire_protocol::ErrorBody::new(39, 7, "Unable to decode message payload")
            .to_bytes(&Limits::default())
            .unwrap();
        let h = virtwire_protocol::Header {
            prog: 0x2000_8086,
            vers: 1,
            procedure: 1,
            msg_type: virtwire_protocol::MessageType::Reply,
            serial: 1,
            status: virtwire_protocol::MessageStatus::Error,
        };
        let mut frame = Vec::new();
        virtwire_protocol::encode_frame(&mut frame, &h, None, &body, &Limits::default()).unwrap();
        log.push_for_test(Dir::S2c, &frame);
        log.note_ending(Ending::Closed);
        let facts = wire_facts(&[("conn 1".into(), log)], &Limits::default());
        assert_eq!(
            facts,
            vec![
                Fact::Code {
                    code: 39,
                    message: "Unable to decode message payload".into()
                },
                Fact::Closed
            ]
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
