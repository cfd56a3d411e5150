//! The .x parser and compiler against libvirt 9.0.0's nine protocol files, plus malformed input.

mod schema_support;

use std::collections::BTreeMap;

use virtwire_protocol::header::PROGRAMS;
use virtwire_protocol::schema::{Schema, SchemaError, Type, parse_x, xdr_files};

#[test]
fn all_nine_files_parse_with_zero_errors() {
    let _ = schema_or_skip!();
    let dir = schema_support::libvirt_dir();
    let files: Vec<&str> = xdr_files().collect();
    assert_eq!(files.len(), 9);
    let mut defs = BTreeMap::new();
    for rel in files {
        let text = std::fs::read_to_string(dir.join(rel)).unwrap();
        let f = parse_x(rel, &text).unwrap_or_else(|e| panic!("{e}"));
        assert!(!f.definitions.is_empty(), "{rel}");
        defs.insert(rel, f.definitions.len());
    }
    // remote_protocol.x is by far the largest.
    let remote = defs["src/remote/remote_protocol.x"];
    assert!(remote > 700, "remote has {remote} definitions");
    assert!(defs.values().all(|&n| n <= remote));
}

#[test]
fn procedure_counts_per_program() {
    let s = schema_or_skip!();
    let count = |name: &str| {
        let p = s.programs().iter().find(|p| p.name() == name).unwrap();
        let nums: Vec<i32> = p.procedures().map(|(n, _)| n).collect();
        (nums.len(), nums.first().copied(), nums.last().copied())
    };
    // libvirt 9.0.0: contiguous numbering in every program.
    assert_eq!(count("remote"), (443, Some(1), Some(443)));
    assert_eq!(count("qemu"), (7, Some(1), Some(7)));
    assert_eq!(count("lxc"), (1, Some(1), Some(1)));
    assert_eq!(count("keepalive"), (2, Some(1), Some(2)));
    assert_eq!(count("admin"), (19, Some(1), Some(19)));
    assert_eq!(count("log"), (4, Some(1), Some(4)));
    assert_eq!(count("lock"), (8, Some(1), Some(8)));
    assert_eq!(count("lxc_monitor"), (2, Some(1), Some(2)));
    assert_eq!(s.programs().len(), 8);
    // Every program of the header table, with the same number and version.
    for p in PROGRAMS {
        let q = s
            .program(p.number, p.version)
            .unwrap_or_else(|| panic!("{}", p.name));
        assert_eq!(q.name(), p.name);
        assert_eq!(q.file(), p.xdr_file);
    }
}

