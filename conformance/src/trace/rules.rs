//! Rules and the matcher: how an expected message of a trace is compared with the message JSON of
//! what the server sent.
//!
//! Every field is compared for equality unless a rule says otherwise. A rule names a path (which may
//! hold `[*]` and `*`) and one of: `equal`, `any` (anything, even nothing), `present` (there and not
//! null), `absent` (missing or null), `range LO..HI` (a number, bounds inclusive, either may be left
//! out), `regex RE` (a string, or the text of a number, matching RE as a whole). Where several rules
//! match a field the most specific one wins (the one with the fewest wildcards), then the last one.
//! A rule other than `equal` decides for the whole subtree below its path.

use std::fmt;

use serde_json::Value;

use super::Line;
use super::header::Sym;
use super::path::{Path, Seg};

/// A number in a `range` rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// An integer (any JSON integer fits).
    Int(i128),
    /// A finite float.
    Float(f64),
}

impl Num {
    /// Parse an integer or a finite float.
    pub fn parse(s: &str) -> Option<Num> {
        if let Ok(i) = s.parse::<i128>() {
            return Some(Num::Int(i));
        }
        match s.parse::<f64>() {
            Ok(f) if f.is_finite() && s.chars().any(|c| c.is_ascii_digit()) => Some(Num::Float(f)),
            _ => None,
        }
    }

    /// A JSON number as a `Num`.
    pub fn of(v: &Value) -> Option<Num> {
        if let Some(i) = v.as_i64() {
            Some(Num::Int(i128::from(i)))
        } else if let Some(u) = v.as_u64() {
            Some(Num::Int(i128::from(u)))
        } else {
            v.as_f64().map(Num::Float)
        }
    }

    fn cmp(self, other: Num) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => Some(a.cmp(&b)),
            (a, b) => a.as_f64().partial_cmp(&b.as_f64()),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            // Debug keeps a float a float (`3.0`, `1e300`) so that it parses back as one.
            Num::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// A regular expression of a `regex` rule, compared by its text.
#[derive(Clone, Debug)]
pub struct Pattern {
    source: String,
    whole: regex::Regex,
}

impl Pattern {
    /// Compile `source`; it must match a value as a whole.
    pub fn new(source: &str) -> Result<Pattern, String> {
        let whole = regex::RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("bad regex {source:?}: {e}"))?;
        Ok(Pattern {
            source: source.to_string(),
            whole,
        })
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// True when `s` matches as a whole.
    pub fn is_match(&self, s: &str) -> bool {
        self.whole.is_match(s)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

/// What a rule asks of a field.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleKind {
    /// Equal to the trace's value (the default).
    Equal,
    /// Anything, even missing.
    Any,
    /// There, and not null.
    Present,
    /// Missing or null.
    Absent,
    /// A number within the bounds (inclusive; a missing bound is open).
    Range {
        /// Lower bound.
        lo: Option<Num>,
        /// Upper bound.
        hi: Option<Num>,
    },
    /// A string (or a number's text) matching the pattern as a whole.
    Regex(Pattern),
}

impl RuleKind {
    /// Parse `equal`, `any`, `present`, `absent`, `range LO..HI`, `regex RE`.
    pub fn parse(s: &str) -> Result<RuleKind, String> {
        let (word, arg) = match s.split_once(char::is_whitespace) {
            Some((w, a)) => (w, Some(a.trim_start())),
            None => (s, None),
        };
        let no_arg = |k: RuleKind| match arg {
            Some(a) if !a.trim().is_empty() => {
                Err(format!("{word} takes no argument, found {a:?}"))
            }
            _ => Ok(k),
        };
        match word {
            "equal" => no_arg(RuleKind::Equal),
            "any" => no_arg(RuleKind::Any),
            "present" => no_arg(RuleKind::Present),
            "absent" => no_arg(RuleKind::Absent),
            "range" => {
                let a = arg.map(str::trim).unwrap_or("");
                let Some((lo, hi)) = a.split_once("..") else {
                    return Err(format!("range needs LO..HI, found {a:?}"));
                };
                let bound = |b: &str| -> Result<Option<Num>, String> {
                    if b.is_empty() {
                        Ok(None)
                    } else {
                        Num::parse(b)
                            .map(Some)
                            .ok_or_else(|| format!("range bound {b:?} is not a number"))
                    }
                };
                let (lo, hi) = (bound(lo)?, bound(hi)?);
                if lo.is_none() && hi.is_none() {
                    return Err("range needs at least one bound (LO.., ..HI or LO..HI)".into());
                }
                if let (Some(l), Some(h)) = (lo, hi)
                    && l.cmp(h) == Some(std::cmp::Ordering::Greater)
                {
                    return Err(format!("empty range {l}..{h}"));
                }
                Ok(RuleKind::Range { lo, hi })
            }
            "regex" => match arg {
                Some(a) if !a.is_empty() => Ok(RuleKind::Regex(Pattern::new(a)?)),
                _ => Err("regex needs a pattern".into()),
            },
            "" => Err("a rule needs a kind (equal, any, present, absent, range, regex)".into()),
            other => Err(format!(
                "unknown rule {other:?} (equal, any, present, absent, range, regex)"
            )),
        }
    }

