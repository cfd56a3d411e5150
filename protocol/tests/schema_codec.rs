//! The schema codec on libvirt 9.0.0's protocol: the worked CONNECT_OPEN example, bounds at max and
//! max+1 in both directions, strict vs libvirt-compatible decoding, unknown programs/procedures,
//! error and stream bodies, nesting.

mod schema_support;

use schema_support::{bodies, header_for, zero};
use virtwire_protocol::schema::{Schema, Type, TypeId, Value};
use virtwire_protocol::{
    Category, Compat, ErrorBody, ErrorKind, Frame, Header, LimitKind, Limits, MessageStatus,
    MessageType, Op,
};

const REMOTE: u32 = 0x2000_8086;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn call(procedure: i32) -> Header {
    Header::call(REMOTE, procedure, 1)
}

fn reply(procedure: i32) -> Header {
    call(procedure).reply_to(MessageStatus::Ok)
}

fn lim() -> Limits {
    Limits::default()
}

/// decode_body and validate_body must agree; returns the decode result.
fn decode<'a>(
    s: &'a Schema,
    h: &Header,
    payload: &'a [u8],
    compat: Compat,
) -> Result<Value<'a>, virtwire_protocol::Error> {
    let d = s.decode_body(h, payload, 28, &lim(), compat);
    let v = s.validate_body(h, payload, 28, &lim(), compat);
    assert_eq!(
        d.as_ref().err(),
        v.as_ref().err(),
        "validate disagrees with decode"
    );
    d
}

#[test]
fn worked_connect_open_call_decodes() {
    let s = schema_or_skip!();
    // docs/protocol.md §6: CONNECT_OPEN("qemu:///system", 0), serial 1.
    let bytes = hex(
        "00000038 20008086 00000001 00000001 00000000 00000001 00000000 \
         00000001 0000000e 71656d75 3a2f2f2f 73797374 656d0000 00000000",
    );
    let frame = Frame::decode(&bytes, &lim(), Compat::Strict).unwrap();
    assert_eq!(
        s.procedure_name(frame.header.prog, frame.header.procedure),
        Some("CONNECT_OPEN")
    );
    let v = decode(s, &frame.header, frame.payload, Compat::Strict).unwrap();
    assert_eq!(
        v,
        Value::Struct(vec![
            (
                "name",
                Value::Optional(Some(Box::new(Value::String(b"qemu:///system"))))
            ),
            ("flags", Value::UInt(0)),
        ])
    );
    assert_eq!(v.at("name").and_then(Value::as_str), Some("qemu:///system"));
    assert_eq!(
        v.to_string(),
        r#"{ name: Some("qemu:///system"), flags: 0 }"#
    );
    let mut out = Vec::new();
    s.encode_body(&frame.header, &v, &mut out, &lim()).unwrap();
    assert_eq!(out, frame.payload);
    // Its 28-byte success reply: void.
    let r = hex("0000001c 20008086 00000001 00000001 00000001 00000001 00000000");
    let frame = Frame::decode(&r, &lim(), Compat::Strict).unwrap();
    assert_eq!(
        decode(s, &frame.header, frame.payload, Compat::Strict).unwrap(),
        Value::Void
    );
}

#[test]
fn unknown_program_version_and_procedure() {
    let s = schema_or_skip!();
    let e = decode(s, &Header::call(0x1234_5678, 1, 1), &[], Compat::Libvirt).unwrap_err();
    assert_eq!(
        *e.kind(),
        ErrorKind::UnknownProgram {
            prog: 0x1234_5678,
            vers: 1
        }
    );
    assert_eq!((e.offset(), e.path_string().as_str()), (4, "header.prog"));
    let mut h = call(1);
    h.vers = 2;
    let e = decode(s, &h, &[], Compat::Strict).unwrap_err();
    assert_eq!(
        *e.kind(),
        ErrorKind::UnknownProgram {
            prog: REMOTE,
            vers: 2
        }
    );
    for p in [0, 444, -1, i32::MAX] {
        let e = decode(s, &call(p), &[], Compat::Strict).unwrap_err();
        assert_eq!(
            *e.kind(),
            ErrorKind::UnknownProcedure {
                prog: REMOTE,
                procedure: p
            }
        );
        assert_eq!((e.offset(), e.path_string().as_str()), (12, "header.proc"));
        assert_eq!(e.category(), Category::Unknown);
        let e = s
            .encode_body(&call(p), &Value::Void, &mut Vec::new(), &lim())
            .unwrap_err();
        assert_eq!(e.op(), Op::Encode);
    }
}

