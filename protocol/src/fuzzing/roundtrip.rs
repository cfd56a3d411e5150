//! Target `roundtrip_structured`: structured messages, and schema-typed bodies, through the encoder
//! and back.

use arbitrary::{Arbitrary, Unstructured};

use super::generate::{ArbBody, ArbError, ArbMessage, ArbProg, Budget, arbitrary_value};
use super::setup::{fuzz_limits, schema};
use super::verdict::OValue;
use crate::header::PROGRAMS;
use crate::schema::Value;
use crate::*;

/// Target `roundtrip_structured`: an [`ArbMessage`] → encode → decode (strict) → the same header, FD
/// count and body, and encoding again gives the same bytes; the frame decoder agrees. Messages over
/// the (small) limits must be refused by the encoder, never half-written.
pub fn roundtrip_structured(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(m) = ArbMessage::arbitrary(&mut u) else {
        return;
    };
    if let ArbBody::Typed(prog, procedure, role) = m.body {
        return roundtrip_typed(prog, procedure, role, m.serial, &mut u);
    }
    use MessageStatus as S;
    use MessageType as T;
    let limits = fuzz_limits(3)
        .to_builder()
        .string_max(256)
        .build()
        .expect("coherent limits");
    let mut prog = match m.prog {
        ArbProg::Known(i) => PROGRAMS[i as usize % PROGRAMS.len()].number,
        ArbProg::Raw(p) => p,
    };
    let mut procedure = m.procedure;
    let err_bytes = |e: &ArbError| e.body().to_bytes(&limits);
    let (t, s, nfds, payload, expect) = match &m.body {
        ArbBody::Call(fds, p) => match fds {
            Some(n) => (
                T::CallWithFds,
                S::Ok,
                Some(*n as u32),
                p.clone(),
                BodyKind::Args,
            ),
            None => (T::Call, S::Ok, None, p.clone(), BodyKind::Args),
        },
        ArbBody::Reply(fds, p) => match fds {
            Some(n) => (
                T::ReplyWithFds,
                S::Ok,
                Some(*n as u32),
                p.clone(),
                BodyKind::Ret,
            ),
            None => (T::Reply, S::Ok, None, p.clone(), BodyKind::Ret),
        },
        ArbBody::ReplyError(e) => match err_bytes(e) {
            Ok(b) => (T::Reply, S::Error, None, b, BodyKind::Error),
            Err(err) => {
                assert_eq!(err.category(), Category::OverLimit, "{err}");
                return;
            }
        },
        ArbBody::Event(p) => {
            if prog == header::KEEPALIVE_PROGRAM {
                prog = header::REMOTE_PROGRAM;
            }
            (T::Message, S::Ok, None, p.clone(), BodyKind::Msg)
        }
        ArbBody::Keepalive(ping) => {
            prog = header::KEEPALIVE_PROGRAM;
            procedure = if *ping { 1 } else { 2 };
            (T::Message, S::Ok, None, Vec::new(), BodyKind::Keepalive)
        }
        ArbBody::StreamData(p) => (
            T::Stream,
            S::Continue,
            None,
            p.clone(),
            BodyKind::StreamData,
        ),
        ArbBody::StreamEnd => (T::Stream, S::Ok, None, Vec::new(), BodyKind::StreamEnd),
        ArbBody::StreamAbort => (T::Stream, S::Error, None, Vec::new(), BodyKind::StreamError),
        ArbBody::StreamError(e) => match err_bytes(e) {
            Ok(b) => (T::Stream, S::Error, None, b, BodyKind::StreamError),
            Err(err) => {
                assert_eq!(err.category(), Category::OverLimit, "{err}");
                return;
            }
        },
        ArbBody::Typed(..) => unreachable!("handled above"),
        ArbBody::Hole(length, flags) => (
            T::StreamHole,
            S::Continue,
            None,
            StreamHole {
                length: *length,
                flags: *flags,
            }
            .to_bytes()
            .to_vec(),
            BodyKind::StreamHole,
        ),
    };
    let h = Header::new(prog, m.vers, procedure, t, m.serial, s);
    let mut bytes = Vec::new();
    match encode_frame(&mut bytes, &h, nfds, &payload, &limits) {
        Ok(()) => {}
        Err(e) => {
            assert!(bytes.is_empty(), "encoder wrote part of a refused frame");
            assert_eq!(e.category(), Category::OverLimit, "{e}");
            let too_big = 32 + payload.len() as u64 > limits.frame_max();
            let too_many = nfds.is_some_and(|n| n > limits.fds_max());
            assert!(too_big || too_many, "encoder refused a legal frame: {e}");
            return;
        }
    }
    let frame = Frame::decode(&bytes, &limits, Compat::Strict).expect("own frame must decode");
    assert_eq!(frame.header, h);
    assert_eq!(frame.nfds, nfds);
    assert_eq!(frame.payload, &payload[..]);
    let msg = Message::decode(frame, &limits, Compat::Strict).expect("own message must decode");
    assert_eq!(msg.kind, expect);
    match (&m.body, &msg.body) {
        (ArbBody::ReplyError(e) | ArbBody::StreamError(e), Body::Error(d)) => {
            assert_eq!(&e.body(), d)
        }
        (ArbBody::Hole(l, f), Body::StreamHole(d)) => {
            assert_eq!((d.length, d.flags), (*l, *f))
        }
        (ArbBody::Keepalive(p), Body::Keepalive(k)) => {
            assert_eq!(
                *k,
                if *p {
                    KeepaliveProc::Ping
                } else {
                    KeepaliveProc::Pong
                }
            )
        }
        (ArbBody::StreamAbort, Body::StreamAbort) | (ArbBody::StreamEnd, Body::StreamEnd) => {}
        (ArbBody::StreamData(p), Body::StreamData(d)) => assert_eq!(&p[..], *d),
        (_, Body::Procedure { payload: d, .. }) => assert_eq!(&payload[..], *d),
        (a, b) => panic!("decoded {b:?} for {a:?}"),
    }
    let mut again = Vec::new();
    msg.encode(&mut again, &limits).expect("re-encode");
    assert_eq!(again, bytes, "re-encoding differs");
    let mut dec = FrameDecoder::new(&limits, Compat::Strict);
    dec.feed(&bytes);
    let f = dec.next_frame().expect("decoder").expect("a whole frame");
    assert_eq!(f.bytes(), &bytes[..]);
}

