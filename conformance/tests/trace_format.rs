//! The trace format: bad traces are refused with `file:line: message`, random and mutated text never
//! makes the parser panic, and every trace survives a round trip through text.

use proptest::prelude::*;
use serde_json::Value;
use virtwire_conformance::trace::rules::Pattern;
use virtwire_conformance::trace::{
    self, HeaderLine, Line, Message, Num, Path, Raw, Rule, RuleKind, Seg, Step, Sym, Trace,
};

const COMMITTED: &[(&str, &str)] = virtwire_conformance::catalogue::traces::COMMITTED;

/// (trace text after the magic line, line of the error, words the message must contain)
const BAD: &[(&str, usize, &str)] = &[
    ("> CALL remote.X\n", 2, "missing serial"),
    (
        "> CALL remote.X serial=1\n  body {}\n",
        2,
        "needs its frame",
    ),
    (
        "< REPLY remote.X serial=1 status=OK\n  body {\"a\":\n    1,,\n    }\n",
        4,
        "bad body JSON",
    ),
    (
        "> CALL remote.X serial=1\n  frame 0000001c zz\n",
        3,
        "not a hex digit",
    ),
    (
        "> CALL remote.X serial=1\n  frame 0000001c\n        200080860\n",
        4,
        "odd number of hex digits",
    ),
    (
        "< REPLY remote.X serial=1\n  rule body.x sometimes\n",
        3,
        "unknown rule",
    ),
    (
        "< REPLY remote.X serial=1\n  rule body..x any\n",
        3,
        "empty key",
    ),
    (
        "< REPLY remote.X serial=1\n  rule body.x[a] any\n",
        3,
        "bad index",
    ),
    (
        "< REPLY remote.X serial=1\n  rule body.x regex (\n",
        3,
        "bad regex",
    ),
    (
        "< REPLY remote.X serial=1\n  rule body.x range 5..1\n",
        3,
        "empty range",
    ),
    ("< REPLY remote.X serial=1\n  rule body.x\n", 3, "PATH KIND"),
    (
        "> CALL remote.X serial=1\n  rule body.x any\n  frame 00\n",
        3,
        "rules apply to server messages",
    ),
    ("  body {}\n", 2, "belongs to a message step"),
    (
        "< REPLY remote.X serial=1\n# a comment\n  body {}\n",
        4,
        "belongs to a message step",
    ),
    ("send CONNECT_OPEN\n", 2, "unknown line"),
    (">CALL remote.X serial=1\n", 2, "starts with `> ` or `< `"),
    ("silence soon\n", 2, "silence N ms"),
    ("silence x ms\n", 2, "not a number of milliseconds"),
    ("may-close now\n", 2, "takes nothing more"),
    (
        "< REPLY remote.X serial=1 serial=2\n",
        2,
        "serial given twice",
    ),
    ("< REPLY remote.X serial=-1\n", 2, "not a number from 0"),
    ("< REPLY remote.X serial=1 status=?\n", 2, "bad status"),
    (
        "< REPLY remote.X serial=1 colour=red\n",
        2,
        "unknown header field",
    ),
    ("< REPLY remote serial=1\n", 2, "not PROG.PROC"),
    ("< REPLY re.mo.te serial=1\n", 2, "bad procedure"),
    ("< 1x remote.X serial=1\n", 2, "bad message type"),
    (
        "> CALL remote.X serial=1 async\n  frame 00\n",
        2,
        "server messages (<) only",
    ),
    (
        "> CALL remote.X serial=1\n  frame 00\n  frame 00\n",
        4,
        "a second frame",
    ),
    (
        "< REPLY remote.X serial=1\n  body 1\n  body 2\n",
        4,
        "a second body",
    ),
    ("< REPLY remote.X serial=1\n  body\n", 3, "body needs JSON"),
    ("> raw\n", 2, "needs its bytes"),
    ("> raw\n  body {}\n", 3, "no body"),
    ("> raw please\n", 2, "takes nothing more"),
    (
        "< REPLY remote.X serial=1\n  {\"a\": 1}\n",
        3,
        "indented lines are",
    ),
    ("silence 1 ms\nsource later\n", 3, "before the first step"),
];

#[test]
fn bad_traces_name_file_and_line() {
    for (body, line, words) in BAD {
        let text = format!("virtwire-trace 1\n{body}");
        let e = match trace::parse(&text, "dir/bad.trace") {
            Ok(t) => panic!("accepted:\n{text}\nas {t:?}"),
            Err(e) => e,
        };
        assert_eq!(
            (e.line, e.file.as_str()),
            (*line, "dir/bad.trace"),
            "{text}\n→ {e}"
        );
        assert!(e.message.contains(words), "{text}\n→ {e}\nwanted {words:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("dir/bad.trace:{line}: ")),
            "{e}"
        );
    }
    for (text, words) in [
        ("", "not a trace"),
        ("virtwire-trace\n", "not a trace"),
        ("virtwire-trace 2\n", "unsupported trace version"),
        ("# virtwire-trace 1\n", "not a trace"),
    ] {
        let e = trace::parse(text, "t.trace").unwrap_err();
        assert_eq!(e.line, 1, "{text:?}");
        assert!(e.message.contains(words), "{e}");
    }
}

