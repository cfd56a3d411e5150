//! Real bytes from docs/protocol.md: the worked CONNECT_OPEN call and reply, keepalive frames, error
//! replies as libvirtd 9.0 sends them, FD-carrying frames.

use virtwire_protocol::body::codes;
use virtwire_protocol::header::{KEEPALIVE_PROGRAM, REMOTE_PROGRAM};
use virtwire_protocol::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const L: Limits = Limits::CURRENT_32M;

#[test]
fn connect_open_call() {
    let b = hex(
        "00000038 20008086 00000001 00000001 00000000 00000001 00000000 \
         00000001 0000000e 71656d75 3a2f2f2f 73797374 656d0000 00000000",
    );
    assert_eq!(b.len(), 56);
    for compat in [Compat::Strict, Compat::Libvirt] {
        let f = Frame::decode(&b, &L, compat).unwrap();
        assert_eq!(
            f.header,
            Header::new(
                REMOTE_PROGRAM,
                1,
                1,
                MessageType::Call,
                1,
                MessageStatus::Ok
            )
        );
        assert_eq!(f.nfds, None);
        assert_eq!(f.payload.len(), 28);
        assert_eq!(f.payload_offset(), 28);
        // The args by hand: optional string name (present), u32 flags.
        let mut r = f.payload_reader(compat);
        assert!(r.optional().unwrap());
        assert_eq!(r.string(4_194_304).unwrap(), b"qemu:///system");
        assert_eq!(r.u32().unwrap(), 0);
        r.finish().unwrap();
        let m = Message::decode(f, &L, compat).unwrap();
        assert_eq!(m.kind, BodyKind::Args);
        let mut again = Vec::new();
        m.encode(&mut again, &L).unwrap();
        assert_eq!(again, b);
    }
}

#[test]
fn connect_open_reply() {
    let b = hex("0000001c 20008086 00000001 00000001 00000001 00000001 00000000");
    let f = Frame::decode(&b, &L, Compat::Strict).unwrap();
    assert_eq!(f.header.msg_type, MessageType::Reply);
    assert_eq!(f.header.serial, 1);
    assert!(f.payload.is_empty());
    let m = Message::decode(f, &L, Compat::Strict).unwrap();
    assert_eq!(m.kind, BodyKind::Ret);
    let call = Header::call(REMOTE_PROGRAM, 1, 1);
    let mut out = Vec::new();
    encode_frame(&mut out, &call.reply_to(MessageStatus::Ok), None, &[], &L).unwrap();
    assert_eq!(out, b);
}

#[test]
fn keepalive_ping_pong() {
    for (proc_, kp) in [(1, KeepaliveProc::Ping), (2, KeepaliveProc::Pong)] {
        let b = hex(&format!(
            "0000001c 6b656570 00000001 0000000{proc_} 00000002 00000000 00000000"
        ));
        assert_eq!(kp.frame(), b);
        let f = Frame::decode(&b, &L, Compat::Strict).unwrap();
        assert_eq!(f.header.prog, KEEPALIVE_PROGRAM);
        let m = Message::decode(f, &L, Compat::Strict).unwrap();
        assert_eq!(m.body, Body::Keepalive(kp));
    }
    // A keepalive with a payload: strict says trailing bytes, libvirt ignores them.
    let mut b = KeepaliveProc::Ping.frame();
    b.extend_from_slice(&[0, 0, 0, 0]);
    b[3] = 32;
    let f = Frame::decode(&b, &L, Compat::Strict).unwrap();
    let e = Message::decode(f, &L, Compat::Strict).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::TrailingBytes { count: 4 }));
    assert_eq!(e.offset(), 28);
    let m = Message::decode(f, &L, Compat::Libvirt).unwrap();
    assert_eq!(m.body, Body::Keepalive(KeepaliveProc::Ping));
    assert_eq!(m.frame.payload, &[0, 0, 0, 0]);
}

