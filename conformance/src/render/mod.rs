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
}

impl<W: Write> RecordWriter<W> {
    /// Write to `out` in `format`.
    pub fn new(out: W, format: Format) -> Self {
        RecordWriter { out, format }
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
                serde_json::to_writer(&mut self.out, r).map_err(io::Error::from)?;
                self.out.write_all(b"\n")
            }
        }
    }
}
