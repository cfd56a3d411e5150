//! The reassembler: one side's stream state machine for a whole connection (sans-IO).

use std::collections::HashMap;

use crate::error::LimitKind;
use crate::frame::Frame;
use crate::limits::Limits;
use crate::xdr::Compat;

use super::packet::check_hole;
use super::{End, Side, StreamError, StreamKey, StreamOp, StreamPacket};

/// How a stream was opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct StreamOptions {
    /// Holes are allowed (the opening call asked for a sparse stream). Without it a hole is refused
    /// ([`StreamError::UnexpectedHole`]), as libvirt refuses it.
    pub sparse: bool,
    /// Copy received data into a buffer, to be taken out with [`Reassembler::take_assembled`].
    /// Without it the reassembler copies nothing and only hands back borrowed packets.
    pub assemble: bool,
}

impl StreamOptions {
    /// Not sparse, not assembling.
    pub const fn new() -> Self {
        StreamOptions {
            sparse: false,
            assemble: false,
        }
    }
    /// Set [`StreamOptions::sparse`].
    #[must_use]
    pub const fn sparse(mut self, sparse: bool) -> Self {
        self.sparse = sparse;
        self
    }
    /// Set [`StreamOptions::assemble`].
    #[must_use]
    pub const fn assemble(mut self, assemble: bool) -> Self {
        self.assemble = assemble;
        self
    }
}

/// A hole inside [`Assembled`] data: `length` bytes of zeros that stand at byte `offset` of
/// [`Assembled::data`] (before the data byte with that index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HoleAt {
    /// Position in [`Assembled::data`].
    pub offset: u64,
    /// Length of the hole.
    pub length: u64,
}

/// Bytes of buffer one recorded hole costs.
const HOLE_SIZE: usize = std::mem::size_of::<HoleAt>();

/// What an assembling stream received since the last take: its data in one contiguous buffer, and
/// its holes as positions in that buffer (not materialised: a 1 TiB hole costs 16 bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    /// The data, in order.
    pub data: Vec<u8>,
    /// The holes, in order.
    pub holes: Vec<HoleAt>,
}

impl Assembled {
    /// True when there is no data and no hole.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty() && self.holes.is_empty()
    }

    /// Data plus holes, in bytes (`None` if it overflows `u64`).
    pub fn logical_len(&self) -> Option<u64> {
        self.holes
            .iter()
            .try_fold(self.data.len() as u64, |n, h| n.checked_add(h.length))
    }

    /// The data with every hole filled with zeros, refused with [`LimitKind::StreamBuffer`] when that
    /// would be more than `max` bytes (and with [`StreamError::Invalid`] when hole offsets are not in
    /// order within the data, which only a hand-built value can have).
    pub fn to_dense(&self, max: u64) -> Result<Vec<u8>, StreamError> {
        let len = self.logical_len().unwrap_or(u64::MAX);
        if len > max || usize::try_from(len).is_err() {
            return Err(StreamError::over(None, LimitKind::StreamBuffer, max, len));
        }
        let mut prev = 0;
        for h in &self.holes {
            if h.offset < prev || h.offset > self.data.len() as u64 {
                return Err(StreamError::Invalid(
                    "hole offsets must be in order and within the data",
                ));
            }
            prev = h.offset;
        }
        let mut out = Vec::with_capacity(len as usize);
        let mut at = 0usize;
        for h in &self.holes {
            let off = h.offset as usize;
            out.extend_from_slice(&self.data[at..off]);
            out.resize(out.len() + h.length as usize, 0);
            at = off;
        }
        out.extend_from_slice(&self.data[at..]);
        Ok(out)
    }
}

/// Where one stream stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamStatus {
    /// How it was opened.
    pub options: StreamOptions,
    /// How the peer ended its data: [`End::Eof`] from a server, [`End::Finish`] / [`End::Abort`] from
    /// a client.
    pub received_end: Option<End>,
    /// How this side ended its data (recorded by [`Reassembler::sent`]).
    pub sent_end: Option<End>,
    /// The final packet: [`End::Confirm`] or [`End::Error`]. Nothing may follow it.
    pub done: Option<End>,
    /// Data bytes received.
    pub data_received: u64,
    /// Holes received.
    pub holes_received: u64,
    /// Bytes buffered now (assembling streams: data plus 16 per hole).
    pub buffered: u64,
}

impl StreamStatus {
    /// True once the stream got its confirmation or error: only [`Reassembler::close`] is left.
    pub fn is_complete(&self) -> bool {
        self.done.is_some()
    }
}