#[test]
fn procedure_names_and_body_structs_follow_gendispatch() {
    let s = schema_or_skip!();
    let remote = s.program(0x2000_8086, 1).unwrap();
    assert_eq!(s.procedure_name(0x2000_8086, 1), Some("CONNECT_OPEN"));
    assert_eq!(
        s.procedure_name(0x2000_8086, 344),
        Some("CONNECT_GET_ALL_DOMAIN_STATS")
    );
    assert_eq!(
        s.procedure_name(0x2000_8086, 443),
        Some("DOMAIN_FD_ASSOCIATE")
    );
    assert_eq!(s.procedure_name(0x2000_8086, 444), None);
    assert_eq!(s.procedure_name(0x6b65_6570, 1), Some("PING"));
    let body = |prog: &virtwire_protocol::schema::ProgramSchema, n: i32| {
        let p = prog.procedure(n).unwrap();
        let name = |b: &Option<(String, _)>| b.as_ref().map(|(n, _)| n.clone());
        (name(&p.args), name(&p.ret), name(&p.msg))
    };
    let some = |x: &str| Some(x.to_string());
    // remote: REMOTE_PROC_X -> remote_x_args / remote_x_ret / remote_x_msg; missing = void.
    assert_eq!(
        body(remote, 1),
        (some("remote_connect_open_args"), None, None)
    );
    assert_eq!(body(remote, 2), (None, None, None));
    assert_eq!(
        body(remote, 3),
        (None, some("remote_connect_get_type_ret"), None)
    );
    assert_eq!(
        body(remote, 344),
        (
            some("remote_connect_get_all_domain_stats_args"),
            some("remote_connect_get_all_domain_stats_ret"),
            None
        )
    );
    assert_eq!(
        body(remote, 318),
        (
            None,
            None,
            some("remote_domain_event_callback_lifecycle_msg")
        )
    );
    assert_eq!(
        remote
            .procedure_by_name("remote_proc_auth_sasl_step")
            .unwrap()
            .number,
        69
    );
    // log / lock: camelCase structs, matched ignoring case and underscores
    // (VIR_LOCK_SPACE_PROTOCOL_PROC_CREATE_LOCKSPACE -> virLockSpaceProtocolCreateLockSpaceArgs).
    let lock = s.program(0x0EA7_BEEF, 1).unwrap();
    assert_eq!(
        body(lock, 8),
        (some("virLockSpaceProtocolCreateLockSpaceArgs"), None, None)
    );
    assert_eq!(lock.struct_prefix(), "virLockSpaceProtocol");
    let log = s.program(0x8753_9319, 1).unwrap();
    assert_eq!(
        body(log, 1),
        (
            some("virLogManagerProtocolDomainOpenLogFileArgs"),
            some("virLogManagerProtocolDomainOpenLogFileRet"),
            None
        )
    );
    // lxc_monitor: messages only, virLXCMonitor<Name>Msg.
    let mon = s.program(0x1234_1234, 1).unwrap();
    assert_eq!(
        body(mon, 1),
        (None, None, some("virLXCMonitorExitEventMsg"))
    );
    assert_eq!(
        body(mon, 2),
        (None, None, some("virLXCMonitorInitEventMsg"))
    );
    // qemu / lxc / admin: <prefix>_x_args with types from remote_protocol.x.
    let qemu = s.program(0x2000_8087, 1).unwrap();
    assert_eq!(
        body(qemu, 6),
        (None, None, some("qemu_domain_monitor_event_msg"))
    );
    let lxc = s.program(0x0006_8000, 1).unwrap();
    assert_eq!(
        body(lxc, 1),
        (some("lxc_domain_open_namespace_args"), None, None)
    );
    let admin = s.program(0x0690_0690, 1).unwrap();
    assert_eq!(
        body(admin, 1),
        (some("admin_connect_open_args"), None, None)
    );
    // keepalive: no bodies at all.
    let ka = s.program(0x6b65_6570, 1).unwrap();
    assert_eq!(body(ka, 1), (None, None, None));
}

#[test]
fn every_body_struct_belongs_to_a_procedure() {
    // A struct named like a procedure body but matched to none would mean the naming rule is wrong.
    let s = schema_or_skip!();
    for p in s.programs() {
        let used: std::collections::HashSet<&str> = p
            .procedure_list()
            .iter()
            .flat_map(|q| [&q.args, &q.ret, &q.msg])
            .filter_map(|b| b.as_ref().map(|(n, _)| n.as_str()))
            .collect();
        let orphans: Vec<&str> = s
            .type_names()
            .map(|(n, _)| n)
            .filter(|n| n.starts_with(p.struct_prefix()))
            .filter(|n| {
                ["_args", "_ret", "_msg", "Args", "Ret", "Msg"]
                    .iter()
                    .any(|x| n.ends_with(x))
            })
            .filter(|n| !used.contains(n))
            .collect();
        assert!(orphans.is_empty(), "{}: {orphans:?}", p.name());
        assert!(!used.is_empty() || p.name() == "keepalive");
    }
}

