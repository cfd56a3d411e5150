//! Frames as traces and replays need them: one frame's bytes → its message JSON, a serial
//! rewritten in place, and a capture split into per-connection lists of (direction, frame bytes,
//! message JSON). This is the wire layer's side of `trace/` and `replay/`, which handle only text and
//! JSON and never read libvirt bytes themselves.
//!
//! The **message JSON** is what a trace's rules address (`header.serial`, `body.dom.uuid`): the
//! record model's own serde pieces ([`super::json`]) arranged as
//! `{"header": {prog, prog_name, vers, proc, proc_name, type, type_name, serial, status,
//! status_name}, "len", "nfds", "body_kind", "body_type", "body", "error"}`. The `header` object and
//! `body` are exactly what `virtwire decode --format json` prints for the same message.

use std::io::{self, Read};
use std::net::SocketAddr;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use virtwire_protocol::schema::Value;
use virtwire_protocol::{BodyKind, Compat, Error, FrameDecoder, Header, OwnedFrame, encode_frame};

use super::json::HeaderJson;
use super::judge::Judge;
use super::record::{MessageRecord, Origin, Record, gap_message};
use super::{Decoder, Sink};
use crate::capture::tcp::{ConnId, Dir};

/// A message record in the form traces address (see the module docs).
struct MessageJson<'r, 'a>(&'r MessageRecord<'a>);

/// The header's entries as an object of their own.
struct HeaderObject<'r>(HeaderJson<'r>);

impl Serialize for HeaderObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(10))?;
        self.0.entries(&mut m)?;
        m.end()
    }
}

impl Serialize for MessageJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut m = s.serialize_map(Some(7))?;
        m.serialize_entry(
            "header",
            &HeaderObject(HeaderJson::new(&r.frame.header, r.proc_name)),
        )?;
        m.serialize_entry("len", &r.frame.len_word())?;
        r.body_entries(&mut m)?;
        m.end()
    }
}

/// A message record as message JSON (see the module docs).
pub fn message_json(rec: &MessageRecord<'_>) -> serde_json::Value {
    serde_json::to_value(MessageJson(rec)).unwrap_or(serde_json::Value::Null)
}

fn no_origin(dir: Option<Dir>) -> Origin<'static> {
    Origin {
        file: "",
        pkt: None,
        ts_ns: None,
        conn: None,
        dir,
        offset: 0,
    }
}

/// A received frame (from a [`Peer`](super::peer::Peer)) judged into message JSON.
pub fn owned_frame_json(judge: &Judge, frame: &OwnedFrame) -> serde_json::Value {
    message_json(&judge.message(no_origin(Some(Dir::S2c)), frame.frame()))
}

/// Exactly one frame's bytes (length word included), framed as libvirt frames them and judged
/// into message JSON. An error when the bytes are not exactly one frame (a bad or wrong length word,
/// fewer than 28 bytes): such bytes can only be sent raw.
pub fn frame_json(judge: &Judge, bytes: &[u8]) -> Result<serde_json::Value, String> {
    let mut dec = FrameDecoder::new(judge.limits(), Compat::Libvirt);
    dec.feed(bytes);
    match dec.next_frame() {
        Ok(Some(f)) if dec.buffered() == 0 => Ok(message_json(
            &judge.message(no_origin(Some(Dir::C2s)), f.frame()),
        )),
        Ok(Some(f)) => Err(format!(
            "the length word says {} bytes but there are {}",
            f.bytes().len(),
            bytes.len()
        )),
        Ok(None) => Err(format!(
            "not a whole frame: {} bytes, the length word needs {}",
            bytes.len(),
            bytes.len() + dec.needed()
        )),
        Err(e) => Err(format!("cannot be framed: {e}")),
    }
}

/// The header of a frame's bytes (read leniently, as libvirt reads it), if 28 bytes are there.
pub fn frame_header(bytes: &[u8]) -> Option<Header> {
    Header::peek(bytes).header()
}

