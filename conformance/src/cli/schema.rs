//! `virtwire schema diff A B` and `virtwire schema show PROC`: what changed on the wire between two
//! libvirt versions, and a procedure's bodies as the `.x` declares them. The comparison and the
//! expansion are the protocol crate's (`Schema::diff`, `Schema::expand`); this file chooses the
//! schemas and prints.
//!
//! Exit status: 0 done (also when the schemas differ); 2 usage error, a version or directory that
//! does not load, an unknown procedure.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use serde_json::{Value as Json, json};
use virtwire_protocol::BodyRole;
use virtwire_protocol::schema::{
    Change, ChangeKind, ProcedureDelta, Schema, SchemaDiff, TypeDelta,
};

use super::protocol_args::ProtocolArgs;
use crate::protocol_files::Search;

/// `schema --help`'s closing text.
pub const HELP: &str = "\
A and B (schema diff) are libvirt versions found in the caches (9.0.0, 11.3 — see `virtwire \
fetch-protocol`) or directories holding a libvirt source tree (a release or a git checkout). A \
REMOTE_*_MAX constant changed between them shows on every field and typedef that uses it.";

/// `virtwire schema`'s subcommands.
#[derive(Subcommand, Debug)]
pub enum Args {
    /// What changed on the wire from A to B: programs, procedures, struct/union/enum encodings,
    /// bounds, constants.
    Diff(DiffArgs),
    /// A procedure's args / ret / msg bodies as the .x declares them, every bound resolved.
    Show(ShowArgs),
}

/// `schema diff`'s arguments.
#[derive(clap::Args, Debug)]
pub struct DiffArgs {
    /// The old side: a libvirt version or a directory.
    #[arg(value_name = "A")]
    a: String,
    /// The new side.
    #[arg(value_name = "B")]
    b: String,
    /// Text (a summary line, then each change) or one JSON document.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

/// `schema show`'s arguments.
#[derive(clap::Args, Debug)]
pub struct ShowArgs {
    /// The procedure: its name with or without prefix (DOMAIN_GET_INFO, REMOTE_PROC_DOMAIN_GET_INFO),
    /// or its number.
    #[arg(value_name = "PROC")]
    procedure: String,
    /// The program (remote, qemu, lxc, admin, keepalive, log, lock, lxc_monitor). Default: the one
    /// that has PROC (remote first).
    #[arg(long, value_name = "NAME")]
    program: Option<String>,
    /// Which libvirt's files.
    #[command(flatten)]
    protocol: ProtocolArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Run `virtwire schema …`; the exit status.
pub fn run(args: Args) -> ExitCode {
    let r = match args {
        Args::Diff(a) => diff(&a),
        Args::Show(a) => show(&a),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = io::stdout().flush();
            eprintln!("virtwire schema: {e}");
            ExitCode::from(2)
        }
    }
}

/// A schema from a version or a directory; with what it was (for the header).
pub fn load_side(side: &str) -> Result<(Schema, PathBuf), String> {
    let search = if Path::new(side).is_dir() {
        Search::standard(Some(Path::new(side)))
    } else {
        Search::standard(None).with_version(Some(side))
    };
    let (schema, found) = search.load().map_err(|e| e.to_string())?;
    Ok((schema, found.dir))
}

fn diff(args: &DiffArgs) -> Result<(), String> {
    let (a, da) = load_side(&args.a)?;
    let (b, db) = load_side(&args.b)?;
    let d = a.diff(&b);
    let mut out = io::stdout().lock();
    let r = match args.format {
        Format::Text => write!(
            out,
            "schema diff {} ({}) → {} ({})\n{d}",
            args.a,
            da.display(),
            args.b,
            db.display()
        ),
        Format::Json => {
            let j = diff_json(&d, (&args.a, &da), (&args.b, &db));
            let text = serde_json::to_string_pretty(&j).unwrap_or_default();
            writeln!(out, "{text}")
        }
    };
    match r {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(format!("writing: {e}")),
        _ => Ok(()),
    }
}

fn role(r: BodyRole) -> &'static str {
    match r {
        BodyRole::Args => "args",
        BodyRole::Ret => "ret",
        BodyRole::Msg => "msg",
    }
}

fn change_json(c: &Change) -> Json {
    let mut j = match &c.what {
        ChangeKind::FieldAdded { index, ty } => {
            json!({"kind": "field_added", "index": index, "type": ty})
        }
        ChangeKind::FieldRemoved { index, ty } => {
            json!({"kind": "field_removed", "index": index, "type": ty})
        }
        ChangeKind::FieldsReordered { from, to } => {
            json!({"kind": "fields_reordered", "from": from, "to": to})
        }
        ChangeKind::TypeChanged { from, to } => {
            json!({"kind": "type_changed", "from": from, "to": to})
        }
        ChangeKind::Bound {
            from,
            to,
            from_const,
            to_const,
            fixed,
        } => json!({
            "kind": if to > from { "bound_raised" } else { "bound_lowered" },
            "from": from, "to": to, "from_const": from_const, "to_const": to_const,
            "fixed": fixed,
        }),
        ChangeKind::ArmAdded { cases, ty } => {
            json!({"kind": "arm_added", "cases": cases, "type": ty})
        }
        ChangeKind::ArmRemoved { cases, ty } => {
            json!({"kind": "arm_removed", "cases": cases, "type": ty})
        }
        ChangeKind::MemberAdded { name, value } => {
            json!({"kind": "member_added", "name": name, "value": value})
        }
        ChangeKind::MemberRemoved { name, value } => {
            json!({"kind": "member_removed", "name": name, "value": value})
        }
        ChangeKind::MemberValue { name, from, to } => {
            json!({"kind": "member_renumbered", "name": name, "from": from, "to": to})
        }
    };
    j["path"] = json!(c.path);
    j
}