#[test]
fn void_bodies_and_trailing_bytes() {
    let s = schema_or_skip!();
    // CONNECT_CLOSE (2) has neither args nor ret.
    assert_eq!(
        decode(s, &call(2), &[], Compat::Strict).unwrap(),
        Value::Void
    );
    let e = decode(s, &call(2), &[0, 0, 0, 0], Compat::Strict).unwrap_err();
    assert_eq!(*e.kind(), ErrorKind::TrailingBytes { count: 4 });
    assert_eq!(e.offset(), 28);
    assert_eq!(
        decode(s, &call(2), &[0, 0, 0, 0], Compat::Libvirt).unwrap(),
        Value::Void
    );
    // Trailing bytes after a real struct (CONNECT_SUPPORTS_FEATURE args: int feature).
    let p = hex("0000000a 00000000");
    let e = decode(s, &call(60), &p, Compat::Strict).unwrap_err();
    assert_eq!(
        (e.kind().clone(), e.offset()),
        (ErrorKind::TrailingBytes { count: 4 }, 32)
    );
    let v = decode(s, &call(60), &p, Compat::Libvirt).unwrap();
    assert_eq!(v.field("feature"), Some(&Value::Int(10)));
    // Keepalive: void messages; an unknown keepalive procedure is unknown.
    let ka = Header::new(
        0x6b65_6570,
        1,
        1,
        MessageType::Message,
        0,
        MessageStatus::Ok,
    );
    assert_eq!(decode(s, &ka, &[], Compat::Strict).unwrap(), Value::Void);
    let ka3 = Header { procedure: 3, ..ka };
    assert!(matches!(
        decode(s, &ka3, &[], Compat::Strict).unwrap_err().kind(),
        ErrorKind::UnknownProcedure { .. }
    ));
}

