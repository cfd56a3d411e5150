//! A case's traffic, decoded by the wire layer: [`Decoder::decode_chunks`] turns a connection's
//! chunks into [`Record`]s, which this module shows as one-line summaries (terminal, JUnit) or keeps
//! in their serde form (JSON). Nothing here looks at the bytes themselves: a frame that does not
//! decode is shown as the hex of the bytes its record carries.

use std::io;

use serde_json::value::RawValue;
use virtwire_protocol::{Body, Header, MessageStatus};

use crate::runner::Wire;
use crate::wire::json::Hex;
use crate::wire::record::gap_message;
use crate::wire::{BodyOut, Decoder, MessageRecord, Record};

/// Longest server text (an error message) kept in a summary line, in characters.
const TEXT_MAX: usize = 160;
/// Bytes of a frame that does not decode shown in hex.
const HEX_MAX: usize = 32;

/// One record as one line: `+0.002s c2s CALL remote CONNECT_OPEN serial 1`,
/// `+0.004s s2c REPLY/ERROR remote CONNECT_OPEN serial 1: unknown procedure (code 39, domain 7)`.
/// `None` for the closing summary record (its counts are not traffic).
pub fn summary_line(r: &Record<'_>) -> Option<String> {
    let at = |ts: Option<u64>| {
        ts.map_or_else(String::new, |ns| {
            format!("+{}.{:03}s ", ns / 1_000_000_000, (ns / 1_000_000) % 1000)
        })
    };
    let dir = |d: Option<crate::capture::tcp::Dir>| d.map_or("", |d| d.name());
    Some(match r {
        Record::Message(m) => format!("{}{} {}", at(m.origin.ts_ns), dir(m.origin.dir), message(m)),
        Record::FramingError {
            origin,
            len_word,
            header,
            error,
            hint,
        } => {
            let mut s = format!(
                "{}{} FRAMING ERROR: {}",
                at(origin.ts_ns),
                dir(origin.dir),
                super::printable(&error.to_string())
            );
            if let Some(l) = len_word {
                s.push_str(&format!(" (length word {l})"));
            }
            if let Some(h) = header {
                s.push_str(&format!("; header says {}", header_words(h, None)));
            }
            s.push_str("; nothing more read this way");
            if let Some(hint) = hint {
                s.push_str(&format!(" ({hint})"));
            }
            s
        }
        Record::Incomplete {
            origin,
            have,
            len_word,
            why,
        } => format!(
            "{}{} unfinished frame: {have}{} bytes, then {why}",
            at(origin.ts_ns),
            dir(origin.dir),
            len_word.map_or_else(String::new, |l| format!(" of {l}"))
        ),
        Record::Gap {
            origin,
            seq,
            len,
            reason,
        } => format!(
            "{}{} {}",
            at(origin.ts_ns),
            dir(origin.dir),
            gap_message(origin.offset, *seq, *len, *reason)
        ),
        Record::End { origin, reason } => format!(
            "{}{} end ({})",
            at(origin.ts_ns),
            dir(origin.dir),
            reason.name()
        ),
        Record::Conn { client, server, .. } => format!("connection {client} → {server}"),
        Record::Skipped { reason, count, .. } => format!("{count} packet(s) skipped: {reason}"),
        Record::CaptureError { error, .. } => format!("capture error: {error}"),
        Record::Summary { .. } => return None,
    })
}

/// `CALL remote CONNECT_OPEN serial 1` (status shown unless OK; version unless 1).
fn header_words(h: &Header, proc_name: Option<&str>) -> String {
    let ty = if h.msg_type.is_known() {
        h.msg_type.name().to_string()
    } else {
        format!("type {}", h.msg_type.raw())
    };
    let status = if h.status == MessageStatus::Ok {
        String::new()
    } else if h.status.is_known() {
        format!("/{}", h.status.name())
    } else {
        format!("/status {}", h.status.raw())
    };
    let prog = h
        .prog_name()
        .map_or_else(|| format!("prog {:#x}", h.prog), str::to_string);
    let vers = if h.vers == 1 {
        String::new()
    } else {
        format!(" vers {}", h.vers)
    };
    let procedure = proc_name.map_or_else(|| format!("proc {}", h.procedure), str::to_string);
    format!("{ty}{status} {prog}{vers} {procedure} serial {}", h.serial)
}

/// Server text for a summary: control characters escaped, at most [`TEXT_MAX`] characters.
fn short(s: &str) -> String {
    let s = super::printable(s);
    match s.char_indices().nth(TEXT_MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s,
    }
}

