//! The value tree the schema codec decodes into and encodes from.

use std::fmt;

/// A decoded XDR value. Strings, opaque data and names borrow from the payload and the schema.
///
/// rpcgen's 4-byte `char`/`short` are carried in [`Value::Int`] (signed) and [`Value::UInt`]
/// (unsigned); the schema knows their declared C type and range-checks them in strict mode.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value<'a> {
    /// No data (a void body or a void union arm).
    Void,
    /// `int`, `char`, `short`.
    Int(i32),
    /// `unsigned int`, `unsigned char`, `unsigned short`.
    UInt(u32),
    /// `hyper`.
    Hyper(i64),
    /// `unsigned hyper`.
    UHyper(u64),
    /// `float`.
    Float(f32),
    /// `double`.
    Double(f64),
    /// `bool`.
    Bool(bool),
    /// An enum value and, if it is a member, the member's name.
    Enum {
        /// The value on the wire.
        value: i32,
        /// The member's name (`None` for a non-member accepted in libvirt mode).
        name: Option<&'a str>,
    },
    /// `string<N>`: raw bytes (libvirt checks neither UTF-8 nor NUL bytes).
    String(&'a [u8]),
    /// `opaque[N]` / `opaque<N>`.
    Opaque(&'a [u8]),
    /// `T x[N]` and `T x<N>`.
    Array(Vec<Value<'a>>),
    /// A struct: fields in `.x` order, keyed by their `.x` names.
    Struct(Vec<(&'a str, Value<'a>)>),
    /// A union.
    Union {
        /// The discriminant (`Int`, `UInt`, `Bool` or `Enum`, as declared).
        discriminant: Box<Value<'a>>,
        /// The selected arm's field name; `None` for a void arm.
        arm: Option<&'a str>,
        /// The arm's value ([`Value::Void`] for a void arm).
        value: Box<Value<'a>>,
    },
    /// `T *x`.
    Optional(Option<Box<Value<'a>>>),
}

impl<'a> Value<'a> {
    /// A struct field by name.
    pub fn field(&self, name: &str) -> Option<&Value<'a>> {
        match self {
            Value::Struct(fields) => fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follow a path of field names and `[i]` indices: `"retStats[0].params[3].value"`.
    /// Union arms are entered by their arm name (`value.s`); optionals are entered transparently.
    pub fn at(&self, path: &str) -> Option<&Value<'a>> {
        let mut cur = self;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (name, indices) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                cur = cur.unwrap_optional();
                cur = match cur {
                    Value::Struct(_) => cur.field(name)?,
                    Value::Union { arm, value, .. } if *arm == Some(name) => value,
                    _ => return None,
                };
            }
            for idx in indices.split('[').filter(|s| !s.is_empty()) {
                let i: usize = idx.strip_suffix(']')?.parse().ok()?;
                match cur.unwrap_optional() {
                    Value::Array(items) => cur = items.get(i)?,
                    _ => return None,
                }
            }
        }
        Some(cur)
    }

    fn unwrap_optional(&self) -> &Value<'a> {
        let mut cur = self;
        while let Value::Optional(Some(v)) = cur {
            cur = v;
        }
        cur
    }

    /// The bytes of a `String` or `Opaque` (also inside a present optional).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.unwrap_optional() {
            Value::String(b) | Value::Opaque(b) => Some(b),
            _ => None,
        }
    }

    /// A `String` as UTF-8 text, if it is (also inside a present optional).
    pub fn as_str(&self) -> Option<&'a str> {
        match self.unwrap_optional() {
            Value::String(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Any integer-like value (`Int`, `UInt`, `Hyper`, `UHyper`, `Bool`, `Enum`) widened to i128
    /// (also inside a present optional).
    pub fn as_i128(&self) -> Option<i128> {
        Some(match self.unwrap_optional() {
            Value::Int(v) => *v as i128,
            Value::UInt(v) => *v as i128,
            Value::Hyper(v) => *v as i128,
            Value::UHyper(v) => *v as i128,
            Value::Bool(v) => *v as i128,
            Value::Enum { value, .. } => *value as i128,
            _ => return None,
        })
    }

    /// Short name of the variant (`int`, `struct`, …), for messages.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Value::Void => "void",
            Value::Int(_) => "int",
            Value::UInt(_) => "unsigned int",
            Value::Hyper(_) => "hyper",
            Value::UHyper(_) => "unsigned hyper",
            Value::Float(_) => "float",
            Value::Double(_) => "double",
            Value::Bool(_) => "bool",
            Value::Enum { .. } => "enum",
            Value::String(_) => "string",
            Value::Opaque(_) => "opaque",
            Value::Array(_) => "array",
            Value::Struct(_) => "struct",
            Value::Union { .. } => "union",
            Value::Optional(_) => "optional",
        }
    }
}

fn write_bytes(f: &mut fmt::Formatter<'_>, b: &[u8], quote: bool) -> fmt::Result {
    if quote {
        f.write_str("\"")?;
        for c in b.utf8_chunks() {
            for ch in c.valid().chars() {
                write!(f, "{}", ch.escape_debug())?;
            }
            for byte in c.invalid() {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        f.write_str("\"")
    } else {
        f.write_str("0x")?;
        for byte in b {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A compact one-line rendering: `{ name: Some("qemu:///system"), flags: 0 }`.
impl fmt::Display for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Void => f.write_str("void"),
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Hyper(v) => write!(f, "{v}"),
            Value::UHyper(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Double(v) => write!(f, "{v:?}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Enum { value, name } => match name {
                Some(n) => write!(f, "{n}"),
                None => write!(f, "{value}"),
            },
            Value::String(b) => write_bytes(f, b, true),
            Value::Opaque(b) => write_bytes(f, b, false),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Struct(fields) => {
                f.write_str("{ ")?;
                for (i, (n, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{n}: {v}")?;
                }
                f.write_str(" }")
            }
            Value::Union {
                discriminant,
                arm,
                value,
            } => match arm {
                Some(a) => write!(f, "<{discriminant}> {a}: {value}"),
                None => write!(f, "<{discriminant}>"),
            },
            Value::Optional(None) => f.write_str("None"),
            Value::Optional(Some(v)) => write!(f, "Some({v})"),
        }
    }
}
