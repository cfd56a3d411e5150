//! Property tests of the schema codec over libvirt 9.0.0's procedures: random schema-generated
//! values round-trip byte for byte, and validate-only agrees with decode on mutated encodings.

mod schema_support;

use std::cell::{Cell, RefCell};

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, TestCaseError, TestRunner};
use schema_support::{GenCfg, Rng, bodies, header_for, random_value};
use virtwire_protocol::schema::{Schema, TapeBuf, Value};
use virtwire_protocol::{Compat, Header, Limits};

/// A runner with at least `cases` cases (more if `PROPTEST_CASES` asks for more).
fn runner(cases: u32) -> TestRunner {
    let env = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok());
    TestRunner::new(Config {
        cases: cases.max(env.unwrap_or(0)),
        source_file: Some(file!()),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/schema_proptest.proptest-regressions"
        )))),
        ..Config::default()
    })
}

/// Encode a random value of the body, decode it, compare; returns the encoding.
fn round_trip(s: &Schema, h: &Header, seed: u64) -> Result<Vec<u8>, TestCaseError> {
    let ty = s.body_type(h, 1).unwrap().unwrap();
    let mut rng = Rng(seed);
    let v = random_value(s, ty, &mut rng, &mut GenCfg::default(), 0);
    let lim = Limits::default();
    let mut bytes = Vec::new();
    s.encode_body(h, &v, &mut bytes, &lim)
        .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    // The encoder's fast path takes every valid value and writes the same bytes.
    let mut fast = Vec::new();
    prop_assert!(
        s.encode_fast_path(ty, &v, &mut fast, &lim),
        "the fast encoder bailed"
    );
    prop_assert!(fast == bytes, "the fast encoder wrote other bytes");
    for compat in [Compat::Strict, Compat::Libvirt] {
        let d = s
            .decode_body(h, &bytes, 28, &lim, compat)
            .map_err(|e| TestCaseError::fail(format!("decode ({}): {e}", compat.name())))?;
        prop_assert!(d == v, "decoded value differs from the generated one");
        prop_assert_eq!(s.validate_body(h, &bytes, 28, &lim, compat), Ok(()));
        let tape = s
            .decode_body_tape(h, &bytes, 28, &lim, compat, TapeBuf::new())
            .map_err(|e| TestCaseError::fail(format!("tape ({}): {e}", compat.name())))?;
        prop_assert!(
            same_bits(&tape.to_value(), &v),
            "tape differs from the generated value"
        );
        // The fast path takes every well-formed body (libvirt's schemas have nothing it leaves to
        // the full walk) and builds the same tape.
        let (checked, fast) = s.fast_path(ty, &bytes, &lim, compat);
        prop_assert!(checked, "the fast validate bailed on a valid body");
        prop_assert!(
            fast.is_some_and(|f| f.to_value() == tape.to_value()),
            "the fast tape bailed or differs"
        );
        let mut again = Vec::new();
        s.encode_body(h, &d, &mut again, &lim).unwrap();
        prop_assert!(again == bytes, "re-encoding differs");
    }
    Ok(bytes)
}

#[test]
fn every_body_of_every_program_round_trips() {
    // Not random in the choice of body: all 760-odd (program, procedure, role) bodies, 4 values each.
    let s = schema_or_skip!();
    let all = bodies(s);
    assert!(all.len() > 700, "{}", all.len());
    for (prog, vers, p, role, _) in &all {
        let h = header_for(*prog, *vers, *p, *role);
        for seed in 0..4 {
            round_trip(s, &h, seed * 7919 + *p as u64)
                .unwrap_or_else(|e| panic!("{prog:#x}/{p}/{role} seed {seed}: {e}"));
        }
    }
}

