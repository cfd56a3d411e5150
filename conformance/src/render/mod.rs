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
    /// One JSON record is built here, then written in one call: serde_json writes a record as
    /// thousands of small pieces (a typed param alone is about twenty), and into a `Vec` each is an
    /// inlined copy where through `W` each is a call.
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
                r.write_json(&mut self.buf).map_err(io::Error::from)?;
                self.buf.push(b'\n');
                let r = self.out.write_all(&self.buf);
                // Keep a large record's buffer only while records stay large.
                if self.buf.capacity() > 1 << 20 && self.buf.len() < 1 << 16 {
                    self.buf = Vec::new();
                }
                r
            }
        }
    }
}
