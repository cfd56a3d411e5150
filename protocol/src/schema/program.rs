//! The codec's fast path: the type graph compiled once into flat routines of small ops.
//!
//! [`Graph::walk`](super::codec::Graph) is the codec of record: it names every error (offset,
//! kind, path). That care costs on every node — a match on the type graph, a nesting check, an
//! 80-byte `Result` through every `?`, a `map_err` per field. Valid bodies do not need it, so the
//! validate walk and the tape decode first run a [`Program`]:
//!
//! - one routine per type: a scalar is one op; a struct is its fields laid out in line (a struct in a
//!   struct too), so a typed parameter is four ops, not five recursive walks; arrays, optionals and
//!   unions call the routine of their element / target / arm;
//! - the nesting limit is checked once per routine (each routine knows how deep its inlined
//!   compounds go);
//! - every failure is one zero-sized [`Bail`]: the fast path never reports an error. On a bail
//!   the caller throws away what was built and runs the full walk, which accepts or rejects with
//!   its exact error. So a bail is always safe; the one thing the fast path must never do is
//!   accept bytes the full walk rejects, or build a different tape (tests compare both walks).
//!
//! Routines drive the same [`Build`] implementations (validate, tape) as the full walk, so the
//! nodes they push are the same nodes in the same order.

use super::codec::{Build, Graph};
use super::types::{Type, TypeId};
use crate::xdr::{Bail, Scan};

type Fast<T> = Result<T, Bail>;

/// Structs nested deeper than this inside one routine are called rather than laid out in line
/// (libvirt's deepest in-line chain is 3; the cap only bounds a hostile or odd schema's routines).
const INLINE_DEPTH: u32 = 16;

/// One step. `k` is the op's nesting offset from its routine's start (the routine's own type is 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Void,
    Int,
    UInt,
    Hyper,
    UHyper,
    Float,
    Double,
    Bool,
    /// rpcgen `char` / `short`, the type id of its [`Type::Small`].
    Small(u32),
    /// An enum, its type id.
    Enum(u32),
    String(u32),
    Opaque(u32),
    OpaqueFixed(u32),
    /// A struct's fields follow up to the matching [`Op::StructEnd`].
    StructBegin(u32),
    StructEnd,
    Array {
        elem: u32,
        max: u32,
        min_item: u32,
        k: u32,
    },
    FixedArray {
        elem: u32,
        len: u32,
        min_item: u32,
        k: u32,
    },
    Optional {
        ty: u32,
        k: u32,
    },
    Union {
        ty: u32,
        k: u32,
    },
    /// Run another type's routine at nesting offset `k`.
    Call {
        ty: u32,
        k: u32,
    },
    /// End of a routine.
    Ret,
}

/// The compiled routines of a schema's types.
#[derive(Clone, Debug, Default)]
pub(crate) struct Program {
    ops: Vec<Op>,
    /// Per type: where its routine starts in `ops`.
    entry: Vec<u32>,
    /// Per type: the deepest nesting offset of a compound in its routine (`u32::MAX`: none, a
    /// scalar routine, which nests nothing).
    deepest: Vec<u32>,
    /// Per type: its one op when it is a scalar, `Ret` otherwise (arrays, arms and optionals of
    /// scalars run the op without entering a routine).
    leaf: Vec<Op>,
}

const NONE: u32 = u32::MAX;

impl Program {
    /// Compile one routine per type.
    pub(crate) fn compile(types: &[Type], min_size: &[u32]) -> Program {
        let mut p = Program {
            ops: Vec::new(),
            entry: Vec::with_capacity(types.len()),
            deepest: Vec::with_capacity(types.len()),
            leaf: Vec::with_capacity(types.len()),
        };
        for id in 0..types.len() {
            p.entry.push(p.ops.len() as u32);
            let mut deepest = NONE;
            p.emit(types, min_size, id as u32, 0, &mut deepest);
            let start = p.entry[id] as usize;
            p.leaf.push(match p.ops[start..] {
                [op] if deepest == NONE => op,
                _ => Op::Ret,
            });
            p.ops.push(Op::Ret);
            p.deepest.push(deepest);
        }
        p
    }

