//! Text and JSON rendering of decoder [`Record`]s.
//!
//! JSON: one object per line. Every line has `"record"` (`"message"`, `"conn"`, `"gap"`, `"end"`,
//! `"framing_error"`, `"incomplete"`, `"skipped"`, `"capture_error"`, `"summary"`) and `"file"`.
//! Message lines have `conn`, `dir` (`"c2s"` / `"s2c"`, null for raw streams), `pkt`, `ts`, `offset`
//! (of the frame in its direction's byte stream), `len` (the length word), `prog`, `prog_name`, `vers`,
//! `proc`, `proc_name`, `type`, `type_name`, `serial`, `status`, `status_name`, `nfds` (null unless
//! `*_WITH_FDS`), `body_kind`, `body` and `error`.
//!
//! Values: strings are JSON strings when they are valid UTF-8, otherwise `{"hex": "…"}` (lossless);
//! opaque data is a hex string; absent optionals are null; 64-bit integers are exact JSON numbers;
//! floats that JSON cannot hold (NaN, ±inf) are the strings `"NaN"`, `"inf"`, `"-inf"`.
//! Bodies: the error struct by its `.x` field names; stream data as `{"len": N}`; a hole as
//! `{"length": N, "flags": F}`; empty bodies (keepalive, stream end/abort, void) as null; procedure
//! bodies not decoded by a schema as `{"hex": "…"}`.
//! `error` is null or `{"message", "category", "offset" (in the frame), "stream_offset", "path"}`.

use std::io::{self, Write};

use virtwire_protocol::schema::Value;
use virtwire_protocol::{Body, Error, ErrorBody, Header};

use crate::decode::{BodyOut, MessageRecord, Origin, Record};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// An indented tree per message, like `tshark -V -O libvirt`.
    Text,
    /// One JSON object per line.
    Json,
}

/// A [`crate::decode::Sink`] that writes records in a format.
pub struct Writer<W: Write> {
    out: W,
    format: Format,
}

