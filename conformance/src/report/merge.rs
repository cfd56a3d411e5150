//! `virtwire report merge A.json B.json … --html DIR`: runs written as `virtwire-check/1` JSON read
//! back, to be shown side by side as columns of one HTML grid ([`super::html`]). A case's traffic
//! comes back as the JSON records the file carries (its chunks are not in the file).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::runner::{Case, CaseReport, KnownAs, KnownList, Level, Outcome, RunReport, Verdict};

/// One connection of a case as the JSON file has it.
#[derive(Clone, Debug)]
pub struct RecordedConn {
    /// `conn 1`, …
    pub label: String,
    /// The records, as `decode --format json` printed them.
    pub records: Vec<Value>,
    /// Records the file left out.
    pub truncated: usize,
    /// Bytes the wire log did not keep: sent, received; and the cap.
    pub cut: (usize, usize),
    /// The cap each way.
    pub cap: usize,
}

/// A run read back from its JSON report.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The column's title (the file's name).
    pub name: String,
    /// The run (cases without their chunks; `wire` empty).
    pub report: RunReport,
    /// Each case's connections as recorded in the file, by case ID.
    pub wire: HashMap<String, Vec<RecordedConn>>,
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

fn n(v: &Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or(0)
}

fn verdict(name: &str) -> Result<Verdict, String> {
    Verdict::ALL
        .into_iter()
        .find(|v| v.name() == name)
        .ok_or_else(|| format!("unknown verdict {name:?}"))
}

/// Read a `virtwire-check/1` document.
pub fn load(path: &Path) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    if doc["schema"] != super::json::SCHEMA {
        return Err(format!(
            "{}: schema {}, not {}",
            path.display(),
            doc["schema"],
            super::json::SCHEMA
        ));
    }
    let started = doc["started"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or(SystemTime::UNIX_EPOCH, SystemTime::from);
    let mut cases = Vec::new();
    let mut wire = HashMap::new();
    for c in doc["cases"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let id = s(c, "id");
        let level = if c["level"] == "should" {
            Level::Should
        } else {
            Level::Must
        };
        let mut case = Case::new(
            id.clone(),
            level,
            s(c, "requirement"),
            s(c, "source"),
            |_| {
                Ok(Outcome::error(
                    "a case read back from a report does not run",
                ))
            },
        );
        case.needs = c["needs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(|x| x.to_string().into()))
                    .collect()
            })
            .unwrap_or_default();
        let known = match &c["known"] {
            Value::Object(_) => Some(KnownAs {
                list: if c["known"]["list"] == "flaky" {
                    KnownList::Flaky
                } else {
                    KnownList::Failing
                },
                reason: s(&c["known"], "reason"),
                at: s(&c["known"], "at"),
                signature: c["known"]["signature"].as_str().map(str::to_string),
                differs: c["known"]["differs"].as_str().map(str::to_string),
            }),
            _ => None,
        };
        let conns: Vec<RecordedConn> = c["wire"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|w| RecordedConn {
                label: s(w, "label"),
                records: w["records"].as_array().cloned().unwrap_or_default(),
                truncated: n(w, "truncated") as usize,
                cut: (n(w, "cut_sent") as usize, n(w, "cut_received") as usize),
                cap: n(w, "cap") as usize,
            })
            .collect();
        if !conns.is_empty() {
            wire.insert(id.clone(), conns);
        }
        cases.push(CaseReport {
            case,
            verdict: verdict(c["verdict"].as_str().unwrap_or_default())
                .map_err(|e| format!("{}: case {id}: {e}", path.display()))?,
            expected: s(c, "expected"),
            actual: s(c, "actual"),
            notes: c["notes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default(),
            duration: Duration::from_millis(n(c, "duration_ms")),
            started: Duration::from_millis(n(c, "started_ms")),
            known,
            required: c["required"] == true,
            facts: Vec::new(),
            wire: Vec::new(),
            server_log: c["server_log"].as_str().map(str::to_string),
            rerun: s(c, "rerun"),
        });
    }
    Ok(Loaded {
        name: path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into(),
        ),
        report: RunReport {
            target: s(&doc, "target"),
            cases,
            started,
            duration: Duration::from_millis(n(&doc, "duration_ms")),
            strict: doc["strict"] == true,
            stopped: doc["stopped"].as_str().map(str::to_string),
        },
        wire,
    })
}

/// A JSON record as one line: `+0.002s s2c REPLY/ERROR remote CONNECT_OPEN serial 1: MESSAGE`.
pub fn record_line(r: &Value) -> String {
    let ts = r["ts"]
        .as_f64()
        .map_or_else(String::new, |t| format!("+{t:.3}s "));
    let dir = r["dir"].as_str().unwrap_or("");
    match r["record"].as_str().unwrap_or("") {
        "message" => {
            let status = match r["status_name"].as_str() {
                Some("OK") | None => String::new(),
                Some(st) => format!("/{st}"),
            };
            let procedure = r["proc_name"]
                .as_str()
                .map_or_else(|| format!("proc {}", r["proc"]), str::to_string);
            let mut line = format!(
                "{ts}{dir} {}{status} {} {procedure} serial {}",
                r["type_name"].as_str().unwrap_or("?"),
                r["prog_name"].as_str().unwrap_or("?"),
                r["serial"]
            );
            if r["body_kind"] == "error"
                && let Some(m) = r["body"]["message"].as_str()
            {
                line.push_str(&format!(
                    ": {m} (code {}, domain {})",
                    r["body"]["code"], r["body"]["domain"]
                ));
            }
            if let Some(e) = r["error"]["message"].as_str() {
                line.push_str(&format!(" - does not decode: {e}"));
            }
            line
        }
        "summary" => "summary".into(),
        other => format!("{ts}{dir} {other}"),
    }
}