/// A whole frame's parts, read leniently: its header, its FD count (for `*_WITH_FDS` types) and
/// its payload (everything after the header and FD count, up to the end of `bytes`). `None` when
/// the bytes are too short for the header (and FD count).
pub fn frame_parts(bytes: &[u8]) -> Option<(Header, Option<u32>, &[u8])> {
    let peek = Header::peek(bytes);
    let header = peek.header()?;
    if header.msg_type.has_fds() && peek.nfds.is_none() {
        return None;
    }
    Some((header, peek.nfds, bytes.get(peek.head_len()?..)?))
}

/// The same frame with its header's serial set to `serial`; everything else (length word, other
/// header fields, FD count, payload) byte for byte as it was. An error when the bytes do not hold a
/// header.
pub fn rewrite_serial(frame: &[u8], serial: u32) -> Result<Vec<u8>, Error> {
    let mut out = frame.to_vec();
    let mut header = frame_header(frame).unwrap_or(Header::call(0, 0, 0));
    header.serial = serial;
    // Too short for a header: `overwrite` says so (and writes nothing).
    header.overwrite(&mut out)?;
    Ok(out)
}

/// A replacement for one leaf value, prepared as the bytes a string or an opaque value would hold.
struct Swap<'s> {
    /// The old value's JSON form: a string's text, or opaque data as hex.
    old: &'s str,
    /// The new value as string bytes.
    new_text: &'s [u8],
    /// The new value as opaque bytes (when it is hex).
    new_opaque: Option<Vec<u8>>,
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect()
}

/// `v` with every string leaf whose text is a swap's old value, and every opaque leaf whose hex is
/// one (and whose new value is hex of the same length), replaced; and whether anything was.
fn swap_leaves<'v>(v: &Value<'v>, swaps: &'v [Swap<'_>], changed: &mut bool) -> Value<'v> {
    match v {
        Value::String(b) => {
            if let Ok(text) = std::str::from_utf8(b)
                && let Some(s) = swaps.iter().find(|s| s.old == text)
            {
                *changed = true;
                return Value::String(s.new_text);
            }
            Value::String(b)
        }
        Value::Opaque(b) => {
            let h = super::json::hex(b);
            if let Some(new) = swaps
                .iter()
                .filter(|s| s.old == h)
                .find_map(|s| s.new_opaque.as_deref().filter(|n| n.len() == b.len()))
            {
                *changed = true;
                return Value::Opaque(new);
            }
            Value::Opaque(b)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| swap_leaves(i, swaps, changed))
                .collect(),
        ),
        Value::Struct(fields) => Value::Struct(
            fields
                .iter()
                .map(|(n, f)| (*n, swap_leaves(f, swaps, changed)))
                .collect(),
        ),
        Value::Union {
            discriminant,
            arm,
            value,
        } => Value::Union {
            discriminant: discriminant.clone(),
            arm: *arm,
            value: Box::new(swap_leaves(value, swaps, changed)),
        },
        Value::Optional(Some(inner)) => {
            Value::Optional(Some(Box::new(swap_leaves(inner, swaps, changed))))
        }
        other => other.clone(),
    }
}