impl<W: Write> Writer<W> {
    /// Write to `out` in `format`.
    pub fn new(out: W, format: Format) -> Self {
        Writer { out, format }
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

impl<W: Write> crate::decode::Sink for Writer<W> {
    fn record(&mut self, r: &Record<'_>) -> io::Result<()> {
        match self.format {
            Format::Text => text_record(&mut self.out, r),
            Format::Json => {
                json_record(&mut self.out, r)?;
                self.out.write_all(b"\n")
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Shared helpers

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[usize::from(b >> 4)] as char);
        s.push(D[usize::from(b & 15)] as char);
    }
    s
}

/// The `.x` type of a message's body: the procedure's struct, or the protocol's own for error and
/// hole bodies.
fn body_type_name<'a>(m: &MessageRecord<'a>) -> Option<&'a str> {
    match &m.body {
        BodyOut::Value { type_name, .. } => *type_name,
        BodyOut::Core(Body::Error(_)) => Some("virNetMessageError"),
        BodyOut::Core(Body::StreamHole(_)) => Some("virNetStreamHole"),
        _ => None,
    }
}

fn ts_string(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

// ------------------------------------------------------------------------------------------------
// JSON

fn js(w: &mut impl Write, s: &str) -> io::Result<()> {
    serde_json::to_writer(&mut *w, s).map_err(io::Error::other)
}

/// A string value: a JSON string when valid UTF-8, else `{"hex": "…"}`.
fn jbytes_str(w: &mut impl Write, b: &[u8]) -> io::Result<()> {
    match std::str::from_utf8(b) {
        Ok(s) => js(w, s),
        Err(_) => write!(w, "{{\"hex\":\"{}\"}}", hex(b)),
    }
}

fn jopt_str(w: &mut impl Write, b: Option<&[u8]>) -> io::Result<()> {
    match b {
        Some(b) => jbytes_str(w, b),
        None => w.write_all(b"null"),
    }
}

fn jopt<T: std::fmt::Display>(w: &mut impl Write, v: Option<T>) -> io::Result<()> {
    match v {
        Some(v) => write!(w, "{v}"),
        None => w.write_all(b"null"),
    }
}

fn jopt_name(w: &mut impl Write, v: Option<&str>) -> io::Result<()> {
    match v {
        Some(v) => js(w, v),
        None => w.write_all(b"null"),
    }
}

fn json_origin(w: &mut impl Write, kind: &str, o: &Origin<'_>) -> io::Result<()> {
    write!(w, "{{\"record\":\"{kind}\",\"file\":")?;
    js(w, o.file)?;
    w.write_all(b",\"pkt\":")?;
    jopt(w, o.pkt)?;
    w.write_all(b",\"ts\":")?;
    match o.ts_ns {
        Some(ns) => w.write_all(ts_string(ns).as_bytes())?,
        None => w.write_all(b"null")?,
    }
    w.write_all(b",\"conn\":")?;
    jopt(w, o.conn)?;
    w.write_all(b",\"dir\":")?;
    jopt_name(w, o.dir.map(|d| d.name()))?;
    write!(w, ",\"offset\":{}", o.offset)
}

fn json_error(w: &mut impl Write, e: &Error, frame_at: u64) -> io::Result<()> {
    w.write_all(b"{\"message\":")?;
    js(w, &e.to_string())?;
    write!(
        w,
        ",\"category\":\"{}\",\"offset\":{},\"stream_offset\":{},\"path\":",
        e.category().name(),
        e.offset(),
        frame_at.saturating_add(e.offset())
    )?;
    js(w, &e.path_string())?;
    w.write_all(b"}")
}

fn json_header_fields(w: &mut impl Write, h: &Header, proc_name: Option<&str>) -> io::Result<()> {
    write!(w, ",\"prog\":{},\"prog_name\":", h.prog)?;
    jopt_name(w, h.prog_name())?;
    write!(
        w,
        ",\"vers\":{},\"proc\":{},\"proc_name\":",
        h.vers, h.procedure
    )?;
    jopt_name(w, proc_name)?;
    write!(w, ",\"type\":{},\"type_name\":", h.msg_type.raw())?;
    jopt_name(w, h.msg_type.is_known().then(|| h.msg_type.name()))?;
    write!(
        w,
        ",\"serial\":{},\"status\":{},\"status_name\":",
        h.serial,
        h.status.raw()
    )?;
    jopt_name(w, h.status.is_known().then(|| h.status.name()))
}

/// The error struct (`virNetMessageError`) by its `.x` field names.
pub fn json_error_body(w: &mut impl Write, e: &ErrorBody<'_>) -> io::Result<()> {
    write!(
        w,
        "{{\"code\":{},\"domain\":{},\"message\":",
        e.code, e.domain
    )?;
    jopt_str(w, e.message)?;
    write!(w, ",\"level\":{},\"dom\":", e.level)?;
    match &e.dom {
        Some(d) => {
            w.write_all(b"{\"name\":")?;
            jbytes_str(w, d.name)?;
            write!(w, ",\"uuid\":\"{}\",\"id\":{}}}", hex(&d.uuid), d.id)?;
        }
        None => w.write_all(b"null")?,
    }
    for (name, v) in [("str1", e.str1), ("str2", e.str2), ("str3", e.str3)] {
        write!(w, ",\"{name}\":")?;
        jopt_str(w, v)?;
    }
    write!(w, ",\"int1\":{},\"int2\":{},\"net\":", e.int1, e.int2)?;
    match &e.net {
        Some(n) => {
            w.write_all(b"{\"name\":")?;
            jbytes_str(w, n.name)?;
            write!(w, ",\"uuid\":\"{}\"}}", hex(&n.uuid))?;
        }
        None => w.write_all(b"null")?,
    }
    w.write_all(b"}")
}

fn jfloat(w: &mut impl Write, v: f64) -> io::Result<()> {
    if v.is_nan() {
        w.write_all(b"\"NaN\"")
    } else if v.is_infinite() {
        w.write_all(if v > 0.0 { b"\"inf\"" } else { b"\"-inf\"" })
    } else {
        serde_json::to_writer(&mut *w, &v).map_err(io::Error::other)
    }
}

/// A schema value as JSON: structs as objects keyed by `.x` field names (in `.x` order), arrays as
/// arrays, absent optionals as null, opaque as a hex string, strings as strings (or `{"hex": …}` when
/// not UTF-8), enums as the member's name (the number when not a member), unions as
/// `{"discriminant": D, "<arm>": value}` (no arm key for a void arm), void as null.
pub fn json_value(w: &mut impl Write, v: &Value<'_>) -> io::Result<()> {
    match v {
        Value::Void => w.write_all(b"null"),
        Value::Int(i) => write!(w, "{i}"),
        Value::UInt(i) => write!(w, "{i}"),
        Value::Hyper(i) => write!(w, "{i}"),
        Value::UHyper(i) => write!(w, "{i}"),
        Value::Float(f) => jfloat(w, f64::from(*f)),
        Value::Double(f) => jfloat(w, *f),
        Value::Bool(b) => write!(w, "{b}"),
        Value::Enum { value, name } => match name {
            Some(n) => js(w, n),
            None => write!(w, "{value}"),
        },
        Value::String(b) => jbytes_str(w, b),
        Value::Opaque(b) => write!(w, "\"{}\"", hex(b)),
        Value::Array(items) => {
            w.write_all(b"[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                json_value(w, item)?;
            }
            w.write_all(b"]")
        }
        Value::Struct(fields) => {
            w.write_all(b"{")?;
            for (i, (name, item)) in fields.iter().enumerate() {
                if i > 0 {
                    w.write_all(b",")?;
                }
                js(w, name)?;
                w.write_all(b":")?;
                json_value(w, item)?;
            }
            w.write_all(b"}")
        }
        Value::Union {
            discriminant,
            arm,
            value,
        } => {
            w.write_all(b"{\"discriminant\":")?;
            json_value(w, discriminant)?;
            if let Some(arm) = arm {
                w.write_all(b",")?;
                js(w, arm)?;
                w.write_all(b":")?;
                json_value(w, value)?;
            }
            w.write_all(b"}")
        }
        Value::Optional(None) => w.write_all(b"null"),
        Value::Optional(Some(v)) => json_value(w, v),
        _ => w.write_all(b"null"),
    }
}

fn json_body(w: &mut impl Write, b: &BodyOut<'_>) -> io::Result<()> {
    match b {
        BodyOut::Value { value, .. } => json_value(w, value),
        BodyOut::Raw(p) => write!(w, "{{\"hex\":\"{}\"}}", hex(p)),
        BodyOut::Core(body) => match body {
            Body::Error(e) => json_error_body(w, e),
            Body::StreamData(d) => write!(w, "{{\"len\":{}}}", d.len()),
            Body::StreamHole(h) => write!(w, "{{\"length\":{},\"flags\":{}}}", h.length, h.flags),
            Body::Unexpected(p) | Body::Procedure { payload: p, .. } => {
                write!(w, "{{\"hex\":\"{}\"}}", hex(p))
            }
            _ => w.write_all(b"null"),
        },
    }
}

/// One message as a JSON object (no newline).
pub fn json_message(w: &mut impl Write, m: &MessageRecord<'_>) -> io::Result<()> {
    json_origin(w, "message", &m.origin)?;
    let h = &m.frame.header;
    write!(w, ",\"len\":{}", m.frame.len_word())?;
    json_header_fields(w, h, m.proc_name)?;
    w.write_all(b",\"nfds\":")?;
    jopt(w, m.frame.nfds)?;
    write!(w, ",\"body_kind\":\"{}\",\"body_type\":", m.kind.name())?;
    jopt_name(w, body_type_name(m))?;
    w.write_all(b",\"body\":")?;
    json_body(w, &m.body)?;
    w.write_all(b",\"error\":")?;
    match &m.error {
        Some(e) => json_error(w, e, m.origin.offset)?,
        None => w.write_all(b"null")?,
    }
    w.write_all(b"}")
}

fn json_record(w: &mut impl Write, r: &Record<'_>) -> io::Result<()> {
    match r {
        Record::Message(m) => json_message(w, m),
        Record::Conn {
            origin,
            client,
            server,
            midstream,
        } => {
            json_origin(w, "conn", origin)?;
            write!(
                w,
                ",\"client\":\"{client}\",\"server\":\"{server}\",\"midstream\":{midstream}}}"
            )
        }
        Record::Gap {
            origin,
            seq,
            len,
            reason,
        } => {
            json_origin(w, "gap", origin)?;
            write!(w, ",\"seq\":{seq},\"gap_len\":")?;
            jopt(w, *len)?;
            w.write_all(b",\"reason\":")?;
            js(w, reason.describe())?;
            w.write_all(b",\"message\":")?;
            js(w, &gap_message(origin, *seq, *len, reason.describe()))?;
            w.write_all(b"}")
        }
        Record::End { origin, reason } => {
            json_origin(w, "end", origin)?;
            write!(w, ",\"reason\":\"{}\"}}", reason.name())
        }
        Record::FramingError {
            origin,
            len_word,
            header,
            error,
            hint,
        } => {
            json_origin(w, "framing_error", origin)?;
            w.write_all(b",\"len\":")?;
            jopt(w, *len_word)?;
            if let Some(h) = header {
                json_header_fields(
                    w,
                    h,
                    crate::decode::core_procedure_name(h.prog, h.procedure),
                )?;
            }
            w.write_all(b",\"error\":")?;
            json_error(w, error, origin.offset)?;
            w.write_all(b",\"hint\":")?;
            jopt_name(w, *hint)?;
            w.write_all(b"}")
        }
        Record::Incomplete {
            origin,
            have,
            len_word,
            why,
        } => {
            json_origin(w, "incomplete", origin)?;
            write!(w, ",\"have\":{have},\"len\":")?;
            jopt(w, *len_word)?;
            w.write_all(b",\"why\":")?;
            js(w, why)?;
            w.write_all(b"}")
        }
        Record::Skipped {
            file,
            reason,
            count,
            first_pkt,
        } => {
            w.write_all(b"{\"record\":\"skipped\",\"file\":")?;
            js(w, file)?;
            w.write_all(b",\"reason\":")?;
            js(w, reason)?;
            write!(w, ",\"count\":{count},\"first_pkt\":{first_pkt}}}")
        }
        Record::CaptureError { file, error } => {
            w.write_all(b"{\"record\":\"capture_error\",\"file\":")?;
            js(w, file)?;
            write!(w, ",\"offset\":{},\"message\":", error.offset)?;
            js(w, &error.to_string())?;
            w.write_all(b"}")
        }
        Record::Summary { file, stats } => {
            w.write_all(b"{\"record\":\"summary\",\"file\":")?;
            js(w, file)?;
            write!(
                w,
                ",\"packets\":{},\"connections\":{},\"messages\":{},\"failed\":{},\"gaps\":{},\
                 \"framing_errors\":{},\"incomplete\":{},\"skipped\":{},\"capture_error\":{}}}",
                stats.packets,
                stats.connections,
                stats.messages,
                stats.failed,
                stats.gaps,
                stats.framing_errors,
                stats.incomplete,
                stats.skipped,
                stats.capture_error
            )
        }
    }
}

fn gap_message(o: &Origin<'_>, seq: u32, len: Option<u64>, why: &str) -> String {
    let n = match len {
        Some(n) => format!("{n} bytes"),
        None => "unknown length".into(),
    };
    format!(
        "gap of {n} at seq {seq} (stream offset {}), direction stopped: {why}",
        o.offset
    )
}

// ------------------------------------------------------------------------------------------------
// Text

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
    match &m.body {
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

fn text_record(w: &mut impl Write, r: &Record<'_>) -> io::Result<()> {
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
            gap_message(origin, *seq, *len, reason.describe())
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
                text_header(
                    w,
                    h,
                    crate::decode::core_procedure_name(h.prog, h.procedure),
                )?;
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
