//! The differential oracle's data model: what libvirt's own decoder made of a frame
//! ([`LibvirtVerdict`]), the value trees both sides map their bodies to ([`OValue`]), and the
//! oracle's interface ([`LibvirtOracle`], implemented over FFI by the crate `fuzz/libvirt-oracle`).

use crate::body::{ErrorBody, StreamHole};
use crate::header::Header;
use crate::schema::Value;

/// An owned value tree that both libvirt's C structs and our decoders map to, for comparison.
///
/// Mapping: `int`/`hyper`/enum/bool → `I`; `unsigned`/`unsigned hyper` → `U`; `double` → `D` (bits);
/// string → `Str`; opaque → `Bytes`; optional → `Opt`; array → `List`; struct → `Rec` (fields in order);
/// union → `Rec([discriminant, arm])` (`Rec([discriminant])` for a void arm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OValue {
    /// Signed integer.
    I(i64),
    /// Unsigned integer.
    U(u64),
    /// A double's bits.
    D(u64),
    /// A string's bytes (`string<>`, `remote_nonnull_string`, …).
    Str(Vec<u8>),
    /// Opaque bytes (`opaque[N]`, `opaque<N>`: UUIDs, cpumaps, …).
    Bytes(Vec<u8>),
    /// Optional.
    Opt(Option<Box<OValue>>),
    /// Array.
    List(Vec<OValue>),
    /// Struct or union.
    Rec(Vec<OValue>),
}

impl OValue {
    /// Strings as libvirt's C code sees them: cut at the first NUL (`xdr_string` keeps the bytes, but
    /// every consumer reads a C string). Opaque bytes (UUIDs…) are kept whole: a NUL is data there.
    /// Applied to both sides before comparing.
    pub fn c_strings(self) -> OValue {
        match self {
            OValue::Str(mut b) => {
                if let Some(n) = b.iter().position(|&c| c == 0) {
                    b.truncate(n);
                }
                OValue::Str(b)
            }
            OValue::Opt(o) => OValue::Opt(o.map(|v| Box::new(v.c_strings()))),
            OValue::List(v) => OValue::List(v.into_iter().map(OValue::c_strings).collect()),
            OValue::Rec(v) => OValue::Rec(v.into_iter().map(OValue::c_strings).collect()),
            v => v,
        }
    }

    /// The error body as an `OValue`.
    pub fn from_error(e: &ErrorBody<'_>) -> OValue {
        let s = |b: Option<&[u8]>| OValue::Opt(b.map(|b| Box::new(OValue::Str(b.to_vec()))));
        OValue::Rec(vec![
            OValue::I(e.code as i64),
            OValue::I(e.domain as i64),
            s(e.message),
            OValue::I(e.level as i64),
            OValue::Opt(e.dom.map(|d| {
                Box::new(OValue::Rec(vec![
                    OValue::Str(d.name.to_vec()),
                    OValue::Bytes(d.uuid.to_vec()),
                    OValue::I(d.id as i64),
                ]))
            })),
            s(e.str1),
            s(e.str2),
            s(e.str3),
            OValue::I(e.int1 as i64),
            OValue::I(e.int2 as i64),
            OValue::Opt(e.net.map(|n| {
                Box::new(OValue::Rec(vec![
                    OValue::Str(n.name.to_vec()),
                    OValue::Bytes(n.uuid.to_vec()),
                ]))
            })),
        ])
    }

    /// A schema value as an `OValue` (the mapping in the type's docs).
    pub fn from_value(v: &Value<'_>) -> OValue {
        match v {
            Value::Void => OValue::Rec(Vec::new()),
            Value::Int(i) => OValue::I(*i as i64),
            Value::UInt(u) => OValue::U(*u as u64),
            Value::Hyper(i) => OValue::I(*i),
            Value::UHyper(u) => OValue::U(*u),
            Value::Float(f) => OValue::D((*f as f64).to_bits()),
            Value::Double(d) => OValue::D(d.to_bits()),
            Value::Bool(b) => OValue::I(*b as i64),
            Value::Enum { value, .. } => OValue::I(*value as i64),
            Value::String(b) => OValue::Str(b.to_vec()),
            Value::Opaque(b) => OValue::Bytes(b.to_vec()),
            Value::Array(items) => OValue::List(items.iter().map(OValue::from_value).collect()),
            Value::Struct(fields) => {
                OValue::Rec(fields.iter().map(|(_, v)| OValue::from_value(v)).collect())
            }
            Value::Union {
                discriminant,
                value,
                ..
            } => match value.as_ref() {
                Value::Void => OValue::Rec(vec![OValue::from_value(discriminant)]),
                v => OValue::Rec(vec![
                    OValue::from_value(discriminant),
                    OValue::from_value(v),
                ]),
            },
            Value::Optional(o) => OValue::Opt(o.as_ref().map(|v| Box::new(OValue::from_value(v)))),
        }
    }

