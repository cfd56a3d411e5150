//! The codec's fast path (schema/program.rs) at its own edges: values nested deeper than its frame
//! stack, the nesting limit, and every kind of compound in a synthetic schema. Wherever it gives up,
//! the full walk must give the same answer; where it does not, it must build the same tape.

use virtwire_protocol::schema::{Schema, TapeBuf, Value};
use virtwire_protocol::{Compat, Limits};

const X: &str = "
    struct node { int v; node *next; };
    struct pair { hyper a; unsigned hyper b; };
    struct wrap { pair p; pair q[2]; };
    union u switch (unsigned int d) { case 0: void; case 1: wrap w; case 2: string s<>; };
    struct all { node *list; u us<>; wrap fixed[1]; opaque o[3]; float f; bool flag; };
";

/// A list of `n` nodes, as bytes.
fn list(n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for i in 0..n {
        b.extend_from_slice(&(i as i32).to_be_bytes());
        b.extend_from_slice(&u32::from(i + 1 < n).to_be_bytes());
    }
    b
}

fn schema() -> Schema {
    Schema::from_sources(&[("t.x", X)]).unwrap()
}

#[test]
fn deep_values_beyond_the_fast_paths_frames_get_the_full_walks_answer() {
    let s = schema();
    let node = s.type_id("node").unwrap();
    let l = Limits::default()
        .to_builder()
        .nesting_max(1000)
        .build()
        .unwrap();
    for n in [1, 10, 30, 35, 36, 37, 40, 100, 400] {
        let bytes = list(n);
        for compat in [Compat::Strict, Compat::Libvirt] {
            let tree = s.decode_type(node, &bytes, 0, &l, compat).unwrap();
            let tape = s
                .decode_type_tape(node, &bytes, 0, &l, compat, TapeBuf::new())
                .unwrap();
            assert!(tape.to_value() == tree, "{n} nodes");
            assert_eq!(s.validate_type(node, &bytes, 0, &l, compat), Ok(()));
            // Two frames a node (the optional and the struct it holds): the fast path takes lists
            // that fit its stack and hands deeper ones to the full walk.
            let (checked, fast) = s.fast_path(node, &bytes, &l, compat);
            assert_eq!(checked, n <= 36, "{n} nodes, fast validate");
            assert_eq!(fast.is_some(), n <= 36, "{n} nodes, fast tape");
            if let Some(fast) = fast {
                assert!(fast.to_value() == tree);
            }
        }
    }
}

#[test]
fn the_nesting_limit_is_the_full_walks_at_every_depth() {
    let s = schema();
    let node = s.type_id("node").unwrap();
    let bytes = list(20);
    for max in 1..45 {
        let l = Limits::default()
            .to_builder()
            .nesting_max(max)
            .build()
            .unwrap();
        let full = s.decode_type(node, &bytes, 0, &l, Compat::Strict);
        let (checked, fast) = s.fast_path(node, &bytes, &l, Compat::Strict);
        assert_eq!(checked, full.is_ok(), "nesting_max {max}");
        assert_eq!(fast.is_some(), full.is_ok(), "nesting_max {max}");
        let v = s.validate_type(node, &bytes, 0, &l, Compat::Strict);
        assert_eq!(v.err(), full.as_ref().err().cloned(), "nesting_max {max}");
    }
}

#[test]
fn every_compound_kind_decodes_the_same_on_both_paths() {
    let s = schema();
    let all = s.type_id("all").unwrap();
    let pair =
        |a: i64, b: u64| Value::Struct(vec![("a", Value::Hyper(a)), ("b", Value::UHyper(b))]);
    let wrap = |k: i64| {
        Value::Struct(vec![
            ("p", pair(k, 1)),
            ("q", Value::Array(vec![pair(-k, 2), pair(k * 3, 3)])),
        ])
    };
    let arm = |d: u32, name: Option<&'static str>, v: Value<'static>| Value::Union {
        discriminant: Box::new(Value::UInt(d)),
        arm: name,
        value: Box::new(v),
    };
    let v = Value::Struct(vec![
        ("list", Value::Optional(None)),
        (
            "us",
            Value::Array(vec![
                arm(0, None, Value::Void),
                arm(1, Some("w"), wrap(5)),
                arm(2, Some("s"), Value::String(b"abcde")),
                arm(1, Some("w"), wrap(-9)),
            ]),
        ),
        ("fixed", Value::Array(vec![wrap(7)])),
        ("o", Value::Opaque(&[1, 2, 3])),
        ("f", Value::Float(-0.5)),
        ("flag", Value::Bool(true)),
    ]);
    let l = Limits::default();
    let mut bytes = Vec::new();
    s.encode_type(all, &v, &mut bytes, &l).unwrap();
    for compat in [Compat::Strict, Compat::Libvirt] {
        let (checked, fast) = s.fast_path(all, &bytes, &l, compat);
        assert!(checked);
        assert!(fast.expect("fast tape").to_value() == v);
    }
    // Every proper prefix fails on both paths alike; a byte flipped in padding or a bool is
    // refused in strict mode by both.
    for cut in 0..bytes.len() {
        let part = &bytes[..cut];
        let full = s.decode_type(all, part, 0, &l, Compat::Strict);
        assert!(full.is_err());
        assert!(
            !s.fast_path(all, part, &l, Compat::Strict).0,
            "cut at {cut}"
        );
        assert_eq!(
            s.validate_type(all, part, 0, &l, Compat::Strict).err(),
            full.err()
        );
    }
    for at in 0..bytes.len() {
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        for compat in [Compat::Strict, Compat::Libvirt] {
            let full = s.decode_type(all, &b, 0, &l, compat);
            let (checked, fast) = s.fast_path(all, &b, &l, compat);
            assert_eq!(checked, full.is_ok(), "byte {at}, {compat:?}");
            assert_eq!(fast.is_some(), full.is_ok(), "byte {at}, {compat:?}");
            if let (Some(fast), Ok(v)) = (fast, &full) {
                // Compared as text: a flipped float bit can make a NaN, which is not == itself.
                assert_eq!(fast.to_value().to_string(), v.to_string(), "byte {at}");
            }
        }
    }
}