#[test]
fn strict_and_libvirt_modes_differ_exactly_where_libvirt_is_lenient() {
    let s = schema_or_skip!();
    // bool = 2 as the presence flag of CONNECT_OPEN's optional name.
    let p = hex("00000002 00000001 61000000 00000000");
    let e = decode(s, &call(1), &p, Compat::Strict).unwrap_err();
    assert_eq!(
        (e.kind().clone(), e.offset(), e.path_string()),
        (ErrorKind::InvalidBool(2), 28, "name".into())
    );
    let v = decode(s, &call(1), &p, Compat::Libvirt).unwrap();
    assert_eq!(v.at("name").and_then(Value::as_str), Some("a"));
    // Non-zero padding after the string.
    let p = hex("00000001 00000001 61000900 00000000");
    let e = decode(s, &call(1), &p, Compat::Strict).unwrap_err();
    assert_eq!(
        (e.kind().clone(), e.offset(), e.path_string()),
        (ErrorKind::NonZeroPadding { byte: 9 }, 37, "name".into())
    );
    let v = decode(s, &call(1), &p, Compat::Libvirt).unwrap();
    assert_eq!(v.at("name").and_then(Value::as_str), Some("a"));
    assert_eq!(v.at("flags"), Some(&Value::UInt(0)));
    // Unknown enum member: AUTH_LIST ret `remote_auth_type types<20>` with 7.
    let p = hex("00000002 00000001 00000007");
    let e = decode(s, &reply(66), &p, Compat::Strict).unwrap_err();
    assert_eq!(e.path_string(), "types[1]");
    assert_eq!(e.offset(), 36);
    assert!(
        matches!(e.kind(), ErrorKind::InvalidEnum { value: 7, enum_name } if enum_name == "remote_auth_type")
    );
    let v = decode(s, &reply(66), &p, Compat::Libvirt).unwrap();
    assert_eq!(
        v.at("types[0]"),
        Some(&Value::Enum {
            value: 1,
            name: Some("REMOTE_AUTH_SASL")
        })
    );
    assert_eq!(
        v.at("types[1]"),
        Some(&Value::Enum {
            value: 7,
            name: None
        })
    );
    // A non-member cannot be encoded.
    let e = s
        .encode_body(&reply(66), &v, &mut Vec::new(), &lim())
        .unwrap_err();
    assert_eq!(e.path_string(), "types[1]");
    // A 4-byte char out of range: AUTH_SASL_STEP args `int nil; char data<65536>`.
    let p = hex("00000000 00000002 00000041 0000012c");
    let e = decode(s, &call(69), &p, Compat::Strict).unwrap_err();
    assert_eq!(
        *e.kind(),
        ErrorKind::ValueOutOfRange {
            value: 300,
            type_name: "char"
        }
    );
    assert_eq!((e.offset(), e.path_string().as_str()), (40, "data[1]"));
    let v = decode(s, &call(69), &p, Compat::Libvirt).unwrap();
    assert_eq!(v.at("data[1]"), Some(&Value::Int(300)));
    // A union discriminant with no arm (typed param type 8): rejected in both modes.
    // CONNECT_GET_ALL_DOMAIN_STATS ret: 1 record, dom {name "d", uuid, id}, 1 param {field "f", type 8}.
    let mut p = hex("00000001 00000001 64000000");
    p.extend_from_slice(&[0xab; 16]);
    p.extend(hex("ffffffff 00000001 00000001 66000000 00000008 00000000"));
    for compat in [Compat::Strict, Compat::Libvirt] {
        let e = decode(s, &reply(344), &p, compat).unwrap_err();
        assert_eq!(*e.kind(), ErrorKind::InvalidDiscriminant(8));
        assert_eq!(e.path_string(), "retStats[0].params[0].value.type");
        assert_eq!(e.offset(), 28 + 44);
    }
    // The same with type 7 (string) decodes in both modes.
    let p7: Vec<u8> = [&p[..44], &hex("00000007 00000001 73000000")[..]].concat();
    for compat in [Compat::Strict, Compat::Libvirt] {
        let v = decode(s, &reply(344), &p7, compat).unwrap();
        assert_eq!(
            v.at("retStats[0].params[0].value.s")
                .and_then(Value::as_str),
            Some("s")
        );
        assert_eq!(v.at("retStats[0].dom.id"), Some(&Value::Int(-1)));
    }
}

#[test]
fn truncation_and_error_offsets_are_frame_offsets() {
    let s = schema_or_skip!();
    let p = hex("00000001 0000000e 71656d75");
    let e = decode(s, &call(1), &p, Compat::Libvirt).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }));
    assert_eq!(e.path_string(), "name");
    assert_eq!(e.offset(), 28 + 8);
    // A huge count with a small payload: Truncated, sized from nothing.
    let p = hex("00003fff");
    let e = decode(s, &reply(344), &p, Compat::Libvirt).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }), "{e}");
    assert_eq!(e.path_string(), "retStats");
}

#[test]
fn nesting_limit_applies_in_both_directions() {
    let s = schema_or_skip!();
    let mut p = hex("00000001 00000001 64000000");
    p.extend_from_slice(&[0; 16]);
    p.extend(hex("00000001 00000001 00000001 66000000 00000001 00000005"));
    let ok = s
        .decode_body(&reply(344), &p, 0, &lim(), Compat::Strict)
        .unwrap();
    // ret struct (1) > retStats array (2) > record (3) > params array (4) > typed param (5) > union (6).
    let tight = lim().to_builder().nesting_max(5).build().unwrap();
    let e = s
        .decode_body(&reply(344), &p, 0, &tight, Compat::Strict)
        .unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::OverLimit {
                limit: LimitKind::Nesting,
                max: 5,
                actual: 6
            }
        ),
        "{e}"
    );
    assert_eq!(e.path_string(), "retStats[0].params[0].value");
    assert_eq!(
        s.validate_body(&reply(344), &p, 0, &tight, Compat::Strict)
            .unwrap_err(),
        e
    );
    let e = s
        .encode_body(&reply(344), &ok, &mut Vec::new(), &tight)
        .unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::OverLimit {
            limit: LimitKind::Nesting,
            ..
        }
    ));
    assert!(
        s.decode_body(
            &reply(344),
            &p,
            0,
            &lim().to_builder().nesting_max(6).build().unwrap(),
            Compat::Strict
        )
        .is_ok()
    );
}

