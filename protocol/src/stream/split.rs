//! The sending half of one stream: data of any size into packets of at most a chosen chunk size,
//! holes, and the end markers of each side.

use crate::body::{ErrorBody, StreamHole};
use crate::error::LimitKind;
use crate::limits::Limits;

use super::packet::check_hole;
use super::{End, Side, StreamError, StreamKey, StreamOp, StreamPacket};

/// Splits what one side sends on one stream into packets, lazily, and refuses what that side may not
/// send (data after its end, a hole on a stream not opened sparse, a server's end of file from a
/// client, …).
///
/// A client sends data and holes, then [`finish`](StreamSplitter::finish) (STREAM/OK) or
/// [`abort`](StreamSplitter::abort) (empty STREAM/ERROR). A server sends data and holes, then
/// [`eof`](StreamSplitter::eof) (empty STREAM/CONTINUE), and answers the client's finish or abort with
/// [`confirm`](StreamSplitter::confirm) (STREAM/OK) or [`fail`](StreamSplitter::fail) (STREAM/ERROR
/// with an error body), which may also end the stream at any time.
///
/// ```
/// use virtwire_protocol::{Limits, stream::{Side, StreamKey, StreamSplitter}};
/// let limits = Limits::default();
/// // STORAGE_VOL_UPLOAD (208), serial 7: the client uploads 600000 bytes.
/// let key = StreamKey::new(0x2000_8086, 1, 208, 7);
/// let mut up = StreamSplitter::new(key, Side::Client, &limits)?;
/// let data = vec![0xab; 600_000];
/// let mut wire = Vec::new();
/// for packet in up.data(&data)? {
///     packet.encode(&mut wire, &limits)?;
/// }
/// up.finish()?.encode(&mut wire, &limits)?;
/// // 262120 + 262120 + 75760 bytes of data, then the finish: 4 frames of 28 bytes of head each.
/// assert_eq!(wire.len(), 600_000 + 4 * 28);
/// # Ok::<(), virtwire_protocol::stream::StreamError>(())
/// ```
#[derive(Clone, Debug)]
pub struct StreamSplitter {
    key: StreamKey,
    sender: Side,
    chunk: usize,
    sparse: bool,
    sent_end: Option<End>,
    done: Option<End>,
}

impl StreamSplitter {
    /// A splitter for `sender`'s side of stream `key`, with chunks of [`Limits::stream_chunk`]
    /// (262120, libvirt's own chunk size in both directions). Not sparse.
    pub fn new(key: StreamKey, sender: Side, limits: &Limits) -> Result<Self, StreamError> {
        StreamSplitter {
            key,
            sender,
            chunk: 1,
            sparse: false,
            sent_end: None,
            done: None,
        }
        .with_chunk(limits.stream_chunk() as usize, limits)
    }

    /// Use chunks of `chunk` bytes: at least 1 and at most [`Limits::payload_max`], so that every
    /// frame fits the message limit. A larger chunk is refused with [`LimitKind::StreamChunk`].
    pub fn with_chunk(mut self, chunk: usize, limits: &Limits) -> Result<Self, StreamError> {
        if chunk == 0 {
            return Err(StreamError::Invalid("chunk size must be at least 1"));
        }
        let max = limits.payload_max() as u64;
        if chunk as u64 > max {
            return Err(StreamError::over(
                Some(self.key),
                LimitKind::StreamChunk,
                max,
                chunk as u64,
            ));
        }
        self.chunk = chunk;
        Ok(self)
    }

    /// Allow holes (the stream was opened with the sparse flag, e.g. `VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM`).
    #[must_use]
    pub fn sparse(mut self, sparse: bool) -> Self {
        self.sparse = sparse;
        self
    }

    /// The stream.
    pub fn key(&self) -> StreamKey {
        self.key
    }
    /// Who sends.
    pub fn sender(&self) -> Side {
        self.sender
    }
    /// The chunk size.
    pub fn chunk(&self) -> usize {
        self.chunk
    }
    /// The end this side has sent (finish, abort, end of file), if any.
    pub fn sent_end(&self) -> Option<End> {
        self.sent_end
    }

    /// How many data packets `len` bytes take with chunks of `chunk`: `ceil(len / chunk)` (0 for 0).
    pub const fn packet_count(len: usize, chunk: usize) -> usize {
        len.div_ceil(chunk)
    }

    fn check_open(&self, op: &'static str) -> Result<(), StreamError> {
        if let Some(end) = self.done.or(self.sent_end) {
            return Err(StreamError::AfterEnd {
                key: self.key,
                op,
                end,
            });
        }
        Ok(())
    }

