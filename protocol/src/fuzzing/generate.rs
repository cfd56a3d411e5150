//! The generators: `Arbitrary` inputs of the structured targets ([`ArbMessage`] for
//! `roundtrip_structured`, [`StreamScript`] for `stream`) and strictly valid values of any schema
//! type ([`arbitrary_value`]).

use arbitrary::{Arbitrary, Unstructured};

use crate::body::{ErrorBody, ErrorDomain, ErrorNetwork};
use crate::schema::{Schema, Type, TypeId, Value};

/// A program number for [`ArbMessage`]: mostly known ones.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum ArbProg {
    /// One of [`PROGRAMS`](crate::header::PROGRAMS) by index.
    Known(u8),
    /// Anything.
    Raw(u32),
}

/// An owned error body for [`ArbMessage`].
#[derive(Debug, Clone, Arbitrary)]
pub struct ArbError {
    /// code, domain, level, int1, int2.
    pub ints: [i32; 5],
    /// The message.
    pub message: Option<Vec<u8>>,
    /// str1..3.
    pub strs: [Option<Vec<u8>>; 3],
    /// The `dom` member.
    pub dom: Option<(Vec<u8>, [u8; 16], i32)>,
    /// The `net` member.
    pub net: Option<(Vec<u8>, [u8; 16])>,
}

impl ArbError {
    /// As an [`ErrorBody`].
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            code: self.ints[0],
            domain: self.ints[1],
            message: self.message.as_deref(),
            level: self.ints[2],
            dom: self.dom.as_ref().map(|(n, u, id)| ErrorDomain {
                name: n,
                uuid: *u,
                id: *id,
            }),
            str1: self.strs[0].as_deref(),
            str2: self.strs[1].as_deref(),
            str3: self.strs[2].as_deref(),
            int1: self.ints[3],
            int2: self.ints[4],
            net: self
                .net
                .as_ref()
                .map(|(n, u)| ErrorNetwork { name: n, uuid: *u }),
        }
    }
}

/// The body of an [`ArbMessage`]: every valid (type, status) shape.
#[derive(Debug, Clone, Arbitrary)]
pub enum ArbBody {
    /// CALL, or CALL_WITH_FDS with the count.
    Call(Option<u8>, Vec<u8>),
    /// REPLY/OK, or REPLY_WITH_FDS/OK.
    Reply(Option<u8>, Vec<u8>),
    /// REPLY/ERROR.
    ReplyError(ArbError),
    /// MESSAGE/OK (an event).
    Event(Vec<u8>),
    /// Keepalive PING (true) or PONG.
    Keepalive(bool),
    /// STREAM/CONTINUE.
    StreamData(Vec<u8>),
    /// STREAM/OK.
    StreamEnd,
    /// STREAM/ERROR, empty.
    StreamAbort,
    /// STREAM/ERROR with an error body.
    StreamError(ArbError),
    /// STREAM_HOLE/CONTINUE.
    Hole(i64, u32),
    /// A schema-typed body: program and procedure indices (folded onto the schema's lists) and the
    /// role (args, ret, msg); the value itself is generated from the rest of the input.
    Typed(u8, u16, u8),
}

/// A structured message for `roundtrip_structured`.
#[derive(Debug, Clone, Arbitrary)]
pub struct ArbMessage {
    /// Program.
    pub prog: ArbProg,
    /// Version.
    pub vers: u32,
    /// Procedure.
    pub procedure: i32,
    /// Serial.
    pub serial: u32,
    /// Body.
    pub body: ArbBody,
}

/// One step of a [`StreamScript`].
#[derive(Debug, Clone, Arbitrary)]
pub enum StreamStep {
    /// `len % 1024` bytes of value `fill` on stream `stream % 4` (16 KiB a script at most).
    Data {
        /// Stream index.
        stream: u8,
        /// Bytes.
        len: u16,
        /// Their value.
        fill: u8,
    },
    /// A hole of `len` bytes (refused by the splitter unless the stream is sparse and len > 0, as
    /// libvirt refuses holes of length 0).
    Hole {
        /// Stream index.
        stream: u8,
        /// Hole length.
        len: u16,
    },
    /// The sender's end of the stream (finish from a client, EOF from a server).
    End {
        /// Stream index.
        stream: u8,
    },
}

/// Input of the `stream` target: interleaved streams sent by one side and received by the other.
#[derive(Debug, Clone, Arbitrary)]
pub struct StreamScript {
    /// True: the server sends (downloads); false: the client sends (uploads).
    pub server_sends: bool,
    /// Which of the four streams are sparse.
    pub sparse: [bool; 4],
    /// Chunk size selector (1..=2048 bytes).
    pub chunk: u16,
    /// Reassembler buffer cap in 16-byte units (0 = 0 bytes).
    pub cap: u16,
    /// How the wire is cut into reads (cycled; each 1..=4096 bytes).
    pub reads: Vec<u16>,
    /// The operations, in send order.
    pub steps: Vec<StreamStep>,
}

/// Zeros for fixed-length opaques when the input runs out.
static ZEROS: [u8; 4096] = [0; 4096];

/// Elements and nesting a generated value may use (keeps executions fast).
pub(super) struct Budget {
    /// Array elements and present optionals left for the whole value.
    pub(super) elems: u32,
}