/// The typed half of `roundtrip_structured`: a generated value for one procedure body → encode →
/// frame → decode (strict) → the same value, and the same bytes again.
fn roundtrip_typed(prog: u8, procedure: u16, role: u8, serial: u32, u: &mut Unstructured<'_>) {
    let s = schema();
    let programs = s.programs();
    let p = &programs[prog as usize % programs.len()];
    let procs = p.procedure_list();
    if procs.is_empty() {
        return;
    }
    let pr = &procs[procedure as usize % procs.len()];
    let role = BodyRole::ALL[role as usize % BodyRole::ALL.len()];
    let h = Header::new(
        p.number(),
        p.version(),
        pr.number,
        role.message_type(),
        serial,
        MessageStatus::Ok,
    );
    let value = match pr.body(role) {
        Some((_, ty)) => {
            let mut budget = Budget { elems: 256 };
            match arbitrary_value(s, ty, u, &mut budget, 0) {
                Ok(v) => v,
                Err(_) => return,
            }
        }
        None => Value::Void,
    };
    let limits = Limits::default();
    let mut payload = Vec::new();
    s.encode_body(&h, &value, &mut payload, &limits)
        .unwrap_or_else(|e| panic!("generated value for {} does not encode: {e}", pr.name));
    let mut bytes = Vec::new();
    encode_frame(&mut bytes, &h, None, &payload, &limits).expect("small frame encodes");
    let frame = Frame::decode(&bytes, &limits, Compat::Strict).expect("own frame decodes");
    let back = s
        .decode_body(&frame.header, frame.payload, 28, &limits, Compat::Strict)
        .unwrap_or_else(|e| panic!("{} body does not decode strictly: {e}", pr.name));
    assert_eq!(
        OValue::from_value(&back),
        OValue::from_value(&value),
        "{} value differs after a round trip",
        pr.name
    );
    let mut again = Vec::new();
    s.encode_body(&h, &back, &mut again, &limits)
        .expect("decoded value encodes");
    assert_eq!(again, payload, "{} re-encoding differs", pr.name);
}
