//! The stream state machine, rule by rule: each test is one sentence of docs/protocol.md §5 (or one thing
//! libvirt refuses) and checks both the accepted and the refused case.

use virtwire_protocol::body::codes;
use virtwire_protocol::stream::{
    End, Reassembler, Side, StreamError, StreamKey, StreamOp, StreamOptions, StreamPacket,
    StreamSplitter,
};
use virtwire_protocol::{
    Compat, ErrorBody, Frame, FrameBuilder, Header, LimitKind, Limits, MessageStatus, MessageType,
    StreamHole,
};

const REMOTE: u32 = 0x2000_8086;
const UPLOAD: StreamKey = StreamKey::new(REMOTE, 1, 208, 5);
const DOWNLOAD: StreamKey = StreamKey::new(REMOTE, 1, 209, 6);

fn limits() -> Limits {
    Limits::default()
}

/// Encode a packet and decode its frame again, so every test goes through the wire form.
fn wire(p: StreamPacket<'_>) -> Vec<u8> {
    p.to_bytes(&limits()).unwrap()
}

fn recv(r: &mut Reassembler, bytes: &[u8]) -> Result<Option<String>, StreamError> {
    let f = Frame::decode(bytes, &limits(), Compat::Strict).unwrap();
    r.receive(f).map(|p| p.map(|p| p.op.name().to_string()))
}

fn frame(key: StreamKey, t: MessageType, s: MessageStatus, payload: &[u8]) -> Vec<u8> {
    FrameBuilder::new(key.header(t, s))
        .payload(payload.to_vec())
        .encode(&limits())
        .unwrap()
}

fn server_with(key: StreamKey, opts: StreamOptions) -> Reassembler {
    let mut r = Reassembler::new(Side::Server, &limits(), Compat::Strict);
    r.open(key, opts).unwrap();
    r
}

fn client_with(key: StreamKey, opts: StreamOptions) -> Reassembler {
    let mut r = Reassembler::new(Side::Client, &limits(), Compat::Strict);
    r.open(key, opts).unwrap();
    r
}

#[test]
fn upload_handshake_data_finish_confirm() {
    let mut server = server_with(UPLOAD, StreamOptions::new());
    let mut up = StreamSplitter::new(UPLOAD, Side::Client, &limits()).unwrap();
    let data = vec![1u8; 1000];
    for p in up.data(&data).unwrap() {
        assert_eq!(
            recv(&mut server, &wire(p)).unwrap().as_deref(),
            Some("data")
        );
    }
    let fin = wire(up.finish().unwrap());
    // STREAM/OK, empty, 28 bytes.
    assert_eq!(fin.len(), 28);
    assert_eq!(recv(&mut server, &fin).unwrap().as_deref(), Some("finish"));
    // Data after the client's finish is refused, naming the end.
    let late = frame(
        UPLOAD,
        MessageType::Stream,
        MessageStatus::Continue,
        b"late",
    );
    let e = recv(&mut server, &late).unwrap_err();
    assert_eq!(
        e,
        StreamError::AfterEnd {
            key: UPLOAD,
            op: "data",
            end: End::Finish
        }
    );
    assert!(
        e.to_string()
            .contains("data on stream remote v1 proc 208 serial 5 after finish")
    );
    // A second finish too.
    assert!(matches!(
        recv(&mut server, &fin),
        Err(StreamError::AfterEnd {
            end: End::Finish,
            ..
        })
    ));
    let st = server.status(UPLOAD).unwrap();
    assert_eq!(st.data_received, 1000);
    assert_eq!(st.received_end, Some(End::Finish));
    assert!(!st.is_complete());
    // The server confirms: the stream is over; nothing more is accepted.
    let mut down = StreamSplitter::new(UPLOAD, Side::Server, &limits()).unwrap();
    server.sent(&down.confirm().unwrap()).unwrap();
    assert!(server.status(UPLOAD).unwrap().is_complete());
    assert!(matches!(
        recv(&mut server, &late),
        Err(StreamError::AfterEnd {
            end: End::Confirm,
            ..
        })
    ));
    assert!(server.close(UPLOAD).is_some());
    assert_eq!(
        recv(&mut server, &late).unwrap_err(),
        StreamError::UnknownStream { key: UPLOAD }
    );
}

