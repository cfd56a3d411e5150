//! Volatility learning: a trace is replayed twice against a reference server (learning cases,
//! [`super::learning_case`]); every body field that differs between the recording and either
//! replay (under the rules already there) becomes a rule, for a person to review:
//!
//! - numbers → `range 0..` (from the smallest value seen when it is negative), open above: clocks,
//!   counters and IDs grow, and a clock read on another machine may be behind the recording's;
//! - strings that are lowercase hex of one length in every sample (UUIDs) → `regex [0-9a-f]{N}`;
//! - anything else (other strings, arrays of another length, a field there in one sample and not in
//!   another) → `any`.
//!
//! When the same field differs in several elements of an array (`info[0].cpu_time`,
//! `info[1].cpu_time`), one rule with `[*]` covers them. Learned rules go right under their step's
//! header line ([`apply`]), so the rest of the text — comments, hand-written rules — stays as it
//! was; [`diff`] shows them as a unified diff for review.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Observed;
use crate::trace::rules::{self, Num, Pattern, Rule, RuleKind};
use crate::trace::{Line, Path, Seg, Step, Trace};

/// Rules learned for one server step.
#[derive(Clone, Debug, PartialEq)]
pub struct Learned {
    /// The step's index in the trace.
    pub step: usize,
    /// Its header line.
    pub line: Line,
    /// The rules to add, in path order.
    pub rules: Vec<Rule>,
}