#[test]
fn names_resolve_across_files_and_from_c_headers() {
    let s = schema_or_skip!();
    // qemu_protocol.x uses remote_nonnull_domain from remote_protocol.x.
    let q = s.type_id("qemu_domain_monitor_command_args").unwrap();
    let Type::Struct(st) = s.ty(q) else { panic!() };
    assert_eq!(st.fields[0].name, "dom");
    assert_eq!(s.describe(st.fields[0].ty), "struct remote_nonnull_domain");
    // VIR_UUID_BUFLEN comes from libvirt's C headers.
    assert_eq!(s.describe(s.type_id("remote_uuid").unwrap()), "opaque[16]");
    assert_eq!(s.constant("REMOTE_SECURITY_LABEL_MAX"), Some(4097));
    assert_eq!(s.constant("VIR_NET_MESSAGE_MAX"), Some(33_554_432));
    // Enum members without values count up from 0 (lxc_monitor_protocol.x).
    assert_eq!(s.constant("VIR_LXC_MONITOR_EXIT_STATUS_REBOOT"), Some(2));
    // `typedef struct X X;` (log_protocol.x) is an alias of the struct.
    let Type::Struct(d) = s.ty(s.type_id("virLogManagerProtocolDomain").unwrap()) else {
        panic!()
    };
    assert_eq!(d.fields.len(), 2);
    // rpcgen char is 4 bytes: char model[32] is 128 bytes, the smallest node info reply 128+8+6*4.
    let ni = s.type_id("remote_node_get_info_ret").unwrap();
    assert_eq!(s.min_size(ni), 128 + 8 + 6 * 4);
    // The typed-param union: 7 arms selected by VIR_TYPED_PARAM_* from the C headers.
    let Type::Union(u) = s.ty(s.type_id("remote_typed_param_value").unwrap()) else {
        panic!()
    };
    assert_eq!(u.arms.len(), 7);
    assert_eq!(u.arm_for(7).unwrap().name.as_deref(), Some("s"));
    assert!(u.arm_for(8).is_none());
}

