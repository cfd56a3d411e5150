//! The failure a known-failing entry expects, in a form the runner checks: a *signature*.
//!
//! An entry of a known-failing (or known-flaky) list is `PATTERN {SIGNATURE} REASON`. The signature
//! is one or more clauses separated by `;`, every one of which must hold for the failure to be the
//! known one:
//!
//! | clause | holds when |
//! |---|---|
//! | `closed` | the server closed one of the case's connections (end of file) |
//! | `reset` | one of the case's connections was reset |
//! | `hang` | something did not answer before its deadline (the case, or a client, says so) |
//! | `code N` | an error came back with `virErrorNumber` N (`code 39`, VIR_ERR_RPC) |
//! | `code N ~ /RE/` | …whose message matches the regular expression RE |
//! | `signal NAME` | a process (the server, a daemon beside it, or the client under test) was killed by NAME (`SIGSEGV`) |
//! | `exit N` | such a process exited with status N |
//! | `crash` / `crash ~ /RE/` | a process crashed in its runtime (a Go panic, an uncaught exception, a sanitizer report), its crash line matching RE |
//! | `daemon-log ~ /RE/` | the server's log while the case ran matches RE (a server the runner controls) |
//! | `actual ~ /RE/` | the case's Actual text matches RE |
//! | `verdict non-strict` | the verdict is non-strict (for lists used with `--strict`); without it, the verdict must be fail |
//!
//! Regular expressions are Rust's `regex` syntax between slashes; `\/` is a slash inside one.
//!
//! A listed case whose failure does not fit its signature *fails differently*: it counts as an
//! unexpected failure, and the report shows both the expected signature and what was observed.
//! A process that died is never absorbed by a signature that does not name a death (`signal`, `exit`
//! or `crash`).

use std::fmt;

use regex::Regex;

use super::case::{Fact, Verdict};

/// One clause of a signature.
#[derive(Clone, Debug)]
enum Clause {
    Closed,
    Reset,
    Hang,
    Code(i32, Option<Regex>),
    Signal(String),
    Exit(i32),
    Crash(Option<Regex>),
    DaemonLog(Regex),
    Actual(Regex),
    NonStrict,
    Fail,
}

/// A parsed signature: what a known failure looks like.
#[derive(Clone, Debug)]
pub struct Signature {
    text: String,
    clauses: Vec<Clause>,
}

/// What a case's failure looked like, for a signature to be checked against.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    /// The verdict.
    pub verdict: Verdict,
    /// Every fact the case, its wire and the server hooks observed.
    pub facts: &'a [Fact],
    /// The case's Actual text.
    pub actual: &'a str,
    /// The server's log during the case, when the runner controls the server.
    pub daemon_log: Option<&'a str>,
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{{}}}", self.text)
    }
}

fn bad(why: impl Into<String>) -> String {
    why.into()
}

/// Reads a `/…/` regular expression at the start of `s`; returns it and the rest.
fn regex_at(s: &str) -> Result<(Regex, &str), String> {
    let s = s.trim_start();
    let body = s
        .strip_prefix('/')
        .ok_or_else(|| bad(format!("expected /REGEX/ at {s:?}")))?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            '/' => {
                let re = Regex::new(&out).map_err(|e| bad(format!("bad regex /{out}/: {e}")))?;
                return Ok((re, &body[i + 1..]));
            }
            c => out.push(c),
        }
    }
    Err(bad(format!("unterminated /REGEX/ in {s:?}")))
}

/// An optional `~ /RE/` after a clause's word.
fn optional_regex(rest: &str) -> Result<(Option<Regex>, &str), String> {
    match rest.trim_start().strip_prefix('~') {
        Some(r) => regex_at(r).map(|(re, rest)| (Some(re), rest)),
        None => Ok((None, rest)),
    }
}

/// A required `~ /RE/`.
fn required_regex<'s>(word: &str, rest: &'s str) -> Result<(Regex, &'s str), String> {
    match rest.trim_start().strip_prefix('~') {
        Some(r) => regex_at(r),
        None => Err(bad(format!("{word} needs `~ /REGEX/`"))),
    }
}

/// The first word of `s` (letters, digits, `-`, `_`) and the rest.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

fn number(s: &str, what: &str) -> Result<(i32, String), String> {
    let (w, rest) = word(s);
    let n = w
        .parse::<i32>()
        .map_err(|_| bad(format!("{what} needs a number, found {w:?}")))?;
    Ok((n, rest.to_string()))
}

