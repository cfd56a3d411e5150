//! What a connection's kept traffic says happened, for the runner's facts: the error bodies a peer
//! sent (REPLY/ERROR and STREAM/ERROR), read back from a wire log's chunks through protocol.

use virtwire_protocol::{Compat, Limits, Message, body::Body, frame};

use super::peer::{Chunk, RpcError};
use crate::capture::tcp::Dir;

/// Every error body in what `from` sent, in order, as far as the kept bytes frame (a log cut at its
/// cap, or bytes that do not frame, end the walk; nothing is guessed past them).
pub fn errors_sent(chunks: &[Chunk], from: Dir, limits: &Limits) -> Vec<RpcError> {
    let mut bytes = Vec::new();
    for c in chunks.iter().filter(|c| c.dir == from) {
        bytes.extend_from_slice(&c.bytes);
    }
    let mut out = Vec::new();
    for f in frame::frames(&bytes, limits, Compat::Libvirt) {
        let Ok((_, f)) = f else { break };
        if let Ok(m) = Message::decode(f, limits, Compat::Libvirt)
            && let Body::Error(e) = m.body
        {
            out.push(RpcError {
                code: e.code,
                domain: e.domain,
                message: e.message.map(|m| String::from_utf8_lossy(m).into_owned()),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use virtwire_protocol::{Header, MessageStatus, MessageType, body::ErrorBody, encode_frame};

    use super::*;

    fn error_frame(code: i32, msg: &str) -> Vec<u8> {
        let limits = Limits::default();
        let h = Header {
            prog: 0x2000_8086,
            vers: 1,
            procedure: 1,
            msg_type: MessageType::Reply,
            serial: 1,
            status: MessageStatus::Error,
        };
        let body = ErrorBody::new(code, 7, msg).to_bytes(&limits).unwrap();
        let mut out = Vec::new();
        encode_frame(&mut out, &h, None, &body, &limits).unwrap();
        out
    }

    #[test]
    fn finds_the_errors_of_one_direction_across_chunks() {
        let mut a = error_frame(39, "Unable to decode message payload");
        let b = error_frame(1, "internal error");
        let tail = a.split_off(10);
        let chunks = vec![
            Chunk {
                dir: Dir::S2c,
                at: Duration::ZERO,
                bytes: a,
            },
            Chunk {
                dir: Dir::C2s,
                at: Duration::ZERO,
                bytes: error_frame(2, "sent by us"),
            },
            Chunk {
                dir: Dir::S2c,
                at: Duration::ZERO,
                bytes: tail,
            },
            Chunk {
                dir: Dir::S2c,
                at: Duration::ZERO,
                bytes: b,
            },
        ];
        let e = errors_sent(&chunks, Dir::S2c, &Limits::default());
        let got: Vec<(i32, Option<&str>)> =
            e.iter().map(|e| (e.code, e.message.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (39, Some("Unable to decode message payload")),
                (1, Some("internal error"))
            ]
        );
        assert_eq!(errors_sent(&chunks, Dir::C2s, &Limits::default()).len(), 1);
        assert!(errors_sent(&chunks[..1], Dir::S2c, &Limits::default()).is_empty());
    }
}