#[derive(Debug)]
struct Entry {
    options: StreamOptions,
    received_end: Option<End>,
    sent_end: Option<End>,
    done: Option<End>,
    data_received: u64,
    holes_received: u64,
    data: Vec<u8>,
    holes: Vec<HoleAt>,
}

impl Entry {
    fn memory(&self) -> usize {
        self.data.capacity() + self.holes.capacity() * HOLE_SIZE
    }
    fn len(&self) -> usize {
        self.data.len() + self.holes.len() * HOLE_SIZE
    }
}

/// One side's view of every stream on a connection: feed it the frames the peer sends
/// ([`receive`](Reassembler::receive)) and, to follow the handshakes, the packets this side sends
/// ([`sent`](Reassembler::sent)); get back the peer's packets — data, holes, end of file, finish,
/// abort, confirmation, error — or a [`StreamError`] saying what libvirt would refuse.
///
/// - Streams are keyed by the opening call's (prog, vers, proc, serial) and must be
///   [opened](Reassembler::open) by the caller when it sees that call (or its reply), with the sparse
///   flag. A packet of any other stream is [`StreamError::UnknownStream`]; libvirt's daemon drops
///   those silently, we report them.
/// - Zero-copy: [`receive`](Reassembler::receive) takes a borrowed [`Frame`] and returns a packet
///   borrowing its data. Only streams opened with [`StreamOptions::assemble`] copy their data, into one
///   contiguous buffer per stream taken out with [`take_assembled`](Reassembler::take_assembled).
/// - Memory: at most [`Limits::streams_max`] streams are open, and the capacity of all buffers
///   together never exceeds [`Limits::stream_buffer_max`] ([`memory`](Reassembler::memory)), whatever
///   the input. A packet that would pass a cap is refused whole, leaving every state unchanged.
/// - Order: the peer's data and holes are refused after its end (end of file from a server, finish
///   or abort from a client); a confirmation needs a finish or abort to answer; nothing is accepted
///   after the confirmation or the server's error. A completed stream stays (and counts) until
///   [`close`](Reassembler::close)d.
#[derive(Debug)]
pub struct Reassembler {
    local: Side,
    limits: Limits,
    compat: Compat,
    max_chunk: Option<usize>,
    streams: HashMap<StreamKey, Entry>,
    buffered: usize,
    memory: usize,
}

impl Reassembler {
    /// A reassembler for the `local` end of a connection: it receives what the other end sends.
    /// The limits are copied.
    pub fn new(local: Side, limits: &Limits, compat: Compat) -> Self {
        Reassembler {
            local,
            limits: *limits,
            compat,
            max_chunk: None,
            streams: HashMap::new(),
            buffered: 0,
            memory: 0,
        }
    }

    /// Refuse received data packets larger than `max` bytes ([`LimitKind::StreamChunk`]). Off by
    /// default: libvirt accepts any data packet that fits the message limit (a conformance check can
    /// set 262120 to hold a server to the chunk size libvirt's own daemon uses).
    #[must_use]
    pub fn with_max_chunk(mut self, max: Option<usize>) -> Self {
        self.max_chunk = max;
        self
    }

