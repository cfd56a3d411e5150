//! The conformance matrix: one run per libvirt version, rows = cases, columns = versions, as
//! Markdown and JSON (`virtwire-matrix/1`), like an interop runner's table. Cases whose verdict
//! differs between the versions that have them come first, each with every version's Actual; then
//! the cases only some versions have (procedures added or removed between them).

use std::fmt::Write;

use serde_json::{Value as Json, json};

use crate::runner::{RunReport, Verdict};

/// One version's result for one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    /// The verdict.
    pub verdict: Verdict,
    /// What the server did.
    pub actual: String,
    /// On that version's known-failing (or flaky) list.
    pub known: bool,
}

/// One case across the versions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The case ID.
    pub id: String,
    /// What the requirement expects (from the first version that ran it).
    pub expected: String,
    /// Per version, in column order; `None` when that version's catalogue has no such case.
    pub cells: Vec<Option<Cell>>,
}

impl Row {
    /// True when the versions that have this case do not all give it the same verdict.
    pub fn differs(&self) -> bool {
        let mut v = self.cells.iter().flatten().map(|c| c.verdict);
        let first = v.next();
        v.any(|x| Some(x) != first)
    }

    /// True when some version's catalogue has no such case (a procedure new in a later version).
    pub fn partial(&self) -> bool {
        self.cells.iter().any(Option::is_none)
    }
}

/// The matrix of several runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matrix {
    /// Column titles (the versions), in run order.
    pub versions: Vec<String>,
    /// Each version's target line (daemon, URI, pid).
    pub banners: Vec<String>,
    /// Rows: the differing cases first, then the others, each group in catalogue order.
    pub rows: Vec<Row>,
}

impl Matrix {
    /// Build from one report per version (same order as `versions`).
    pub fn build(versions: &[String], banners: &[String], reports: &[RunReport]) -> Matrix {
        let mut ids: Vec<(String, String)> = Vec::new();
        for r in reports {
            for c in &r.cases {
                if !ids.iter().any(|(id, _)| *id == c.case.id) {
                    ids.push((c.case.id.to_string(), c.expected.clone()));
                }
            }
        }
        let mut rows: Vec<Row> = ids
            .into_iter()
            .map(|(id, expected)| Row {
                cells: reports
                    .iter()
                    .map(|r| {
                        r.cases.iter().find(|c| *c.case.id == *id).map(|c| Cell {
                            verdict: c.verdict,
                            actual: c.actual.clone(),
                            known: c.known.is_some(),
                        })
                    })
                    .collect(),
                id,
                expected,
            })
            .collect();
        // Stable: differing rows first, then the cases only some versions have, then the rest;
        // catalogue order kept within each group.
        rows.sort_by_key(|r| (!r.differs(), !r.partial()));
        Matrix {
            versions: versions.to_vec(),
            banners: banners.to_vec(),
            rows,
        }
    }

    /// The rows whose verdict differs.
    pub fn differing(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.differs())
    }

    /// Per version, the number of cases per verdict name.
    fn totals(&self) -> Vec<Vec<(Verdict, usize)>> {
        (0..self.versions.len())
            .map(|i| {
                let mut m = std::collections::BTreeMap::new();
                for r in &self.rows {
                    if let Some(c) = &r.cells[i] {
                        *m.entry(c.verdict).or_insert(0) += 1;
                    }
                }
                m.into_iter().collect()
            })
            .collect()
    }

    /// The Markdown report: the versions, the differing cases with every Actual, then the whole
    /// table.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let cell = |c: &Option<Cell>| match c {
            Some(c) if c.known => format!("{} (known)", c.verdict.name()),
            Some(c) => c.verdict.name().to_string(),
            None => "—".to_string(),
        };
        let esc = |t: &str| t.replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(s, "# virtwire conformance matrix\n");
        for (v, b) in self.versions.iter().zip(&self.banners) {
            let _ = writeln!(s, "- **{v}**: {}", esc(b));
        }
        let totals = self.totals();
        let _ = writeln!(s);
        for (v, t) in self.versions.iter().zip(&totals) {
            let parts: Vec<String> = t.iter().map(|(k, n)| format!("{n} {}", k.name())).collect();
            let _ = writeln!(s, "- {v}: {}", parts.join(", "));
        }
        let header = |s: &mut String| {
            let _ = writeln!(s, "| case | {} |", self.versions.join(" | "));
            let _ = writeln!(s, "|---|{}", "---|".repeat(self.versions.len()));
        };
        let differing: Vec<&Row> = self.differing().collect();
        let _ = writeln!(s, "\n## Verdicts that differ ({})\n", differing.len());
        if differing.is_empty() {
            let _ = writeln!(s, "None: every case has the same verdict on every version.");
        } else {
            header(&mut s);
            for r in &differing {
                let cells: Vec<String> = r.cells.iter().map(cell).collect();
                let _ = writeln!(s, "| `{}` | {} |", r.id, cells.join(" | "));
            }
            let _ = writeln!(s);
            for r in &differing {
                let _ = writeln!(s, "### `{}`\n\nExpected: {}\n", r.id, esc(&r.expected));
                for (v, c) in self.versions.iter().zip(&r.cells) {
                    match c {
                        Some(c) => {
                            let _ =
                                writeln!(s, "- {v}: **{}** — {}", c.verdict.name(), esc(&c.actual));
                        }
                        None => {
                            let _ = writeln!(s, "- {v}: not in this version's catalogue");
                        }
                    }
                }
                let _ = writeln!(s);
            }
        }
        let partial: Vec<&Row> = self.rows.iter().filter(|r| r.partial()).collect();
        if !partial.is_empty() {
            let _ = writeln!(
                s,
                "\n## Cases only some versions have ({}): their procedures are new or gone\n",
                partial.len()
            );
            header(&mut s);
            for r in &partial {
                let cells: Vec<String> = r.cells.iter().map(cell).collect();
                let _ = writeln!(s, "| `{}` | {} |", r.id, cells.join(" | "));
            }
        }
        let _ = writeln!(s, "\n## All cases ({})\n", self.rows.len());
        header(&mut s);
        for r in &self.rows {
            let cells: Vec<String> = r.cells.iter().map(cell).collect();
            let _ = writeln!(s, "| `{}` | {} |", r.id, cells.join(" | "));
        }
        s
    }

    /// The JSON report (`"format": "virtwire-matrix/1"`).
    pub fn json(&self) -> Json {
        let totals = self.totals();
        json!({
            "format": "virtwire-matrix/1",
            "versions": self.versions.iter().zip(&self.banners).zip(&totals).map(|((v, b), t)| json!({
                "version": v,
                "target": b,
                "counts": t.iter().map(|(k, n)| (k.name().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "differing": self.differing().count(),
            "partial": self.rows.iter().filter(|r| r.partial()).count(),
            "cases": self.rows.iter().map(|r| json!({
                "id": r.id,
                "expected": r.expected,
                "differs": r.differs(),
                "in_all_versions": !r.partial(),
                "results": self.versions.iter().zip(&r.cells).map(|(v, c)| (v.clone(), match c {
                    Some(c) => json!({"verdict": c.verdict.name(), "actual": c.actual, "known": c.known}),
                    None => Json::Null,
                })).collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
        })
    }
}
