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
    /// `disc`: the discriminant's type id, `signed`: whether it is an `int` (else an `unsigned
    /// int` when `plain`); an enum or anything else when not `plain`.
    Union {
        ty: u32,
        k: u32,
        disc: u32,
        plain: bool,
        signed: bool,
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
            Type::Union(u) => {
                compound(deepest);
                let disc = u.discriminant.ty;
                let d = &types[disc.index()];
                Op::Union {
                    ty: id,
                    k,
                    disc: disc.0,
                    plain: matches!(d, Type::Int | Type::UInt),
                    signed: matches!(d, Type::Int),
                }
            }
        };
        self.ops.push(op);
    }

    /// Run type `ty`'s routine at nesting `depth` (the body itself is depth 0 here, as in
    /// `Graph::walk`).
    ///
    /// One loop, no recursion: entering an element's, arm's or target's routine pushes a
    /// [`Frame`] saying how to close the compound when the routine returns, and where to go on.
    /// Values nested deeper than [`FRAMES`] frames bail (the full walk takes them).
    pub(crate) fn run<'a, B>(
        &self,
        g: &Graph<'a>,
        b: &mut B,
        c: &mut Scan<'a>,
        ty: u32,
        depth: u32,
    ) -> Fast<()>
    where
        B: Build<'a, V = ()>,
        B::Seq: Copy,
        B::Rec: Copy,
        B::Open: Copy,
    {
        let mut stack = [Frame::<B::Seq, B::Rec, B::Open>::Empty; FRAMES];
        let mut sp = 0usize;
        // The running routine's nesting depth, and the next op.
        let mut base = depth;
        let mut pc = self.enter(g, ty, depth)?;
        macro_rules! push {
            ($f:expr) => {{
                *stack.get_mut(sp).ok_or(Bail)? = $f;
                sp += 1;
            }};
        }
        loop {
            let op = self.ops[pc];
            pc += 1;
            match op {
                Op::StructBegin(id) => {
                    let Type::Struct(s) = &g.types[id as usize] else {
                        return Err(Bail);
                    };
                    push!(Frame::Struct(b.rec(TypeId(id), s)));
                }
                Op::StructEnd => match stack[..sp].last() {
                    Some(&Frame::Struct(rec)) => {
                        sp -= 1;
                        b.rec_end(rec)
                    }
                    _ => return Err(Bail),
                },
                Op::Array {
                    elem,
                    max,
                    min_item,
                    k,
                } => {
                    let n = c.word()?;
                    if n > max || u64::from(n) * u64::from(min_item) > c.remaining() as u64 {
                        return Err(Bail);
                    }
                    let seq = b.seq(n as usize);
                    if let Some(start) = self.elements(
                        g,
                        b,
                        c,
                        &mut stack,
                        &mut sp,
                        seq,
                        elem,
                        n,
                        pc,
                        base,
                        base + k + 1,
                    )? {
                        pc = start;
                        base += k + 1;
                    }
                }
                Op::FixedArray {
                    elem,
                    len,
                    min_item,
                    k,
                } => {
                    if u64::from(len) * u64::from(min_item) > c.remaining() as u64 {
                        return Err(Bail);
                    }
                    let seq = b.seq(len as usize);
                    if let Some(start) = self.elements(
                        g,
                        b,
                        c,
                        &mut stack,
                        &mut sp,
                        seq,
                        elem,
                        len,
                        pc,
                        base,
                        base + k + 1,
                    )? {
                        pc = start;
                        base += k + 1;
                    }
                }
                Op::Optional { ty, k } => {
                    let open = b.optional_begin();
                    if !c.flag()? {
                        b.optional(open, None);
                    } else if let Op::Ret = self.leaf[ty as usize] {
                        push!(Frame::Optional {
                            open,
                            ret: pc as u32,
                            base
                        });
                        base += k + 1;
                        pc = self.enter(g, ty, base)?;
                    } else {
                        Self::leaf(g, b, c, self.leaf[ty as usize])?;
                        b.optional(open, Some(()));
                    }
                }
                Op::Union {
                    ty,
                    k,
                    disc,
                    plain,
                    signed,
                } => {
                    let Type::Union(u) = &g.types[ty as usize] else {
                        return Err(Bail);
                    };
                    let open = b.union_begin();
                    let key = if plain {
                        let v = c.word()?;
                        if signed {
                            b.int(v as i32);
                            i64::from(v as i32)
                        } else {
                            b.uint(v);
                            i64::from(v)
                        }
                    } else if let Type::Enum(e) = &g.types[disc as usize] {
                        let v = c.word()? as i32;
                        if c.strict() && !e.contains(v) {
                            return Err(Bail);
                        }
                        b.enumeration(TypeId(disc), e, v);
                        i64::from(v)
                    } else {
                        // bool, char and short discriminants: the full walk (libvirt has none).
                        return Err(Bail);
                    };
                    let index = u.arm_index_for(key).ok_or(Bail)?;
                    let arm = &u.arms[index];
                    match self.leaf[arm.ty.index()] {
                        Op::Ret => {
                            push!(Frame::Union {
                                open,
                                ty,
                                index: index as u32,
                                ret: pc as u32,
                                base,
                            });
                            base += k + 1;
                            pc = self.enter(g, arm.ty.0, base)?;
                        }
                        leaf => {
                            Self::leaf(g, b, c, leaf)?;
                            b.union(open, TypeId(ty), (), index, arm.name.as_deref(), ());
                        }
                    }
                }
                Op::Call { ty, k } => {
                    push!(Frame::Call {
                        ret: pc as u32,
                        base
                    });
                    base += k;
                    pc = self.enter(g, ty, base)?;
                }
                Op::Ret => {
                    let Some(top) = sp.checked_sub(1) else {
                        return Ok(());
                    };
                    match &mut stack[top] {
                        Frame::Array {
                            seq,
                            left,
                            elem,
                            ret,
                            base: caller,
                        } => {
                            b.seq_push(seq, ());
                            *left -= 1;
                            if *left > 0 {
                                // The next element: the same routine at the same depth.
                                pc = self.entry[*elem as usize] as usize;
                            } else {
                                let seq = *seq;
                                pc = *ret as usize;
                                base = *caller;
                                sp = top;
                                b.seq_end(seq);
                            }
                        }
                        &mut Frame::Union {
                            open,
                            ty,
                            index,
                            ret,
                            base: caller,
                        } => {
                            sp = top;
                            pc = ret as usize;
                            base = caller;
                            let Type::Union(u) = &g.types[ty as usize] else {
                                return Err(Bail);
                            };
                            let arm = u.arms[index as usize].name.as_deref();
                            b.union(open, TypeId(ty), (), index as usize, arm, ());
                        }
                        &mut Frame::Optional {
                            open,
                            ret,
                            base: caller,
                        } => {
                            sp = top;
                            pc = ret as usize;
                            base = caller;
                            b.optional(open, Some(()));
                        }
                        &mut Frame::Call { ret, base: caller } => {
                            sp = top;
                            pc = ret as usize;
                            base = caller;
                        }
                        Frame::Struct(_) | Frame::Empty => return Err(Bail),
                    }
                }
                leaf => Self::leaf(g, b, c, leaf)?,
            }
        }
    }

    /// Where type `ty`'s routine starts, once its nesting is checked at `depth`.
    #[inline]
    fn enter(&self, g: &Graph<'_>, ty: u32, depth: u32) -> Fast<usize> {
        let deepest = self.deepest[ty as usize];
        // `Graph::walk` refuses a compound at depth >= nesting_max.
        if deepest != NONE && depth.saturating_add(deepest) >= g.nesting_max {
            return Err(Bail);
        }
        Ok(self.entry[ty as usize] as usize)
    }

    /// Start an array of `n` elements of `elem` at `depth`: scalar elements are read here and the
    /// array closed; otherwise a frame is pushed and the element routine's start returned (`None`:
    /// nothing to enter, go on at the caller's next op).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn elements<'a, B>(
        &self,
        g: &Graph<'a>,
        b: &mut B,
        c: &mut Scan<'a>,
        stack: &mut [Frame<B::Seq, B::Rec, B::Open>; FRAMES],
        sp: &mut usize,
        mut seq: B::Seq,
        elem: u32,
        n: u32,
        ret: usize,
        caller: u32,
        depth: u32,
    ) -> Fast<Option<usize>>
    where
        B: Build<'a, V = ()>,
        B::Seq: Copy,
        B::Rec: Copy,
        B::Open: Copy,
    {
        match self.leaf[elem as usize] {
            Op::Ret if n > 0 => {
                *stack.get_mut(*sp).ok_or(Bail)? = Frame::Array {
                    seq,
                    left: n,
                    elem,
                    ret: ret as u32,
                    base: caller,
                };
                *sp += 1;
                self.enter(g, elem, depth).map(Some)
            }
            Op::Ret => {
                b.seq_end(seq);
                Ok(None)
            }
            leaf => {
                for _ in 0..n {
                    Self::leaf(g, b, c, leaf)?;
                    b.seq_push(&mut seq, ());
                }
                b.seq_end(seq);
                Ok(None)
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
}

/// How deep the fast path nests (frames: structs, arrays, unions, optionals, calls); deeper values
/// bail to the full walk. Above libvirt's default nesting limit of 64.
const FRAMES: usize = 72;

/// What to do when a routine returns (or, for `Struct`, at `StructEnd`).
#[derive(Clone, Copy)]
enum Frame<S, R, O> {
    Empty,
    Struct(R),
    /// `left` elements to go (the one running included).
    Array {
        seq: S,
        left: u32,
        elem: u32,
        ret: u32,
        base: u32,
    },
    Union {
        open: O,
        ty: u32,
        index: u32,
        ret: u32,
        base: u32,
    },
    Optional {
        open: O,
        ret: u32,
        base: u32,
    },
    Call {
        ret: u32,
        base: u32,
    },
}