impl Signature {
    /// Parse the signature `s`, which starts with `{`; returns it and what follows its `}`.
    pub fn parse_prefix(s: &str) -> Result<(Signature, &str), String> {
        let start = s.trim_start();
        let mut rest = start
            .strip_prefix('{')
            .ok_or_else(|| bad("expected `{` to start the signature"))?;
        let mut clauses = Vec::new();
        loop {
            let (w, after) = word(rest);
            let (clause, after): (Clause, &str) = match w {
                "closed" => (Clause::Closed, after),
                "reset" => (Clause::Reset, after),
                "hang" => (Clause::Hang, after),
                "code" => {
                    let (n, r) = number(after, "code")?;
                    let r: &str = &after[after.len() - r.len()..];
                    let (re, r) = optional_regex(r)?;
                    (Clause::Code(n, re), r)
                }
                "exit" => {
                    let (n, r) = number(after, "exit")?;
                    (Clause::Exit(n), &after[after.len() - r.len()..])
                }
                "signal" => {
                    let (name, r) = word(after);
                    let name = name.to_ascii_uppercase();
                    let name = if name.starts_with("SIG") {
                        name
                    } else {
                        format!("SIG{name}")
                    };
                    if name.len() <= 3 || !name[3..].chars().all(|c| c.is_ascii_alphanumeric()) {
                        return Err(bad(format!(
                            "signal needs a name such as SIGSEGV, found {name:?}"
                        )));
                    }
                    (Clause::Signal(name), r)
                }
                "crash" => {
                    let (re, r) = optional_regex(after)?;
                    (Clause::Crash(re), r)
                }
                "daemon-log" => {
                    let (re, r) = required_regex("daemon-log", after)?;
                    (Clause::DaemonLog(re), r)
                }
                "actual" => {
                    let (re, r) = required_regex("actual", after)?;
                    (Clause::Actual(re), r)
                }
                "verdict" => {
                    let (v, r) = word(after);
                    match v {
                        "non-strict" => (Clause::NonStrict, r),
                        "fail" => (Clause::Fail, r),
                        other => {
                            return Err(bad(format!(
                                "verdict is fail or non-strict, found {other:?}"
                            )));
                        }
                    }
                }
                "" => return Err(bad(format!("expected a clause at {:?}", rest.trim_start()))),
                other => {
                    return Err(bad(format!(
                        "unknown clause {other:?} (closed, reset, hang, code N [~ /RE/], signal NAME, \
                         exit N, crash [~ /RE/], daemon-log ~ /RE/, actual ~ /RE/, verdict non-strict)"
                    )));
                }
            };
            clauses.push(clause);
            let after = after.trim_start();
            if let Some(r) = after.strip_prefix(';') {
                rest = r;
            } else if let Some(r) = after.strip_prefix('}') {
                rest = r;
                break;
            } else {
                return Err(bad(format!(
                    "expected `;` or `}}` after a clause, found {after:?}"
                )));
            }
        }
        if clauses.is_empty() {
            return Err(bad(
                "an empty signature `{}` says nothing: name the failure",
            ));
        }
        let consumed = start.len() - rest.len();
        let text = start[1..consumed - 1].trim().to_string();
        Ok((Signature { text, clauses }, rest))
    }

    /// Parse a whole signature, braces optional (`closed; code 39`).
    pub fn parse(s: &str) -> Result<Signature, String> {
        let t = s.trim();
        let wrapped;
        let t = if t.starts_with('{') {
            t
        } else {
            wrapped = format!("{{{t}}}");
            &wrapped
        };
        let (sig, rest) = Signature::parse_prefix(t)?;
        if !rest.trim().is_empty() {
            return Err(bad(format!(
                "unexpected text after the signature: {rest:?}"
            )));
        }
        Ok(sig)
    }

    /// The signature as written, without braces.
    pub fn text(&self) -> &str {
        &self.text
    }

    fn names_a_death(&self) -> bool {
        self.clauses
            .iter()
            .any(|c| matches!(c, Clause::Signal(_) | Clause::Exit(_) | Clause::Crash(_)))
    }

