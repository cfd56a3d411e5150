//! How protocol values look in JSON: serde adapters for the header, bodies, schema values and errors
//! of `virtwire_protocol`, used by the record model ([`super::record`]).
//!
//! - Strings are JSON strings when valid UTF-8, otherwise `{"hex": "…"}` (lossless).
//! - Opaque data is a lowercase hex string; 64-bit integers are exact JSON numbers.
//! - Floats JSON cannot hold are the strings `"NaN"`, `"inf"`, `"-inf"`.
//! - Structs are objects keyed by their `.x` field names in `.x` order; absent optionals and void are
//!   null; enums are the member's name (the number when not a member); unions are
//!   `{"discriminant": D, "<arm>": value}` with no arm key for a void arm.
//! - The error struct uses `virNetMessageError`'s field names; stream data is `{"len": N}`; a hole is
//!   `{"length": N, "flags": F}`; bodies not decoded are `{"hex": "…"}`.

use std::fmt::{self, Write as _};

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::value::RawValue;
use virtwire_protocol::schema::{Item, ItemKind, Value};
use virtwire_protocol::{Body, Error, ErrorBody, Header};

use super::record::BodyOut;

/// Bytes as lowercase hex, written without an intermediate `String`.
#[derive(Clone, Copy, Debug)]
pub struct Hex<'a>(pub &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const D: &[u8; 16] = b"0123456789abcdef";
        let mut buf = [0u8; 128];
        for chunk in self.0.chunks(buf.len() / 2) {
            for (i, b) in chunk.iter().enumerate() {
                buf[2 * i] = D[usize::from(b >> 4)];
                buf[2 * i + 1] = D[usize::from(b & 15)];
            }
            // Only ASCII hex digits were written.
            f.write_str(std::str::from_utf8(&buf[..2 * chunk.len()]).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

/// Lowercase hex as a `String`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    let _ = write!(s, "{}", Hex(bytes));
    s
}

/// Anything `Display` as a JSON string.
pub(crate) struct Displayed<'r, T: fmt::Display>(pub &'r T);

impl<T: fmt::Display> Serialize for Displayed<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// A capture timestamp as a JSON number of seconds with nine decimals (exact, not a float).
pub(crate) fn ts_raw(ns: u64) -> Box<RawValue> {
    let text = format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000);
    // Digits, a dot and digits are always a valid JSON number.
    RawValue::from_string(text).unwrap_or_else(|_| Box::<RawValue>::default())
}

/// A string value: a JSON string when valid UTF-8, else `{"hex": "…"}`.
struct BytesStr<'a>(&'a [u8]);

impl Serialize for BytesStr<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => HexObject(self.0).serialize(s),
        }
    }
}

/// `{"hex": "…"}`.
struct HexObject<'a>(&'a [u8]);

impl Serialize for HexObject<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(1))?;
        m.serialize_entry("hex", &Displayed(&Hex(self.0)))?;
        m.end()
    }
}

/// A float, with NaN and the infinities as strings.
fn float<S: Serializer>(s: S, v: f64) -> Result<S::Ok, S::Error> {
    if v.is_nan() {
        s.serialize_str("NaN")
    } else if v.is_infinite() {
        s.serialize_str(if v > 0.0 { "inf" } else { "-inf" })
    } else {
        s.serialize_f64(v)
    }
}

/// A schema value (see the module docs for the mapping).
#[derive(Clone, Copy, Debug)]
pub struct ValueJson<'r, 'a>(pub &'r Value<'a>);

impl Serialize for ValueJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Void | Value::Optional(None) => s.serialize_unit(),
            Value::Int(i) => s.serialize_i32(*i),
            Value::UInt(i) => s.serialize_u32(*i),
            Value::Hyper(i) => s.serialize_i64(*i),
            Value::UHyper(i) => s.serialize_u64(*i),
            Value::Float(f) => float(s, f64::from(*f)),
            Value::Double(f) => float(s, *f),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Enum { value, name } => match name {
                Some(n) => s.serialize_str(n),
                None => s.serialize_i32(*value),
            },
            Value::String(b) => BytesStr(b).serialize(s),
            Value::Opaque(b) => s.collect_str(&Hex(b)),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&ValueJson(item))?;
                }
                seq.end()
            }
            Value::Struct(fields) => {
                let mut m = s.serialize_map(Some(fields.len()))?;
                for (name, item) in fields {
                    m.serialize_entry(name, &ValueJson(item))?;
                }
                m.end()
            }
            Value::Union {
                discriminant,
                arm,
                value,
            } => {
                let mut m = s.serialize_map(Some(1 + usize::from(arm.is_some())))?;
                m.serialize_entry("discriminant", &ValueJson(discriminant))?;
                if let Some(arm) = arm {
                    m.serialize_entry(arm, &ValueJson(value))?;
                }
                m.end()
            }
            Value::Optional(Some(v)) => ValueJson(v).serialize(s),
            _ => s.serialize_unit(),
        }
    }
}