    fn only(&self, side: Side, op: &'static str, reason: &'static str) -> Result<(), StreamError> {
        if self.sender != side {
            return Err(StreamError::NotAllowed {
                key: self.key,
                op,
                reason,
            });
        }
        Ok(())
    }

    /// The data packets for `data`: `ceil(len / chunk)` of them, each borrowing its slice of `data`,
    /// produced lazily (nothing is copied or materialised). Empty data gives no packet.
    pub fn data<'d>(&mut self, data: &'d [u8]) -> Result<DataPackets<'d>, StreamError> {
        self.check_open("data")?;
        Ok(DataPackets {
            key: self.key,
            chunks: data.chunks(self.chunk),
        })
    }

    /// A hole of `length` bytes (STREAM_HOLE). Refused on a stream not opened sparse, and for a
    /// length that is not positive (libvirt refuses those).
    pub fn hole(&mut self, length: i64) -> Result<StreamPacket<'static>, StreamError> {
        self.check_open("hole")?;
        if !self.sparse {
            return Err(StreamError::UnexpectedHole { key: self.key });
        }
        let hole = StreamHole { length, flags: 0 };
        check_hole(self.key, hole)?;
        Ok(StreamPacket::new(self.key, StreamOp::Hole(hole)))
    }

    /// The end of this side's data: [`finish`](StreamSplitter::finish) for a client,
    /// [`eof`](StreamSplitter::eof) for a server.
    pub fn end(&mut self) -> Result<StreamPacket<'static>, StreamError> {
        match self.sender {
            Side::Client => self.finish(),
            Side::Server => self.eof(),
        }
    }

    /// A client's finish: STREAM/OK, empty.
    pub fn finish(&mut self) -> Result<StreamPacket<'static>, StreamError> {
        self.only(Side::Client, "finish", "a server ends with eof")?;
        self.check_open("finish")?;
        self.sent_end = Some(End::Finish);
        Ok(StreamPacket::new(self.key, StreamOp::Finish))
    }

    /// A server's end of file: STREAM/CONTINUE with no data.
    pub fn eof(&mut self) -> Result<StreamPacket<'static>, StreamError> {
        self.only(Side::Server, "eof", "a client ends with finish")?;
        self.check_open("eof")?;
        self.sent_end = Some(End::Eof);
        Ok(StreamPacket::new(self.key, StreamOp::Eof))
    }

    /// A client's abort: STREAM/ERROR, empty.
    pub fn abort(&mut self) -> Result<StreamPacket<'static>, StreamError> {
        self.only(
            Side::Client,
            "abort",
            "a server fails a stream with an error body",
        )?;
        self.check_open("abort")?;
        self.sent_end = Some(End::Abort);
        Ok(StreamPacket::new(self.key, StreamOp::Abort))
    }

    /// A server's confirmation of the client's finish or abort: STREAM/OK, empty. Ends the stream.
    pub fn confirm(&mut self) -> Result<StreamPacket<'static>, StreamError> {
        self.only(Side::Server, "confirm", "only a server confirms")?;
        if let Some(end) = self.done {
            return Err(StreamError::AfterEnd {
                key: self.key,
                op: "confirm",
                end,
            });
        }
        self.done = Some(End::Confirm);
        Ok(StreamPacket::new(self.key, StreamOp::Confirm))
    }

    /// A server's error: STREAM/ERROR with `error` as body. Ends the stream.
    pub fn fail<'e>(&mut self, error: ErrorBody<'e>) -> Result<StreamPacket<'e>, StreamError> {
        self.only(
            Side::Server,
            "error",
            "a client aborts with an empty STREAM/ERROR",
        )?;
        if let Some(end) = self.done {
            return Err(StreamError::AfterEnd {
                key: self.key,
                op: "error",
                end,
            });
        }
        self.done = Some(End::Error);
        Ok(StreamPacket::new(self.key, StreamOp::Error(error)))
    }
}

/// The data packets of one call to [`StreamSplitter::data`], produced lazily.
#[derive(Clone, Debug)]
pub struct DataPackets<'d> {
    key: StreamKey,
    chunks: std::slice::Chunks<'d, u8>,
}

impl<'d> Iterator for DataPackets<'d> {
    type Item = StreamPacket<'d>;

    fn next(&mut self) -> Option<Self::Item> {
        self.chunks
            .next()
            .map(|c| StreamPacket::new(self.key, StreamOp::Data(c)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.chunks.size_hint()
    }
}

impl ExactSizeIterator for DataPackets<'_> {}
impl std::iter::FusedIterator for DataPackets<'_> {}