#[test]
fn prop_random_values_round_trip_byte_identical() {
    let s = schema_or_skip!();
    let all = bodies(s);
    let n = all.len();
    let (cases, bytes) = (Cell::new(0u64), Cell::new(0usize));
    runner(4096)
        .run(&(0..n, any::<u64>()), |(i, seed)| {
            let (prog, vers, p, role, _) = all[i];
            let b = round_trip(s, &header_for(prog, vers, p, role), seed)?;
            cases.set(cases.get() + 1);
            bytes.set(bytes.get() + b.len());
            Ok(())
        })
        .unwrap();
    eprintln!("{} cases, {} bytes encoded", cases.get(), bytes.get());
    assert!(cases.get() >= 4096);
}

/// Ways to damage an encoding.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Word(usize, u32),
    Truncate(usize),
    Append(Vec<u8>),
    Insert(usize, [u8; 4]),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let word = prop_oneof![
        Just(0u32),
        Just(1),
        Just(2),
        Just(7),
        Just(8),
        Just(0x7fff_ffff),
        Just(0xffff_ffff),
        Just(0x8000_0000),
        0u32..300,
        any::<u32>(),
    ];
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), word).prop_map(|(i, w)| Mutation::Word(i, w)),
        any::<usize>().prop_map(Mutation::Truncate),
        proptest::collection::vec(any::<u8>(), 1..9).prop_map(Mutation::Append),
        (any::<usize>(), any::<[u8; 4]>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn apply(b: &mut Vec<u8>, m: &Mutation) {
    let len = b.len();
    match m {
        Mutation::Flip(i, x) if len > 0 => b[i % len] ^= x,
        // Word-aligned overwrite: counts, discriminants, flags, enum values.
        Mutation::Word(i, w) if len >= 4 => {
            let at = (i % (len / 4)) * 4;
            b[at..at + 4].copy_from_slice(&w.to_be_bytes());
        }
        Mutation::Truncate(i) if len > 0 => b.truncate(i % len),
        Mutation::Append(x) => b.extend_from_slice(x),
        Mutation::Insert(i, x) => {
            let at = (i % (len / 4 + 1)) * 4;
            b.splice(at..at, x.iter().copied());
        }
        _ => {}
    }
}

/// Two values are the same, floats compared by their bits: `==` says a NaN differs from itself,
/// and a mutated word often makes a double a NaN.
fn same_bits(a: &Value<'_>, b: &Value<'_>) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Double(x), Value::Double(y)) => x.to_bits() == y.to_bits(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_bits(x, y))
        }
        (Value::Struct(x), Value::Struct(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((nx, x), (ny, y))| nx == ny && same_bits(x, y))
        }
        (
            Value::Union {
                discriminant: dx,
                arm: ax,
                value: vx,
            },
            Value::Union {
                discriminant: dy,
                arm: ay,
                value: vy,
            },
        ) => ax == ay && same_bits(dx, dy) && same_bits(vx, vy),
        (Value::Optional(x), Value::Optional(y)) => match (x, y) {
            (Some(x), Some(y)) => same_bits(x, y),
            (None, None) => true,
            _ => false,
        },
        _ => a == b,
    }
}

/// decode and validate agree (same Ok/Err, same error), in both modes; whatever strict decoding
/// accepts re-encodes to exactly the same bytes.
fn agree(s: &Schema, h: &Header, bytes: &[u8], lim: &Limits) -> Result<(), TestCaseError> {
    for compat in [Compat::Strict, Compat::Libvirt] {
        let d = s.decode_body(h, bytes, 28, lim, compat);
        let v = s.validate_body(h, bytes, 28, lim, compat);
        prop_assert_eq!(d.as_ref().err(), v.as_ref().err(), "{}", compat.name());
        // The tape walk accepts and rejects the same bytes, with the same error and the same value.
        let t = s.decode_body_tape(h, bytes, 28, lim, compat, TapeBuf::new());
        prop_assert_eq!(
            d.as_ref().err(),
            t.as_ref().err(),
            "tape, {}",
            compat.name()
        );
        if let (Ok(value), Ok(tape)) = (&d, &t) {
            prop_assert!(
                same_bits(&tape.to_value(), value),
                "tape value differs: {:?} vs {:?}",
                tape.to_value(),
                value
            );
        }
        // The fast path accepts exactly what the full walk accepts (every compound of a routine
        // is reached, so even the nesting limit agrees), with the same value.
        if let Some(ty) = s.body_type(h, bytes.len()).ok().flatten() {
            let (checked, fast) = s.fast_path(ty, bytes, lim, compat);
            prop_assert_eq!(checked, d.is_ok(), "fast validate, {}", compat.name());
            prop_assert_eq!(fast.is_some(), d.is_ok(), "fast tape, {}", compat.name());
            if let (Some(fast), Ok(value)) = (fast, &d) {
                prop_assert!(
                    same_bits(&fast.to_value(), value),
                    "fast tape value differs"
                );
            }
        }
        if let (Compat::Strict, Ok(value)) = (compat, &d) {
            let mut out = Vec::new();
            s.encode_body(h, value, &mut out, lim).unwrap();
            prop_assert!(
                out == bytes,
                "strict decode accepted bytes it does not re-encode to"
            );
        }
    }
    Ok(())
}