/// Echo rewriting: in a client frame whose body the schema decodes (a call's args), replace every
/// string or opaque value whose JSON form (a string's text, opaque data's hex) equals the old
/// value of one of `swaps` with its new value, and encode the frame again (same header, FD
/// count). `Ok(None)` when nothing in the body matched (send the frame as it is). Used by replays
/// for values the server chose at recording time (a new domain's UUID) that the client sends back.
pub fn rewrite_echoes(
    judge: &Judge,
    frame: &[u8],
    swaps: &[(String, String)],
) -> Result<Option<Vec<u8>>, String> {
    let Some(schema) = judge.schema() else {
        return Ok(None);
    };
    if swaps.is_empty() {
        return Ok(None);
    }
    let mut dec = FrameDecoder::new(judge.limits(), Compat::Libvirt);
    dec.feed(frame);
    let owned = match dec.next_frame() {
        Ok(Some(f)) if dec.buffered() == 0 => f,
        _ => return Ok(None),
    };
    let f = owned.frame();
    if !matches!(BodyKind::of(&f.header), BodyKind::Args) {
        return Ok(None);
    }
    let base = f.payload_offset() as u64;
    let Ok(value) = schema.decode_body(&f.header, f.payload, base, judge.limits(), Compat::Libvirt)
    else {
        return Ok(None);
    };
    let prepared: Vec<Swap<'_>> = swaps
        .iter()
        .map(|(old, new)| Swap {
            old,
            new_text: new.as_bytes(),
            new_opaque: unhex(new),
        })
        .collect();
    let mut changed = false;
    let swapped = swap_leaves(&value, &prepared, &mut changed);
    if !changed {
        return Ok(None);
    }
    let mut payload = Vec::new();
    schema
        .encode_body(&f.header, &swapped, &mut payload, judge.limits())
        .map_err(|e| format!("cannot encode the rewritten body: {e}"))?;
    let mut out = Vec::with_capacity(payload.len() + 32);
    encode_frame(&mut out, &f.header, f.nfds, &payload, judge.limits())
        .map_err(|e| format!("cannot encode the rewritten frame: {e}"))?;
    Ok(Some(out))
}

/// One entry of a captured connection, in capture order.
#[derive(Clone, Debug, PartialEq)]
pub enum ConnEntry {
    /// A whole frame.
    Message {
        /// Which way it went.
        dir: Dir,
        /// The frame's bytes, length word included.
        frame: Vec<u8>,
        /// Its message JSON.
        json: serde_json::Value,
    },
    /// Bytes that could not become frames: a gap, a framing error, a direction that ended inside a
    /// frame. That direction stops here.
    Problem {
        /// Which way.
        dir: Option<Dir>,
        /// What happened, in words (the same words as `decode` prints).
        what: String,
    },
    /// A direction ended (`fin`, `rst`, `end-of-capture`, `reused`, `gap`).
    End {
        /// Which way.
        dir: Dir,
        /// How.
        reason: &'static str,
    },
}

/// One TCP connection of a capture: its addresses and its traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureConn {
    /// The connection number (`conn` in `decode`'s output).
    pub conn: ConnId,
    /// Client address, if the connection's start was seen.
    pub client: Option<SocketAddr>,
    /// Server address, if the connection's start was seen.
    pub server: Option<SocketAddr>,
    /// The capture starts inside the connection.
    pub midstream: bool,
    /// Its messages and events, in capture order.
    pub entries: Vec<ConnEntry>,
}

/// Collects records per connection.
struct Collect {
    conns: Vec<CaptureConn>,
}

impl Collect {
    fn conn(&mut self, id: Option<ConnId>) -> Option<&mut CaptureConn> {
        let id = id?;
        if let Some(i) = self.conns.iter().position(|c| c.conn == id) {
            return self.conns.get_mut(i);
        }
        self.conns.push(CaptureConn {
            conn: id,
            client: None,
            server: None,
            midstream: false,
            entries: Vec::new(),
        });
        self.conns.last_mut()
    }
}

