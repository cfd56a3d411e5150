//! Output of `virtwire decode`: records as text (an indented tree per message, [`text`]) or as JSON
//! lines (one object per record, from the records' serde impls in [`crate::wire::record`]).

use std::io::{self, Write};

use crate::wire::{Record, Sink};

pub mod text;

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An indented tree per message, like `tshark -V -O libvirt`.
    Text,
    /// One JSON object per line.
    Json,
}

/// A [`Sink`] that writes records in a format.
pub struct RecordWriter<W: Write> {
    out: W,
    format: Format,
    /// A JSON record is built here and written in pieces of at most about 64 KiB: serde_json and
    /// the tape writer write thousands of small pieces (a typed param alone is about twenty), and
    /// into a `Vec` each is an inlined copy where through `W` each is a call.
    buf: Vec<u8>,
}

impl<W: Write> RecordWriter<W> {
    /// Write to `out` in `format`.
    pub fn new(out: W, format: Format) -> Self {
        RecordWriter {
            out,
            format,
            buf: Vec::new(),
        }
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Flush.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl<W: Write> Sink for RecordWriter<W> {
    fn record(&mut self, r: &Record<'_>) -> io::Result<()> {
        match self.format {
            Format::Text => text::text_record(&mut self.out, r),
            Format::Json => {
                self.buf.clear();
                let out = &mut self.out;
                r.write_json(&mut self.buf, &mut |piece| out.write_all(piece))
                    .map_err(io::Error::from)?;
                self.buf.push(b'\n');
                self.out.write_all(&self.buf)
            }
        }
    }
}