#[test]
fn error_and_stream_bodies_decode_through_the_schema_too() {
    let s = schema_or_skip!();
    let body = ErrorBody::new(39, 7, "unknown procedure: 9999")
        .to_bytes(&lim())
        .unwrap();
    let h = call(9999).reply_to(MessageStatus::Error);
    let v = decode(s, &h, &body, Compat::Strict).unwrap();
    assert_eq!(v.field("code"), Some(&Value::Int(39)));
    assert_eq!(
        v.at("message").and_then(Value::as_str),
        Some("unknown procedure: 9999")
    );
    let mut out = Vec::new();
    s.encode_body(&h, &v, &mut out, &lim()).unwrap();
    assert_eq!(out, body);
    let hole = Header::new(
        REMOTE,
        1,
        209,
        MessageType::StreamHole,
        5,
        MessageStatus::Continue,
    );
    let hb = hex("00000000 00001000 00000000");
    let v = decode(s, &hole, &hb, Compat::Strict).unwrap();
    assert_eq!(v.field("length"), Some(&Value::Hyper(4096)));
    let data = Header::new(
        REMOTE,
        1,
        209,
        MessageType::Stream,
        5,
        MessageStatus::Continue,
    );
    assert_eq!(
        decode(s, &data, b"abc", Compat::Strict).unwrap(),
        Value::Opaque(b"abc")
    );
    // A pair libvirt never sends: strict rejects, libvirt mode passes the bytes through.
    let odd = Header::new(REMOTE, 1, 1, MessageType::Call, 1, MessageStatus::Error);
    assert!(matches!(
        decode(s, &odd, b"x", Compat::Strict).unwrap_err().kind(),
        ErrorKind::UnexpectedStatus { .. }
    ));
    assert_eq!(
        decode(s, &odd, b"x", Compat::Libvirt).unwrap(),
        Value::Opaque(b"x")
    );
}

#[test]
fn encoder_rejects_values_of_the_wrong_shape() {
    let s = schema_or_skip!();
    let enc = |v: &Value| s.encode_body(&call(1), v, &mut Vec::new(), &lim());
    let e = enc(&Value::Void).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Invalid(_)));
    let e = enc(&Value::Struct(vec![("name", Value::Optional(None))])).unwrap_err();
    assert!(e.to_string().contains("2 fields"), "{e}");
    let e = enc(&Value::Struct(vec![
        ("name", Value::Optional(None)),
        ("flagz", Value::UInt(0)),
    ]))
    .unwrap_err();
    assert_eq!(e.path_string(), "flagz".replace('z', "s"));
    let e = enc(&Value::Struct(vec![
        ("name", Value::Optional(None)),
        ("flags", Value::Int(0)),
    ]))
    .unwrap_err();
    assert_eq!(e.path_string(), "flags");
    assert!(
        e.to_string().contains("expected unsigned int, found int"),
        "{e}"
    );
    // Union arm name must match the discriminant.
    let tp = s.type_id("remote_typed_param_value").unwrap();
    let bad = Value::Union {
        discriminant: Box::new(Value::Int(1)),
        arm: Some("s"),
        value: Box::new(Value::Int(1)),
    };
    assert!(s.encode_type(tp, &bad, &mut Vec::new(), &lim()).is_err());
    let no_arm = Value::Union {
        discriminant: Box::new(Value::Int(8)),
        arm: Some("i"),
        value: Box::new(Value::Int(1)),
    };
    let e = s
        .encode_type(tp, &no_arm, &mut Vec::new(), &lim())
        .unwrap_err();
    assert_eq!(*e.kind(), ErrorKind::InvalidDiscriminant(8));
    // A failed encode leaves `out` as it was.
    let mut out = vec![1, 2, 3];
    assert!(s.encode_type(tp, &no_arm, &mut out, &lim()).is_err());
    assert_eq!(out, [1, 2, 3]);
}