    /// Lay out type `id` at nesting offset `k`, noting the deepest compound in `deepest`.
    fn emit(&mut self, types: &[Type], min_size: &[u32], id: u32, k: u32, deepest: &mut u32) {
        let compound = |d: &mut u32| {
            if *d == NONE || k > *d {
                *d = k;
            }
        };
        let op = match &types[id as usize] {
            Type::Void => Op::Void,
            Type::Int => Op::Int,
            Type::UInt => Op::UInt,
            Type::Hyper => Op::Hyper,
            Type::UHyper => Op::UHyper,
            Type::Float => Op::Float,
            Type::Double => Op::Double,
            Type::Bool => Op::Bool,
            Type::Small(_) => Op::Small(id),
            Type::Enum(_) => Op::Enum(id),
            Type::String { max } => Op::String(*max),
            Type::Opaque { max } => Op::Opaque(*max),
            Type::OpaqueFixed { len } => Op::OpaqueFixed(*len),
            Type::Struct(s) if k < INLINE_DEPTH => {
                compound(deepest);
                self.ops.push(Op::StructBegin(id));
                for f in &s.fields {
                    self.emit(types, min_size, f.ty.0, k + 1, deepest);
                }
                Op::StructEnd
            }
            Type::Struct(_) => {
                // The called routine checks its own nesting; it starts with this struct at `k`.
                compound(deepest);
                Op::Call { ty: id, k }
            }
            Type::Array { elem, max } => {
                compound(deepest);
                Op::Array {
                    elem: elem.0,
                    max: *max,
                    min_item: min_size[elem.index()].max(1),
                    k,
                }
            }
            Type::FixedArray { elem, len } => {
                compound(deepest);
                Op::FixedArray {
                    elem: elem.0,
                    len: *len,
                    min_item: min_size[elem.index()].max(1),
                    k,
                }
            }
            Type::Optional(t) => {
                compound(deepest);
                Op::Optional { ty: t.0, k }
            }
            Type::Union(_) => {
                compound(deepest);
                Op::Union { ty: id, k }
            }
        };
        self.ops.push(op);
    }

    /// Run type `ty`'s routine at nesting `depth` (the body itself is depth 0 here, as in
    /// `Graph::walk`).
    #[inline]
    pub(crate) fn run<'a, B: Build<'a, V = ()>>(
        &self,
        g: &Graph<'a>,
        b: &mut B,
        c: &mut Scan<'a>,
        ty: u32,
        depth: u32,
    ) -> Fast<()> {
        let deepest = self.deepest[ty as usize];
        // `Graph::walk` refuses a compound at depth >= nesting_max.
        if deepest != NONE && depth.saturating_add(deepest) >= g.nesting_max {
            return Err(Bail);
        }
        let mut pc = self.entry[ty as usize] as usize;
        self.block(g, b, c, &mut pc, depth)
    }

    /// Run ops from `pc` up to the next `Ret` or `StructEnd` (consumed).
    fn block<'a, B: Build<'a, V = ()>>(
        &self,
        g: &Graph<'a>,
        b: &mut B,
        c: &mut Scan<'a>,
        pc: &mut usize,
        depth: u32,
    ) -> Fast<()> {
        loop {
            let op = self.ops[*pc];
            *pc += 1;
            match op {
                Op::Ret | Op::StructEnd => return Ok(()),
                Op::Void
                | Op::Int
                | Op::UInt
                | Op::Hyper
                | Op::UHyper
                | Op::Float
                | Op::Double
                | Op::Bool
                | Op::Small(_)
                | Op::Enum(_)
                | Op::String(_)
                | Op::Opaque(_)
                | Op::OpaqueFixed(_) => Self::leaf(g, b, c, op)?,
                Op::StructBegin(id) => {
                    let Type::Struct(s) = &g.types[id as usize] else {
                        return Err(Bail);
                    };
                    let rec = b.rec(TypeId(id), s);
                    // The fields are in line; a nested struct recurses only to keep its record.
                    self.block(g, b, c, pc, depth)?;
                    b.rec_end(rec)
                }
                Op::Array {
                    elem,
                    max,
                    min_item,
                    k,
                } => {
                    let n = c.word()?;
                    if n > max || n as u64 * min_item as u64 > c.remaining() as u64 {
                        return Err(Bail);
                    }
                    self.elements(g, b, c, elem, n, depth + k + 1)?
                }
                Op::FixedArray {
                    elem,
                    len,
                    min_item,
                    k,
                } => {
                    if len as u64 * min_item as u64 > c.remaining() as u64 {
                        return Err(Bail);
                    }
                    self.elements(g, b, c, elem, len, depth + k + 1)?
                }
                Op::Optional { ty, k } => {
                    let open = b.optional_begin();
                    if c.flag()? {
                        self.value(g, b, c, ty, depth + k + 1)?;
                        b.optional(open, Some(()))
                    } else {
                        b.optional(open, None)
                    }
                }
                Op::Union { ty, k } => {
                    let Type::Union(u) = &g.types[ty as usize] else {
                        return Err(Bail);
                    };
                    let open = b.union_begin();
                    let dty = u.discriminant.ty;
                    let key = match &g.types[dty.index()] {
                        Type::Int => {
                            let v = c.word()? as i32;
                            b.int(v);
                            v as i64
                        }
                        Type::UInt => {
                            let v = c.word()?;
                            b.uint(v);
                            v as i64
                        }
                        Type::Enum(e) => {
                            let v = c.word()? as i32;
                            if c.strict() && !e.contains(v) {
                                return Err(Bail);
                            }
                            b.enumeration(dty, e, v);
                            v as i64
                        }
                        // bool, char and short discriminants: the full walk (libvirt has none).
                        _ => return Err(Bail),
                    };
                    let index = u.arm_index_for(key).ok_or(Bail)?;
                    let arm = &u.arms[index];
                    self.value(g, b, c, arm.ty.0, depth + k + 1)?;
                    b.union(open, TypeId(ty), (), index, arm.name.as_deref(), ())
                }
                Op::Call { ty, k } => self.run(g, b, c, ty, depth + k)?,
            }
        }
    }

