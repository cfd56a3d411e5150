//! libvirt 9.0.0 and 11.3.0 side by side: both schemas load with zero errors (procedure and body
//! counts per program), and what `Schema::diff` says changed between them. The trees are the
//! repository's `.cache/libvirt-<version>` (`scripts/setup.sh`); without them these tests skip
//! loudly, and fail under `VIRTWIRE_REQUIRE_ALL=1` (CI).

use std::path::PathBuf;
use std::sync::OnceLock;

use virtwire_protocol::schema::{
    ChangeKind, ProcedureDelta, Schema, SchemaDiff, TypeDelta, TypeKind,
};

fn load(version: &str) -> Option<&'static Schema> {
    static S90: OnceLock<Option<Schema>> = OnceLock::new();
    static S113: OnceLock<Option<Schema>> = OnceLock::new();
    let cell = match version {
        "9.0.0" => &S90,
        "11.3.0" => &S113,
        _ => unreachable!(),
    };
    let s = cell.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../.cache")
            .join(format!("libvirt-{version}"));
        if !dir.join("src/remote/remote_protocol.x").is_file() {
            return None;
        }
        Some(Schema::load_dir(&dir).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display())))
    });
    if s.is_none() {
        let msg = format!(
            "libvirt {version}'s .x files are not in .cache/libvirt-{version} (scripts/setup.sh)"
        );
        if std::env::var_os("VIRTWIRE_REQUIRE_ALL").is_some_and(|v| v == "1") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg} — this test checked nothing");
    }
    s.as_ref()
}

/// (procedures, first, last, args bodies, ret bodies, msg bodies) per program, by name.
fn counts(s: &Schema) -> Vec<(String, usize, i32, i32, usize, usize, usize)> {
    s.programs()
        .iter()
        .map(|p| {
            let l = p.procedure_list();
            let n = |f: fn(&virtwire_protocol::schema::Procedure) -> bool| {
                l.iter().filter(|p| f(p)).count()
            };
            (
                p.name().to_string(),
                l.len(),
                l.first().map_or(0, |p| p.number),
                l.last().map_or(0, |p| p.number),
                n(|p| p.args.is_some()),
                n(|p| p.ret.is_some()),
                n(|p| p.msg.is_some()),
            )
        })
        .collect()
}

fn row(
    name: &str,
    n: usize,
    first: i32,
    last: i32,
    args: usize,
    ret: usize,
    msg: usize,
) -> (String, usize, i32, i32, usize, usize, usize) {
    (name.to_string(), n, first, last, args, ret, msg)
}

#[test]
fn libvirt_9_0_0_procedure_and_body_counts() {
    let Some(s) = load("9.0.0") else { return };
    assert_eq!(
        counts(s),
        vec![
            row("remote", 443, 1, 443, 364, 247, 51),
            row("qemu", 7, 1, 7, 6, 5, 1),
            row("lxc", 1, 1, 1, 1, 0, 0),
            row("keepalive", 2, 1, 2, 0, 0, 0),
            row("admin", 19, 1, 19, 17, 10, 0),
            row("log", 4, 1, 4, 4, 4, 0),
            row("lock", 8, 1, 8, 8, 0, 0),
            row("lxc_monitor", 2, 1, 2, 0, 0, 2),
        ]
    );
}

#[test]
fn libvirt_11_3_0_loads_with_zero_errors_procedure_and_body_counts() {
    let Some(s) = load("11.3.0") else { return };
    assert_eq!(
        counts(s),
        vec![
            row("remote", 453, 1, 453, 372, 249, 53),
            row("qemu", 7, 1, 7, 6, 5, 1),
            row("lxc", 1, 1, 1, 1, 0, 0),
            row("keepalive", 2, 1, 2, 0, 0, 0),
            row("admin", 20, 1, 20, 18, 10, 0),
            row("log", 4, 1, 4, 4, 4, 0),
            row("lock", 8, 1, 8, 8, 0, 0),
            row("lxc_monitor", 2, 1, 2, 0, 0, 2),
        ]
    );
    assert_eq!(
        s.procedure_name(0x2000_8086, 453),
        Some("DOMAIN_EVENT_NIC_MAC_CHANGE")
    );
}

fn diff() -> Option<SchemaDiff> {
    Some(load("9.0.0")?.diff(load("11.3.0")?))
}

#[test]
fn diff_9_0_to_11_3_adds_procedures_and_changes_no_existing_encoding() {
    let Some(d) = diff() else { return };
    eprintln!("{d}");
    let added: Vec<(String, i32)> = d
        .procedures
        .iter()
        .filter(|p| p.change == ProcedureDelta::Added)
        .map(|p| (p.program.clone(), p.number))
        .collect();
    let mut want: Vec<(String, i32)> = (444..=453).map(|n| ("remote".to_string(), n)).collect();
    want.push(("admin".to_string(), 20));
    let mut got = added.clone();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    // Nothing removed, renamed or re-encoded; no program added or removed; no constant changed.
    assert!(d.programs.is_empty(), "{:?}", d.programs);
    assert!(
        d.procedures
            .iter()
            .all(|p| p.change == ProcedureDelta::Added),
        "{d}"
    );
    assert_eq!(d.counts().constants_changed, 0, "{d}");
    assert_eq!(d.counts().constants_removed, 0, "{d}");
    assert_eq!(d.counts().types_removed, 0, "{d}");
    // The body structs of the new procedures are new types.
    for name in [
        "remote_network_set_metadata_args",
        "remote_domain_set_throttle_group_args",
        "remote_domain_event_nic_mac_change_msg",
    ] {
        assert!(
            d.types.iter().any(|t| t.name == name
                && t.change == TypeDelta::Added
                && t.kind == TypeKind::Struct),
            "{name}: {d}"
        );
    }
    // The procedure enums grew: one member per new procedure.
    let proc_enum = d
        .types
        .iter()
        .find(|t| t.name == "remote_procedure")
        .expect("remote_procedure changed");
    let TypeDelta::Changed(ch) = &proc_enum.change else {
        panic!("{proc_enum:?}")
    };
    assert_eq!(ch.len(), 10, "{ch:?}");
    assert!(
        ch.iter()
            .all(|c| matches!(c.what, ChangeKind::MemberAdded { .. }))
    );
}

#[test]
fn schema_show_expands_every_bound_of_an_11_3_body() {
    let Some(s) = load("11.3.0") else { return };
    let p = s.program(0x2000_8086, 1).unwrap().procedure(451).unwrap();
    let (name, id) = p.args.clone().unwrap();
    assert_eq!(name, "remote_domain_set_throttle_group_args");
    let text = s.expand(id, "");
    eprintln!("{text}");
    for part in [
        "struct remote_domain_set_throttle_group_args {",
        "struct remote_nonnull_domain {",
        "string name<REMOTE_STRING_MAX = 4194304>;",
        "opaque uuid[VIR_UUID_BUFLEN = 16];",
        "params<REMOTE_DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX = 32>;",
        "case 7: string s<REMOTE_STRING_MAX = 4194304>;",
        "unsigned int flags;",
    ] {
        assert!(text.contains(part), "{part}:\n{text}");
    }
}