// ---------------------------------------------------------------------------------------------
// Bounds: max accepted, max+1 rejected, in both directions.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Step<'p> {
    Field(&'p str),
    Index,
}

fn parse_path(path: &str) -> Vec<Step<'_>> {
    let mut v = Vec::new();
    for part in path.split('.') {
        let name = part.split('[').next().unwrap();
        v.push(Step::Field(name));
        for _ in part.matches("[0]") {
            v.push(Step::Index);
        }
    }
    v
}

fn enc(s: &Schema, ty: TypeId, v: &Value<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    s.encode_type(
        ty,
        v,
        &mut out,
        &Limits::builder().nesting_max(1000).build().unwrap(),
    )
    .unwrap();
    out
}

/// A value of `ty` whose item at `path` has `n` elements (bytes), every other part minimal, and its
/// encoding written piecewise so that it can exceed the bound. Returns (value, bytes, offset of the
/// bounded item's count word).
fn build<'a>(
    s: &'a Schema,
    ty: TypeId,
    path: &[Step<'_>],
    n: usize,
    fill: &'a [u8],
) -> (Value<'a>, Vec<u8>, usize) {
    match (s.ty(ty), path) {
        (Type::Optional(t), _) => {
            let (v, b, at) = build(s, *t, path, n, fill);
            (
                Value::Optional(Some(Box::new(v))),
                [&[0, 0, 0, 1][..], &b].concat(),
                at + 4,
            )
        }
        (Type::Struct(st), [Step::Field(f), rest @ ..]) => {
            let mut bytes = Vec::new();
            let mut at = 0;
            let mut fields = Vec::new();
            let mut found = false;
            for fd in &st.fields {
                if fd.name == *f {
                    let (v, b, a) = build(s, fd.ty, rest, n, fill);
                    at = bytes.len() + a;
                    bytes.extend(b);
                    fields.push((fd.name.as_str(), v));
                    found = true;
                } else {
                    let z = zero(s, fd.ty);
                    bytes.extend(enc(s, fd.ty, &z));
                    fields.push((fd.name.as_str(), z));
                }
            }
            assert!(found, "no field {f} in {}", st.name);
            (Value::Struct(fields), bytes, at)
        }
        (Type::Array { elem, .. }, [Step::Index, rest @ ..]) => {
            let (v, b, a) = build(s, *elem, rest, n, fill);
            (
                Value::Array(vec![v]),
                [&[0, 0, 0, 1][..], &b].concat(),
                a + 4,
            )
        }
        (Type::String { .. } | Type::Opaque { .. }, []) => {
            let mut b = (n as u32).to_be_bytes().to_vec();
            b.extend_from_slice(&fill[..n]);
            b.resize(b.len() + (4 - n % 4) % 4, 0);
            let v = if matches!(s.ty(ty), Type::String { .. }) {
                Value::String(&fill[..n])
            } else {
                Value::Opaque(&fill[..n])
            };
            (v, b, 0)
        }
        (Type::Array { elem, .. }, []) => {
            let z = zero(s, *elem);
            let zb = enc(s, *elem, &z);
            let mut b = Vec::with_capacity(4 + n * zb.len());
            b.extend((n as u32).to_be_bytes());
            for _ in 0..n {
                b.extend_from_slice(&zb);
            }
            (Value::Array(vec![z; n]), b, 0)
        }
        (t, p) => panic!("cannot follow {p:?} into {}", type_name(t)),
    }
}

fn type_name(t: &Type) -> String {
    format!("{t:?}").chars().take(60).collect()
}