    /// True when `actual` (None: no such field) satisfies this rule; `Equal` is decided by the
    /// matcher, not here (it answers true).
    pub fn accepts(&self, actual: Option<&Value>) -> bool {
        match self {
            RuleKind::Equal | RuleKind::Any => true,
            RuleKind::Present => actual.is_some_and(|v| !v.is_null()),
            RuleKind::Absent => actual.is_none_or(Value::is_null),
            RuleKind::Range { lo, hi } => actual.and_then(Num::of).is_some_and(|n| {
                lo.is_none_or(|l| n.cmp(l).is_some_and(|o| o.is_ge()))
                    && hi.is_none_or(|h| n.cmp(h).is_some_and(|o| o.is_le()))
            }),
            RuleKind::Regex(p) => match actual {
                Some(Value::String(s)) => p.is_match(s),
                Some(v @ (Value::Number(_) | Value::Bool(_))) => p.is_match(&v.to_string()),
                _ => false,
            },
        }
    }

    /// What the rule expects, in words.
    pub fn describe(&self) -> String {
        match self {
            RuleKind::Equal => "the recorded value".into(),
            RuleKind::Any => "anything".into(),
            RuleKind::Present => "a value (present, not null)".into(),
            RuleKind::Absent => "nothing (absent or null)".into(),
            RuleKind::Range { .. } => format!("a number in {}", range_text(self)),
            RuleKind::Regex(p) => format!("a string matching /{}/", p.as_str()),
        }
    }
}

fn range_text(k: &RuleKind) -> String {
    match k {
        RuleKind::Range { lo, hi } => format!(
            "{}..{}",
            lo.map_or(String::new(), |n| n.to_string()),
            hi.map_or(String::new(), |n| n.to_string())
        ),
        _ => String::new(),
    }
}

impl fmt::Display for RuleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleKind::Equal => f.write_str("equal"),
            RuleKind::Any => f.write_str("any"),
            RuleKind::Present => f.write_str("present"),
            RuleKind::Absent => f.write_str("absent"),
            RuleKind::Range { .. } => write!(f, "range {}", range_text(self)),
            RuleKind::Regex(p) => write!(f, "regex {}", p.as_str()),
        }
    }
}

/// A rule: a path and what it asks.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Where it applies.
    pub path: Path,
    /// What it asks.
    pub kind: RuleKind,
    /// Where it is in the text.
    pub line: Line,
}

impl Rule {
    /// Parse `PATH KIND [ARG]`.
    pub fn parse(s: &str, line: Line) -> Result<Rule, String> {
        let s = s.trim();
        let (path, kind) = s
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("a rule is PATH KIND, found {s:?}"))?;
        Ok(Rule {
            path: Path::parse(path)?,
            kind: RuleKind::parse(kind.trim_start())?,
            line,
        })
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.path, self.kind)
    }
}