#[test]
fn prop_validate_agrees_with_decode_on_mutated_encodings() {
    let s = schema_or_skip!();
    let all = bodies(s);
    let n = all.len();
    let lim = Limits::default();
    let strategy = (
        0..n,
        any::<u64>(),
        proptest::collection::vec(mutation(), 1..4),
    );
    let outcomes = RefCell::new(std::collections::BTreeMap::<String, u32>::new());
    runner(8192)
        .run(&strategy, |(i, seed, muts)| {
            let (prog, vers, p, role, _) = all[i];
            let h = header_for(prog, vers, p, role);
            let mut bytes = round_trip(s, &h, seed)?;
            for m in &muts {
                apply(&mut bytes, m);
            }
            agree(s, &h, &bytes, &lim)?;
            let kind = match s.validate_body(&h, &bytes, 28, &lim, Compat::Strict) {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("{:?}", e.kind())
                    .split(['(', ' '])
                    .next()
                    .unwrap()
                    .to_string(),
            };
            *outcomes.borrow_mut().entry(kind).or_default() += 1;
            // The same under a tight nesting limit (errors must agree there too).
            agree(
                s,
                &h,
                &bytes,
                &lim.to_builder().nesting_max(3).build().unwrap(),
            )
        })
        .unwrap();
    let outcomes = outcomes.into_inner();
    eprintln!("strict outcomes of mutated encodings: {outcomes:?}");
    // The mutations reach both sides of the decoder, and its main rejections.
    for k in ["ok", "Truncated", "TrailingBytes"] {
        assert!(
            outcomes.get(k).copied().unwrap_or(0) > 50,
            "{k}: {outcomes:?}"
        );
    }
}

#[test]
fn prop_arbitrary_bytes_never_panic_and_validate_agrees() {
    let s = schema_or_skip!();
    let all = bodies(s);
    let n = all.len();
    let lim = Limits::default();
    let strategy = (0..n, proptest::collection::vec(any::<u8>(), 0..200));
    runner(4096)
        .run(&strategy, |(i, bytes)| {
            let (prog, vers, p, role, _) = all[i];
            agree(s, &header_for(prog, vers, p, role), &bytes, &lim)
        })
        .unwrap();
}

/// Tokens worth splicing into .x text.
const SPLICE: &[&str] = &[
    "{",
    "}",
    ";",
    "<",
    ">",
    "<>",
    "[",
    "]",
    "*",
    "=",
    ",",
    ":",
    "(",
    ")",
    "-",
    "struct",
    "union",
    "enum",
    "switch",
    "case",
    "default",
    "typedef",
    "unsigned",
    "void",
    "string",
    "opaque",
    "char",
    "hyper",
    "bool",
    "const A = A;",
    "0x",
    "0xffffffff",
    "-2147483649",
    "99999999999999999999",
    "%#include \"x.h\"\n",
    "\n#define X\n",
    "/*",
    "*/",
    "//",
    "\n",
    "int x<4294967296>;",
];