/// A value on a tape, in exactly [`ValueJson`]'s JSON (written straight from the tape, no tree).
#[derive(Clone, Copy, Debug)]
pub struct ItemJson<'t, 'a>(pub Item<'t, 'a>);

impl Serialize for ItemJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.get() {
            ItemKind::Void | ItemKind::Optional(None) => s.serialize_unit(),
            ItemKind::Int(i) => s.serialize_i32(i),
            ItemKind::UInt(i) => s.serialize_u32(i),
            ItemKind::Hyper(i) => s.serialize_i64(i),
            ItemKind::UHyper(i) => s.serialize_u64(i),
            ItemKind::Float(f) => float(s, f64::from(f)),
            ItemKind::Double(f) => float(s, f),
            ItemKind::Bool(b) => s.serialize_bool(b),
            ItemKind::Enum { value, name } => match name {
                Some(n) => s.serialize_str(n),
                None => s.serialize_i32(value),
            },
            ItemKind::String(b) => BytesStr(b).serialize(s),
            ItemKind::Opaque(b) => s.collect_str(&Hex(b)),
            ItemKind::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&ItemJson(item))?;
                }
                seq.end()
            }
            ItemKind::Struct(fields) => {
                let mut m = s.serialize_map(Some(fields.len()))?;
                for (name, item) in fields {
                    m.serialize_entry(name, &ItemJson(item))?;
                }
                m.end()
            }
            ItemKind::Union {
                discriminant,
                arm,
                value,
            } => {
                let mut m = s.serialize_map(Some(1 + usize::from(arm.is_some())))?;
                m.serialize_entry("discriminant", &ItemJson(discriminant))?;
                if let Some(arm) = arm {
                    m.serialize_entry(arm, &ItemJson(value))?;
                }
                m.end()
            }
            ItemKind::Optional(Some(v)) => ItemJson(v).serialize(s),
            _ => s.serialize_unit(),
        }
    }
}

/// The error struct (`virNetMessageError`) by its `.x` field names.
#[derive(Clone, Copy, Debug)]
pub struct ErrorBodyJson<'r, 'a>(pub &'r ErrorBody<'a>);

impl Serialize for ErrorBodyJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Named<'a> {
            name: BytesStr<'a>,
            uuid: Displayed<'a, Hex<'a>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            id: Option<i32>,
        }
        let e = self.0;
        fn opt(b: Option<&[u8]>) -> Option<BytesStr<'_>> {
            b.map(BytesStr)
        }
        let dom_uuid = e.dom.as_ref().map(|d| Hex(&d.uuid));
        let net_uuid = e.net.as_ref().map(|n| Hex(&n.uuid));
        let mut m = s.serialize_map(Some(11))?;
        m.serialize_entry("code", &e.code)?;
        m.serialize_entry("domain", &e.domain)?;
        m.serialize_entry("message", &opt(e.message))?;
        m.serialize_entry("level", &e.level)?;
        let dom = e.dom.as_ref().zip(dom_uuid.as_ref()).map(|(d, u)| Named {
            name: BytesStr(d.name),
            uuid: Displayed(u),
            id: Some(d.id),
        });
        m.serialize_entry("dom", &dom)?;
        m.serialize_entry("str1", &opt(e.str1))?;
        m.serialize_entry("str2", &opt(e.str2))?;
        m.serialize_entry("str3", &opt(e.str3))?;
        m.serialize_entry("int1", &e.int1)?;
        m.serialize_entry("int2", &e.int2)?;
        let net = e.net.as_ref().zip(net_uuid.as_ref()).map(|(n, u)| Named {
            name: BytesStr(n.name),
            uuid: Displayed(u),
            id: None,
        });
        m.serialize_entry("net", &net)?;
        m.end()
    }
}

/// A message body as far as it was decoded.
pub(crate) struct BodyJson<'r, 'a>(pub &'r BodyOut<'a>);