/// A field that does not match.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Where (a concrete path: no wildcards).
    pub path: Path,
    /// What was expected, in words.
    pub expected: String,
    /// What came, in words.
    pub actual: String,
    /// The trace's value there, if any.
    pub expected_value: Option<Value>,
    /// The value that came, if any.
    pub actual_value: Option<Value>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, got {}",
            self.path, self.expected, self.actual
        )
    }
}

/// A value in words for messages: compact JSON, at most 160 characters.
pub fn preview(v: Option<&Value>) -> String {
    match v {
        None => "nothing (no such field)".into(),
        Some(v) => {
            let s = v.to_string();
            match s.char_indices().nth(160) {
                Some((i, _)) => format!("{}…", &s[..i]),
                None => s,
            }
        }
    }
}

/// The rule deciding a concrete path: the most specific matching rule, the last of equals.
pub fn rule_for<'r>(rules: &'r [Rule], path: &Path) -> Option<&'r Rule> {
    let mut best: Option<&Rule> = None;
    for r in rules {
        if r.path.matches(path) && best.is_none_or(|b| r.path.specificity() >= b.path.specificity())
        {
            best = Some(r);
        }
    }
    best
}

/// Compare `expected` with `actual` at `path` under `rules`, adding mismatches to `out` until it
/// holds `limit` of them. `None` means the field is missing.
pub fn compare(
    expected: Option<&Value>,
    actual: Option<&Value>,
    path: &Path,
    rules: &[Rule],
    out: &mut Vec<Mismatch>,
    limit: usize,
) {
    if out.len() >= limit {
        return;
    }
    if let Some(r) = rule_for(rules, path)
        && r.kind != RuleKind::Equal
    {
        if !r.kind.accepts(actual) {
            out.push(Mismatch {
                path: path.clone(),
                expected: format!("{} (rule `{r}`)", r.kind.describe()),
                actual: preview(actual),
                expected_value: expected.cloned(),
                actual_value: actual.cloned(),
            });
        }
        return;
    }
    let differ = |out: &mut Vec<Mismatch>, expected_words: String| {
        out.push(Mismatch {
            path: path.clone(),
            expected: expected_words,
            actual: preview(actual),
            expected_value: expected.cloned(),
            actual_value: actual.cloned(),
        })
    };
    match (expected, actual) {
        (None, None) => {}
        (Some(Value::Object(e)), Some(Value::Object(a))) => {
            for (k, ev) in e {
                compare(Some(ev), a.get(k), &path.key(k), rules, out, limit);
            }
            for (k, av) in a {
                if !e.contains_key(k) {
                    compare(None, Some(av), &path.key(k), rules, out, limit);
                }
            }
        }
        (Some(Value::Array(e)), Some(Value::Array(a))) => {
            if e.len() != a.len() {
                differ(out, format!("{} elements: {}", e.len(), preview(expected)));
                if let Some(m) = out.last_mut() {
                    m.actual = format!("{} elements: {}", a.len(), m.actual);
                }
                return;
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                compare(Some(ev), Some(av), &path.index(i), rules, out, limit);
            }
        }
        (Some(e), Some(a)) if e == a => {}
        (e, _) => differ(out, preview(e)),
    }
}

/// The header fields a header line states, with their message JSON keys (number, name).
const HEADER_FIELDS: [(&str, &str); 6] = [
    ("type", "type_name"),
    ("prog", "prog_name"),
    ("vers", ""),
    ("proc", "proc_name"),
    ("serial", ""),
    ("status", "status_name"),
];

