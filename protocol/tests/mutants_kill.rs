//! Behaviours no other test pinned down (each was a surviving cargo-mutants mutant,
//! scripts/mutants.sh): codec paths libvirt's own `.x` files never reach (`bool` and `float` fields,
//! `bool` and `char`/`short` union discriminants, a fixed array that ends exactly at the end of the
//! body), bytes after a frame, the body kind of an event MESSAGE, the length word of a frame, and
//! the numbers in a short frame's error. None needs libvirt's files: the schema here is a small
//! synthetic `.x`.

use virtwire_protocol::schema::{Schema, Value};
use virtwire_protocol::*;

/// Types libvirt's `.x` files do not use, in the forms rpcgen accepts.
const X: &str = "
const TRUE = 1;
const FALSE = 0;
union by_bool switch (bool b) {
case TRUE:
    int yes;
case FALSE:
    void;
};
union by_char switch (char c) {
case -1:
    hyper minus_one;
case 1:
    int one;
default:
    void;
};
union by_ushort switch (unsigned short u) {
case 65535:
    unsigned int top;
default:
    void;
};
struct odd {
    bool flag;
    float f;
    by_bool bb;
    by_char bc;
    by_ushort bu;
    int fixed[3];
};
";

fn schema() -> Schema {
    Schema::from_sources(&[("odd.x", X)]).expect("the synthetic .x compiles")
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_be_bytes()).collect()
}

fn lim() -> Limits {
    Limits::default()
}

/// `odd` as bytes: flag TRUE, 1.5f, bb TRUE → 7, bc -1 → hyper -2, bu 65535 → 9, fixed [1, 2, 3].
fn odd_bytes() -> Vec<u8> {
    words(&[
        1,
        1.5f32.to_bits(),
        1,
        7,
        u32::MAX, // char -1
        u32::MAX,
        u32::MAX - 1, // hyper -2
        65535,
        9,
        1,
        2,
        3,
    ])
}

#[test]
fn bool_float_and_small_discriminants_decode_and_encode() {
    let s = schema();
    let ty = s.type_id("odd").unwrap();
    let bytes = odd_bytes();
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap();
    assert_eq!(v.at("flag"), Some(&Value::Bool(true)));
    assert_eq!(v.at("f"), Some(&Value::Float(1.5)));
    let Some(Value::Union {
        discriminant, arm, ..
    }) = v.at("bb")
    else {
        panic!("bb: {v:?}")
    };
    assert_eq!((&**discriminant, *arm), (&Value::Bool(true), Some("yes")));
    assert_eq!(v.at("bb.yes"), Some(&Value::Int(7)));
    let Some(Value::Union { discriminant, .. }) = v.at("bc") else {
        panic!("bc: {v:?}")
    };
    assert_eq!(**discriminant, Value::Int(-1));
    assert_eq!(v.at("bc.minus_one"), Some(&Value::Hyper(-2)));
    let Some(Value::Union { discriminant, .. }) = v.at("bu") else {
        panic!("bu: {v:?}")
    };
    assert_eq!(**discriminant, Value::UInt(65535));
    assert_eq!(v.at("bu.top"), Some(&Value::UInt(9)));
    assert_eq!(v.at("fixed[2]"), Some(&Value::Int(3)));
    // The value encodes to the same bytes (the bool, float and discriminant arms of the encoder).
    let mut out = Vec::new();
    s.encode_type(ty, &v, &mut out, &lim()).unwrap();
    assert_eq!(out, bytes);
    // Validation agrees.
    s.validate_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap();
}

#[test]
fn false_bool_arm_and_default_arm() {
    let s = schema();
    let ty = s.type_id("odd").unwrap();
    // flag FALSE, bb FALSE (void), bc 5 (default: void), bu 0 (default: void).
    let bytes = words(&[0, 0, 0, 5, 0, 4, 5, 6]);
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap();
    assert_eq!(v.at("flag"), Some(&Value::Bool(false)));
    let Some(Value::Union {
        discriminant, arm, ..
    }) = v.at("bb")
    else {
        panic!("{v:?}")
    };
    assert_eq!((&**discriminant, *arm), (&Value::Bool(false), None));
    let mut out = Vec::new();
    s.encode_type(ty, &v, &mut out, &lim()).unwrap();
    assert_eq!(out, bytes);
}

#[test]
fn small_discriminants_are_range_checked_in_strict_mode_only() {
    let s = schema();
    let ty = s.type_id("by_char").unwrap();
    // char 200 does not fit a C char: strict refuses it at the discriminant, libvirt takes the
    // default arm.
    let bytes = words(&[200]);
    let e = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::ValueOutOfRange { value: 200, .. }),
        "{e}"
    );
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Libvirt)
        .unwrap();
    assert!(
        matches!(&v, Value::Union { discriminant, arm: None, .. } if **discriminant == Value::Int(200)),
        "{v:?}"
    );
    // A bool discriminant of 2: strict refuses it, libvirt reads TRUE.
    let ty = s.type_id("by_bool").unwrap();
    let bytes = words(&[2, 7]);
    assert_eq!(
        s.decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
            .unwrap_err()
            .kind(),
        &ErrorKind::InvalidBool(2)
    );
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Libvirt)
        .unwrap();
    assert_eq!(v.at("yes"), Some(&Value::Int(7)));
}