#[test]
fn a_small_trace_reads_as_written() {
    let text = "virtwire-trace 1
source by hand
# open, then a reply that may vary
> CALL remote.CONNECT_GET_TYPE serial=0
  body null
  frame 0000001c 20008086 00000001 00000003 00000000 00000000 00000000

< REPLY remote.CONNECT_GET_TYPE serial=0 status=OK
  # any hypervisor will do
  rule body.type regex [A-Z]+
  body {\"type\":\"TEST\"}

< MESSAGE remote.DOMAIN_EVENT_CALLBACK_LIFECYCLE serial=1 status=OK async
  rule header.serial any

> raw
  frame 00000003
silence 250 ms
may-close
expect-close
";
    let t = trace::parse(text, "x/by-hand.trace").unwrap();
    assert_eq!(t.name, "by-hand");
    assert_eq!(t.source, ["by hand"]);
    assert_eq!(t.steps.len(), 8);
    let Step::Expect(m) = &t.steps[2] else {
        panic!("{:?}", t.steps[2])
    };
    assert_eq!(
        m.header.render(true),
        "REPLY remote.CONNECT_GET_TYPE serial=0 status=OK"
    );
    assert_eq!(m.rules[0].to_string(), "body.type regex [A-Z]+");
    assert_eq!(m.line.0, 8);
    assert_eq!(m.notes, [" any hypervisor will do"]);
    assert!(matches!(&t.steps[3], Step::Expect(m) if m.is_async && m.body.is_none()));
    assert!(matches!(&t.steps[4], Step::Raw(r) if r.frame == [0, 0, 0, 3]));
    assert!(matches!(t.steps[5], Step::Silence { ms: 250, .. }));
    assert_eq!(trace::parse(&trace::write(&t), "by-hand").unwrap(), t);
}

// ---- round trip -------------------------------------------------------------------------------

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z_]{1,8}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_]{0,14}"
}

fn sym() -> impl Strategy<Value = Sym> {
    prop_oneof![
        name().prop_map(Sym::Name),
        (-(1i64 << 31)..(1i64 << 32)).prop_map(Sym::Num),
    ]
}

fn header() -> impl Strategy<Value = HeaderLine> {
    (sym(), sym(), sym(), any::<u32>(), any::<u32>(), sym()).prop_map(
        |(msg_type, prog, procedure, vers, serial, status)| HeaderLine {
            msg_type,
            prog,
            procedure,
            vers,
            serial,
            status,
        },
    )
}

fn num() -> impl Strategy<Value = Num> {
    prop_oneof![
        any::<i64>().prop_map(|i| Num::Int(i128::from(i))),
        any::<u64>().prop_map(|i| Num::Int(i128::from(i))),
        (-1e20f64..1e20).prop_map(Num::Float),
    ]
}

fn rule_kind() -> impl Strategy<Value = RuleKind> {
    prop_oneof![
        Just(RuleKind::Equal),
        Just(RuleKind::Any),
        Just(RuleKind::Present),
        Just(RuleKind::Absent),
        (num(), any::<bool>()).prop_map(|(n, low)| if low {
            RuleKind::Range {
                lo: Some(n),
                hi: None,
            }
        } else {
            RuleKind::Range {
                lo: None,
                hi: Some(n),
            }
        }),
        (num(), num()).prop_map(|(a, b)| {
            let (lo, hi) = if RuleKind::parse(&format!("range {a}..{b}")).is_ok() {
                (a, b)
            } else {
                (b, a)
            };
            RuleKind::Range {
                lo: Some(lo),
                hi: Some(hi),
            }
        }),
        prop::sample::select(vec!["[0-9a-f]{32}", "a b", "x|y", "\\d+", "(?i)test"])
            .prop_map(|p| RuleKind::Regex(Pattern::new(p).unwrap())),
    ]
}

fn path() -> impl Strategy<Value = Path> {
    let seg = prop_oneof![
        "[a-zA-Z_]{1,8}".prop_map(Seg::Key),
        Just(Seg::AnyKey),
        (0usize..100).prop_map(Seg::Index),
        Just(Seg::AnyIndex),
    ];
    (
        prop::sample::select(vec!["body", "header", "len"]),
        prop::collection::vec(seg, 0..5),
    )
        .prop_map(|(root, rest)| {
            let mut v = vec![Seg::Key(root.into())];
            v.extend(rest);
            Path(v)
        })
}