/// The rule kind that covers every sample of one field (`None`: the field is not there).
fn kind_for(samples: &[Option<&Value>]) -> RuleKind {
    let present: Vec<&Value> = samples.iter().flatten().copied().collect();
    if present.len() != samples.len() || present.iter().any(|v| v.is_null()) {
        return RuleKind::Any;
    }
    let nums: Option<Vec<Num>> = present.iter().map(|v| Num::of(v)).collect();
    if let Some(nums) = nums
        && let Some(lo) = min(&nums)
    {
        // From 0 (or the smallest value, when negative), open above: a clock read on another
        // machine may be behind the recording's.
        let zero = Num::Int(0);
        let lo = if min(&[lo, zero]) == Some(zero) {
            zero
        } else {
            lo
        };
        return RuleKind::Range {
            lo: Some(lo),
            hi: None,
        };
    }
    let strs: Option<Vec<&str>> = present.iter().map(|v| v.as_str()).collect();
    if let Some(strs) = strs
        && let Some(first) = strs.first()
        && !first.is_empty()
        && strs.iter().all(|s| {
            s.len() == first.len()
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
        && let Ok(p) = Pattern::new(&format!("[0-9a-f]{{{}}}", first.len()))
    {
        return RuleKind::Regex(p);
    }
    RuleKind::Any
}

fn min(nums: &[Num]) -> Option<Num> {
    let mut it = nums.iter().copied();
    let first = it.next()?;
    Some(it.fold(first, |m, n| {
        let smaller = match (n, m) {
            (Num::Int(a), Num::Int(b)) => a < b,
            (a, b) => as_f64(a) < as_f64(b),
        };
        if smaller { n } else { m }
    }))
}

fn as_f64(n: Num) -> f64 {
    match n {
        Num::Int(i) => i as f64,
        Num::Float(f) => f,
    }
}

/// One kind covering several: ranges merge to the lowest bound, equal kinds stay, else `any`.
fn merge(kinds: &[RuleKind]) -> RuleKind {
    let mut lows = Vec::new();
    for k in kinds {
        match k {
            RuleKind::Range {
                lo: Some(l),
                hi: None,
            } => lows.push(*l),
            _ => {
                return if kinds.iter().all(|x| x == k) {
                    k.clone()
                } else {
                    RuleKind::Any
                };
            }
        }
    }
    match min(&lows) {
        Some(lo) => RuleKind::Range {
            lo: Some(lo),
            hi: None,
        },
        None => RuleKind::Any,
    }
}

/// The rules that make every replay in `runs` match `trace`'s server steps (async ones included).
/// An error names a step some replay never saw (that replay failed).
pub fn learn(trace: &Trace, runs: &[Observed]) -> Result<Vec<Learned>, String> {
    let body = Path(vec![Seg::Key("body".into())]);
    let mut out = Vec::new();
    for (i, step) in trace.steps.iter().enumerate() {
        let Step::Expect(m) = step else { continue };
        let Some(recorded) = &m.body else { continue };
        // Concrete path → (recorded value, each replay's value).
        let mut fields: BTreeMap<Path, Vec<Option<Value>>> = BTreeMap::new();
        for run in runs {
            let actual = run.actual.get(&i).ok_or_else(|| {
                format!(
                    "{}.trace:{}: a replay did not get this message",
                    trace.name, m.line
                )
            })?;
            // Compare as the check does: with the replay's echoes applied to the recorded body.
            let expected = run.expected.get(&i).unwrap_or(recorded);
            let mut diffs = Vec::new();
            rules::compare(
                Some(expected),
                actual.get("body"),
                &body,
                &m.rules,
                &mut diffs,
                usize::MAX,
            );
            for d in diffs {
                fields.entry(d.path).or_default();
            }
        }
        if fields.is_empty() {
            continue;
        }
        let wrapped = serde_json::json!({ "body": recorded });
        let mut kinds: BTreeMap<Path, (RuleKind, Vec<Path>)> = BTreeMap::new();
        for path in fields.keys() {
            let mut samples = vec![path.get(&wrapped)];
            samples.extend(
                runs.iter()
                    .map(|r| r.actual.get(&i).and_then(|a| path.get(a))),
            );
            let kind = kind_for(&samples);
            kinds
                .entry(path.generalised())
                .or_insert_with(|| (RuleKind::Any, Vec::new()))
                .1
                .push(path.clone());
            let e = kinds.get_mut(&path.generalised());
            if let Some((k, paths)) = e {
                *k = if paths.len() == 1 {
                    kind
                } else {
                    merge(&[k.clone(), kind])
                };
            }
        }
        let rules = kinds
            .into_iter()
            .map(|(general, (kind, paths))| Rule {
                path: if paths.len() > 1 {
                    general
                } else {
                    paths.into_iter().next().unwrap_or(general)
                },
                kind,
                line: Line(0),
            })
            .collect();
        out.push(Learned {
            step: i,
            line: m.line,
            rules,
        });
    }
    Ok(out)
}

/// `text` (the trace as read) with the learned rules inserted under their steps' header lines.
pub fn apply(text: &str, learned: &[Learned]) -> String {
    let mut at: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for l in learned {
        at.entry(l.line.0)
            .or_default()
            .extend(l.rules.iter().map(|r| format!("  rule {r}\n")));
    }
    let mut out = String::with_capacity(text.len() + 64 * learned.len());
    for (n, line) in text.split_inclusive('\n').enumerate() {
        out.push_str(line);
        if let Some(add) = at.get(&(n + 1)) {
            if !line.ends_with('\n') {
                out.push('\n');
            }
            for a in add {
                out.push_str(a);
            }
        }
    }
    out
}

/// The insertions of [`apply`] as a unified diff of `label`, one hunk per step (its header line as
/// context). Empty when nothing was learned.
pub fn diff(label: &str, text: &str, learned: &[Learned]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut sorted: Vec<&Learned> = learned.iter().filter(|l| !l.rules.is_empty()).collect();
    if sorted.is_empty() {
        return String::new();
    }
    sorted.sort_by_key(|l| l.line.0);
    let mut out = format!("--- {label}\n+++ {label} (learned rules)\n");
    let mut added = 0usize;
    for l in sorted {
        let n = l.line.0;
        let context = lines.get(n.wrapping_sub(1)).copied().unwrap_or("");
        out.push_str(&format!(
            "@@ -{n},1 +{},{} @@\n {context}\n",
            n + added,
            1 + l.rules.len()
        ));
        for r in &l.rules {
            out.push_str(&format!("+  rule {r}\n"));
        }
        added += l.rules.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kind(samples: &[Value]) -> String {
        let s: Vec<Option<&Value>> = samples.iter().map(Some).collect();
        kind_for(&s).to_string()
    }

    #[test]
    fn kinds() {
        assert_eq!(
            kind(&[
                json!(1795239038011168000u64),
                json!(1795239138011168000u64),
                json!(5)
            ]),
            "range 0.."
        );
        assert_eq!(kind(&[json!(-1), json!(2)]), "range -1..");
        assert_eq!(
            kind(&[
                json!("6695eb01f6a4830479aa97f2502e193f"),
                json!("01ff2a617e284f8b8fd75b805a250c73")
            ]),
            "regex [0-9a-f]{32}"
        );
        assert_eq!(kind(&[json!("vm"), json!("builder")]), "any");
        assert_eq!(kind(&[json!([1]), json!([1, 2])]), "any");
        assert_eq!(kind_for(&[Some(&json!(1)), None]).to_string(), "any");
        assert_eq!(
            merge(&[
                RuleKind::parse("range 5..").unwrap(),
                RuleKind::parse("range 3..").unwrap()
            ])
            .to_string(),
            "range 3.."
        );
    }

    #[test]
    fn apply_and_diff() {
        let text = "virtwire-trace 1\n\n< REPLY remote.X serial=1 status=OK\n  body {\"t\": 1}\n";
        let l = vec![Learned {
            step: 0,
            line: Line(3),
            rules: vec![Rule::parse("body.t range 1..", Line(0)).unwrap()],
        }];
        let new = apply(text, &l);
        assert_eq!(
            new,
            "virtwire-trace 1\n\n< REPLY remote.X serial=1 status=OK\n  rule body.t range 1..\n  body {\"t\": 1}\n"
        );
        let d = diff("x.trace", text, &l);
        assert!(
            d.contains(
                "@@ -3,1 +3,2 @@\n < REPLY remote.X serial=1 status=OK\n+  rule body.t range 1..\n"
            ),
            "{d}"
        );
    }
}