#[test]
fn server_cannot_confirm_before_finish() {
    let mut server = server_with(UPLOAD, StreamOptions::new());
    let confirm = StreamPacket::new(UPLOAD, StreamOp::Confirm);
    assert!(matches!(
        server.sent(&confirm),
        Err(StreamError::NotAllowed { op: "confirm", .. })
    ));
    recv(
        &mut server,
        &wire(StreamPacket::new(UPLOAD, StreamOp::Abort)),
    )
    .unwrap();
    server.sent(&confirm).unwrap();
}

#[test]
fn download_handshake_eof_finish_confirm() {
    let mut client = client_with(DOWNLOAD, StreamOptions::new());
    let mut down = StreamSplitter::new(DOWNLOAD, Side::Server, &limits()).unwrap();
    for p in down.data(b"abcdef").unwrap() {
        assert_eq!(
            recv(&mut client, &wire(p)).unwrap().as_deref(),
            Some("data")
        );
    }
    let eof = wire(down.eof().unwrap());
    // An empty STREAM/CONTINUE, 28 bytes: end of file when a server sends it.
    assert_eq!(eof.len(), 28);
    assert_eq!(&eof[16..20], &3i32.to_be_bytes());
    assert_eq!(&eof[24..28], &2i32.to_be_bytes());
    assert_eq!(recv(&mut client, &eof).unwrap().as_deref(), Some("eof"));
    // Data after end of file is refused.
    let late = frame(DOWNLOAD, MessageType::Stream, MessageStatus::Continue, b"x");
    assert!(matches!(
        recv(&mut client, &late),
        Err(StreamError::AfterEnd {
            end: End::Eof,
            op: "data",
            ..
        })
    ));
    // STREAM/OK from the server before the client finished is no confirmation of anything.
    let ok = frame(DOWNLOAD, MessageType::Stream, MessageStatus::Ok, &[]);
    assert!(matches!(
        recv(&mut client, &ok),
        Err(StreamError::NotAllowed { op: "confirm", .. })
    ));
    let mut up = StreamSplitter::new(DOWNLOAD, Side::Client, &limits()).unwrap();
    client.sent(&up.finish().unwrap()).unwrap();
    // The client may not send data after its own finish.
    assert!(matches!(
        client.sent(&StreamPacket::new(DOWNLOAD, StreamOp::Data(b"y"))),
        Err(StreamError::AfterEnd {
            end: End::Finish,
            ..
        })
    ));
    assert_eq!(recv(&mut client, &ok).unwrap().as_deref(), Some("confirm"));
    assert_eq!(client.status(DOWNLOAD).unwrap().done, Some(End::Confirm));
}

#[test]
fn empty_continue_from_a_client_is_a_zero_byte_write_not_eof() {
    let mut server = server_with(UPLOAD, StreamOptions::new());
    let empty = frame(UPLOAD, MessageType::Stream, MessageStatus::Continue, &[]);
    let f = Frame::decode(&empty, &limits(), Compat::Strict).unwrap();
    assert_eq!(server.receive(f).unwrap().unwrap().op, StreamOp::Data(&[]));
    // and the stream is still open for data
    recv(
        &mut server,
        &frame(
            UPLOAD,
            MessageType::Stream,
            MessageStatus::Continue,
            b"more",
        ),
    )
    .unwrap();
}

#[test]
fn server_error_ends_the_stream_and_carries_the_body() {
    let mut client = client_with(DOWNLOAD, StreamOptions::new());
    let mut down = StreamSplitter::new(DOWNLOAD, Side::Server, &limits()).unwrap();
    let err = ErrorBody::new(codes::RPC, codes::FROM_STREAMS, "stream had I/O failure");
    let bytes = wire(down.fail(err).unwrap());
    let f = Frame::decode(&bytes, &limits(), Compat::Strict).unwrap();
    match client.receive(f).unwrap().unwrap().op {
        StreamOp::Error(e) => assert_eq!(e.message_lossy(), "stream had I/O failure"),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.status(DOWNLOAD).unwrap().done, Some(End::Error));
    // The splitter refuses data after its own error too.
    assert!(matches!(
        down.data(b"x"),
        Err(StreamError::AfterEnd {
            end: End::Error,
            ..
        })
    ));
}