/// A strictly valid value of type `ty`, driven by `u`: every bound respected, enums members,
/// small ints in range, union discriminants naming an arm. Byte data borrows the input.
pub(super) fn arbitrary_value<'a>(
    s: &'static Schema,
    ty: TypeId,
    u: &mut Unstructured<'a>,
    budget: &mut Budget,
    depth: u32,
) -> arbitrary::Result<Value<'a>> {
    let deep = depth > 16;
    Ok(match s.ty(ty) {
        Type::Void => Value::Void,
        Type::Int => Value::Int(u.arbitrary()?),
        Type::UInt => Value::UInt(u.arbitrary()?),
        Type::Hyper => Value::Hyper(u.arbitrary()?),
        Type::UHyper => Value::UHyper(u.arbitrary()?),
        Type::Float => Value::Float(f32::from_bits(u.arbitrary()?)),
        Type::Double => Value::Double(f64::from_bits(u.arbitrary()?)),
        Type::Bool => Value::Bool(u.arbitrary()?),
        Type::Small(k) => {
            let (lo, hi) = k.range();
            let v = u.int_in_range(lo..=hi)?;
            if k.is_unsigned() {
                Value::UInt(v as u32)
            } else {
                Value::Int(v as i32)
            }
        }
        Type::Enum(e) => match e.members.is_empty() {
            true => Value::Enum {
                value: 0,
                name: None,
            },
            false => {
                let (name, value) = u.choose(&e.members)?;
                Value::Enum {
                    value: *value,
                    name: Some(name.as_str()),
                }
            }
        },
        Type::String { max } => {
            let n = u.int_in_range(0..=(*max).min(64))? as usize;
            Value::String(u.bytes(n.min(u.len()))?)
        }
        Type::Opaque { max } => {
            let n = u.int_in_range(0..=(*max).min(64))? as usize;
            Value::Opaque(u.bytes(n.min(u.len()))?)
        }
        Type::OpaqueFixed { len } => {
            let n = *len as usize;
            Value::Opaque(match u.bytes(n) {
                Ok(b) => b,
                Err(_) if n <= ZEROS.len() => &ZEROS[..n],
                Err(e) => return Err(e),
            })
        }
        Type::Array { elem, max } => {
            let cap = if deep {
                0
            } else {
                (*max).min(8).min(budget.elems)
            };
            let n = u.int_in_range(0..=cap)?;
            budget.elems -= n;
            let mut v = Vec::with_capacity(n as usize);
            for _ in 0..n {
                v.push(arbitrary_value(s, *elem, u, budget, depth + 1)?);
            }
            Value::Array(v)
        }
        Type::FixedArray { elem, len } => {
            budget.elems = budget.elems.saturating_sub(*len);
            let mut v = Vec::with_capacity((*len).min(4096) as usize);
            for _ in 0..*len {
                v.push(arbitrary_value(s, *elem, u, budget, depth + 1)?);
            }
            Value::Array(v)
        }
        Type::Optional(t) => {
            if !deep && budget.elems > 0 && u.arbitrary::<bool>()? {
                budget.elems -= 1;
                Value::Optional(Some(Box::new(arbitrary_value(
                    s,
                    *t,
                    u,
                    budget,
                    depth + 1,
                )?)))
            } else {
                Value::Optional(None)
            }
        }
        Type::Struct(st) => {
            let mut fields = Vec::with_capacity(st.fields.len());
            for f in &st.fields {
                fields.push((
                    f.name.as_str(),
                    arbitrary_value(s, f.ty, u, budget, depth + 1)?,
                ));
            }
            Value::Struct(fields)
        }
        Type::Union(un) => {
            // Discriminant values a strict decoder accepts for each arm: its cases, or for the
            // default arm any value no case names (an enum member, for enum discriminants).
            let disc_ty = s.ty(un.discriminant.ty);
            let named = |v: i64| un.arms.iter().any(|a| a.cases.contains(&v));
            let free = match disc_ty {
                Type::Enum(e) => e.members.iter().map(|m| m.1 as i64).find(|v| !named(*v)),
                Type::Bool => [0, 1].into_iter().find(|v| !named(*v)),
                _ => (0..).take(64).find(|v| !named(*v)),
            };
            let choices: Vec<(usize, i64)> = un
                .arms
                .iter()
                .enumerate()
                .flat_map(|(i, a)| {
                    let keys: Vec<i64> = if a.cases.is_empty() {
                        free.into_iter().collect()
                    } else {
                        a.cases.clone()
                    };
                    keys.into_iter().map(move |k| (i, k))
                })
                .collect();
            let &(ai, key) = u.choose(&choices)?;
            let arm = &un.arms[ai];
            let discriminant = match disc_ty {
                Type::Enum(e) => Value::Enum {
                    value: key as i32,
                    name: e.member_name(key as i32),
                },
                Type::Bool => Value::Bool(key != 0),
                Type::UInt => Value::UInt(key as u32),
                Type::Small(k) if k.is_unsigned() => Value::UInt(key as u32),
                _ => Value::Int(key as i32),
            };
            Value::Union {
                discriminant: Box::new(discriminant),
                arm: arm.name.as_deref(),
                value: Box::new(arbitrary_value(s, arm.ty, u, budget, depth + 1)?),
            }
        }
    })
}