fn bound_of(s: &Schema, ty: TypeId, path: &[Step<'_>]) -> (u32, LimitKind) {
    match (s.ty(ty), path) {
        (Type::Optional(t), _) => bound_of(s, *t, path),
        (Type::Struct(st), [Step::Field(f), rest @ ..]) => {
            let fd = st.fields.iter().find(|fd| fd.name == *f);
            let fd = fd.unwrap_or_else(|| panic!("no field {f} in {}", st.name));
            bound_of(s, fd.ty, rest)
        }
        (Type::Array { elem, .. }, [Step::Index, rest @ ..]) => bound_of(s, *elem, rest),
        (Type::String { max }, []) => (*max, LimitKind::String),
        (Type::Opaque { max }, []) => (*max, LimitKind::Opaque),
        (Type::Array { max, .. }, []) => (*max, LimitKind::Array),
        (t, p) => panic!("cannot follow {p:?} into {}", type_name(t)),
    }
}

/// Check max and max+1 of the bounded item at `path` in the body of (header) in both directions.
fn check_bound(s: &Schema, h: &Header, path: &str, fill: &[u8]) -> u32 {
    let ty = s.body_type(h, 1).unwrap().expect("a typed body");
    let steps = parse_path(path);
    let (max, limit) = bound_of(s, ty, &steps);
    let (v, b, at) = build(s, ty, &steps, max as usize, fill);
    // max: accepted by decode (both modes), validate and encode; round trip is exact.
    for compat in [Compat::Strict, Compat::Libvirt] {
        let d = decode(s, h, &b, compat).unwrap_or_else(|e| panic!("{path} at max: {e}"));
        assert!(d == v, "{path}: decoded value differs");
    }
    let mut out = Vec::new();
    s.encode_body(h, &v, &mut out, &lim())
        .unwrap_or_else(|e| panic!("{path} at max: {e}"));
    assert!(out == b, "{path}: encoding differs");
    // max + 1: rejected with OverLimit at the count word, with the path, both directions.
    let (v, b, at1) = build(s, ty, &steps, max as usize + 1, fill);
    assert_eq!(at, at1);
    let want = ErrorKind::OverLimit {
        limit,
        max: max as u64,
        actual: max as u64 + 1,
    };
    for compat in [Compat::Strict, Compat::Libvirt] {
        let e = decode(s, h, &b, compat).unwrap_err();
        assert_eq!(*e.kind(), want, "{path}");
        assert_eq!(e.path_string(), path);
        assert_eq!(e.offset(), 28 + at as u64, "{path}");
    }
    let mut out = vec![0xee];
    let e = s.encode_body(h, &v, &mut out, &lim()).unwrap_err();
    assert_eq!((e.op(), e.kind().clone()), (Op::Encode, want), "{path}");
    assert_eq!(e.path_string(), path);
    assert_eq!(e.offset(), at as u64, "{path}");
    assert_eq!(out, [0xee], "a failed encode leaves the buffer alone");
    max
}

fn fill() -> Vec<u8> {
    (0..4_194_305u32).map(|i| b'a' + (i % 26) as u8).collect()
}

#[test]
fn named_bounds_at_max_and_max_plus_one() {
    let s = schema_or_skip!();
    let fill = fill();
    let cases: &[(Header, &str, u32)] = &[
        (reply(344), "retStats", 16384),
        (reply(344), "retStats[0].params", 262_144),
        (reply(344), "retStats[0].dom.name", 4_194_304),
        (reply(344), "retStats[0].params[0].field", 4_194_304),
        (call(344), "doms", 16384),
        (call(69), "data", 65536),
        (reply(69), "data", 65536),
        (call(1), "name", 4_194_304),
        (reply(66), "types", 20),
        (call(26), "cpumap", 2048),
        (reply(121), "label", 4097),
        (
            Header::call(0x0690_0690, 6, 1).reply_to(MessageStatus::Ok),
            "params",
            32,
        ),
        (
            Header::call(0x0690_0690, 4, 1).reply_to(MessageStatus::Ok),
            "servers",
            16384,
        ),
        (Header::call(0x0EA7_BEEF, 3, 1), "path", 65536),
        (
            Header::call(0x8753_9319, 3, 1).reply_to(MessageStatus::Ok),
            "data",
            4_194_304,
        ),
        (Header::call(0x2000_8087, 1, 1), "cmd", 4_194_304),
    ];
    for (h, path, want_max) in cases {
        let max = check_bound(s, h, path, &fill);
        assert_eq!(max, *want_max, "{path}");
    }
}

#[test]
fn every_small_top_level_bound_of_every_program() {
    // All bounded fields at the top of any body whose max-size encoding is at most 256 KiB:
    // remote's lists, cpumaps, SASL data, admin's and lock's lists and strings, …
    let s = schema_or_skip!();
    let fill = fill();
    let mut checked = std::collections::BTreeMap::<String, usize>::new();
    for (prog, vers, procedure, role, ty) in bodies(s) {
        let Type::Struct(st) = s.ty(ty) else { continue };
        for f in &st.fields {
            let mut t = f.ty;
            while let Type::Optional(i) = s.ty(t) {
                t = *i;
            }
            let (max, unit) = match s.ty(t) {
                Type::String { max } | Type::Opaque { max } => (*max as u64, 1),
                Type::Array { elem, max } => (*max as u64, s.min_size(*elem).max(1) as u64),
                _ => continue,
            };
            if max * unit > 256 << 10 {
                continue;
            }
            let h = header_for(prog, vers, procedure, role);
            check_bound(s, &h, &f.name, &fill);
            let pname = s.program(prog, vers).unwrap().name().to_string();
            *checked.entry(pname).or_default() += 1;
        }
    }
    eprintln!("bounded fields checked per program: {checked:?}");
    assert!(checked["remote"] > 50, "{checked:?}");
    assert!(checked.contains_key("admin"));
    assert!(checked.contains_key("lock"));
}

#[test]
fn fixed_size_items_are_exact_in_both_directions() {
    let s = schema_or_skip!();
    // NODE_GET_INFO ret: char model[32] (4 bytes each), then hyper memory and 6 ints.
    let h = reply(6);
    let ty = s.body_type(&h, 1).unwrap().unwrap();
    let z = zero(s, ty);
    let b = enc(s, ty, &z);
    assert_eq!(b.len(), 128 + 8 + 24);
    assert_eq!(decode(s, &h, &b, Compat::Strict).unwrap(), z);
    let Value::Struct(mut fields) = z.clone() else {
        panic!()
    };
    let Value::Array(model) = &mut fields[0].1 else {
        panic!()
    };
    model.push(Value::Int(0));
    let e = s
        .encode_body(&h, &Value::Struct(fields.clone()), &mut Vec::new(), &lim())
        .unwrap_err();
    assert_eq!(
        *e.kind(),
        ErrorKind::OverLimit {
            limit: LimitKind::Array,
            max: 32,
            actual: 33
        }
    );
    assert_eq!(e.path_string(), "model");
    let Value::Array(model) = &mut fields[0].1 else {
        panic!()
    };
    model.truncate(31);
    let e = s
        .encode_body(&h, &Value::Struct(fields), &mut Vec::new(), &lim())
        .unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Invalid(_)));
    // Decoding a body short of the fixed array: Truncated before anything is sized.
    let e = decode(s, &h, &b[..100], Compat::Libvirt).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Truncated { .. }));
    assert_eq!(e.path_string(), "model");
    // opaque uuid[16] of remote_nonnull_domain: 15 or 17 bytes cannot be encoded.
    let dom = s.type_id("remote_nonnull_domain").unwrap();
    let fill = fill();
    for (n, over) in [(15, false), (17, true)] {
        let v = Value::Struct(vec![
            ("name", Value::String(b"d")),
            ("uuid", Value::Opaque(&fill[..n])),
            ("id", Value::Int(1)),
        ]);
        let e = s.encode_type(dom, &v, &mut Vec::new(), &lim()).unwrap_err();
        assert_eq!(e.path_string(), "uuid");
        assert_eq!(
            matches!(
                e.kind(),
                ErrorKind::OverLimit {
                    limit: LimitKind::Opaque,
                    ..
                }
            ),
            over
        );
    }
}
