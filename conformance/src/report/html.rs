//! The run as a static HTML report: `DIR/index.html`, one self-contained file (styles and the
//! filter script inline, no font, no CDN) that opens from `file://` with no network.
//!
//! - **Index**: run metadata per column (target, date, duration, exit status and its meaning, why
//!   the run stopped early), virtwire's version and the command line; counts by standing and by
//!   family; the cases that need attention first (links); filters (verdict, family, text); a grid
//!   of cases × columns (the filters also read `?verdict=`, `?family=`, `?q=`; one column for `check` and `replay`, one per libvirt version for
//!   `matrix`), each cell a link to the case.
//! - **A section per case**, anchored by its ID (`index.html#framing/length-u32-max`, stable across
//!   runs; `index.html?case=ID` shows that case alone), one block per column: requirement, level, source (a link to libvirt's source at the
//!   version under test when the source names a file and the version is known), expected, actual,
//!   notes, the known-list entry that applied (list, `FILE:LINE`, reason, signature; for a case that
//!   fails differently, what the entry expects against what was observed), the rerun command, the
//!   daemon log excerpt, and the wire log decoded: one line per record (the terminal's summary,
//!   with its time since the connection opened), each folding out to the record as
//!   `decode --format json` prints it (long records cut, said so), and a link to the case's pcapng
//!   when `--trace-dir` was given.
//!
//! Everything a server sent is escaped; nothing in the report is fetched or executed from the run.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use super::{Standing, exit_meaning, human_duration, wire_log};
use crate::runner::{CaseReport, KnownList, Level, RunReport, Verdict, signature};
use crate::wire::{Decoder, Record};

/// What goes into the report beyond the runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The page title (`virtwire check`, `virtwire matrix`).
    pub title: String,
    /// The command line that made the run.
    pub command: String,
    /// `--trace-dir`: each case that needs attention links to its pcapng there.
    pub trace_dir: Option<PathBuf>,
    /// Wire records shown per connection (then a line says how many more).
    pub max_records: usize,
    /// A record's JSON is cut after this many bytes.
    pub max_record_bytes: usize,
    /// Server log lines shown per case (the last ones).
    pub log_lines: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            title: "virtwire check".into(),
            command: String::new(),
            trace_dir: None,
            max_records: 500,
            max_record_bytes: 4096,
            log_lines: 200,
        }
    }
}

/// One column of the grid: a run, how to decode its traffic, and its metadata.
pub struct Column<'a> {
    /// The column's title (the target, or the libvirt version).
    pub name: String,
    /// The libvirt version under test, when known (source links point at its tag).
    pub libvirt_version: Option<String>,
    /// More metadata rows (the daemon's banner…).
    pub meta: Vec<(String, String)>,
    /// The run.
    pub report: &'a RunReport,
    /// Decodes its traffic (the run's own schema).
    pub decoder: &'a Decoder,
    /// For a run read back from its JSON report (`report merge`): each case's connections as the
    /// file recorded them, shown instead of decoding chunks.
    pub recorded: Option<&'a std::collections::HashMap<String, Vec<super::merge::RecordedConn>>>,
}

/// Write one run's report into `dir` (created if needed): `dir/index.html`. Returns its size in
/// bytes.
pub fn write_run(
    report: &RunReport,
    decoder: &Decoder,
    dir: &Path,
    opts: &Options,
) -> io::Result<u64> {
    let col = Column {
        name: report.target.clone(),
        libvirt_version: None,
        meta: Vec::new(),
        report,
        decoder,
        recorded: None,
    };
    write(&[col], dir, opts)
}

/// Write the report of several runs (one grid column each) into `dir`: `dir/index.html`. Returns
/// its size in bytes.
pub fn write(columns: &[Column<'_>], dir: &Path, opts: &Options) -> io::Result<u64> {
    std::fs::create_dir_all(dir)?;
    let html = render(columns, opts)?;
    std::fs::write(dir.join("index.html"), &html)?;
    Ok(html.len() as u64)
}

/// HTML-escaped text for element content (quotes stay as they are: fewer bytes in a report made
/// mostly of JSON).
fn esc_text(s: &str) -> String {
    escape(s, false)
}

/// HTML-escaped text, safe in an attribute value too.
fn esc(s: &str) -> String {
    escape(s, true)
}

/// `&`, `<`, `>` (and with `quotes`, `"` and `'`) as entities; control characters other than
/// newline and tab shown escaped, never interpreted.
fn escape(s: &str, quotes: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' if quotes => out.push_str("&quot;"),
            '\'' if quotes => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "{}", c.escape_default());
            }
            c => out.push(c),
        }
    }
    out
}