#[test]
fn the_fast_encoder_writes_what_the_full_one_writes_and_bails_wherever_it_fails() {
    const Y: &str = "
        enum e { A = 1, B = 2 };
        union u switch (e d) { case A: int a; case B: void; };
        struct inner { string s<4>; opaque f[2]; char c; unsigned short us; };
        struct t { inner in; inner arr<2>; u un; hyper *opt; bool b; };
    ";
    let s = Schema::from_sources(&[("t.x", Y)]).unwrap();
    let t = s.type_id("t").unwrap();
    let l = Limits::default();
    fn inner(st: &'static [u8], f: &'static [u8], c: i32, us: u32) -> Value<'static> {
        Value::Struct(vec![
            ("s", Value::String(st)),
            ("f", Value::Opaque(f)),
            ("c", Value::Int(c)),
            ("us", Value::UInt(us)),
        ])
    }
    fn un(d: i32, arm: Option<&'static str>, v: Value<'static>) -> Value<'static> {
        Value::Union {
            discriminant: Box::new(Value::Enum {
                value: d,
                name: None,
            }),
            arm,
            value: Box::new(v),
        }
    }
    let good = || {
        vec![
            ("in", inner(b"abcd", b"xy", -128, 65535)),
            ("arr", Value::Array(vec![inner(b"", b"\0\0", 127, 0)])),
            ("un", un(1, Some("a"), Value::Int(-1))),
            ("opt", Value::Optional(Some(Box::new(Value::Hyper(7))))),
            ("b", Value::Bool(false)),
        ]
    };
    let check = |v: &Value<'_>, what: &str| {
        let mut full = Vec::new();
        let r = s.encode_type(t, v, &mut full, &l);
        let mut fast = vec![0xee];
        let ok = s.encode_fast_path(t, v, &mut fast, &l);
        assert_eq!(ok, r.is_ok(), "{what}: {r:?}");
        if ok {
            assert_eq!(fast[1..], full[..], "{what}");
        } else {
            assert_eq!(fast, [0xee], "{what}: a bail leaves the output as it was");
        }
        r.is_ok()
    };
    assert!(check(&Value::Struct(good()), "valid"));
    let tight = Limits::default()
        .to_builder()
        .nesting_max(2)
        .build()
        .unwrap();
    let mut out = Vec::new();
    assert!(!s.encode_fast_path(t, &Value::Struct(good()), &mut out, &tight));
    assert!(
        s.encode_type(t, &Value::Struct(good()), &mut out, &tight)
            .is_err()
    );
    // One fault at a time; the full encoder refuses each, the fast one must bail.
    type Fault = fn(&mut Vec<(&'static str, Value<'static>)>);
    let faults: [(&str, Fault); 12] = [
        ("string over max", |f| f[0].1 = inner(b"abcde", b"xy", 0, 0)),
        ("fixed opaque short", |f| f[0].1 = inner(b"", b"x", 0, 0)),
        ("char over range", |f| f[0].1 = inner(b"", b"xy", 128, 0)),
        ("unsigned short over range", |f| {
            f[0].1 = inner(b"", b"xy", 0, 65536)
        }),
        ("array over max", |f| {
            f[1].1 = Value::Array(vec![inner(b"", b"xy", 0, 0); 3])
        }),
        ("field renamed", |f| f[4].0 = "c"),
        ("field missing", |f| {
            f.pop();
        }),
        ("enum not a member", |f| {
            f[2].1 = un(3, Some("a"), Value::Int(0))
        }),
        ("arm misnamed", |f| f[2].1 = un(1, Some("b"), Value::Int(0))),
        ("void arm with a name", |f| {
            f[2].1 = un(2, Some("a"), Value::Void)
        }),
        ("wrong kind", |f| f[3].1 = Value::Hyper(1)),
        ("wrong scalar", |f| f[4].1 = Value::Int(0)),
    ];
    for (what, fault) in faults {
        let mut f = good();
        fault(&mut f);
        assert!(!check(&Value::Struct(f), what), "{what} was accepted");
    }
}