    /// A hole as an `OValue`.
    pub fn from_hole(h: &StreamHole) -> OValue {
        OValue::Rec(vec![OValue::I(h.length), OValue::U(h.flags as u64)])
    }
}

/// What libvirt's own decoder made of a frame: the one verdict type of the differential target,
/// produced by the oracle crate (`virNetMessageDecodeLength`, `…DecodeHeader`, `…DecodeNumFDs`,
/// `…DecodePayload` from libvirt.so) and judged by [`differential_libvirt`](super::differential_libvirt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LibvirtVerdict {
    /// `virNetMessageDecodeLength` failed.
    LengthRejected,
    /// The length word is fine but the input holds fewer bytes than it says.
    Incomplete,
    /// `virNetMessageDecodeHeader` failed.
    HeaderRejected,
    /// `virNetMessageDecodeNumFDs` failed (only called for `*_WITH_FDS`).
    FdsRejected,
    /// Header (and FD count) decoded; `body` is `None` when the oracle does not decode this body.
    Frame {
        /// The header.
        header: Header,
        /// The FD count of `*_WITH_FDS` frames.
        nfds: Option<u32>,
        /// What `virNetMessageDecodePayload` made of the body, if the oracle decodes this kind.
        body: Option<TheirBody>,
    },
}

/// libvirt's verdict on a body: which filter judged it, and what it made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TheirBody {
    /// The `xdr_*` filter libvirt decoded the body with, without the prefix (`virNetMessageError`,
    /// `virNetStreamHole`, `remote_connect_open_args`, …).
    pub filter: &'static str,
    /// What the filter made of it.
    pub verdict: BodyVerdict,
}

/// What a libvirt filter made of a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyVerdict {
    /// The filter failed.
    Rejected,
    /// The filter succeeded; its value is not mapped (accept/reject only: the oracle maps the values
    /// of a few structs, or was asked for verdicts only).
    Accepted,
    /// The filter succeeded, with the value it decoded.
    Value(OValue),
}

impl BodyVerdict {
    /// True unless the filter failed.
    pub fn accepted(&self) -> bool {
        !matches!(self, BodyVerdict::Rejected)
    }
}

/// What [`differential_libvirt`](super::differential_libvirt) compared for one input (both sides
/// agreed on all of it, or the harness panicked): the stage both stopped at, and for a body how
/// far the comparison reached. The corpus replay asserts on it, so a mapping that silently stops
/// matching fails there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compared {
    /// Both rejected the length word.
    LengthRejected,
    /// Both found fewer bytes than the length word says.
    Incomplete,
    /// Both rejected the header.
    HeaderRejected,
    /// Both rejected the FD count.
    FdsRejected,
    /// The same header (and FD count); libvirt's oracle does not decode this body.
    Header,
    /// The same header (and FD count), and the body through libvirt's filter `xdr_<filter>`.
    Body {
        /// The filter, without the `xdr_` prefix.
        filter: &'static str,
        /// How far the body comparison reached.
        reached: BodyCompared,
    },
}

/// How far a body comparison reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyCompared {
    /// Both rejected the body.
    Rejected,
    /// Both accepted it; libvirt's value is not mapped, so only the verdicts were compared.
    Accepted,
    /// Both accepted it, and the values were compared and equal.
    Value,
}

impl Compared {
    /// `Some` when a body was compared: how far.
    pub fn body(&self) -> Option<BodyCompared> {
        match self {
            Compared::Body { reached, .. } => Some(*reached),
            _ => None,
        }
    }
}

/// libvirt's decoder, seen from the harness (implemented over FFI by `fuzz/libvirt-oracle`).
pub trait LibvirtOracle {
    /// Decode one frame (the input may be shorter or longer than its length word).
    fn decode(&self, frame: &[u8]) -> LibvirtVerdict;
}