/// The CSS class and word of a standing.
fn standing_words(s: Standing) -> (&'static str, &'static str) {
    match s {
        Standing::Pass => ("pass", "pass"),
        Standing::NonStrict => ("non-strict", "non-strict"),
        Standing::Failure => ("failure", "FAIL"),
        Standing::KnownFailure => ("known-failure", "known failure"),
        Standing::FailsDifferently => ("fails-differently", "FAILS DIFFERENTLY"),
        Standing::MissingRequired => ("missing-required", "REQUIRED, NOT RUN"),
        Standing::Flaky => ("flaky", "flaky"),
        Standing::StaleKnown => ("stale-known", "STALE KNOWN"),
        Standing::Unsupported => ("unsupported", "unsupported"),
        Standing::Omitted => ("omitted", "omitted"),
        Standing::Error => ("error", "ERROR"),
    }
}

/// Every standing, in the order the counts show them.
const STANDINGS: [Standing; 11] = [
    Standing::Failure,
    Standing::FailsDifferently,
    Standing::MissingRequired,
    Standing::StaleKnown,
    Standing::Error,
    Standing::KnownFailure,
    Standing::Flaky,
    Standing::NonStrict,
    Standing::Unsupported,
    Standing::Omitted,
    Standing::Pass,
];

const CSS: &str = "
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.5em;margin:0 0 .3em}h2{font-size:1.2em;margin:1.4em 0 .4em;border-bottom:1px solid #ccc}
table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3}.num{text-align:right}code,pre{font:12px/1.35 ui-monospace,monospace}
pre{white-space:pre-wrap;word-break:break-all;background:#f7f7f7;padding:4px;margin:2px 0}
.pass{background:#d9f2d9}.non-strict{background:#fff3c4}.failure,.fails-differently,.missing-required,
.stale-known,.error{background:#f8c7c7;font-weight:bold}.known-failure,.flaky{background:#fde2c0}
.unsupported,.omitted{background:#e6e6e6;color:#555}.absent{background:#fff;color:#aaa}
#grid td a{color:inherit;text-decoration:none;display:block}#grid tr.hidden{display:none}
.case{border:1px solid #ccc;margin:.6em 0;padding:.3em .6em}.case:target{outline:3px solid #36c}
.case h3{margin:.2em 0;font-size:1.05em}dl{display:grid;grid-template-columns:10em 1fr;gap:2px 8px;margin:.3em 0}
dt{font-weight:bold}dd{margin:0;white-space:pre-wrap}ol.wire{margin:.2em 0;padding-left:2.5em}
ol.wire li{font:12px/1.35 ui-monospace,monospace}li.c2s{color:#124}li.s2c{color:#410}
.filters{margin:.5em 0;display:flex;gap:1em;flex-wrap:wrap}.muted{color:#666}
body.single>:not(.shown){display:none}
";

const JS: &str = "
function filt(){
 var v=document.getElementById('f-verdict').value,f=document.getElementById('f-family').value,
     t=document.getElementById('f-text').value.toLowerCase(),n=0;
 document.querySelectorAll('#grid tbody tr').forEach(function(r){
  var ok=(v==''||(' '+r.dataset.st+' ').indexOf(' '+v+' ')>=0||(v=='not-pass'&&r.dataset.np=='1'))
   &&(f==''||r.dataset.family==f)&&(t==''||r.dataset.text.indexOf(t)>=0);
  r.classList.toggle('hidden',!ok);if(ok)n++;});
 document.getElementById('shown').textContent=n;
}
function opentarget(){
 var id=decodeURIComponent(location.hash.slice(1));if(!id)return;
 var e=document.getElementById(id);if(e)e.querySelectorAll('details.col').forEach(function(d){d.open=true;});
}
window.addEventListener('hashchange',opentarget);
document.addEventListener('DOMContentLoaded',function(){
 ['f-verdict','f-family','f-text'].forEach(function(i){var e=document.getElementById(i);e.addEventListener('input',filt);e.addEventListener('change',filt);});
 var q=new URLSearchParams(location.search);
 if(q.get('verdict'))document.getElementById('f-verdict').value=q.get('verdict');
 if(q.get('family'))document.getElementById('f-family').value=q.get('family');
 if(q.get('q'))document.getElementById('f-text').value=q.get('q');
 filt();opentarget();
 var one=q.get('case');
 if(one){var e=document.getElementById(one);if(e){document.body.classList.add('single');e.classList.add('shown');
  e.querySelectorAll('details.col').forEach(function(d){d.open=true;});}}
});
";

/// The first `src/…​.c|h|x` path a source pointer names, if any.
fn source_file(source: &str) -> Option<&str> {
    source
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | ',' | '(' | ')' | ':'))
        .find(|w| {
            (w.starts_with("src/") || w.starts_with("include/") || w.starts_with("docs/"))
                && [".c", ".h", ".x", ".rst", ".html"]
                    .iter()
                    .any(|e| w.ends_with(e))
        })
}

/// The source pointer, with a link to the file it names at libvirt's tag `v{version}`.
fn source_html(source: &str, version: Option<&str>) -> String {
    match (source_file(source), version) {
        (Some(f), Some(v)) => format!(
            "{} (<a href=\"https://gitlab.com/libvirt/libvirt/-/blob/v{}/{}\">{} at v{}</a>)",
            esc(source),
            esc(v),
            esc(f),
            esc(f),
            esc(v)
        ),
        _ => esc(source),
    }
}

/// The rows of the grid: every case ID once, in the first column's order, then the IDs only later
/// columns have.
fn case_ids<'a>(columns: &'a [Column<'a>]) -> Vec<&'a str> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for c in columns {
        for r in &c.report.cases {
            if seen.insert(r.case.id.as_ref()) {
                out.push(r.case.id.as_ref());
            }
        }
    }
    out
}

fn render(columns: &[Column<'_>], opts: &Options) -> io::Result<String> {
    let mut h = String::with_capacity(1 << 20);
    let ids = case_ids(columns);
    // Index every column's cases by ID once (a matrix has thousands of rows).
    let maps: Vec<std::collections::HashMap<&str, &CaseReport>> = columns
        .iter()
        .map(|c| {
            c.report
                .cases
                .iter()
                .map(|r| (r.case.id.as_ref(), r))
                .collect()
        })
        .collect();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{CSS}</style><script>{JS}</script></head><body>\n<h1>{}</h1>\n",
        esc(&opts.title),
        esc(&opts.title)
    );
    // Metadata.
    let _ = write!(
        h,
        "<table id=\"meta\"><tr><th>virtwire</th><td>{}</td></tr>",
        esc(env!("CARGO_PKG_VERSION"))
    );
    if !opts.command.is_empty() {
        let _ = write!(
            h,
            "<tr><th>command</th><td><code>{}</code></td></tr>",
            esc(&opts.command)
        );
    }
    h.push_str("</table>\n<table id=\"runs\"><tr><th>column</th><th>target</th><th>started</th><th>duration</th><th>cases</th><th>exit</th><th>details</th></tr>\n");
    for c in columns {
        let r = c.report;
        let started = chrono::DateTime::<chrono::Utc>::from(r.started)
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut more: Vec<String> = c
            .meta
            .iter()
            .map(|(k, v)| format!("{}: {}", esc(k), esc(v)))
            .collect();
        if let Some(s) = &r.stopped {
            more.push(format!("<b>stopped early</b>: {}", esc(s)));
        }
        if r.strict {
            more.push("--strict".into());
        }
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td>\
             <td class=\"{}\">{}: {}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&r.target),
            esc(&started),
            esc(&human_duration(r.duration)),
            r.cases.len(),
            if r.exit_code() == 0 {
                "pass"
            } else {
                "failure"
            },
            r.exit_code(),
            esc(&exit_meaning(r, "the known-failing list")),
            more.join("<br>")
        );
    }
    h.push_str("</table>\n");
    // Counts by standing.
    h.push_str("<h2>Counts</h2>\n<table id=\"counts\"><tr><th>counts as</th>");
    for c in columns {
        let _ = write!(h, "<th>{}</th>", esc(&c.name));
    }
    h.push_str("</tr>\n");
    for s in STANDINGS {
        let n: Vec<usize> = columns
            .iter()
            .map(|c| {
                c.report
                    .cases
                    .iter()
                    .filter(|r| Standing::of(r, c.report.strict) == s)
                    .count()
            })
            .collect();
        if n.iter().all(|x| *x == 0) {
            continue;
        }
        let (class, word) = standing_words(s);
        let _ = write!(
            h,
            "<tr data-standing=\"{class}\"><td class=\"{class}\">{word}</td>"
        );
        for x in n {
            let _ = write!(h, "<td class=\"num\">{x}</td>");
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    // Counts by family.
    let mut families: Vec<&str> = Vec::new();
    for id in &ids {
        let f = id.split('/').next().unwrap_or(id);
        if !families.contains(&f) {
            families.push(f);
        }
    }
    h.push_str("<h2>By family</h2>\n<table id=\"families\"><tr><th>family</th>");
    for c in columns {
        let _ = write!(h, "<th>{}</th>", esc(&c.name));
    }
    h.push_str("</tr>\n");
    for f in &families {
        let _ = write!(h, "<tr><td><a href=\"?family={0}\">{0}</a></td>", esc(f));
        for c in columns {
            let mut by: Vec<(Standing, usize)> = Vec::new();
            for r in c.report.cases.iter().filter(|r| r.case.family() == *f) {
                let s = Standing::of(r, c.report.strict);
                match by.iter_mut().find(|(x, _)| *x == s) {
                    Some((_, n)) => *n += 1,
                    None => by.push((s, 1)),
                }
            }
            by.sort_by_key(|(s, _)| STANDINGS.iter().position(|x| x == s));
            let cell: Vec<String> = by
                .iter()
                .map(|(s, n)| {
                    let (class, word) = standing_words(*s);
                    format!("<span class=\"{class}\">{n} {word}</span>")
                })
                .collect();
            let _ = write!(h, "<td>{}</td>", cell.join(" "));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    // What needs attention, first.
    let attention: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|id| {
            columns.iter().zip(&maps).any(|(c, m)| {
                m.get(id)
                    .is_some_and(|r| Standing::of(r, c.report.strict).needs_attention())
            })
        })
        .collect();
    let _ = write!(
        h,
        "<h2>Needs attention ({})</h2>\n<ul id=\"attention\">",
        attention.len()
    );
    for id in &attention {
        let words: Vec<String> = columns
            .iter()
            .zip(&maps)
            .filter_map(|(c, m)| {
                let r = m.get(id)?;
                let (class, word) = standing_words(Standing::of(r, c.report.strict));
                Some(format!(
                    "<span class=\"{class}\">{}{word}</span>",
                    if columns.len() > 1 {
                        format!("{}: ", esc(&c.name))
                    } else {
                        String::new()
                    }
                ))
            })
            .collect();
        let _ = write!(
            h,
            "<li><a href=\"#{0}\">{0}</a> {1}</li>",
            esc(id),
            words.join(" ")
        );
    }
    if attention.is_empty() {
        h.push_str("<li class=\"muted\">nothing: every case is as expected</li>");
    }
    h.push_str("</ul>\n");
    // Filters and the grid.
    h.push_str(
        "<h2>Cases</h2>\n<div class=\"filters\"><label>verdict <select id=\"f-verdict\">\
         <option value=\"\">any</option><option value=\"not-pass\">anything but pass</option>",
    );
    for s in STANDINGS {
        let (class, word) = standing_words(s);
        let _ = write!(h, "<option value=\"{class}\">{word}</option>");
    }
    h.push_str(
        "</select></label><label>family <select id=\"f-family\"><option value=\"\">any</option>",
    );
    for f in &families {
        let _ = write!(h, "<option>{}</option>", esc(f));
    }
    let _ = writeln!(
        h,
        "</select></label><label>text <input id=\"f-text\" type=\"search\" \
         placeholder=\"case ID, actual…\"></label><span><span id=\"shown\">{}</span> of {} cases shown</span></div>",
        ids.len(),
        ids.len()
    );
    h.push_str("<table id=\"grid\"><thead><tr><th>case</th><th>level</th>");
    for c in columns {
        let _ = write!(h, "<th>{}</th>", esc(&c.name));
    }
    h.push_str("</tr></thead><tbody>\n");
    for id in &ids {
        let first = maps.iter().find_map(|m| m.get(id).copied());
        let level = first.map_or("", |r| match r.case.level {
            Level::Must => "must",
            Level::Should => "should",
        });
        let mut st = Vec::new();
        let mut text = id.to_lowercase();
        let mut cells = String::new();
        let mut not_pass = false;
        for (c, m) in columns.iter().zip(&maps) {
            match m.get(id) {
                Some(r) => {
                    let s = Standing::of(r, c.report.strict);
                    let (class, word) = standing_words(s);
                    not_pass |= s != Standing::Pass;
                    st.push(class);
                    text.push(' ');
                    text.push_str(&r.actual.to_lowercase());
                    let _ = write!(
                        cells,
                        "<td class=\"{class}\"><a href=\"#{}\">{word}</a></td>",
                        esc(id)
                    );
                }
                None => cells.push_str("<td class=\"absent\">—</td>"),
            }
        }
        let _ = writeln!(
            h,
            "<tr data-family=\"{}\" data-st=\"{}\" data-np=\"{}\" data-text=\"{}\"><td><a href=\"#{}\">{}</a></td><td>{level}</td>{cells}</tr>",
            esc(id.split('/').next().unwrap_or(id)),
            st.join(" "),
            u8::from(not_pass),
            esc(&text.chars().take(400).collect::<String>()),
            esc(id),
            esc(id)
        );
    }
    h.push_str("</tbody></table>\n<h2>Case details</h2>\n");
    for id in &ids {
        let _ = writeln!(
            h,
            "<section class=\"case\" id=\"{0}\"><h3><a href=\"#{0}\">{0}</a></h3>",
            esc(id)
        );
        for (c, m) in columns.iter().zip(&maps) {
            if let Some(r) = m.get(id) {
                case_html(&mut h, c, r, opts, columns.len() > 1)?;
            }
        }
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    Ok(h)
}

fn row(h: &mut String, label: &str, value_html: &str) {
    let _ = write!(h, "<dt>{label}</dt><dd>{value_html}</dd>");
}

/// One column's block of a case.
fn case_html(
    h: &mut String,
    col: &Column<'_>,
    r: &CaseReport,
    opts: &Options,
    named: bool,
) -> io::Result<()> {
    let strict = col.report.strict;
    let s = Standing::of(r, strict);
    let (class, word) = standing_words(s);
    let _ = write!(
        h,
        "<details class=\"col\"{}><summary><span class=\"{class}\">{}{word}</span> <span class=\"muted\">{}</span></summary><dl>",
        if s.needs_attention() { " open" } else { "" },
        if named {
            format!("{}: ", esc(&col.name))
        } else {
            String::new()
        },
        esc(&human_duration(r.duration))
    );
    row(h, "Verdict", &esc(r.verdict.name()));
    row(h, "Requirement", &esc(&r.case.requirement));
    row(
        h,
        "Level",
        match r.case.level {
            Level::Must => "MUST",
            Level::Should => "SHOULD (lenience is non-strict, a failure with --strict)",
        },
    );
    row(
        h,
        "Source",
        &source_html(&r.case.source, col.libvirt_version.as_deref()),
    );
    if !r.case.needs.is_empty() {
        let needs: Vec<String> = r
            .case
            .needs
            .iter()
            .map(|n| format!("<a href=\"#{0}\">{0}</a>", esc(n)))
            .collect();
        row(h, "Needs", &needs.join(", "));
    }
    if !r.expected.is_empty() {
        row(h, "Expected", &esc(&r.expected));
    }
    if !r.actual.is_empty() {
        row(h, "Actual", &esc(&r.actual));
    }
    for n in &r.notes {
        row(h, "Note", &esc(n));
    }
    if let Some(k) = &r.known {
        let list = match k.list {
            KnownList::Failing => "Known failing",
            KnownList::Flaky => "Known flaky",
        };
        row(
            h,
            list,
            &format!(
                "{} <span class=\"muted\">({})</span>",
                esc(&k.reason),
                esc(&k.at)
            ),
        );
        if let Some(sig) = &k.signature {
            row(
                h,
                "Entry expects",
                &format!("<code>{{{}}}</code>", esc(sig)),
            );
        }
        if let Some(d) = &k.differs {
            row(
                h,
                "Observed",
                &format!("<code>{}</code>", esc(&signature::observed_text(&r.facts))),
            );
            row(
                h,
                "Fails otherwise",
                &format!(
                    "<b>{}</b>: not the known failure, so it counts as unexpected",
                    esc(d)
                ),
            );
        }
    } else if !r.facts.is_empty() && r.verdict != Verdict::Pass {
        row(
            h,
            "Observed",
            &format!("<code>{}</code>", esc(&signature::observed_text(&r.facts))),
        );
    }
    match s {
        Standing::StaleKnown => row(
            h,
            "Stale",
            &format!(
                "listed as known-failing, but the verdict is {}: fix the entry or remove it",
                esc(r.verdict.name())
            ),
        ),
        Standing::MissingRequired => row(
            h,
            "Required",
            "--require names this case: a required case must run",
        ),
        _ => {}
    }
    row(h, "Rerun", &format!("<code>{}</code>", esc(&r.rerun)));
    if let Some(dir) = &opts.trace_dir
        && s.needs_attention()
        && !r.wire.is_empty()
    {
        let p = dir.join(format!("{}.pcapng", r.case.id.replace('/', "__")));
        let p = std::fs::canonicalize(&p).unwrap_or(p);
        row(
            h,
            "Capture",
            &format!(
                "<a href=\"file://{0}\">{0}</a>",
                esc(&p.display().to_string())
            ),
        );
    }
    h.push_str("</dl>");
    if let Some(log) = &r.server_log {
        let (lines, total) = super::tail(log, opts.log_lines);
        let _ = write!(
            h,
            "<details class=\"log\"{}><summary>Daemon log ({})</summary><pre>{}</pre></details>",
            if s.needs_attention() { " open" } else { "" },
            if lines.len() < total {
                format!("last {} of {total} lines", lines.len())
            } else {
                super::plural(total, "line", "lines")
            },
            esc_text(&lines.join("\n"))
        );
    }
    for (i, w) in r.wire.iter().enumerate() {
        wire_html(h, col.decoder, &r.case.id, i as u64 + 1, w, opts)?;
    }
    // As for a run's own report: a passing case's traffic is not shown (the JSON file keeps it).
    let recorded = col
        .recorded
        .filter(|_| s != Standing::Pass)
        .and_then(|m| m.get(r.case.id.as_ref()));
    for conn in recorded.into_iter().flatten() {
        recorded_html(h, conn, opts);
    }
    if r.wire.is_empty() && recorded.is_none() && r.verdict == Verdict::Pass {
        h.push_str(
            "<p class=\"muted\">Traffic of a passing case is not kept (--json keeps it).</p>",
        );
    }
    h.push_str("</details>\n");
    Ok(())
}

/// One connection's traffic as a JSON report recorded it (`report merge`).
fn recorded_html(h: &mut String, conn: &super::merge::RecordedConn, opts: &Options) {
    let mut items = String::new();
    for r in &conn.records {
        let line = super::merge::record_line(r);
        let json = r.to_string();
        let json = if json.len() > opts.max_record_bytes {
            let mut cut = opts.max_record_bytes;
            while !json.is_char_boundary(cut) {
                cut -= 1;
            }
            format!(
                "{}\n… {} more bytes of this record",
                &json[..cut],
                json.len() - cut
            )
        } else {
            json
        };
        let _ = write!(
            items,
            "<li class=\"{}\"><details><summary>{}</summary><pre>{}</pre></details></li>",
            esc(r["dir"].as_str().unwrap_or("")),
            esc_text(&line),
            esc_text(&json)
        );
    }
    for (dir, bytes) in [("c2s", conn.cut.0), ("s2c", conn.cut.1)] {
        if bytes > 0 {
            let _ = write!(
                items,
                "<li class=\"{dir}\">{dir} the wire log was cut at {} this way: {bytes} more bytes were not kept; --wire-log-max SIZE keeps more</li>",
                esc(&crate::runner::kib(conn.cap))
            );
        }
    }
    let _ = write!(
        h,
        "<div class=\"wire\"><b>Wire, {}</b> <span class=\"muted\">({} records{}, as the JSON report recorded them)</span><ol class=\"wire\">{items}</ol></div>",
        esc(&conn.label),
        conn.records.len(),
        if conn.truncated > 0 {
            format!(", {} more left out by it", conn.truncated)
        } else {
            String::new()
        }
    );
}

/// One connection's traffic: a line per record, each folding out to its JSON.
fn wire_html(
    h: &mut String,
    decoder: &Decoder,
    case_id: &str,
    conn: u64,
    w: &crate::runner::Wire,
    opts: &Options,
) -> io::Result<()> {
    let mut items = String::new();
    let mut shown = 0usize;
    let mut more = 0usize;
    let mut said_cut = [false; 2];
    decoder.decode_chunks(case_id, conn, &w.chunks, &mut |rec: &Record<'_>| {
        if shown >= opts.max_records && !matches!(rec, Record::Summary { .. }) {
            more += 1;
            return Ok(());
        }
        let (line, dir) = match rec {
            Record::Incomplete {
                origin,
                have,
                len_word,
                ..
            } if origin.dir.is_some_and(|d| wire_log::cut_bytes(w, d) > 0) => {
                let d = origin.dir.unwrap_or(crate::capture::tcp::Dir::S2c);
                said_cut[usize::from(d == crate::capture::tcp::Dir::S2c)] = true;
                (
                    Some(format!(
                        "{} {}",
                        d.name(),
                        wire_log::cut_words(w, d, len_word.map(|l| (*have, l)))
                    )),
                    Some(d),
                )
            }
            Record::Message(m) => (wire_log::summary_line(rec), m.origin.dir),
            _ => (wire_log::summary_line(rec), None),
        };
        let json = serde_json::to_string(rec).map_err(io::Error::from)?;
        let json = if json.len() > opts.max_record_bytes {
            let mut cut = opts.max_record_bytes;
            while !json.is_char_boundary(cut) {
                cut -= 1;
            }
            format!(
                "{}\n… {} more bytes of this record (the whole record: --json)",
                &json[..cut],
                json.len() - cut
            )
        } else {
            json
        };
        let class = dir.map_or("", |d| d.name());
        let line = line.unwrap_or_else(|| "summary".into());
        let _ = write!(
            items,
            "<li class=\"{class}\"><details><summary>{}</summary><pre>{}</pre></details></li>",
            esc_text(&line),
            esc_text(&json)
        );
        shown += 1;
        Ok(())
    })?;
    for (i, d) in [crate::capture::tcp::Dir::C2s, crate::capture::tcp::Dir::S2c]
        .into_iter()
        .enumerate()
    {
        if !said_cut[i] && wire_log::cut_bytes(w, d) > 0 {
            let _ = write!(
                items,
                "<li class=\"{}\">{} {}</li>",
                d.name(),
                d.name(),
                esc(&wire_log::cut_words(w, d, None))
            );
        }
    }
    let _ = write!(
        h,
        "<div class=\"wire\"><b>Wire, {}</b> <span class=\"muted\">({} records{}; each line folds out to its record as <code>decode --format json</code> prints it)</span><ol class=\"wire\">{items}</ol></div>",
        esc(&w.label),
        shown,
        if more > 0 {
            format!(", {more} more not shown")
        } else {
            String::new()
        }
    );
    Ok(())
}