/// Compare the header line `expected` (with its serial already rewritten to `serial`) with the
/// message JSON `actual`'s header under `rules` (paths `header.type`, `header.prog`,
/// `header.vers`, `header.proc`, `header.serial`, `header.status`, or the `_name` keys). With
/// `identity_only`, the status is left out: type, program, version, procedure and serial say which
/// expected message a received one is.
pub fn compare_header(
    expected: &super::HeaderLine,
    serial: u32,
    actual: &Value,
    rules: &[Rule],
    identity_only: bool,
    out: &mut Vec<Mismatch>,
) {
    let h = actual.get("header").unwrap_or(&Value::Null);
    for (num_key, name_key) in HEADER_FIELDS {
        if identity_only && num_key == "status" {
            continue;
        }
        let num_path = Path(vec![Seg::Key("header".into()), Seg::Key(num_key.into())]);
        let name_path = Path(vec![Seg::Key("header".into()), Seg::Key(name_key.into())]);
        let by_rule = rule_for(rules, &num_path)
            .map(|r| (r, num_key))
            .or_else(|| {
                (!name_key.is_empty())
                    .then(|| rule_for(rules, &name_path).map(|r| (r, name_key)))
                    .flatten()
            })
            .filter(|(r, _)| r.kind != RuleKind::Equal);
        if let Some((r, key)) = by_rule {
            let v = h.get(key);
            if !r.kind.accepts(v) {
                out.push(Mismatch {
                    path: Path(vec![Seg::Key("header".into()), Seg::Key(key.into())]),
                    expected: format!("{} (rule `{r}`)", r.kind.describe()),
                    actual: preview(v),
                    expected_value: None,
                    actual_value: v.cloned(),
                });
            }
            continue;
        }
        let (ok, want) = match num_key {
            "type" => (
                expected.msg_type.matches(h, num_key, name_key),
                expected.msg_type.to_string(),
            ),
            "prog" => (
                expected.prog.matches(h, num_key, name_key),
                match &expected.prog {
                    Sym::Num(n) => format!("{n:#x}"),
                    s => s.to_string(),
                },
            ),
            "proc" => (
                expected.procedure.matches(h, num_key, name_key),
                expected.procedure.to_string(),
            ),
            "status" => (
                expected.status.matches(h, num_key, name_key),
                expected.status.to_string(),
            ),
            "vers" => (
                h.get("vers").and_then(Value::as_u64) == Some(u64::from(expected.vers)),
                expected.vers.to_string(),
            ),
            _ => (
                h.get("serial").and_then(Value::as_u64) == Some(u64::from(serial)),
                serial.to_string(),
            ),
        };
        if !ok {
            let shown = match h
                .get(name_key)
                .filter(|v| !v.is_null() && !name_key.is_empty())
            {
                Some(n) => format!("{} ({})", preview(Some(n)), preview(h.get(num_key))),
                None => preview(h.get(num_key)),
            };
            out.push(Mismatch {
                path: Path(vec![Seg::Key("header".into()), Seg::Key(num_key.into())]),
                expected: want,
                actual: shown,
                expected_value: None,
                actual_value: h.get(num_key).cloned(),
            });
        }
    }
}

