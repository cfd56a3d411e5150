//! The text view of records: an indented tree per message, like `tshark -V -O libvirt`. The one
//! hand-written renderer; JSON comes from the records' serde impls.

use std::io::{self, Write};

use virtwire_protocol::schema::Value;
use virtwire_protocol::{Body, ErrorBody, Header};

use crate::wire::json::hex;
use crate::wire::judge::core_procedure_name;
use crate::wire::record::{BodyOut, MessageRecord, Origin, Record, gap_message};

fn where_text(o: &Origin<'_>) -> String {
    let mut s = String::new();
    if let Some(p) = o.pkt {
        s.push_str(&format!("packet {p}, "));
    }
    if let Some(c) = o.conn {
        s.push_str(&format!("conn {c}"));
        if let Some(d) = o.dir {
            s.push_str(&format!(" {d}"));
        }
        s.push_str(", ");
    }
    s.push_str(&format!("offset {}", o.offset));
    s
}

/// A byte string for text output: quoted and escaped when UTF-8, else hex.
fn tbytes(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => format!("\"{}\"", s.escape_debug()),
        Err(_) => format!("<{} bytes, not UTF-8: {}>", b.len(), hex(b)),
    }
}

fn topt(b: Option<&[u8]>) -> String {
    b.map_or_else(|| "(absent)".to_string(), tbytes)
}

fn text_header(w: &mut impl Write, h: &Header, proc_name: Option<&str>) -> io::Result<()> {
    match h.prog_name() {
        Some(n) => writeln!(w, "    Program: {n} ({:#010x})", h.prog)?,
        None => writeln!(w, "    Program: unknown ({:#010x})", h.prog)?,
    }
    writeln!(w, "    Version: {}", h.vers)?;
    match proc_name {
        Some(n) => writeln!(w, "    Procedure: {n} ({})", h.procedure)?,
        None => writeln!(w, "    Procedure: {}", h.procedure)?,
    }
    writeln!(
        w,
        "    Type: {} ({})",
        if h.msg_type.is_known() {
            h.msg_type.name()
        } else {
            "UNKNOWN"
        },
        h.msg_type.raw()
    )?;
    writeln!(w, "    Serial: {}", h.serial)?;
    writeln!(
        w,
        "    Status: {} ({})",
        if h.status.is_known() {
            h.status.name()
        } else {
            "UNKNOWN"
        },
        h.status.raw()
    )
}

/// The error struct as an indented tree.
pub fn text_error_body(w: &mut impl Write, e: &ErrorBody<'_>, ind: &str) -> io::Result<()> {
    writeln!(w, "{ind}code: {}", e.code)?;
    writeln!(w, "{ind}domain: {}", e.domain)?;
    writeln!(w, "{ind}message: {}", topt(e.message))?;
    writeln!(w, "{ind}level: {}", e.level)?;
    match &e.dom {
        Some(d) => writeln!(
            w,
            "{ind}dom: name {} uuid {} id {}",
            tbytes(d.name),
            hex(&d.uuid),
            d.id
        )?,
        None => writeln!(w, "{ind}dom: (absent)")?,
    }
    writeln!(w, "{ind}str1: {}", topt(e.str1))?;
    writeln!(w, "{ind}str2: {}", topt(e.str2))?;
    writeln!(w, "{ind}str3: {}", topt(e.str3))?;
    writeln!(w, "{ind}int1: {}", e.int1)?;
    writeln!(w, "{ind}int2: {}", e.int2)?;
    match &e.net {
        Some(n) => writeln!(w, "{ind}net: name {} uuid {}", tbytes(n.name), hex(&n.uuid)),
        None => writeln!(w, "{ind}net: (absent)"),
    }
}

fn scalar_text(v: &Value<'_>) -> Option<String> {
    Some(match v {
        Value::Void => "(void)".into(),
        Value::Int(i) => i.to_string(),
        Value::UInt(i) => i.to_string(),
        Value::Hyper(i) => i.to_string(),
        Value::UHyper(i) => i.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Enum { value, name } => match name {
            Some(n) => format!("{n} ({value})"),
            None => format!("{value} (not a member)"),
        },
        Value::String(b) => tbytes(b),
        Value::Opaque([]) => "(0 bytes)".into(),
        Value::Opaque(b) => hex(b),
        Value::Optional(None) => "(absent)".into(),
        Value::Array(items) if items.is_empty() => "(0 items)".into(),
        Value::Struct(fields) if fields.is_empty() => "(empty struct)".into(),
        _ => return None,
    })
}