#[test]
fn prop_mutated_x_text_never_panics_in_parse_compile_or_decode() {
    let _ = schema_or_skip!();
    let dir = schema_support::libvirt_dir();
    let texts: Vec<(&'static str, String)> = virtwire_protocol::schema::xdr_files()
        .map(|rel| (rel, std::fs::read_to_string(dir.join(rel)).unwrap()))
        .collect();
    let edits = proptest::collection::vec(
        (any::<usize>(), 0usize..40, proptest::sample::select(SPLICE)),
        0..5,
    );
    let strategy = (
        0..texts.len(),
        any::<usize>(),
        20usize..400,
        edits,
        any::<u64>(),
    );
    let (parsed, compiled, decoded) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    runner(1024)
        .run(&strategy, |(fi, start, lines, edits, seed)| {
            let (label, text) = &texts[fi];
            // A window of whole definitions, so that most unedited windows parse.
            let all: Vec<&str> = text.lines().collect();
            let starts: Vec<usize> = (0..all.len())
                .filter(|&i| {
                    ["struct ", "enum ", "union ", "typedef ", "const ", "%"]
                        .iter()
                        .any(|k| all[i].starts_with(k))
                })
                .collect();
            let from = starts[start % starts.len()];
            let mut to = (from + lines).min(all.len());
            while to < all.len()
                && !all[to - 1].starts_with("};")
                && !all[to - 1].starts_with("const ")
            {
                to += 1;
            }
            let mut window = all[from..to].join("\n").into_bytes();
            for (at, del, tok) in &edits {
                let at = at % (window.len() + 1);
                let end = (at + del).min(window.len());
                window.splice(at..end, tok.bytes());
            }
            let window = String::from_utf8_lossy(&window).into_owned();
            let Ok(file) = virtwire_protocol::schema::parse_x(label, &window) else {
                return Ok(());
            };
            parsed.set(parsed.get() + 1);
            let Ok(schema) = Schema::from_parsed(vec![file]) else {
                return Ok(());
            };
            compiled.set(compiled.get() + 1);
            // Whatever compiled decodes hostile bytes without panicking, validate agreeing.
            let mut rng = Rng(seed);
            let lim = Limits::default();
            for (prog, vers, p, role, _) in bodies(&schema).into_iter().take(20) {
                let bytes: Vec<u8> = (0..rng.upto(64)).map(|_| rng.next() as u8).collect();
                agree(&schema, &header_for(prog, vers, p, role), &bytes, &lim)?;
            }
            let mut names: Vec<(&str, _)> = schema.type_names().collect();
            names.sort();
            for (_, ty) in names.into_iter().take(30) {
                let bytes: Vec<u8> = (0..rng.upto(64)).map(|_| rng.next() as u8).collect();
                for compat in [Compat::Strict, Compat::Libvirt] {
                    let d = schema.decode_type(ty, &bytes, 0, &lim, compat);
                    let v = schema.validate_type(ty, &bytes, 0, &lim, compat);
                    prop_assert_eq!(d.as_ref().err(), v.as_ref().err());
                    let t = schema.decode_type_tape(ty, &bytes, 0, &lim, compat, TapeBuf::new());
                    prop_assert_eq!(d.as_ref().err(), t.as_ref().err());
                    if let (Ok(value), Ok(tape)) = (&d, &t) {
                        prop_assert!(
                            same_bits(&tape.to_value(), value),
                            "tape value differs: {:?} vs {:?}",
                            tape.to_value(),
                            value
                        );
                    }
                    decoded.set(decoded.get() + d.is_ok() as u32);
                }
            }
            Ok(())
        })
        .unwrap();
    let (p, c, d) = (parsed.get(), compiled.get(), decoded.get());
    eprintln!("mutated .x windows: {p} parsed, {c} compiled; {d} random bodies decoded");
    // Most edits break the text; enough survive to reach the compiler and the codec.
    assert!(p > 200 && c > 60 && d > 100, "{p} {c} {d}");
}