impl Serialize for BodyJson<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            BodyOut::Value { value, .. } => ValueJson(value).serialize(s),
            BodyOut::Tape { tape, .. } => ItemJson(tape.root()).serialize(s),
            BodyOut::Raw(p) => HexObject(p).serialize(s),
            BodyOut::Core(body) => match body {
                Body::Error(e) => ErrorBodyJson(e).serialize(s),
                Body::StreamData(d) => {
                    let mut m = s.serialize_map(Some(1))?;
                    m.serialize_entry("len", &d.len())?;
                    m.end()
                }
                Body::StreamHole(h) => {
                    let mut m = s.serialize_map(Some(2))?;
                    m.serialize_entry("length", &h.length)?;
                    m.serialize_entry("flags", &h.flags)?;
                    m.end()
                }
                Body::Unexpected(p) | Body::Procedure { payload: p, .. } => {
                    HexObject(p).serialize(s)
                }
                _ => s.serialize_unit(),
            },
        }
    }
}

/// A decode error: `{"message", "category", "offset" (in the frame), "stream_offset", "path"}`.
pub(crate) struct ErrorJson<'r> {
    /// The error, its offset counted from the frame's first byte.
    pub error: &'r Error,
    /// Stream offset of the frame's first byte.
    pub frame_at: u64,
}

impl Serialize for ErrorJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let e = self.error;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("message", &Displayed(e))?;
        m.serialize_entry("category", e.category().name())?;
        m.serialize_entry("offset", &e.offset())?;
        m.serialize_entry("stream_offset", &self.frame_at.saturating_add(e.offset()))?;
        m.serialize_entry("path", &e.path_string())?;
        m.end()
    }
}

/// The header's fields as map entries: `prog`, `prog_name`, `vers`, `proc`, `proc_name`, `type`,
/// `type_name`, `serial`, `status`, `status_name` (names null when not known).
pub(crate) struct HeaderJson<'r> {
    header: &'r Header,
    proc_name: Option<&'r str>,
}

impl<'r> HeaderJson<'r> {
    pub(crate) fn new(header: &'r Header, proc_name: Option<&'r str>) -> Self {
        HeaderJson { header, proc_name }
    }

    pub(crate) fn entries<M: SerializeMap>(&self, m: &mut M) -> Result<(), M::Error> {
        let h = self.header;
        m.serialize_entry("prog", &h.prog)?;
        m.serialize_entry("prog_name", &h.prog_name())?;
        m.serialize_entry("vers", &h.vers)?;
        m.serialize_entry("proc", &h.procedure)?;
        m.serialize_entry("proc_name", &self.proc_name)?;
        m.serialize_entry("type", &h.msg_type.raw())?;
        m.serialize_entry(
            "type_name",
            &h.msg_type.is_known().then(|| h.msg_type.name()),
        )?;
        m.serialize_entry("serial", &h.serial)?;
        m.serialize_entry("status", &h.status.raw())?;
        m.serialize_entry("status_name", &h.status.is_known().then(|| h.status.name()))
    }
}

/// Tape values written straight into a buffer: the same text, byte for byte, as [`ItemJson`]
/// through `serde_json` (compact), which stays the reference (tests compare the two on every
/// committed capture and on values built to reach every branch). `decode --format json` spends most
/// of its time here on a big reply: serde_json writes each key and string through its escaper and
/// each piece through `io::Write`; here a string with nothing to escape is one copy, and only
/// strings that need escaping (or floats) go through serde_json.
///
/// `spill` takes what is written so far whenever more than [`SPILL`] bytes are waiting (between
/// array elements), so a big body's JSON is never held whole: memory stays bounded by the frame.
pub(crate) fn write_item(
    out: &mut Vec<u8>,
    item: Item<'_, '_>,
    spill: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> serde_json::Result<()> {
    write_item_in(out, item, &mut Names::new(), spill)
}

/// Bytes of JSON a record holds before handing them on.
pub(crate) const SPILL: usize = 64 * 1024;

fn write_item_in(
    out: &mut Vec<u8>,
    item: Item<'_, '_>,
    names: &mut Names,
    spill: &mut dyn FnMut(&[u8]) -> std::io::Result<()>,
) -> serde_json::Result<()> {
    match item.get() {
        ItemKind::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        ItemKind::UInt(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        ItemKind::Hyper(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        ItemKind::UHyper(i) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        ItemKind::Float(f) => float(&mut serde_json::Serializer::new(&mut *out), f64::from(f))?,
        ItemKind::Double(f) => float(&mut serde_json::Serializer::new(&mut *out), f)?,
        ItemKind::Bool(b) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        ItemKind::Enum { value, name } => match name {
            Some(n) => names.write(out, n)?,
            None => out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes()),
        },
        ItemKind::String(b) => match std::str::from_utf8(b) {
            Ok(text) => write_str(out, text)?,
            Err(_) => serde_json::to_writer(&mut *out, &HexObject(b))?,
        },
        ItemKind::Opaque(b) => {
            out.push(b'"');
            write_hex(out, b);
            out.push(b'"');
        }
        ItemKind::Array(items) => {
            out.push(b'[');
            for (i, v) in items.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_item_in(out, v, names, spill)?;
                if out.len() > SPILL {
                    spill(out).map_err(serde_json::Error::io)?;
                    out.clear();
                }
            }
            out.push(b']');
        }
        ItemKind::Struct(fields) => {
            out.push(b'{');
            for (i, (name, v)) in fields.enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                names.write(out, name)?;
                out.push(b':');
                write_item_in(out, v, names, spill)?;
            }
            out.push(b'}');
        }
        ItemKind::Union {
            discriminant,
            arm,
            value,
        } => {
            out.extend_from_slice(b"{\"discriminant\":");
            write_item_in(out, discriminant, names, spill)?;
            if let Some(arm) = arm {
                out.push(b',');
                names.write(out, arm)?;
                out.push(b':');
                write_item_in(out, value, names, spill)?;
            }
            out.push(b'}');
        }
        ItemKind::Optional(Some(v)) => write_item_in(out, v, names, spill)?,
        _ => out.extend_from_slice(b"null"),
    }
    Ok(())
}