/// Compare a whole expected message (header line with `serial` rewritten, body unless `None`) with
/// the message JSON `actual`, under `rules`; at most `limit` mismatches, header first, then body,
/// then rules on other top-level fields (`len`, `body_kind`, `error`…).
pub fn compare_message(
    expected: &super::Message,
    serial: u32,
    actual: &Value,
    limit: usize,
) -> Vec<Mismatch> {
    let mut out = Vec::new();
    compare_header(
        &expected.header,
        serial,
        actual,
        &expected.rules,
        false,
        &mut out,
    );
    if out.len() >= limit {
        out.truncate(limit);
        return out;
    }
    let body_path = Path(vec![Seg::Key("body".into())]);
    if let Some(body) = &expected.body {
        compare(
            Some(body),
            actual.get("body"),
            &body_path,
            &expected.rules,
            &mut out,
            limit,
        );
    }
    for r in &expected.rules {
        if out.len() >= limit {
            break;
        }
        if matches!(r.path.root(), Some("header" | "body")) {
            continue;
        }
        let v = r.path.get(actual);
        let concrete = !r
            .path
            .0
            .iter()
            .any(|s| matches!(s, Seg::AnyKey | Seg::AnyIndex));
        if concrete && !r.kind.accepts(v) {
            out.push(Mismatch {
                path: r.path.clone(),
                expected: format!("{} (rule `{r}`)", r.kind.describe()),
                actual: preview(v),
                expected_value: None,
                actual_value: v.cloned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(r: &[&str]) -> Vec<Rule> {
        r.iter().map(|s| Rule::parse(s, Line(0)).unwrap()).collect()
    }

    fn diff(e: &Value, a: &Value, r: &[&str]) -> Vec<String> {
        let mut out = Vec::new();
        compare(
            Some(e),
            Some(a),
            &Path::parse("body").unwrap(),
            &rules(r),
            &mut out,
            100,
        );
        out.iter().map(|m| m.path.to_string()).collect()
    }

    #[test]
    fn equal_by_default_and_first_path() {
        let e = json!({"dom": {"name": "test", "id": 1}, "xs": [1, 2]});
        assert!(diff(&e, &e, &[]).is_empty());
        let a = json!({"dom": {"name": "test", "id": 2}, "xs": [1, 3]});
        assert_eq!(diff(&e, &a, &[]), ["body.dom.id", "body.xs[1]"]);
        let a = json!({"dom": {"name": "test", "id": 1}, "xs": [1]});
        assert_eq!(diff(&e, &a, &[]), ["body.xs"]);
        let a = json!({"dom": {"name": "test", "id": 1, "extra": 0}, "xs": [1, 2]});
        assert_eq!(diff(&e, &a, &[]), ["body.dom.extra"]);
    }

    #[test]
    fn each_kind() {
        let e = json!({"t": 5, "u": "6695eb01f6a4830479aa97f2502e193f", "o": null, "xs": [{"v": 1}, {"v": 2}]});
        let a = json!({"t": 9, "u": "00000000000000000000000000000000", "o": 3, "xs": [{"v": 7}, {"v": 8}]});
        assert_eq!(diff(&e, &a, &[]).len(), 5);
        assert!(
            diff(
                &e,
                &a,
                &[
                    "body.t range 1..10",
                    "body.u regex [0-9a-f]{32}",
                    "body.o present",
                    "body.xs[*].v any"
                ]
            )
            .is_empty()
        );
        assert_eq!(
            diff(
                &e,
                &a,
                &[
                    "body.t range 10..",
                    "body.u regex [0-9a-f]{31}",
                    "body.o absent",
                    "body.xs any"
                ]
            ),
            ["body.t", "body.u", "body.o"]
        );
        // The most specific rule wins, whatever the order.
        assert_eq!(
            diff(
                &e,
                &a,
                &[
                    "body.xs[0].v equal",
                    "body.xs[*].v any",
                    "body.u any",
                    "body.t any",
                    "body.o any"
                ]
            ),
            ["body.xs[0].v"]
        );
        // `absent` on a field the server leaves out; `any` on one it adds.
        let e = json!({"k": 1});
        let a = json!({"extra": true});
        assert!(diff(&e, &a, &["body.k absent", "body.extra any"]).is_empty());
    }

    #[test]
    fn rule_kinds_round_trip_and_reject() {
        for s in [
            "equal",
            "any",
            "present",
            "absent",
            "range 1..2",
            "range -5..",
            "range ..1.5",
            "range 1795239038011168000..",
            "regex [0-9a-f]{32}",
            "regex a b",
        ] {
            assert_eq!(RuleKind::parse(s).unwrap().to_string(), s);
        }
        for s in [
            "",
            "sometimes",
            "any x",
            "range",
            "range 1",
            "range ..",
            "range a..b",
            "range 2..1",
            "regex",
            "regex (",
            "range NaN..",
            "range inf..",
        ] {
            assert!(RuleKind::parse(s).is_err(), "{s:?}");
        }
        assert_eq!(Num::parse("3.0"), Some(Num::Float(3.0)));
        assert_eq!(Num::Float(3.0).to_string(), "3.0");
    }
}