    /// One scalar op (the others bail; `block` never passes them).
    #[inline(always)]
    fn leaf<'a, B: Build<'a, V = ()>>(
        g: &Graph<'a>,
        b: &mut B,
        c: &mut Scan<'a>,
        op: Op,
    ) -> Fast<()> {
        match op {
            Op::Void => b.void(),
            Op::Int => b.int(c.word()? as i32),
            Op::UInt => b.uint(c.word()?),
            Op::Hyper => b.hyper(c.dword()? as i64),
            Op::UHyper => b.uhyper(c.dword()?),
            Op::Float => b.float(f32::from_bits(c.word()?)),
            Op::Double => b.double(f64::from_bits(c.dword()?)),
            Op::Bool => b.bool(c.flag()?),
            Op::Small(id) => {
                let Type::Small(s) = &g.types[id as usize] else {
                    return Err(Bail);
                };
                let v = c.word()? as i32;
                let (lo, hi) = s.range();
                let value = if s.is_unsigned() {
                    v as u32 as i64
                } else {
                    v as i64
                };
                if c.strict() && !(lo..=hi).contains(&value) {
                    return Err(Bail);
                }
                if s.is_unsigned() {
                    b.uint(v as u32)
                } else {
                    b.int(v)
                }
            }
            Op::Enum(id) => {
                let Type::Enum(e) = &g.types[id as usize] else {
                    return Err(Bail);
                };
                let v = c.word()? as i32;
                if c.strict() && !e.contains(v) {
                    return Err(Bail);
                }
                b.enumeration(TypeId(id), e, v)
            }
            Op::String(max) => b.string(c.counted(max)?),
            Op::Opaque(max) => b.opaque(c.counted(max)?),
            Op::OpaqueFixed(len) => b.opaque(c.fixed(len as usize)?),
            _ => return Err(Bail),
        }
        Ok(())
    }

    /// Run type `ty`'s value at `depth`: a scalar's op directly, anything else its routine.
    #[inline(always)]
    fn value<'a, B: Build<'a, V = ()>>(
        &self,
        g: &Graph<'a>,
        b: &mut B,
        c: &mut Scan<'a>,
        ty: u32,
        depth: u32,
    ) -> Fast<()> {
        match self.leaf[ty as usize] {
            Op::Ret => self.run(g, b, c, ty, depth),
            op => Self::leaf(g, b, c, op),
        }
    }

    fn elements<'a, B: Build<'a, V = ()>>(
        &self,
        g: &Graph<'a>,
        b: &mut B,
        c: &mut Scan<'a>,
        elem: u32,
        n: u32,
        depth: u32,
    ) -> Fast<()> {
        let mut seq = b.seq(n as usize);
        for _ in 0..n {
            self.value(g, b, c, elem, depth)?;
            b.seq_push(&mut seq, ());
        }
        b.seq_end(seq);
        Ok(())
    }
}