fn rule() -> impl Strategy<Value = Rule> {
    (path(), rule_kind()).prop_map(|(path, kind)| Rule {
        path,
        kind,
        line: Line(0),
    })
}

fn text() -> impl Strategy<Value = String> {
    "[^\n\r]{0,24}"
}

fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..80)
}

fn message(send: bool) -> impl Strategy<Value = Message> {
    (
        header(),
        any::<bool>(),
        prop::collection::vec(text(), 0..3),
        prop::collection::vec(rule(), 0..4),
        prop::option::of(json()),
        prop::option::of(frame()),
    )
        .prop_map(
            move |(header, is_async, notes, rules, body, frame)| Message {
                header,
                is_async: is_async && !send,
                notes,
                rules: if send { Vec::new() } else { rules },
                body,
                frame: if send {
                    Some(frame.unwrap_or_else(|| vec![0; 28]))
                } else {
                    frame
                },
                line: Line(0),
            },
        )
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        text().prop_map(Step::Comment),
        message(true).prop_map(Step::Send),
        message(false).prop_map(Step::Expect),
        (prop::collection::vec(text(), 0..2), frame()).prop_map(|(notes, frame)| Step::Raw(Raw {
            notes,
            frame,
            line: Line(0)
        })),
        any::<u64>().prop_map(|ms| Step::Silence { ms, line: Line(0) }),
        Just(Step::MayClose { line: Line(0) }),
        Just(Step::ExpectClose { line: Line(0) }),
    ]
}

fn a_trace() -> impl Strategy<Value = Trace> {
    (
        prop::collection::vec("([!-~]([ -~]{0,18}[!-~])?)?", 0..3),
        prop::collection::vec(step(), 0..12),
    )
        .prop_map(|(source, steps)| Trace {
            name: "rt".into(),
            source,
            steps,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn round_trip(t in a_trace()) {
        let text = trace::write(&t);
        let back = trace::parse(&text, "rt.trace").map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, t, "{}", text);
    }

    #[test]
    fn random_text_never_panics(s in "(virtwire-trace 1\n)?[ -~\n\t]{0,400}") {
        let _ = trace::parse(&s, "fuzz.trace");
    }

    #[test]
    fn random_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = trace::parse(&String::from_utf8_lossy(&b), "fuzz.trace");
    }

    /// Committed traces with random edits: errors or traces, never a panic; what parses writes back
    /// to the same trace.
    #[test]
    fn mutated_traces_never_panic(
        which in 0..COMMITTED.len(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), 0u8..5, prop::sample::select(
            vec![" ", "\n", "#", "<", ">", "[", "]", ".", "=", "{", "}", "\"", "0", "x", "*", "..",
                 "  rule body.a any\n", "  body {}\n", "  frame 00\n", "silence 1 ms\n", "\n> raw\n",
                 "async", "serial=", "\u{e9}", "\t"]
        )), 1..6),
    ) {
        let mut s: Vec<char> = COMMITTED[which].1.chars().collect();
        for (at, op, what) in edits {
            if s.is_empty() { break; }
            let i = at.index(s.len());
            match op {
                0 => { s.remove(i); }
                1 => { let end = (i + 40).min(s.len()); s.drain(i..end); }
                2 => { for (k, c) in what.chars().enumerate() { s.insert(i + k, c); } }
                3 => { s[i] = what.chars().next().unwrap_or(' '); }
                _ => {
                    // Duplicate the line at i.
                    let start = s[..i].iter().rposition(|c| *c == '\n').map_or(0, |p| p + 1);
                    let end = s[i..].iter().position(|c| *c == '\n').map_or(s.len(), |p| i + p + 1);
                    let line: Vec<char> = s[start..end].to_vec();
                    for (k, c) in line.into_iter().enumerate() { s.insert(end + k, c); }
                }
            }
        }
        let text: String = s.into_iter().collect();
        if let Ok(t) = trace::parse(&text, "m.trace") {
            let again = trace::parse(&trace::write(&t), "m.trace");
            prop_assert_eq!(again.as_ref().ok(), Some(&t), "{:?}", again.as_ref().err());
        }
    }
}

/// The example in docs/traces.md.
fn docs_example() -> String {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/traces.md"),
    )
    .unwrap();
    let start = doc.find("```text\nvirtwire-trace 1").expect("an example") + "```text\n".len();
    let len = doc[start..].find("```").expect("its end");
    doc[start..start + len].to_string()
}

#[test]
fn the_documented_example_parses_and_round_trips() {
    let text = docs_example();
    let t = trace::parse(&text, "docs/traces.md").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(t.counts(), (5, 3));
    assert!(matches!(t.steps.last(), Some(Step::ExpectClose { .. })));
    assert_eq!(
        trace::parse(&trace::write(&t), "docs/traces.md").unwrap(),
        t
    );
}