/// A schema value as an indented tree: `name: value` for scalars, nested blocks for structs, arrays
/// (`name: N items` then `[i]` entries) and unions (`name: arm (discriminant D)`).
pub fn text_value(w: &mut impl Write, name: &str, v: &Value<'_>, depth: usize) -> io::Result<()> {
    let ind = "    ".repeat(depth);
    if let (Value::Opaque(b), true) = (v, name.ends_with("uuid"))
        && b.len() == 16
    {
        let h = hex(b);
        return writeln!(
            w,
            "{ind}{name}: {}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        );
    }
    if let Some(s) = scalar_text(v) {
        return writeln!(w, "{ind}{name}: {s}");
    }
    match v {
        Value::Optional(Some(inner)) => text_value(w, name, inner, depth),
        Value::Array(items) => {
            writeln!(w, "{ind}{name}: {} items", items.len())?;
            for (i, item) in items.iter().enumerate() {
                text_value(w, &format!("[{i}]"), item, depth + 1)?;
            }
            Ok(())
        }
        Value::Struct(fields) => {
            writeln!(w, "{ind}{name}:")?;
            for (n, item) in fields {
                text_value(w, n, item, depth + 1)?;
            }
            Ok(())
        }
        Value::Union {
            discriminant,
            arm,
            value,
        } => {
            let d = scalar_text(discriminant).unwrap_or_default();
            match (arm, scalar_text(value)) {
                (None, _) => writeln!(w, "{ind}{name}: (void arm, discriminant {d})"),
                (Some(arm), Some(s)) => writeln!(w, "{ind}{name}: {arm} = {s} (discriminant {d})"),
                (Some(arm), None) => {
                    writeln!(w, "{ind}{name}: {arm} (discriminant {d})")?;
                    text_value(w, arm, value, depth + 1)
                }
            }
        }
        _ => writeln!(w, "{ind}{name}: (not shown)"),
    }
}

fn text_hexdump(w: &mut impl Write, b: &[u8], ind: &str) -> io::Result<()> {
    for (i, chunk) in b.chunks(16).enumerate() {
        writeln!(w, "{ind}{:04x}  {}", i * 16, hex(chunk))?;
    }
    Ok(())
}

/// One message as an indented tree.
pub fn text_message(w: &mut impl Write, m: &MessageRecord<'_>) -> io::Result<()> {
    let h = &m.frame.header;
    writeln!(
        w,
        "Message: {}, {} bytes{}",
        where_text(&m.origin),
        m.frame.len_word(),
        if m.error.is_some() {
            " [DECODE ERROR]"
        } else {
            ""
        }
    )?;
    writeln!(w, "    Length: {}", m.frame.len_word())?;
    text_header(w, h, m.proc_name)?;
    if let Some(n) = m.frame.nfds {
        writeln!(w, "    FD count: {n}")?;
    }
    let ind = "        ";
    // A tape is shown through its tree (the text view is not the fast path).
    let from_tape;
    let body = match &m.body {
        BodyOut::Tape { type_name, tape } => {
            from_tape = BodyOut::Value {
                type_name: *type_name,
                value: tape.to_value(),
            };
            &from_tape
        }
        b => b,
    };
    match body {
        BodyOut::Value { type_name, value } => {
            let label = format!("Body ({})", type_name.unwrap_or(m.kind.name()));
            match value {
                Value::Void => writeln!(w, "    {label}: (void)")?,
                Value::Struct(fields) => {
                    writeln!(w, "    {label}:")?;
                    for (n, item) in fields {
                        text_value(w, n, item, 2)?;
                    }
                }
                other => text_value(w, &label, other, 1)?,
            }
        }
        // Turned into a tree above.
        BodyOut::Tape { .. } => {}
        BodyOut::Raw(p) => {
            let why = if m.error.is_some() {
                "not decoded (see the error)"
            } else {
                "not decoded (no schema loaded)"
            };
            writeln!(
                w,
                "    Body ({}): {} bytes of XDR, {why}",
                m.kind.name(),
                p.len()
            )?;
            text_hexdump(w, p, ind)?;
        }
        BodyOut::Core(b) => match b {
            Body::Error(e) => {
                writeln!(w, "    Error:")?;
                text_error_body(w, e, ind)?;
            }
            Body::Keepalive(_) => writeln!(w, "    Body: none (keepalive)")?,
            Body::StreamData([]) => {
                writeln!(w, "    Stream data: 0 bytes (end of file from the server)")?
            }
            Body::StreamData(d) => writeln!(w, "    Stream data: {} bytes", d.len())?,
            Body::StreamEnd => writeln!(w, "    Stream end (no body)")?,
            Body::StreamAbort => writeln!(w, "    Stream abort (no body)")?,
            Body::StreamHole(hole) => {
                writeln!(w, "    Stream hole:")?;
                writeln!(w, "{ind}length: {}", hole.length)?;
                writeln!(w, "{ind}flags: {}", hole.flags)?;
            }
            Body::Unexpected(p) | Body::Procedure { payload: p, .. } => {
                writeln!(
                    w,
                    "    Body: {} bytes (type/status pair libvirt never sends)",
                    p.len()
                )?;
                text_hexdump(w, p, ind)?;
            }
            _ => writeln!(w, "    Body: (not shown)")?,
        },
    }
    if let Some(e) = &m.error {
        writeln!(
            w,
            "    DECODE ERROR: {e} (stream offset {})",
            m.origin.offset.saturating_add(e.offset())
        )?;
    }
    writeln!(w)
}

/// One record as text (nothing for `end` records).
pub fn text_record(w: &mut impl Write, r: &Record<'_>) -> io::Result<()> {
    match r {
        Record::Message(m) => text_message(w, m),
        Record::Conn {
            origin,
            client,
            server,
            midstream,
        } => writeln!(
            w,
            "Connection {}: client {client} → server {server} ({}packet {}){}\n",
            origin.conn.unwrap_or(0),
            if *midstream {
                "capture starts mid-connection, "
            } else {
                ""
            },
            origin.pkt.unwrap_or(0),
            if origin.file.is_empty() {
                String::new()
            } else {
                format!(" in {}", origin.file)
            }
        ),
        Record::Gap {
            origin,
            seq,
            len,
            reason,
        } => writeln!(
            w,
            "GAP: {}: {}\n",
            where_text(origin),
            gap_message(origin.offset, *seq, *len, *reason)
        ),
        Record::End { .. } => Ok(()),
        Record::FramingError {
            origin,
            len_word,
            header,
            error,
            hint,
        } => {
            writeln!(
                w,
                "FRAMING ERROR: {}: {error}; direction stopped",
                where_text(origin)
            )?;
            if let Some(l) = len_word {
                writeln!(w, "    Length: {l}")?;
            }
            if let Some(h) = header {
                text_header(w, h, core_procedure_name(h))?;
            }
            if let Some(hint) = hint {
                writeln!(w, "    Hint: {hint}")?;
            }
            writeln!(w)
        }
        Record::Incomplete {
            origin,
            have,
            len_word,
            why,
        } => {
            let of = len_word.map_or_else(String::new, |l| format!(" of {l}"));
            writeln!(
                w,
                "INCOMPLETE FRAME: {}: {have}{of} bytes, then {why}\n",
                where_text(origin)
            )
        }
        Record::Skipped {
            file,
            reason,
            count,
            first_pkt,
        } => writeln!(
            w,
            "{file}: {count} packet(s) skipped: {reason} (first: packet {first_pkt})"
        ),
        Record::CaptureError { file, error } => writeln!(w, "{file}: {error}"),
        Record::Summary { file, stats } => writeln!(
            w,
            "{file}: {} packets, {} connections, {} messages, {} failed to decode, {} gaps, \
             {} framing errors, {} incomplete frames",
            stats.packets,
            stats.connections,
            stats.messages,
            stats.failed,
            stats.gaps,
            stats.framing_errors,
            stats.incomplete
        ),
    }
}