/// The JSON document of `schema diff --format json` (`"format": "virtwire-schema-diff/1"`).
pub fn diff_json(d: &SchemaDiff, a: (&str, &Path), b: (&str, &Path)) -> Json {
    let c = d.counts();
    json!({
        "format": "virtwire-schema-diff/1",
        "from": {"name": a.0, "dir": a.1.display().to_string()},
        "to": {"name": b.0, "dir": b.1.display().to_string()},
        "counts": {
            "programs_added": c.programs_added, "programs_removed": c.programs_removed,
            "procedures_added": c.procedures_added, "procedures_removed": c.procedures_removed,
            "procedures_renamed": c.procedures_renamed, "bodies_changed": c.bodies_changed,
            "types_added": c.types_added, "types_removed": c.types_removed,
            "types_changed": c.types_changed, "bound_changes": c.bound_changes,
            "constants_added": c.constants_added, "constants_removed": c.constants_removed,
            "constants_changed": c.constants_changed,
        },
        "programs": d.programs.iter().map(|p| json!({
            "name": p.name, "number": p.number, "version": p.version, "change": p.change.name(),
        })).collect::<Vec<_>>(),
        "procedures": d.procedures.iter().map(|p| {
            let mut j = json!({"program": p.program, "number": p.number, "name": p.name});
            match &p.change {
                ProcedureDelta::Added => j["change"] = json!("added"),
                ProcedureDelta::Removed => j["change"] = json!("removed"),
                ProcedureDelta::Renamed { from } => {
                    j["change"] = json!("renamed");
                    j["from"] = json!(from);
                }
                ProcedureDelta::BodyStruct { role: r, from, to } => {
                    j["change"] = json!("body_struct");
                    j["role"] = json!(role(*r));
                    j["from"] = json!(from);
                    j["to"] = json!(to);
                }
                ProcedureDelta::BodyEncoding { role: r, body, via } => {
                    j["change"] = json!("body_encoding");
                    j["role"] = json!(role(*r));
                    j["body"] = json!(body);
                    j["via"] = json!(via);
                }
            }
            j
        }).collect::<Vec<_>>(),
        "types": d.types.iter().map(|t| {
            let (change, changes) = match &t.change {
                TypeDelta::Added => ("added", Vec::new()),
                TypeDelta::Removed => ("removed", Vec::new()),
                TypeDelta::Changed(ch) => ("changed", ch.iter().map(change_json).collect()),
            };
            json!({"name": t.name, "kind": t.kind.name(), "change": change, "changes": changes})
        }).collect::<Vec<_>>(),
        "constants": d.constants.iter().map(|k| json!({
            "name": k.name, "from": k.from, "to": k.to,
        })).collect::<Vec<_>>(),
    })
}

fn show(args: &ShowArgs) -> Result<(), String> {
    let (schema, found) = args.protocol.search().load().map_err(|e| e.to_string())?;
    let programs: Vec<_> = schema
        .programs()
        .iter()
        .filter(|p| args.program.as_deref().is_none_or(|n| p.name() == n))
        .collect();
    if programs.is_empty() {
        let names: Vec<&str> = schema.programs().iter().map(|p| p.name()).collect();
        return Err(format!(
            "no program {:?} (one of: {})",
            args.program.as_deref().unwrap_or(""),
            names.join(", ")
        ));
    }
    let number: Option<i32> = args.procedure.parse().ok();
    let (prog, p) = programs
        .iter()
        .find_map(|prog| {
            let p = match number {
                Some(n) => prog.procedure(n),
                None => prog.procedure_by_name(&args.procedure),
            };
            p.map(|p| (*prog, p))
        })
        .ok_or_else(|| {
            format!(
                "no procedure {:?} in {} ({})",
                args.procedure,
                args.program.as_deref().unwrap_or("any program"),
                found.dir.display()
            )
        })?;
    let mut out = String::new();
    out.push_str(&format!(
        "{} = {} (program {} 0x{:08x} version {}; {})\n",
        p.constant,
        p.number,
        prog.name(),
        prog.number(),
        prog.version(),
        found.dir.display()
    ));
    for r in [BodyRole::Args, BodyRole::Ret, BodyRole::Msg] {
        match p.body(r) {
            Some((_, id)) => {
                out.push_str(&format!("\n{}: {}\n", role(r), schema.expand(id, "")));
            }
            None if r != BodyRole::Msg => out.push_str(&format!("\n{}: void\n", role(r))),
            None => {}
        }
    }
    let mut stdout = io::stdout().lock();
    match stdout.write_all(out.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(format!("writing: {e}")),
        _ => Ok(()),
    }
}