#[test]
fn a_fixed_array_that_ends_the_body_exactly_decodes() {
    let s = schema();
    let ty = s.type_id("odd").unwrap();
    let bytes = odd_bytes();
    // Exactly the 12 bytes the array needs, and one byte fewer.
    assert!(
        s.decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
            .is_ok_and(|v| v.at("fixed[0]") == Some(&Value::Int(1)))
    );
    let short = &bytes[..bytes.len() - 1];
    let e = s
        .decode_type(ty, short, 0, &lim(), Compat::Strict)
        .unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::Truncated {
            needed: 12,
            available: 11
        }
    );
    assert_eq!(e.offset(), 36);
}

#[test]
fn bytes_after_a_frame_are_a_length_mismatch() {
    let f = FrameBuilder::new(Header::call(header::REMOTE_PROGRAM, 1, 1))
        .payload(vec![0; 8])
        .build_unchecked();
    let frame = Frame::decode(&f, &lim(), Compat::Strict).unwrap();
    assert_eq!(frame.len_word(), 36);
    assert_eq!(frame.payload, &[0; 8]);
    let mut more = f.clone();
    more.extend([0, 0, 0, 0]);
    let e = Frame::decode(&more, &lim(), Compat::Libvirt).unwrap_err();
    assert_eq!(
        e.kind(),
        &ErrorKind::LengthMismatch {
            length: 36,
            actual: 40
        }
    );
    assert_eq!(e.path_string(), "length");
}

#[test]
fn the_length_word_is_the_frame_length() {
    for n in [0usize, 4, 100] {
        let f = FrameBuilder::new(Header::call(header::REMOTE_PROGRAM, 1, 1))
            .payload(vec![0; n])
            .build_unchecked();
        let frame = Frame::decode(&f, &lim(), Compat::Strict).unwrap();
        assert_eq!(frame.len_word() as usize, 28 + n);
        assert_eq!(frame.len_word().to_be_bytes(), f[..4]);
    }
}

#[test]
fn an_event_message_is_a_msg_body_and_a_keepalive_one_is_not() {
    let event = Header::new(
        header::REMOTE_PROGRAM,
        1,
        318, // REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE
        MessageType::Message,
        0,
        MessageStatus::Ok,
    );
    assert_eq!(BodyKind::of(&event), BodyKind::Msg);
    assert_eq!(BodyKind::of(&event).role(), Some(BodyRole::Msg));
    let ping = Header::new(
        header::KEEPALIVE_PROGRAM,
        1,
        1,
        MessageType::Message,
        0,
        MessageStatus::Ok,
    );
    assert_eq!(BodyKind::of(&ping), BodyKind::Keepalive);
}

#[test]
fn a_length_word_short_of_a_header_says_how_many_bytes_there_are() {
    for len in 4u32..28 {
        let e = frame::check_length(len, &lim()).unwrap_err();
        assert_eq!(
            e.kind(),
            &ErrorKind::Truncated {
                needed: 24,
                available: len as u64 - 4
            },
            "length {len}"
        );
        assert_eq!((e.offset(), e.path_string().as_str()), (4, "header"));
    }
    assert_eq!(frame::check_length(28, &lim()).unwrap(), 28);
}

#[test]
fn encoding_counts_nesting_like_decoding() {
    // Three compound levels: struct l3 → struct l2 → int<4>.
    let x = "typedef int l1<4>; struct l2 { l1 x; }; struct l3 { l2 y; };";
    let s = Schema::from_sources(&[("n.x", x)]).unwrap();
    let ty = s.type_id("l3").unwrap();
    let bytes = words(&[2, 5, 6]);
    let v = s
        .decode_type(ty, &bytes, 0, &lim(), Compat::Strict)
        .unwrap();
    assert_eq!(v.at("y.x[1]"), Some(&Value::Int(6)));
    let nesting = |n| lim().to_builder().nesting_max(n).build().unwrap();
    // At the limit both directions work…
    let mut out = Vec::new();
    s.encode_type(ty, &v, &mut out, &nesting(3)).unwrap();
    assert_eq!(out, bytes);
    assert!(
        s.decode_type(ty, &bytes, 0, &nesting(3), Compat::Strict)
            .is_ok_and(|d| d == v)
    );
    // …one level fewer, both refuse, at the same depth.
    let mut out = Vec::new();
    let e = s.encode_type(ty, &v, &mut out, &nesting(2)).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ErrorKind::OverLimit {
                limit: LimitKind::Nesting,
                max: 2,
                actual: 3
            }
        ),
        "{e}"
    );
    assert!(out.is_empty());
    let d = s
        .decode_type(ty, &bytes, 0, &nesting(2), Compat::Strict)
        .unwrap_err();
    assert_eq!(d.kind(), e.kind());
}