    /// `None` when the observed failure fits; otherwise every clause that did not hold (and an
    /// unnamed death), in words.
    pub fn mismatch(&self, obs: &Observed<'_>) -> Option<String> {
        let mut why = Vec::new();
        let wants_non_strict = self.clauses.iter().any(|c| matches!(c, Clause::NonStrict));
        match (obs.verdict, wants_non_strict) {
            (Verdict::Fail, false) | (Verdict::NonStrict, true) => {}
            (v, false) => why.push(format!("the verdict is {v}, not fail")),
            (v, true) => why.push(format!("the verdict is {v}, not non-strict")),
        }
        for c in &self.clauses {
            let ok = match c {
                Clause::Closed => obs.facts.iter().any(|f| matches!(f, Fact::Closed)),
                Clause::Reset => obs.facts.iter().any(|f| matches!(f, Fact::Reset)),
                Clause::Hang => obs.facts.iter().any(|f| matches!(f, Fact::Hang)),
                Clause::Code(n, re) => obs.facts.iter().any(|f| match f {
                    Fact::Code { code, message } => {
                        code == n && re.as_ref().is_none_or(|re| re.is_match(message))
                    }
                    _ => false,
                }),
                Clause::Signal(name) => obs
                    .facts
                    .iter()
                    .any(|f| matches!(f, Fact::Signal { name: n } if n == name)),
                Clause::Exit(s) => obs
                    .facts
                    .iter()
                    .any(|f| matches!(f, Fact::Exit { status } if status == s)),
                Clause::Crash(re) => obs.facts.iter().any(|f| match f {
                    Fact::Crash { line } => re.as_ref().is_none_or(|re| re.is_match(line)),
                    _ => false,
                }),
                Clause::DaemonLog(re) => obs.daemon_log.is_some_and(|l| re.is_match(l)),
                Clause::Actual(re) => re.is_match(obs.actual),
                Clause::NonStrict | Clause::Fail => true,
            };
            if !ok {
                why.push(format!("{} did not hold", clause_text(c)));
            }
        }
        if !self.names_a_death() {
            let deaths: Vec<String> = obs
                .facts
                .iter()
                .filter(|f| {
                    matches!(
                        f,
                        Fact::Signal { .. } | Fact::Exit { .. } | Fact::Crash { .. }
                    )
                })
                .map(fact_text)
                .collect();
            if !deaths.is_empty() {
                why.push(format!(
                    "a process died ({}), which the signature does not name",
                    deaths.join(", ")
                ));
            }
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

fn clause_text(c: &Clause) -> String {
    match c {
        Clause::Closed => "closed".into(),
        Clause::Reset => "reset".into(),
        Clause::Hang => "hang".into(),
        Clause::Code(n, None) => format!("code {n}"),
        Clause::Code(n, Some(re)) => format!("code {n} ~ /{}/", re.as_str()),
        Clause::Signal(s) => format!("signal {s}"),
        Clause::Exit(s) => format!("exit {s}"),
        Clause::Crash(None) => "crash".into(),
        Clause::Crash(Some(re)) => format!("crash ~ /{}/", re.as_str()),
        Clause::DaemonLog(re) => format!("daemon-log ~ /{}/", re.as_str()),
        Clause::Actual(re) => format!("actual ~ /{}/", re.as_str()),
        Clause::NonStrict => "verdict non-strict".into(),
        Clause::Fail => "verdict fail".into(),
    }
}

/// A fact in the signature's own words (`code 39 "Unable to decode…"`, `signal SIGSEGV`).
pub fn fact_text(f: &Fact) -> String {
    match f {
        Fact::Closed => "closed".into(),
        Fact::Reset => "reset".into(),
        Fact::Hang => "hang".into(),
        Fact::Code { code, message } => {
            let mut m: String = message.chars().take(120).collect();
            if m.len() < message.len() {
                m.push('…');
            }
            format!("code {code} {m:?}")
        }
        Fact::Signal { name } => format!("signal {name}"),
        Fact::Exit { status } => format!("exit {status}"),
        Fact::Crash { line } => format!("crash {line:?}"),
    }
}

/// What was observed, in the signatures' words, for a report: `{closed; code 1 "…"}`.
pub fn observed_text(facts: &[Fact]) -> String {
    if facts.is_empty() {
        return "nothing a signature can name (no close, reset, error code, death or crash)".into();
    }
    let mut seen = Vec::new();
    for f in facts {
        let t = fact_text(f);
        if !seen.contains(&t) {
            seen.push(t);
        }
    }
    format!("{{{}}}", seen.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>(verdict: Verdict, facts: &'a [Fact], log: Option<&'a str>) -> Observed<'a> {
        Observed {
            verdict,
            facts,
            actual: "the connection was closed after the call",
            daemon_log: log,
        }
    }

    #[test]
    fn parses_every_clause_and_keeps_the_rest() {
        let (s, rest) = Signature::parse_prefix(
            "{closed; code 39 ~ /Unable to decode/; daemon-log ~ /Failed to serialize remote error/} the reason",
        )
        .unwrap();
        assert_eq!(rest, " the reason");
        assert_eq!(s.clauses.len(), 3);
        assert_eq!(
            s.text(),
            "closed; code 39 ~ /Unable to decode/; daemon-log ~ /Failed to serialize remote error/"
        );
        let s =
            Signature::parse("signal segv; exit 139; crash ~ /a\\/b/; actual ~ /x/; hang; reset")
                .unwrap();
        assert!(matches!(&s.clauses[0], Clause::Signal(n) if n == "SIGSEGV"));
        assert!(matches!(&s.clauses[2], Clause::Crash(Some(re)) if re.as_str() == "a/b"));
        assert!(Signature::parse("verdict non-strict; code 1").is_ok());
    }

    #[test]
    fn refuses_what_it_cannot_check() {
        for (s, want) in [
            ("{}", "expected a clause"),
            ("{closed", "expected `;` or `}`"),
            ("{code x}", "code needs a number"),
            ("{daemon-log}", "daemon-log needs `~ /REGEX/`"),
            ("{actual ~ /(/}", "bad regex"),
            ("{actual ~ /abc}", "unterminated"),
            ("{crashed}", "unknown clause \"crashed\""),
            ("{verdict pass}", "verdict is fail or non-strict"),
            ("closed the reason", "expected `{`"),
        ] {
            let e = Signature::parse_prefix(s).unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn a_failure_fits_only_when_every_clause_holds() {
        let s = Signature::parse("closed; daemon-log ~ /Failed to serialize/").unwrap();
        let log = "warning : virNetServerProgramSendError:174 : Failed to serialize remote error";
        assert_eq!(
            s.mismatch(&obs(Verdict::Fail, &[Fact::Closed], Some(log))),
            None
        );
        let m = s
            .mismatch(&obs(Verdict::Fail, &[Fact::Closed], Some("nothing")))
            .unwrap();
        assert!(
            m.contains("daemon-log ~ /Failed to serialize/ did not hold"),
            "{m}"
        );
        let m = s
            .mismatch(&obs(Verdict::Pass, &[Fact::Closed], Some(log)))
            .unwrap();
        assert!(m.contains("the verdict is pass, not fail"), "{m}");
        let code = [Fact::Code {
            code: 39,
            message: "Unable to decode message payload".into(),
        }];
        let s = Signature::parse("code 39 ~ /decode/").unwrap();
        assert_eq!(s.mismatch(&obs(Verdict::Fail, &code, None)), None);
        assert!(
            Signature::parse("code 38")
                .unwrap()
                .mismatch(&obs(Verdict::Fail, &code, None))
                .is_some()
        );
        assert!(
            Signature::parse("code 39 ~ /^Unable to encode/")
                .unwrap()
                .mismatch(&obs(Verdict::Fail, &code, None))
                .is_some()
        );
    }

    #[test]
    fn a_death_is_never_absorbed_unless_named() {
        let died = [
            Fact::Closed,
            Fact::Signal {
                name: "SIGSEGV".into(),
            },
        ];
        let m = Signature::parse("closed")
            .unwrap()
            .mismatch(&obs(Verdict::Fail, &died, None))
            .unwrap();
        assert!(m.contains("a process died (signal SIGSEGV)"), "{m}");
        assert_eq!(
            Signature::parse("closed; signal SIGSEGV")
                .unwrap()
                .mismatch(&obs(Verdict::Fail, &died, None)),
            None
        );
        assert!(
            Signature::parse("signal SIGABRT")
                .unwrap()
                .mismatch(&obs(Verdict::Fail, &died, None))
                .is_some()
        );
    }

    #[test]
    fn non_strict_entries_need_a_non_strict_verdict() {
        let s = Signature::parse("verdict non-strict; actual ~ /connection/").unwrap();
        assert_eq!(s.mismatch(&obs(Verdict::NonStrict, &[], None)), None);
        assert!(s.mismatch(&obs(Verdict::Fail, &[], None)).is_some());
    }

    #[test]
    fn observed_text_names_each_fact_once() {
        let t = observed_text(&[
            Fact::Closed,
            Fact::Closed,
            Fact::Code {
                code: 1,
                message: "internal error".into(),
            },
        ]);
        assert_eq!(t, "{closed; code 1 \"internal error\"}");
    }
}