/// Names from the schema (field, arm and enum-member names: the same few hundred strings, at the
/// same addresses, for the whole record) known to need no escaping, by address and length, so each
/// is scanned once per record rather than once per use. Only for strings borrowed from the schema:
/// payload bytes at a reused address may differ.
struct Names {
    slots: [(usize, usize); 128],
}

impl Names {
    fn new() -> Self {
        Names {
            slots: [(0, 0); 128],
        }
    }

    #[inline]
    fn write(&mut self, out: &mut Vec<u8>, name: &str) -> serde_json::Result<()> {
        let key = (name.as_ptr() as usize, name.len());
        let slot = &mut self.slots[(key.0 >> 2 ^ key.1) & 127];
        if *slot == key {
            out.reserve(name.len() + 2);
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.push(b'"');
            return Ok(());
        }
        if !needs_escape(name.as_bytes()) {
            *slot = key;
        }
        write_str(out, name)
    }
}

/// A JSON string: copied when nothing in it needs escaping, else serde_json's escaping.
fn write_str(out: &mut Vec<u8>, s: &str) -> serde_json::Result<()> {
    if !needs_escape(s.as_bytes()) {
        out.reserve(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        Ok(())
    } else {
        serde_json::to_writer(&mut *out, s)
    }
}

/// True when a byte of `s` is one JSON escapes (a control character, `"` or `\\`); 16 bytes at a
/// time, without an early exit inside a block, so the compiler tests them together.
fn needs_escape(s: &[u8]) -> bool {
    let bad = |b: u8| b < 0x20 || b == b'"' || b == b'\\';
    let mut blocks = s.chunks_exact(16);
    for block in &mut blocks {
        if block.iter().fold(false, |acc, &b| acc | bad(b)) {
            return true;
        }
    }
    blocks.remainder().iter().any(|&b| bad(b))
}

fn write_hex(out: &mut Vec<u8>, b: &[u8]) {
    const D: &[u8; 16] = b"0123456789abcdef";
    out.reserve(2 * b.len());
    for &x in b {
        out.push(D[usize::from(x >> 4)]);
        out.push(D[usize::from(x & 15)]);
    }
}

#[cfg(test)]
mod tests {
    use virtwire_protocol::schema::{Schema, TapeBuf, Value};
    use virtwire_protocol::{Compat, Limits};

    use super::{ItemJson, ValueJson, write_item};

    const X: &str = "
        enum e { A = 1, B = 2 };
        struct inner { int i; };
        union u switch (int d) { case 1: string s<>; case 2: void; default: double x; };
        struct t {
            string s<>; string bad<>; string long_esc<>; opaque o<>; opaque f[3];
            float fl; double db; double nan; double inf; double ninf; bool b; e en; e unknown;
            hyper h; unsigned hyper uh; unsigned int ui;
            inner *opt; inner *none; u arms<>;
        };";

    /// The tape writer against serde_json over the same tape and over the value tree, on values
    /// that reach every branch: escapes (early, and after the first 16 bytes), invalid UTF-8, NaN and
    /// the infinities, an enum value no member names, optionals, every union arm.
    #[test]
    fn tape_writer_matches_serde_json_on_every_kind_of_value() {
        let s = Schema::from_sources(&[("t.x", X)]).unwrap();
        let ty = s.type_id("t").unwrap();
        let inner = |i| Value::Struct(vec![("i", Value::Int(i))]);
        let arm = |d: i32, a: Option<&'static str>, v: Value<'static>| Value::Union {
            discriminant: Box::new(Value::Int(d)),
            arm: a,
            value: Box::new(v),
        };
        let v = Value::Struct(vec![
            (
                "s",
                Value::String(b"tab\there \"quoted\" back\\slash \x01 \xc3\xa9"),
            ),
            ("bad", Value::String(&[0x66, 0xff, 0xfe])),
            ("long_esc", Value::String(b"0123456789abcdefghij\"klm")),
            ("o", Value::Opaque(&[0, 1, 0xab, 0xff])),
            ("f", Value::Opaque(&[9, 8, 7])),
            ("fl", Value::Float(0.1)),
            ("db", Value::Double(-1.5e300)),
            ("nan", Value::Double(f64::NAN)),
            ("inf", Value::Double(f64::INFINITY)),
            ("ninf", Value::Double(f64::NEG_INFINITY)),
            ("b", Value::Bool(true)),
            (
                "en",
                Value::Enum {
                    value: 2,
                    name: Some("B"),
                },
            ),
            (
                "unknown",
                Value::Enum {
                    value: 1,
                    name: Some("A"),
                },
            ),
            ("h", Value::Hyper(i64::MIN)),
            ("uh", Value::UHyper(u64::MAX)),
            ("ui", Value::UInt(u32::MAX)),
            ("opt", Value::Optional(Some(Box::new(inner(-7))))),
            ("none", Value::Optional(None)),
            (
                "arms",
                Value::Array(vec![
                    arm(1, Some("s"), Value::String(b"x")),
                    arm(2, None, Value::Void),
                    arm(9, Some("x"), Value::Double(2.0)),
                ]),
            ),
        ]);
        let l = Limits::default();
        let mut bytes = Vec::new();
        s.encode_type(ty, &v, &mut bytes, &l).unwrap();
        // `unknown` (after s, bad, long_esc, o, f, fl, db, nan, inf, ninf, b, en) becomes 77, which
        // no member names: libvirt mode decodes it as a number.
        let word = |b: &[u8]| 4 + b.len().div_ceil(4) * 4;
        let at = word(b"tab\there \"quoted\" back\\slash \x01 \xc3\xa9")
            + word(&[0x66, 0xff, 0xfe])
            + word(b"0123456789abcdefghij\"klm")
            + word(&[0, 1, 0xab, 0xff])
            + 4
            + 4
            + 8 * 4
            + 4
            + 4;
        assert_eq!(&bytes[at..at + 4], &1i32.to_be_bytes());
        bytes[at..at + 4].copy_from_slice(&77i32.to_be_bytes());

        let tape = s
            .decode_type_tape(ty, &bytes, 0, &l, Compat::Libvirt, TapeBuf::new())
            .unwrap();
        let tree = s.decode_type(ty, &bytes, 0, &l, Compat::Libvirt).unwrap();
        let mut fast = Vec::new();
        write_item(&mut fast, tape.root(), &mut |_| {
            unreachable!("a small value")
        })
        .unwrap();
        let fast = String::from_utf8(fast).unwrap();
        assert_eq!(fast, serde_json::to_string(&ItemJson(tape.root())).unwrap());
        assert_eq!(fast, serde_json::to_string(&ValueJson(&tree)).unwrap());
        // What the branches wrote (so a change to the mapping shows here too).
        for part in [
            r#""s":"tab\there \"quoted\" back\\slash \u0001 é""#,
            r#""bad":{"hex":"66fffe"}"#,
            r#""long_esc":"0123456789abcdefghij\"klm""#,
            r#""o":"0001abff","f":"090807""#,
            r#""nan":"NaN","inf":"inf","ninf":"-inf","b":true,"en":"B","unknown":77"#,
            r#""uh":18446744073709551615"#,
            r#""opt":{"i":-7},"none":null"#,
            r#""arms":[{"discriminant":1,"s":"x"},{"discriminant":2},{"discriminant":9,"x":2.0}]"#,
        ] {
            assert!(fast.contains(part), "{part} not in {fast}");
        }
    }
}