/// The library loads from the directory it is given and says what is missing where; how to get the
/// files (flags, environment, scripts) is the application's to say (conformance's
/// `protocol_files` tests check that message).
#[test]
fn load_dir_names_the_directory_and_what_is_missing() {
    let tmp = std::env::temp_dir().join(format!("virtwire-schema-empty-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let e = Schema::load_dir(&tmp).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, SchemaError::MissingFiles { ref missing, .. } if missing.len() == 9));
    assert!(msg.contains("src/remote/remote_protocol.x"), "{msg}");
    assert!(msg.contains(&tmp.display().to_string()), "{msg}");
    for cli in ["--protocol-dir", "VIRTWIRE_PROTOCOL_DIR", "setup.sh"] {
        assert!(!msg.contains(cli), "the library names {cli}: {msg}");
    }
    std::fs::remove_dir_all(&tmp).unwrap();
    // A directory that is not there is named as such.
    let e = Schema::load_dir(&tmp).unwrap_err();
    assert!(
        matches!(e, SchemaError::Io { ref path, .. } if *path == tmp),
        "{e}"
    );
    assert!(e.to_string().starts_with(&tmp.display().to_string()), "{e}");
}

#[test]
fn parse_errors_point_at_file_line_column() {
    let cases: &[(&str, &str)] = &[
        (
            "struct s {\n    int a\n};\n",
            "bad.x:3:1: expected `;` after a struct field, found `}`",
        ),
        (
            "const A = ;\n",
            "bad.x:1:11: expected a constant value, found `;`",
        ),
        (
            "typedef opaque x;\n",
            "bad.x:1:9: `opaque` needs `[N]` or `<N>`",
        ),
        ("enum e { };\n", "bad.x:1:10: empty enum"),
        (
            "union u switch (int t) {\n  case 1 int x;\n};\n",
            "bad.x:2:10: expected `:` after the case value, found `int`",
        ),
        (
            "\n\n   struct { int a; };\n",
            "bad.x:3:11: expected a struct name, found `{`",
        ),
        (
            "const A = 1;\n#define B 2\n",
            "bad.x:2:1: C preprocessor directive: run the file through cpp first, or write it as a `%` pass-through line",
        ),
        (
            "struct s { int a; };\n/* never closed\n",
            "bad.x:2:1: unterminated comment",
        ),
        (
            "struct s { int a@; };\n",
            "bad.x:1:17: unexpected character `@`",
        ),
        (
            "struct s { string x[4]; };\n",
            "bad.x:1:12: `string` takes `<N>`, not `[N]`",
        ),
        (
            "struct s { void; };\n",
            "bad.x:1:12: `void` is only allowed in union arms",
        ),
        (
            "typedef int struct;\n",
            "bad.x:1:13: expected a declaration name, found keyword `struct`",
        ),
        ("const X = 0x;\n", "bad.x:1:11: malformed number `0x`"),
    ];
    for (text, want) in cases {
        let e = parse_x("bad.x", text).unwrap_err();
        assert_eq!(&e.to_string(), want, "input {text:?}");
    }
}

#[test]
fn resolution_errors_point_at_file_line_column() {
    let err = |files: &[(&str, &str)]| schema_err(files);
    assert_eq!(
        err(&[("a.x", "struct s {\n  missing_t x;\n};\n")]),
        "a.x:2:3: unknown type `missing_t`"
    );
    assert_eq!(
        err(&[("a.x", "struct s {\n  opaque x<NOPE>;\n};\n")]),
        "a.x:2:12: unknown constant `NOPE`"
    );
    assert_eq!(
        err(&[("a.x", "const A = B;\nconst B = A;\ntypedef int x<A>;\n")]),
        "a.x:1:1: constant defined in terms of itself"
    );
    assert_eq!(
        err(&[("a.x", "const A = -1;\ntypedef int x<A>;\n")]),
        "a.x:2:9: size `A` = -1 is not in 0..=4294967295"
    );
    assert_eq!(
        err(&[("a.x", "typedef a b;\ntypedef b a;\n")]),
        "a.x:1:1: typedef defined in terms of itself"
    );
    assert_eq!(
        err(&[("a.x", "struct s { int a; };\nstruct s { int b; };\n")]),
        "a.x:2:1: type `s` is already defined at 1:1"
    );
    assert_eq!(
        err(&[(
            "a.x",
            "union u switch (int t) { case 1: int a; case 1: int b; };\n"
        )]),
        "a.x:1:41: duplicate case 1"
    );
    // Defined in two other files, included by neither: ambiguous.
    assert_eq!(
        err(&[
            ("a.x", "typedef int t;"),
            ("b.x", "typedef int t;"),
            ("c.x", "struct s { t x; };")
        ]),
        "c.x:1:12: `t` is defined in several files (a.x, b.x)"
    );
    // ... unless the file %#includes one of them.
    let s = Schema::from_sources(&[
        ("a.x", "typedef int t;"),
        ("b.x", "typedef hyper t;"),
        ("c.x", "%#include \"b.h\"\nstruct s { t x; };"),
    ])
    .unwrap();
    let Type::Struct(st) = s.ty(s.type_id("s").unwrap()) else {
        panic!()
    };
    assert_eq!(*s.ty(st.fields[0].ty), Type::Hyper);
}

#[test]
fn constants_chains_hex_negative_and_recursion() {
    let s = Schema::from_sources(&[(
        "t.x",
        "const A = 0x20; const B = A; const C = B;\n\
         const NEG = -7; const OCT = 010;\n\
         enum e { E0, E1, E5 = 5, E6 };\n\
         struct list { int v; list *next; };\n\
         typedef list *list_head;\n\
         struct b { opaque o<C>; string s<>; unsigned u; e x[E1]; };\n",
    )])
    .unwrap();
    assert_eq!(s.constant("C"), Some(32));
    assert_eq!(s.constant("NEG"), Some(-7));
    assert_eq!(s.constant("OCT"), Some(8));
    assert_eq!(s.constant("E6"), Some(6));
    assert_eq!(s.describe(s.type_id("list_head").unwrap()), "optional");
    let Type::Struct(b) = s.ty(s.type_id("b").unwrap()) else {
        panic!()
    };
    assert_eq!(s.describe(b.fields[0].ty), "opaque<32>");
    assert_eq!(s.describe(b.fields[1].ty), "string<4294967295>");
    assert_eq!(*s.ty(b.fields[2].ty), Type::UInt);
    assert_eq!(s.describe(b.fields[3].ty), "array[1]");
}

#[test]
fn hostile_definition_chains_are_errors_not_stack_overflows() {
    let mut text = String::from("const C0 = 1;\n");
    for i in 1..5000 {
        text.push_str(&format!("const C{i} = C{};\n", i - 1));
    }
    text.push_str("typedef opaque x<C4999>;\n");
    let e = schema_err(&[("deep.x", &text)]);
    assert!(e.contains("levels deep"), "{e}");
    // Defined outermost first, so that compiling s0 has to follow the whole chain.
    let mut text = String::new();
    for i in 0..5000 {
        text.push_str(&format!("struct s{i} {{ s{} a; }};\n", i + 1));
    }
    text.push_str("struct s5000 { int a; };\n");
    let e = schema_err(&[("deep.x", &text)]);
    assert!(e.contains("levels deep"), "{e}");
}

/// The error of a schema that must not compile (without printing the whole schema if it does).
fn schema_err(files: &[(&str, &str)]) -> String {
    match Schema::from_sources(files) {
        Ok(_) => panic!("the schema compiled"),
        Err(e) => e.to_string(),
    }
}

/// (Finding the repository's cache is the application's job now: conformance's `protocol_files`
/// tests check that `cargo run` in a checkout finds `.cache/libvirt-9.0.0`.)
#[test]
fn the_schema_is_shareable_and_loads_from_its_directory() {
    let s = schema_or_skip!();
    fn send_sync<T: Send + Sync>(_: &T) {}
    send_sync(s);
    let dbg = format!("{s:?}");
    assert!(
        dbg.contains("(\"remote\", 443)") && dbg.len() < 2000,
        "{dbg}"
    );
    let again = Schema::load_dir(&schema_support::libvirt_dir()).unwrap();
    assert_eq!(again.programs().len(), 8);
}

#[test]
fn procedures_keep_their_acl_annotations() {
    let s = schema_or_skip!();
    let remote = s.program(0x2000_8086, 1).unwrap();
    let acl = |name: &str| -> Vec<String> {
        remote
            .procedure_by_name(name)
            .unwrap_or_else(|| panic!("{name}"))
            .annotation("acl")
            .map(str::to_string)
            .collect()
    };
    assert_eq!(acl("CONNECT_OPEN"), ["connect:getattr"]);
    assert_eq!(acl("CONNECT_CLOSE"), ["none"]);
    assert_eq!(acl("DOMAIN_DESTROY"), ["domain:stop"]);
    assert_eq!(
        acl("DOMAIN_GET_XML_DESC"),
        [
            "domain:read",
            "domain:read_secure:VIR_DOMAIN_XML_SECURE",
            "domain:read_secure:VIR_DOMAIN_XML_MIGRATABLE"
        ]
    );
    let generate: Vec<&str> = remote
        .procedure_by_name("CONNECT_OPEN")
        .unwrap()
        .annotation("generate")
        .collect();
    assert_eq!(generate, ["none"]);
    // Every procedure of the programs whose `.x` file has ACL rules has one (admin_protocol.x has
    // none: the admin socket is root-only).
    for p in s.programs() {
        let annotated = p
            .procedure_list()
            .iter()
            .filter(|q| q.annotation("acl").next().is_some())
            .count();
        match p.name() {
            "remote" => assert_eq!(annotated, 443),
            "admin" => assert_eq!(annotated, 0),
            "log" | "lock" | "qemu" | "lxc" => {
                assert_eq!(annotated, p.procedure_list().len(), "{}", p.name())
            }
            _ => {}
        }
    }
}