#[test]
fn empty_stream_error_from_a_server_does_not_decode() {
    let mut client = client_with(DOWNLOAD, StreamOptions::new());
    let e = recv(
        &mut client,
        &frame(DOWNLOAD, MessageType::Stream, MessageStatus::Error, &[]),
    )
    .unwrap_err();
    match &e {
        StreamError::Codec { key, source } => {
            assert_eq!(*key, Some(DOWNLOAD));
            assert_eq!(source.path_string(), "error.code");
            assert_eq!(source.offset(), 28);
        }
        other => panic!("{other:?}"),
    }
    // Nothing changed.
    assert_eq!(client.status(DOWNLOAD).unwrap().done, None);
}

#[test]
fn client_abort_is_empty_and_strict_refuses_a_body() {
    let mut server = server_with(UPLOAD, StreamOptions::new());
    let abort = frame(UPLOAD, MessageType::Stream, MessageStatus::Error, &[]);
    assert_eq!(recv(&mut server, &abort).unwrap().as_deref(), Some("abort"));

    let mut server = server_with(UPLOAD, StreamOptions::new());
    let with_body = frame(UPLOAD, MessageType::Stream, MessageStatus::Error, &[0; 8]);
    assert!(matches!(
        recv(&mut server, &with_body),
        Err(StreamError::Codec { .. })
    ));
    // libvirt's daemon aborts whatever the payload: libvirt mode does the same.
    let mut lenient = Reassembler::new(Side::Server, &limits(), Compat::Libvirt);
    lenient.open(UPLOAD, StreamOptions::new()).unwrap();
    let f = Frame::decode(&with_body, &limits(), Compat::Libvirt).unwrap();
    assert_eq!(lenient.receive(f).unwrap().unwrap().op, StreamOp::Abort);
}

#[test]
fn hole_needs_a_sparse_stream() {
    let hole = wire(StreamPacket::new(
        UPLOAD,
        StreamOp::Hole(StreamHole {
            length: 4096,
            flags: 0,
        }),
    ));
    assert_eq!(hole.len(), 40);
    let mut plain = server_with(UPLOAD, StreamOptions::new());
    assert_eq!(
        recv(&mut plain, &hole).unwrap_err(),
        StreamError::UnexpectedHole { key: UPLOAD }
    );
    assert!(
        StreamError::UnexpectedHole { key: UPLOAD }
            .to_string()
            .contains("not opened sparse")
    );
    let mut sparse = server_with(UPLOAD, StreamOptions::new().sparse(true));
    assert_eq!(recv(&mut sparse, &hole).unwrap().as_deref(), Some("hole"));
    // The splitter refuses holes on a non-sparse stream as well.
    let mut s = StreamSplitter::new(UPLOAD, Side::Client, &limits()).unwrap();
    assert!(matches!(s.hole(1), Err(StreamError::UnexpectedHole { .. })));
    let mut s = s.sparse(true);
    assert!(s.hole(1).is_ok());
    assert!(matches!(
        s.hole(-1),
        Err(StreamError::InvalidHole { length: -1, .. })
    ));
}