    /// Which end this is.
    pub fn local(&self) -> Side {
        self.local
    }
    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
    /// Streams open now (completed ones included until closed).
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }
    /// The open streams' keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = StreamKey> + '_ {
        self.streams.keys().copied()
    }
    /// Bytes buffered across all streams (data, plus 16 per recorded hole).
    pub fn buffered(&self) -> u64 {
        self.buffered as u64
    }
    /// Bytes of buffer capacity held across all streams: never above [`Limits::stream_buffer_max`].
    pub fn memory(&self) -> u64 {
        self.memory as u64
    }

    fn cap(&self) -> usize {
        usize::try_from(self.limits.stream_buffer_max()).unwrap_or(usize::MAX)
    }

    /// Start tracking stream `key`. Refused when it is already open, or when
    /// [`Limits::streams_max`] streams are open ([`LimitKind::Streams`]).
    pub fn open(&mut self, key: StreamKey, options: StreamOptions) -> Result<(), StreamError> {
        if self.streams.contains_key(&key) {
            return Err(StreamError::AlreadyOpen { key });
        }
        let n = self.streams.len() as u64;
        if n >= self.limits.streams_max() as u64 {
            return Err(StreamError::over(
                Some(key),
                LimitKind::Streams,
                self.limits.streams_max() as u64,
                n + 1,
            ));
        }
        self.streams.insert(
            key,
            Entry {
                options,
                received_end: None,
                sent_end: None,
                done: None,
                data_received: 0,
                holes_received: 0,
                data: Vec::new(),
                holes: Vec::new(),
            },
        );
        Ok(())
    }

    /// Stop tracking `key`, returning what it still had buffered (`None` if it was not open).
    pub fn close(&mut self, key: StreamKey) -> Option<Assembled> {
        let e = self.streams.remove(&key)?;
        self.buffered -= e.len();
        self.memory -= e.memory();
        Some(Assembled {
            data: e.data,
            holes: e.holes,
        })
    }

    /// Where `key` stands, if open.
    pub fn status(&self, key: StreamKey) -> Option<StreamStatus> {
        self.streams.get(&key).map(|e| StreamStatus {
            options: e.options,
            received_end: e.received_end,
            sent_end: e.sent_end,
            done: e.done,
            data_received: e.data_received,
            holes_received: e.holes_received,
            buffered: e.len() as u64,
        })
    }

    /// Take what an assembling stream buffered so far (data in one contiguous `Vec`, holes as
    /// positions in it), freeing its share of the buffer cap. `None` if `key` is not open.
    pub fn take_assembled(&mut self, key: StreamKey) -> Option<Assembled> {
        let e = self.streams.get_mut(&key)?;
        let (len, mem) = (e.len(), e.memory());
        let out = Assembled {
            data: std::mem::take(&mut e.data),
            holes: std::mem::take(&mut e.holes),
        };
        self.buffered -= len;
        self.memory -= mem;
        Some(out)
    }

    /// Process a frame received from the peer. `Ok(None)` for frames that are not of type STREAM or
    /// STREAM_HOLE (calls, replies and messages are the caller's); otherwise the packet, borrowing the
    /// frame's data, or the reason it is refused. A refused frame changes nothing.
    pub fn receive<'a>(
        &mut self,
        frame: Frame<'a>,
    ) -> Result<Option<StreamPacket<'a>>, StreamError> {
        if !matches!(
            frame.header.msg_type,
            crate::MessageType::Stream | crate::MessageType::StreamHole
        ) {
            return Ok(None);
        }
        let key = StreamKey::of(&frame.header);
        if !self.streams.contains_key(&key) {
            return Err(StreamError::UnknownStream { key });
        }
        let packet = StreamPacket::decode(&frame, self.local.peer(), &self.limits, self.compat)?
            .ok_or(StreamError::Invalid("not a stream frame"))?;
        self.apply(&packet, true)?;
        Ok(Some(packet))
    }

    /// Process a packet received from the peer that is already decoded (same rules as
    /// [`receive`](Reassembler::receive)).
    pub fn receive_packet(&mut self, packet: &StreamPacket<'_>) -> Result<(), StreamError> {
        self.apply(packet, true)
    }

    /// Record a packet this side sent, so that the handshakes can be followed (a server's
    /// confirmation answers the client's finish; a client must not send data after its finish).
    /// Refused like a received packet when this side may not send it.
    pub fn sent(&mut self, packet: &StreamPacket<'_>) -> Result<(), StreamError> {
        self.apply(packet, false)
    }

    fn apply(&mut self, packet: &StreamPacket<'_>, incoming: bool) -> Result<(), StreamError> {
        let key = packet.key;
        let op = &packet.op;
        let sender = if incoming {
            self.local.peer()
        } else {
            self.local
        };
        if !op.sent_by(sender) {
            return Err(StreamError::NotAllowed {
                key,
                op: op.name(),
                reason: match sender {
                    Side::Client => "a client does not send it",
                    Side::Server => "a server does not send it",
                },
            });
        }
        let max_chunk = self.max_chunk;
        let e = self
            .streams
            .get(&key)
            .ok_or(StreamError::UnknownStream { key })?;
        if let Some(end) = e.done {
            return Err(StreamError::AfterEnd {
                key,
                op: op.name(),
                end,
            });
        }
        let (sender_end, other_end) = if incoming {
            (e.received_end, e.sent_end)
        } else {
            (e.sent_end, e.received_end)
        };
        let assemble = incoming && e.options.assemble;
        match op {
            StreamOp::Data(_)
            | StreamOp::Hole(_)
            | StreamOp::Eof
            | StreamOp::Finish
            | StreamOp::Abort => {
                if let Some(end) = sender_end {
                    return Err(StreamError::AfterEnd {
                        key,
                        op: op.name(),
                        end,
                    });
                }
            }
            StreamOp::Confirm => {
                if !matches!(other_end, Some(End::Finish | End::Abort)) {
                    return Err(StreamError::NotAllowed {
                        key,
                        op: op.name(),
                        reason: "no finish or abort to confirm",
                    });
                }
            }
            StreamOp::Error(_) => {}
        }
        match op {
            StreamOp::Data(d) => {
                if let Some(max) = max_chunk.filter(|&m| incoming && d.len() > m) {
                    return Err(StreamError::over(
                        Some(key),
                        LimitKind::StreamChunk,
                        max as u64,
                        d.len() as u64,
                    ));
                }
                if assemble {
                    self.reserve(key, d.len(), 0)?;
                }
                let e = self.streams.get_mut(&key).expect("checked above");
                if assemble {
                    e.data.extend_from_slice(d);
                    self.buffered += d.len();
                }
                if incoming {
                    e.data_received += d.len() as u64;
                }
            }
            StreamOp::Hole(h) => {
                if !e.options.sparse {
                    return Err(StreamError::UnexpectedHole { key });
                }
                check_hole(key, *h)?;
                if assemble {
                    self.reserve(key, 0, 1)?;
                }
                let e = self.streams.get_mut(&key).expect("checked above");
                if assemble {
                    e.holes.push(HoleAt {
                        offset: e.data.len() as u64,
                        length: h.length as u64,
                    });
                    self.buffered += HOLE_SIZE;
                }
                if incoming {
                    e.holes_received += 1;
                }
            }
            StreamOp::Eof | StreamOp::Finish | StreamOp::Abort => {
                let e = self.streams.get_mut(&key).expect("checked above");
                let end = op.end();
                if incoming {
                    e.received_end = end;
                } else {
                    e.sent_end = end;
                }
            }
            StreamOp::Confirm | StreamOp::Error(_) => {
                let e = self.streams.get_mut(&key).expect("checked above");
                e.done = op.end();
            }
        }
        Ok(())
    }

    /// Make room in `key`'s buffers for `data` more bytes and `holes` more hole records, keeping the
    /// capacity of all buffers within the cap. Changes no content.
    fn reserve(&mut self, key: StreamKey, data: usize, holes: usize) -> Result<(), StreamError> {
        let cap = self.cap();
        let extra = holes
            .checked_mul(HOLE_SIZE)
            .and_then(|h| h.checked_add(data))
            .unwrap_or(usize::MAX);
        let after = self.buffered.saturating_add(extra);
        if after > cap {
            return Err(StreamError::over(
                Some(key),
                LimitKind::StreamBuffer,
                self.limits.stream_buffer_max(),
                after as u64,
            ));
        }
        let e = self.streams.get(&key).expect("caller checked");
        let need_d = e.data.len() + data;
        let need_h = e.holes.len() + holes;
        if need_d <= e.data.capacity() && need_h <= e.holes.capacity() {
            return Ok(());
        }
        let min_mem =
            |e: &Entry| need_d.max(e.data.capacity()) + need_h.max(e.holes.capacity()) * HOLE_SIZE;
        let mut others = self.memory - e.memory();
        if others + min_mem(e) > cap {
            // Other buffers hold slack: give it back, so that the cap is on bytes held, not on
            // growth strategy. Only happens close to the cap.
            for v in self.streams.values_mut() {
                v.data.shrink_to_fit();
                v.holes.shrink_to_fit();
            }
            self.memory = self.streams.values().map(Entry::memory).sum();
            let e = self.streams.get(&key).expect("caller checked");
            others = self.memory - e.memory();
            if others + min_mem(e) > cap {
                return Err(StreamError::over(
                    Some(key),
                    LimitKind::StreamBuffer,
                    self.limits.stream_buffer_max(),
                    (others + min_mem(e)) as u64,
                ));
            }
        }
        let allowed = cap - others;
        let e = self.streams.get_mut(&key).expect("caller checked");
        if need_h > e.holes.capacity() {
            let room = (allowed - need_d.max(e.data.capacity())) / HOLE_SIZE;
            let target = need_h
                .max(e.holes.capacity() * 2)
                .max(4)
                .min(room)
                .max(need_h);
            e.holes.reserve_exact(target - e.holes.len());
        }
        if need_d > e.data.capacity() {
            let room = allowed - e.holes.capacity() * HOLE_SIZE;
            let target = need_d.max(e.data.capacity() * 2).min(room).max(need_d);
            e.data.reserve_exact(target - e.data.len());
        }
        self.memory = others + e.memory();
        debug_assert!(self.memory <= cap);
        Ok(())
    }
}