/// A message's header in words, then what its body says when that fits a line.
fn message(m: &MessageRecord<'_>) -> String {
    let mut s = header_words(&m.frame.header, m.proc_name);
    if let Some(n) = m.frame.nfds {
        s.push_str(&format!(" nfds {n}"));
    }
    match &m.body {
        BodyOut::Core(Body::Error(e)) => s.push_str(&format!(
            ": {} (code {}, domain {})",
            e.message
                .map_or_else(|| "(no message)".to_string(), |_| short(&e.message_lossy())),
            e.code,
            e.domain
        )),
        BodyOut::Core(Body::StreamData([])) => s.push_str(": end of data"),
        BodyOut::Core(Body::StreamData(d)) => s.push_str(&format!(": {} bytes of data", d.len())),
        BodyOut::Core(Body::StreamHole(h)) => s.push_str(&format!(": hole of {} bytes", h.length)),
        BodyOut::Raw(p) if m.error.is_none() && !p.is_empty() => {
            s.push_str(&format!(" ({}-byte body, not decoded: no schema)", p.len()))
        }
        _ => {}
    }
    if let Some(e) = &m.error {
        // The header is in words above; what failed is in the body, kept raw by the judge.
        let b = m.frame.payload;
        let n = b.len().min(HEX_MAX);
        s.push_str(&format!(
            " - does not decode: {}; body {}{}",
            short(&e.to_string()),
            if b.is_empty() {
                "empty".to_string()
            } else {
                Hex(&b[..n]).to_string()
            },
            if b.len() > n {
                format!("… ({} bytes)", b.len())
            } else {
                String::new()
            }
        ));
    }
    s
}

/// Bytes of direction `dir` that `wire`'s log did not keep (it was full).
pub fn cut_bytes(wire: &Wire, dir: crate::capture::tcp::Dir) -> usize {
    match dir {
        crate::capture::tcp::Dir::C2s => wire.cut.0,
        crate::capture::tcp::Dir::S2c => wire.cut.1,
    }
}

/// What a log that was cut says where it ends (in place of "unfinished frame …, then the
/// connection ended", which would read as if the peer had hung up).
pub fn cut_words(wire: &Wire, dir: crate::capture::tcp::Dir, frame: Option<(u64, u32)>) -> String {
    let mut s = format!(
        "the wire log was cut at {} this way: {} more bytes were not kept",
        crate::runner::kib(wire.cap),
        cut_bytes(wire, dir)
    );
    if let Some((have, len)) = frame {
        s.push_str(&format!(" (it ends {have} bytes into a frame of {len})"));
    }
    s.push_str("; --wire-log-max SIZE keeps more");
    s
}

/// One-line summaries of every record of a connection's traffic (connection number `conn` of case
/// `case_id`), in order. Where the log was cut (the wire log's cap), the last line of that direction
/// says so.
pub fn summarise(
    decoder: &Decoder,
    case_id: &str,
    conn: u64,
    wire: &Wire,
) -> io::Result<Vec<String>> {
    use crate::capture::tcp::Dir;
    let mut lines = Vec::new();
    let mut said = [false; 2];
    decoder.decode_chunks(case_id, conn, &wire.chunks, &mut |r: &Record<'_>| {
        if let Record::Incomplete {
            origin,
            have,
            len_word,
            ..
        } = r
            && let Some(d) = origin.dir
            && cut_bytes(wire, d) > 0
        {
            let ts = origin.ts_ns.map_or_else(String::new, |ns| {
                format!("+{}.{:03}s ", ns / 1_000_000_000, (ns / 1_000_000) % 1000)
            });
            let frame = len_word.map(|l| (*have, l));
            lines.push(format!("{ts}{} {}", d.name(), cut_words(wire, d, frame)));
            said[usize::from(d == Dir::S2c)] = true;
            return Ok(());
        }
        lines.extend(summary_line(r));
        Ok(())
    })?;
    // Cut at a frame boundary: no unfinished frame to say it at, so say it at the end.
    for (i, d) in [Dir::C2s, Dir::S2c].into_iter().enumerate() {
        if !said[i] && cut_bytes(wire, d) > 0 {
            lines.push(format!("{} {}", d.name(), cut_words(wire, d, None)));
        }
    }
    Ok(lines)
}

/// A connection's records in their serde form (exactly what `decode --format json` prints), at most
/// `max` of them then the closing summary record; and how many were left out.
pub fn records(
    decoder: &Decoder,
    case_id: &str,
    conn: u64,
    wire: &Wire,
    max: usize,
) -> io::Result<(Vec<Box<RawValue>>, usize)> {
    let mut kept = Vec::new();
    let mut left_out = 0usize;
    decoder.decode_chunks(case_id, conn, &wire.chunks, &mut |r: &Record<'_>| {
        if kept.len() < max || matches!(r, Record::Summary { .. }) {
            kept.push(serde_json::value::to_raw_value(r).map_err(io::Error::from)?);
        } else {
            left_out += 1;
        }
        Ok(())
    })?;
    Ok((kept, left_out))
}