#[test]
fn bad_holes_are_refused() {
    let mut sparse = server_with(UPLOAD, StreamOptions::new().sparse(true));
    let mut payload = (-5i64).to_be_bytes().to_vec();
    payload.extend_from_slice(&0u32.to_be_bytes());
    let neg = frame(
        UPLOAD,
        MessageType::StreamHole,
        MessageStatus::Continue,
        &payload,
    );
    assert!(matches!(
        recv(&mut sparse, &neg),
        Err(StreamError::InvalidHole { length: -5, .. })
    ));
    // Zero length: libvirt refuses it on both sides (virCheckPositiveArgReturn); found by the
    // `stream` fuzz target, which expected libvirt's rule while the splitter accepted 0.
    let zero = frame(
        UPLOAD,
        MessageType::StreamHole,
        MessageStatus::Continue,
        &StreamHole {
            length: 0,
            flags: 0,
        }
        .to_bytes(),
    );
    assert!(matches!(
        recv(&mut sparse, &zero),
        Err(StreamError::InvalidHole { length: 0, .. })
    ));
    let mut s = StreamSplitter::new(UPLOAD, Side::Client, &limits())
        .unwrap()
        .sparse(true);
    assert!(matches!(
        s.hole(0),
        Err(StreamError::InvalidHole { length: 0, .. })
    ));
    let mut payload = 5i64.to_be_bytes().to_vec();
    payload.extend_from_slice(&1u32.to_be_bytes());
    let flags = frame(
        UPLOAD,
        MessageType::StreamHole,
        MessageStatus::Continue,
        &payload,
    );
    assert!(matches!(
        recv(&mut sparse, &flags),
        Err(StreamError::InvalidHole { flags: 1, .. })
    ));
    let short = frame(
        UPLOAD,
        MessageType::StreamHole,
        MessageStatus::Continue,
        &[0; 8],
    );
    match recv(&mut sparse, &short).unwrap_err() {
        StreamError::Codec { source, .. } => {
            assert_eq!(source.path_string(), "hole.flags");
            assert_eq!(source.offset(), 36);
        }
        other => panic!("{other:?}"),
    }
    let wrong_status = frame(UPLOAD, MessageType::StreamHole, MessageStatus::Ok, &[0; 12]);
    assert!(matches!(
        recv(&mut sparse, &wrong_status),
        Err(StreamError::UnexpectedFrame { .. })
    ));
    // An unknown status only gets past the frame decoder in libvirt mode.
    let unknown_status = frame(UPLOAD, MessageType::Stream, MessageStatus::Unknown(7), &[]);
    let f = Frame::decode(&unknown_status, &limits(), Compat::Libvirt).unwrap();
    assert!(matches!(
        sparse.receive(f),
        Err(StreamError::UnexpectedFrame {
            status: MessageStatus::Unknown(7),
            ..
        })
    ));
    assert_eq!(sparse.status(UPLOAD).unwrap().holes_received, 0);
}

#[test]
fn frames_of_other_streams_and_other_types() {
    let mut server = server_with(UPLOAD, StreamOptions::new());
    // Same serial, other procedure: another stream, reported, not guessed.
    let other = StreamKey::new(REMOTE, 1, 209, 5);
    let e = recv(
        &mut server,
        &frame(other, MessageType::Stream, MessageStatus::Continue, b"x"),
    )
    .unwrap_err();
    assert_eq!(e, StreamError::UnknownStream { key: other });
    assert_eq!(e.key(), Some(other));
    // Other version.
    let other = StreamKey::new(REMOTE, 2, 208, 5);
    assert!(matches!(
        recv(
            &mut server,
            &frame(other, MessageType::Stream, MessageStatus::Continue, b"x")
        ),
        Err(StreamError::UnknownStream { .. })
    ));
    // Calls, replies and messages are not stream packets.
    let call = FrameBuilder::new(Header::call(REMOTE, 208, 9))
        .encode(&limits())
        .unwrap();
    assert_eq!(recv(&mut server, &call).unwrap(), None);
}

#[test]
fn streams_cap_and_reopen() {
    let l = limits().to_builder().streams_max(2).build().unwrap();
    let mut r = Reassembler::new(Side::Server, &l, Compat::Strict);
    r.open(StreamKey::new(REMOTE, 1, 208, 1), StreamOptions::new())
        .unwrap();
    assert_eq!(
        r.open(StreamKey::new(REMOTE, 1, 208, 1), StreamOptions::new()),
        Err(StreamError::AlreadyOpen {
            key: StreamKey::new(REMOTE, 1, 208, 1)
        })
    );
    r.open(StreamKey::new(REMOTE, 1, 208, 2), StreamOptions::new())
        .unwrap();
    let e = r
        .open(StreamKey::new(REMOTE, 1, 208, 3), StreamOptions::new())
        .unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::Streams));
    assert!(e.to_string().contains("Limits::streams_max"), "{e}");
    assert!(e.to_string().contains("3 > 2"), "{e}");
    r.close(StreamKey::new(REMOTE, 1, 208, 1));
    r.open(StreamKey::new(REMOTE, 1, 208, 3), StreamOptions::new())
        .unwrap();
}

#[test]
fn wrong_side_packets_are_refused() {
    let mut client = client_with(DOWNLOAD, StreamOptions::new());
    // A client does not send end of file or confirmations.
    assert!(matches!(
        client.sent(&StreamPacket::new(DOWNLOAD, StreamOp::Eof)),
        Err(StreamError::NotAllowed { .. })
    ));
    assert!(matches!(
        client.receive_packet(&StreamPacket::new(DOWNLOAD, StreamOp::Finish)),
        Err(StreamError::NotAllowed { .. })
    ));
    let mut s = StreamSplitter::new(DOWNLOAD, Side::Client, &limits()).unwrap();
    assert!(matches!(s.eof(), Err(StreamError::NotAllowed { .. })));
    assert!(matches!(s.confirm(), Err(StreamError::NotAllowed { .. })));
    let mut s = StreamSplitter::new(DOWNLOAD, Side::Server, &limits()).unwrap();
    assert!(matches!(s.finish(), Err(StreamError::NotAllowed { .. })));
    assert!(matches!(s.abort(), Err(StreamError::NotAllowed { .. })));
}