impl Sink for Collect {
    fn record(&mut self, r: &Record<'_>) -> io::Result<()> {
        match r {
            Record::Conn {
                origin,
                client,
                server,
                midstream,
            } => {
                if let Some(c) = self.conn(origin.conn) {
                    c.client = Some(*client);
                    c.server = Some(*server);
                    c.midstream = *midstream;
                }
            }
            Record::Message(m) => {
                let entry = ConnEntry::Message {
                    dir: m.origin.dir.unwrap_or(Dir::C2s),
                    frame: m.frame.bytes.to_vec(),
                    json: message_json(m),
                };
                if let Some(c) = self.conn(m.origin.conn) {
                    c.entries.push(entry);
                }
            }
            Record::Gap {
                origin,
                seq,
                len,
                reason,
            } => {
                let what = gap_message(origin.offset, *seq, *len, *reason);
                if let Some(c) = self.conn(origin.conn) {
                    c.entries.push(ConnEntry::Problem {
                        dir: origin.dir,
                        what,
                    });
                }
            }
            Record::FramingError {
                origin,
                error,
                hint,
                ..
            } => {
                let mut what = format!("framing error at stream offset {}: {error}", origin.offset);
                if let Some(h) = hint {
                    what.push_str(&format!(" ({h})"));
                }
                if let Some(c) = self.conn(origin.conn) {
                    c.entries.push(ConnEntry::Problem {
                        dir: origin.dir,
                        what,
                    });
                }
            }
            Record::Incomplete {
                origin,
                have,
                len_word,
                why,
            } => {
                let of = len_word.map_or(String::new(), |l| format!(" of {l}"));
                let what = format!(
                    "a frame at stream offset {} ended after {have}{of} bytes: {why}",
                    origin.offset
                );
                if let Some(c) = self.conn(origin.conn) {
                    c.entries.push(ConnEntry::Problem {
                        dir: origin.dir,
                        what,
                    });
                }
            }
            Record::End { origin, reason } => {
                if let (Some(c), Some(dir)) = (self.conn(origin.conn), origin.dir) {
                    c.entries.push(ConnEntry::End {
                        dir,
                        reason: reason.name(),
                    });
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Decode a capture (pcap / pcapng, TCP reassembled) into its connections, each with its frames as
/// (direction, bytes, message JSON) and its gaps, framing errors and ends, in capture order. The
/// counts are `decode`'s (a capture that cannot be read says so in [`super::Stats::capture_error`]).
pub fn capture_connections(
    decoder: &Decoder,
    file: &str,
    input: impl Read,
) -> io::Result<(Vec<CaptureConn>, super::Stats)> {
    let mut collect = Collect { conns: Vec::new() };
    let stats = decoder.decode_capture(file, input, &mut collect)?;
    Ok((collect.conns, stats))
}

/// One live connection's traffic (a recording's chunks, both directions in order) as a
/// [`CaptureConn`], the same shape a capture's connection has (for `virtwire record`'s traces).
pub fn chunk_connection(
    decoder: &Decoder,
    name: &str,
    conn: ConnId,
    client: Option<SocketAddr>,
    server: Option<SocketAddr>,
    chunks: &[super::peer::Chunk],
) -> io::Result<CaptureConn> {
    let mut collect = Collect { conns: Vec::new() };
    decoder.decode_chunks(name, conn, chunks, &mut collect)?;
    let mut c = collect.conns.pop().unwrap_or(CaptureConn {
        conn,
        client: None,
        server: None,
        midstream: false,
        entries: Vec::new(),
    });
    c.client = client;
    c.server = server;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use virtwire_protocol::{FrameBuilder, Limits, MessageStatus, MessageType};

    fn judge() -> Judge {
        Judge::new(Limits::default(), Compat::Libvirt, None)
    }

    #[test]
    fn rewrite_serial_changes_only_the_serial() {
        let f = FrameBuilder::call(0x2000_8086, 3, 7)
            .payload(vec![1, 2, 3, 4])
            .build_unchecked();
        let g = rewrite_serial(&f, 0x0102_0304).unwrap();
        assert_eq!(g.len(), f.len());
        assert_eq!(&g[..20], &f[..20]);
        assert_eq!(&g[20..24], &[1, 2, 3, 4]);
        assert_eq!(&g[24..], &f[24..]);
        assert!(rewrite_serial(&f[..20], 1).is_err());
    }

    #[test]
    fn frame_json_has_header_and_body() {
        let f = FrameBuilder::new(Header::new(
            virtwire_protocol::header::KEEPALIVE_PROGRAM,
            1,
            1,
            MessageType::Message,
            0,
            MessageStatus::Ok,
        ))
        .build_unchecked();
        let j = frame_json(&judge(), &f).unwrap();
        assert_eq!(j["header"]["proc_name"], "PING");
        assert_eq!(j["header"]["type_name"], "MESSAGE");
        assert_eq!(j["header"]["serial"], 0);
        assert_eq!(j["len"], 28);
        assert!(frame_json(&judge(), &f[..27]).is_err());
        let mut two = f.clone();
        two.extend_from_slice(&f);
        assert!(frame_json(&judge(), &two).is_err());
    }
}