/// libvirtd 9.0's answer to procedure 9999 (docs/protocol.md §11): REPLY/ERROR, code 39, domain 7,
/// "unknown procedure: 9999", level ERROR, all pointers absent.
#[test]
fn error_reply_unknown_procedure() {
    let msg = b"unknown procedure: 9999";
    let mut b = hex("00000000 20008086 00000001 0000270f 00000001 00000005 00000001");
    b.extend(hex("00000027 00000007 00000001 00000017"));
    b.extend_from_slice(msg);
    b.push(0); // pad 23 → 24
    b.extend(hex(
        "00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000",
    ));
    let len = b.len() as u32;
    b[..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(len, 28 + 48 + 24);
    let f = Frame::decode(&b, &L, Compat::Strict).unwrap();
    assert_eq!(f.header.procedure, 9999);
    assert_eq!(f.header.serial, 5);
    let m = Message::decode(f, &L, Compat::Strict).unwrap();
    let Body::Error(e) = m.body else {
        panic!("expected an error body, got {:?}", m.body)
    };
    assert_eq!(e.code, codes::RPC);
    assert_eq!(e.domain, codes::FROM_RPC);
    assert_eq!(e.level, codes::LEVEL_ERROR);
    assert_eq!(e.message, Some(&msg[..]));
    assert_eq!(
        (e.dom, e.str1, e.str2, e.str3, e.net),
        (None, None, None, None, None)
    );
    let built = ErrorBody::new(codes::RPC, codes::FROM_RPC, "unknown procedure: 9999");
    assert_eq!(e, built);
    let mut again = Vec::new();
    m.encode(&mut again, &L).unwrap();
    assert_eq!(again, b);
}

#[test]
fn error_body_with_every_member() {
    let e = ErrorBody {
        code: 42,
        domain: 10,
        message: Some(b"Domain not found"),
        level: 2,
        dom: Some(body::ErrorDomain {
            name: b"vm1",
            uuid: [7; 16],
            id: -1,
        }),
        str1: Some(b"a"),
        str2: None,
        str3: Some(b"ccc"),
        int1: -5,
        int2: 9,
        net: Some(body::ErrorNetwork {
            name: b"default",
            uuid: [9; 16],
        }),
    };
    let bytes = e.to_bytes(&L).unwrap();
    let mut r = Reader::new(&bytes, Compat::Strict);
    assert_eq!(ErrorBody::decode(&mut r, &L).unwrap(), e);
    r.finish().unwrap();
    // Truncate anywhere: a clean error with a path, never a panic.
    for cut in 0..bytes.len() {
        let mut r = Reader::new(&bytes[..cut], Compat::Libvirt);
        let err = ErrorBody::decode(&mut r, &L).unwrap_err();
        assert!(matches!(err.kind(), ErrorKind::Truncated { .. }), "{err}");
        assert!(!err.path_string().is_empty(), "no path at cut {cut}");
    }
}

#[test]
fn fd_frames_and_stream_hole() {
    let h = Header::new(
        REMOTE_PROGRAM,
        1,
        7,
        MessageType::CallWithFds,
        3,
        MessageStatus::Ok,
    );
    let mut out = Vec::new();
    encode_frame(&mut out, &h, Some(2), &[0, 0, 0, 1], &L).unwrap();
    assert_eq!(&out[..4], &36u32.to_be_bytes());
    assert_eq!(&out[28..32], &2u32.to_be_bytes());
    let f = Frame::decode(&out, &L, Compat::Strict).unwrap();
    assert_eq!(f.nfds, Some(2));
    assert_eq!(f.payload, &[0, 0, 0, 1]);
    // A hole of 1 MiB on stream serial 3.
    let hole = StreamHole {
        length: 1 << 20,
        flags: 0,
    };
    let hh = Header::new(
        REMOTE_PROGRAM,
        1,
        208,
        MessageType::StreamHole,
        3,
        MessageStatus::Continue,
    );
    let mut out = Vec::new();
    encode_frame(&mut out, &hh, None, &hole.to_bytes(), &L).unwrap();
    assert_eq!(out.len(), 40);
    let m = Message::decode(
        Frame::decode(&out, &L, Compat::Strict).unwrap(),
        &L,
        Compat::Strict,
    )
    .unwrap();
    assert_eq!(m.body, Body::StreamHole(hole));
}

#[test]
fn stream_end_abort_and_error() {
    let base = Header::new(
        REMOTE_PROGRAM,
        1,
        211,
        MessageType::Stream,
        4,
        MessageStatus::Ok,
    );
    let enc = |h: Header, p: &[u8]| {
        let mut out = Vec::new();
        encode_frame(&mut out, &h, None, p, &L).unwrap();
        out
    };
    let end = enc(base, &[]);
    let m = Message::decode(
        Frame::decode(&end, &L, Compat::Strict).unwrap(),
        &L,
        Compat::Strict,
    )
    .unwrap();
    assert_eq!(m.body, Body::StreamEnd);
    let abort = enc(
        Header {
            status: MessageStatus::Error,
            ..base
        },
        &[],
    );
    let m = Message::decode(
        Frame::decode(&abort, &L, Compat::Strict).unwrap(),
        &L,
        Compat::Strict,
    )
    .unwrap();
    assert_eq!(m.body, Body::StreamAbort);
    let err = ErrorBody::new(1, 38, "stream had I/O failure")
        .to_bytes(&L)
        .unwrap();
    let failed = enc(
        Header {
            status: MessageStatus::Error,
            ..base
        },
        &err,
    );
    let m = Message::decode(
        Frame::decode(&failed, &L, Compat::Strict).unwrap(),
        &L,
        Compat::Strict,
    )
    .unwrap();
    assert!(matches!(m.body, Body::Error(e) if e.message == Some(&b"stream had I/O failure"[..])));
    let eof = enc(
        Header {
            status: MessageStatus::Continue,
            ..base
        },
        &[],
    );
    let m = Message::decode(
        Frame::decode(&eof, &L, Compat::Strict).unwrap(),
        &L,
        Compat::Strict,
    )
    .unwrap();
    assert_eq!(m.body, Body::StreamData(&[]));
}

/// What libvirtd does with frames it cannot take (docs/protocol.md §11), as decode errors.
#[test]
fn hostile_length_words_from_the_field() {
    // Length words seen in libvirt issue #69: HTTP and SunRPC traffic on the libvirt port.
    for (word, what) in [
        (*b"GET ", "http"),
        (*b"OPTI", "http options"),
        (*b"HELP", "help"),
        ([0x80, 0, 0, 0x28], "sunrpc record mark"),
        ([0x02, 0, 0, 0x05], "just over 32 MiB"),
    ] {
        let mut d = FrameDecoder::new(&L, Compat::Libvirt);
        d.feed(&word);
        let e = d.next_frame().unwrap_err();
        assert_eq!(e.category(), Category::OverLimit, "{what}");
        assert!(matches!(
            e.kind(),
            ErrorKind::OverLimit {
                limit: LimitKind::Message,
                ..
            }
        ));
        assert!(d.capacity() <= 4, "{what}: buffered {}", d.capacity());
    }
    // "\r\n\r\n" = 218762506: within u32 but over the limit.
    assert!(check_length(u32::from_be_bytes(*b"\r\n\r\n"), &L).is_err());
    // 0x00000003: too small; 20: the header does not fit.
    assert!(matches!(
        check_length(3, &L).unwrap_err().kind(),
        ErrorKind::LengthTooSmall { .. }
    ));
    assert_eq!(check_length(20, &L).unwrap_err().path_string(), "header");
}

#[test]
fn unknown_type_and_status_in_both_modes() {
    let b = FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
        .msg_type(MessageType::from_raw(7))
        .status(MessageStatus::from_raw(9))
        .build_unchecked();
    let e = Frame::decode(&b, &L, Compat::Strict).unwrap_err();
    assert_eq!(e.category(), Category::Unknown);
    assert_eq!(e.path_string(), "header.type");
    let f = Frame::decode(&b, &L, Compat::Libvirt).unwrap();
    assert_eq!(f.header.msg_type, MessageType::Unknown(7));
    assert_eq!(f.header.status, MessageStatus::Unknown(9));
    let m = Message::decode(f, &L, Compat::Libvirt).unwrap();
    assert_eq!(m.kind, BodyKind::Unexpected);
    let mut again = Vec::new();
    m.encode(&mut again, &L).unwrap();
    assert_eq!(again, b);
    // A CALL with status ERROR: libvirt's server answers "Unexpected message status"; strict refuses.
    let b = FrameBuilder::call(REMOTE_PROGRAM, 1, 1)
        .status(MessageStatus::Error)
        .build_unchecked();
    let f = Frame::decode(&b, &L, Compat::Strict).unwrap();
    let e = Message::decode(f, &L, Compat::Strict).unwrap_err();
    assert!(matches!(
        e.kind(),
        ErrorKind::UnexpectedStatus { ty: 0, status: 1 }
    ));
}