#[test]
fn max_chunk_holds_a_peer_to_a_chunk_size() {
    let mut client =
        Reassembler::new(Side::Client, &limits(), Compat::Strict).with_max_chunk(Some(262_120));
    client.open(DOWNLOAD, StreamOptions::new()).unwrap();
    let ok = frame(
        DOWNLOAD,
        MessageType::Stream,
        MessageStatus::Continue,
        &vec![0; 262_120],
    );
    recv(&mut client, &ok).unwrap();
    let big = frame(
        DOWNLOAD,
        MessageType::Stream,
        MessageStatus::Continue,
        &vec![0; 262_121],
    );
    let e = recv(&mut client, &big).unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::StreamChunk));
}

#[test]
fn assembling_takes_data_and_holes_and_frees_the_cap() {
    let mut server = server_with(UPLOAD, StreamOptions::new().sparse(true).assemble(true));
    let mut up = StreamSplitter::new(UPLOAD, Side::Client, &limits())
        .unwrap()
        .with_chunk(3, &limits())
        .unwrap()
        .sparse(true);
    let mut frames = Vec::new();
    frames.extend(up.data(b"hello").unwrap().map(wire));
    frames.push(wire(up.hole(10).unwrap()));
    frames.extend(up.data(b"world").unwrap().map(wire));
    for f in &frames {
        recv(&mut server, f).unwrap();
    }
    assert_eq!(server.buffered(), 10 + 16);
    assert!(server.memory() >= server.buffered());
    let a = server.take_assembled(UPLOAD).unwrap();
    assert_eq!(a.data, b"helloworld");
    assert_eq!(a.holes.len(), 1);
    assert_eq!((a.holes[0].offset, a.holes[0].length), (5, 10));
    assert_eq!(a.logical_len(), Some(20));
    assert_eq!(a.to_dense(20).unwrap(), b"hello\0\0\0\0\0\0\0\0\0\0world");
    let e = a.to_dense(19).unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::StreamBuffer));
    assert_eq!(server.buffered(), 0);
    assert_eq!(server.memory(), 0);
    // A hand-built value with holes out of order is refused, not a panic.
    let bad = virtwire_protocol::stream::Assembled {
        data: vec![1, 2],
        holes: vec![virtwire_protocol::stream::HoleAt {
            offset: 3,
            length: 1,
        }],
    };
    assert!(matches!(bad.to_dense(100), Err(StreamError::Invalid(_))));
}

#[test]
fn splitter_chunk_bounds() {
    let l = limits();
    assert!(matches!(
        StreamSplitter::new(UPLOAD, Side::Client, &l)
            .unwrap()
            .with_chunk(0, &l),
        Err(StreamError::Invalid(_))
    ));
    let s = StreamSplitter::new(UPLOAD, Side::Client, &l).unwrap();
    assert_eq!(s.chunk(), 262_120);
    let e = s.with_chunk(33_554_409, &l).unwrap_err();
    assert_eq!(e.limit(), Some(LimitKind::StreamChunk));
    assert!(e.to_string().contains("33554409 > 33554408"), "{e}");
}

#[test]
fn wire_parts_match_encode() {
    let l = limits();
    let data = [9u8; 100];
    let p = StreamPacket::new(UPLOAD, StreamOp::Data(&data));
    let (head, payload) = p.wire_parts(&l).unwrap();
    assert!(matches!(payload, std::borrow::Cow::Borrowed(_)));
    let mut joined = head.to_vec();
    joined.extend_from_slice(&payload);
    assert_eq!(joined, p.to_bytes(&l).unwrap());
    let small = l
        .to_builder()
        .message_max(24 + 99)
        .stream_chunk(99)
        .build()
        .unwrap();
    assert!(p.wire_parts(&small).is_err());
    assert!(p.to_bytes(&small).is_err());
}
