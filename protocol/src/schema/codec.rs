//! The schema-driven codec: one walker, monomorphised twice — building a [`Value`] tree (decode) or
//! building nothing (validate) — so both accept and reject exactly the same inputs with the same
//! errors; and an encoder from [`Value`] trees.

use std::borrow::Cow;

use super::types::*;
use super::value::Value;
use crate::error::{ErrorKind, LimitKind, Result};
use crate::xdr::{Bail, Compat, Reader, Writer};

/// What the walker builds from what it reads. The builder has state (the tape builder appends to
/// its node vector); compound values are opened before their parts are walked (`seq`, `rec`,
/// `union_begin`, `optional_begin`) and closed after (`seq_end`, `rec_end`, `union`, `optional`).
pub(crate) trait Build<'a> {
    type V;
    type Seq;
    type Rec;
    /// What `union_begin` / `optional_begin` hand to `union` / `optional`.
    type Open;
    fn void(&mut self) -> Self::V;
    fn int(&mut self, v: i32) -> Self::V;
    fn uint(&mut self, v: u32) -> Self::V;
    fn hyper(&mut self, v: i64) -> Self::V;
    fn uhyper(&mut self, v: u64) -> Self::V;
    fn float(&mut self, v: f32) -> Self::V;
    fn double(&mut self, v: f64) -> Self::V;
    fn bool(&mut self, v: bool) -> Self::V;
    fn enumeration(&mut self, id: TypeId, t: &'a EnumType, v: i32) -> Self::V;
    fn string(&mut self, b: &'a [u8]) -> Self::V;
    fn opaque(&mut self, b: &'a [u8]) -> Self::V;
    fn seq(&mut self, n: usize) -> Self::Seq;
    fn seq_push(&mut self, s: &mut Self::Seq, v: Self::V);
    fn seq_end(&mut self, s: Self::Seq) -> Self::V;
    fn rec(&mut self, id: TypeId, t: &'a StructType) -> Self::Rec;
    fn rec_push(&mut self, r: &mut Self::Rec, name: &'a str, v: Self::V);
    fn rec_end(&mut self, r: Self::Rec) -> Self::V;
    fn union_begin(&mut self) -> Self::Open;
    fn union(
        &mut self,
        open: Self::Open,
        id: TypeId,
        disc: Self::V,
        arm_index: usize,
        arm: Option<&'a str>,
        v: Self::V,
    ) -> Self::V;
    fn optional_begin(&mut self) -> Self::Open;
    fn optional(&mut self, open: Self::Open, v: Option<Self::V>) -> Self::V;
}

/// Builds [`Value`] trees.
pub(crate) struct Tree;

impl<'a> Build<'a> for Tree {
    type V = Value<'a>;
    type Seq = Vec<Value<'a>>;
    type Rec = Vec<(&'a str, Value<'a>)>;
    type Open = ();
    #[inline]
    fn void(&mut self) -> Value<'a> {
        Value::Void
    }
    #[inline]
    fn int(&mut self, v: i32) -> Value<'a> {
        Value::Int(v)
    }
    #[inline]
    fn uint(&mut self, v: u32) -> Value<'a> {
        Value::UInt(v)
    }
    #[inline]
    fn hyper(&mut self, v: i64) -> Value<'a> {
        Value::Hyper(v)
    }
    #[inline]
    fn uhyper(&mut self, v: u64) -> Value<'a> {
        Value::UHyper(v)
    }
    #[inline]
    fn float(&mut self, v: f32) -> Value<'a> {
        Value::Float(v)
    }
    #[inline]
    fn double(&mut self, v: f64) -> Value<'a> {
        Value::Double(v)
    }
    #[inline]
    fn bool(&mut self, v: bool) -> Value<'a> {
        Value::Bool(v)
    }
    #[inline]
    fn enumeration(&mut self, _: TypeId, t: &'a EnumType, v: i32) -> Value<'a> {
        Value::Enum {
            value: v,
            name: t.member_name(v),
        }
    }
    #[inline]
    fn string(&mut self, b: &'a [u8]) -> Value<'a> {
        Value::String(b)
    }
    #[inline]
    fn opaque(&mut self, b: &'a [u8]) -> Value<'a> {
        Value::Opaque(b)
    }
    #[inline]
    fn seq(&mut self, n: usize) -> Self::Seq {
        Vec::with_capacity(n)
    }
    #[inline]
    fn seq_push(&mut self, s: &mut Self::Seq, v: Value<'a>) {
        s.push(v);
    }
    #[inline]
    fn seq_end(&mut self, s: Self::Seq) -> Value<'a> {
        Value::Array(s)
    }
    #[inline]
    fn rec(&mut self, _: TypeId, t: &'a StructType) -> Self::Rec {
        Vec::with_capacity(t.fields.len())
    }
    #[inline]
    fn rec_push(&mut self, r: &mut Self::Rec, name: &'a str, v: Value<'a>) {
        r.push((name, v));
    }
    #[inline]
    fn rec_end(&mut self, r: Self::Rec) -> Value<'a> {
        Value::Struct(r)
    }
    #[inline]
    fn union_begin(&mut self) {}
    #[inline]
    fn union(
        &mut self,
        _: (),
        _: TypeId,
        disc: Value<'a>,
        _: usize,
        arm: Option<&'a str>,
        v: Value<'a>,
    ) -> Value<'a> {
        Value::Union {
            discriminant: Box::new(disc),
            arm,
            value: Box::new(v),
        }
    }
    #[inline]
    fn optional_begin(&mut self) {}
    #[inline]
    fn optional(&mut self, _: (), v: Option<Value<'a>>) -> Value<'a> {
        Value::Optional(v.map(Box::new))
    }
}

/// Builds nothing: the validate-only walk.
pub(crate) struct Check;

impl<'a> Build<'a> for Check {
    type V = ();
    type Seq = ();
    type Rec = ();
    type Open = ();
    #[inline]
    fn void(&mut self) {}
    #[inline]
    fn int(&mut self, _: i32) {}
    #[inline]
    fn uint(&mut self, _: u32) {}
    #[inline]
    fn hyper(&mut self, _: i64) {}
    #[inline]
    fn uhyper(&mut self, _: u64) {}
    #[inline]
    fn float(&mut self, _: f32) {}
    #[inline]
    fn double(&mut self, _: f64) {}
    #[inline]
    fn bool(&mut self, _: bool) {}
    #[inline]
    fn enumeration(&mut self, _: TypeId, _: &'a EnumType, _: i32) {}
    #[inline]
    fn string(&mut self, _: &'a [u8]) {}
    #[inline]
    fn opaque(&mut self, _: &'a [u8]) {}
    #[inline]
    fn seq(&mut self, _: usize) {}
    #[inline]
    fn seq_push(&mut self, _: &mut (), _: ()) {}
    #[inline]
    fn seq_end(&mut self, _: ()) {}
    #[inline]
    fn rec(&mut self, _: TypeId, _: &'a StructType) {}
    #[inline]
    fn rec_push(&mut self, _: &mut (), _: &'a str, _: ()) {}
    #[inline]
    fn rec_end(&mut self, _: ()) {}
    #[inline]
    fn union_begin(&mut self) {}
    #[inline]
    fn union(&mut self, _: (), _: TypeId, _: (), _: usize, _: Option<&'a str>, _: ()) {}
    #[inline]
    fn optional_begin(&mut self) {}
    #[inline]
    fn optional(&mut self, _: (), _: Option<()>) {}
}

/// The compiled graph the codec walks.
#[derive(Clone, Copy)]
pub(crate) struct Graph<'a> {
    pub types: &'a [Type],
    pub min_size: &'a [u32],
    pub nesting_max: u32,
}

fn nesting_error(max: u32, depth: u32) -> ErrorKind {
    ErrorKind::OverLimit {
        limit: LimitKind::Nesting,
        max: max as u64,
        actual: depth as u64,
    }
}

fn field_name(name: &str) -> Cow<'static, str> {
    Cow::Owned(name.to_string())
}

impl<'a> Graph<'a> {
    #[inline]
    fn ty(&self, id: TypeId) -> &'a Type {
        &self.types[id.index()]
    }

    /// Bytes each element of `elem` takes at least; at least 1 so that a count is always bounded
    /// by the bytes left (zero-size elements would otherwise let a 4-byte count ask for 2³² items).
    #[inline]
    fn min_item(&self, elem: TypeId) -> usize {
        (self.min_size[elem.index()] as usize).max(1)
    }

    /// A union discriminant, read according to its declared type; returned as its value and as
    /// the lookup key in the discriminant's domain.
    fn discriminant<B: Build<'a>>(
        &self,
        b: &mut B,
        r: &mut Reader<'a>,
        ty: TypeId,
    ) -> Result<(B::V, i64)> {
        let at = *r;
        Ok(match self.ty(ty) {
            Type::Int => {
                let v = r.i32()?;
                (b.int(v), v as i64)
            }
            Type::UInt => {
                let v = r.u32()?;
                (b.uint(v), v as i64)
            }
            Type::Bool => {
                let v = r.bool()?;
                (b.bool(v), v as i64)
            }
            Type::Enum(e) => {
                let v = self.enum_value(r, e)?;
                (b.enumeration(ty, e, v), v as i64)
            }
            Type::Small(s) => {
                let (lo, hi) = s.range();
                let v = r.small_int(s.c_name(), lo, hi)?;
                if s.is_unsigned() {
                    (b.uint(v as u32), v as u32 as i64)
                } else {
                    (b.int(v), v as i64)
                }
            }
            _ => {
                return Err(at.error(ErrorKind::Invalid(
                    "union discriminant of an unsupported type".into(),
                )));
            }
        })
    }

    #[inline]
    fn enum_value(&self, r: &mut Reader<'a>, e: &EnumType) -> Result<i32> {
        let at = *r;
        let v = r.i32()?;
        if r.compat() == Compat::Strict && !e.contains(v) {
            return Err(at.error(ErrorKind::InvalidEnum {
                value: v,
                enum_name: field_name(&e.name),
            }));
        }
        Ok(v)
    }

    /// Walk one value of type `ty` at nesting `depth` (the body itself is depth 1).
    pub(crate) fn walk<B: Build<'a>>(
        &self,
        b: &mut B,
        r: &mut Reader<'a>,
        ty: TypeId,
        depth: u32,
    ) -> Result<B::V> {
        Ok(match self.ty(ty) {
            Type::Void => b.void(),
            Type::Int => b.int(r.i32()?),
            Type::UInt => b.uint(r.u32()?),
            Type::Hyper => b.hyper(r.i64()?),
            Type::UHyper => b.uhyper(r.u64()?),
            Type::Float => b.float(r.f32()?),
            Type::Double => b.double(r.f64()?),
            Type::Bool => b.bool(r.bool()?),
            Type::Small(s) => {
                let (lo, hi) = s.range();
                let v = r.small_int(s.c_name(), lo, hi)?;
                if s.is_unsigned() {
                    b.uint(v as u32)
                } else {
                    b.int(v)
                }
            }
            Type::Enum(e) => {
                let v = self.enum_value(r, e)?;
                b.enumeration(ty, e, v)
            }
            Type::String { max } => b.string(r.string(*max)?),
            Type::Opaque { max } => b.opaque(r.opaque_var(*max)?),
            Type::OpaqueFixed { len } => b.opaque(r.opaque_fixed(*len as usize)?),
            compound => {
                if depth >= self.nesting_max {
                    return Err(r.error(nesting_error(self.nesting_max, depth + 1)));
                }
                let inner = depth + 1;
                match compound {
                    Type::Array { elem, max } => {
                        let n = r.count(*max, LimitKind::Array, self.min_item(*elem))?;
                        self.elements(b, r, *elem, n, inner)?
                    }
                    Type::FixedArray { elem, len } => {
                        let need = (*len as u64).saturating_mul(self.min_item(*elem) as u64);
                        if need > r.remaining() as u64 {
                            return Err(r.error(ErrorKind::Truncated {
                                needed: need,
                                available: r.remaining() as u64,
                            }));
                        }
                        self.elements(b, r, *elem, *len, inner)?
                    }
                    Type::Optional(t) => {
                        let open = b.optional_begin();
                        if r.optional()? {
                            let v = self.walk(b, r, *t, inner)?;
                            b.optional(open, Some(v))
                        } else {
                            b.optional(open, None)
                        }
                    }
                    Type::Struct(s) => {
                        let mut rec = b.rec(ty, s);
                        for f in &s.fields {
                            let v = self
                                .walk(b, r, f.ty, inner)
                                .map_err(|e| e.in_field(field_name(&f.name)))?;
                            b.rec_push(&mut rec, &f.name, v);
                        }
                        b.rec_end(rec)
                    }
                    Type::Union(u) => {
                        let at = *r;
                        let open = b.union_begin();
                        let (disc, key) = self
                            .discriminant(b, r, u.discriminant.ty)
                            .map_err(|e| e.in_field(field_name(&u.discriminant.name)))?;
                        let Some(index) = u.arm_index_for(key) else {
                            return Err(at
                                .error(ErrorKind::InvalidDiscriminant(key))
                                .in_field(field_name(&u.discriminant.name)));
                        };
                        let arm = &u.arms[index];
                        let v = self
                            .walk(b, r, arm.ty, inner)
                            .map_err(|e| match &arm.name {
                                Some(n) => e.in_field(field_name(n)),
                                None => e,
                            })?;
                        b.union(open, ty, disc, index, arm.name.as_deref(), v)
                    }
                    _ => unreachable!("scalar types are handled above"),
                }
            }
        })
    }

    fn elements<B: Build<'a>>(
        &self,
        b: &mut B,
        r: &mut Reader<'a>,
        elem: TypeId,
        n: u32,
        depth: u32,
    ) -> Result<B::V> {
        // `n` is bounded by the bytes left (checked by the caller with the element's minimum size).
        let mut seq = b.seq(n as usize);
        for i in 0..n {
            let v = self
                .walk(b, r, elem, depth)
                .map_err(|e| e.at_index(i as u64))?;
            b.seq_push(&mut seq, v);
        }
        Ok(b.seq_end(seq))
    }

    /// The encoder's fast path: the same bytes as [`Graph::encode`] wherever that succeeds, and a
    /// zero-sized [`Bail`] (nothing said about where or why) wherever it might not; the caller then
    /// truncates the output and runs [`Graph::encode`] for the error. Every check of the full
    /// encoder is here (kinds, bounds, field names, enum members, arm names, nesting), only cheaper:
    /// no error values, no path building, field names compared by address first (a decoded value
    /// borrows them from this schema).
    pub(crate) fn encode_fast(
        &self,
        w: &mut Writer<'_>,
        ty: TypeId,
        v: &Value<'_>,
        depth: u32,
    ) -> std::result::Result<(), Bail> {
        let t = self.ty(ty);
        if let Some(r) = encode_scalar(w, t, v) {
            return r;
        }
        if depth >= self.nesting_max {
            return Err(Bail);
        }
        match (t, v) {
            (Type::Array { elem, max }, Value::Array(items)) if items.len() <= *max as usize => {
                w.u32(items.len() as u32);
                for item in items {
                    self.encode_child(w, *elem, item, depth + 1)?;
                }
            }
            (Type::FixedArray { elem, len }, Value::Array(items))
                if items.len() == *len as usize =>
            {
                for item in items {
                    self.encode_child(w, *elem, item, depth + 1)?;
                }
            }
            (Type::Optional(t), Value::Optional(o)) => {
                w.optional(o.is_some());
                if let Some(x) = o {
                    self.encode_child(w, *t, x, depth + 1)?;
                }
            }
            (Type::Struct(s), Value::Struct(fields)) if fields.len() == s.fields.len() => {
                for (f, (name, x)) in s.fields.iter().zip(fields) {
                    if !same_name(&f.name, name) {
                        return Err(Bail);
                    }
                    self.encode_child(w, f.ty, x, depth + 1)?;
                }
            }
            (
                Type::Union(u),
                Value::Union {
                    discriminant,
                    arm,
                    value,
                },
            ) => {
                let dty = u.discriminant.ty;
                let dt = self.ty(dty);
                let key = match (dt, &**discriminant) {
                    (Type::Int, Value::Int(x)) => i64::from(*x),
                    (Type::UInt, Value::UInt(x)) => i64::from(*x),
                    (Type::Enum(_), Value::Enum { value, .. }) => i64::from(*value),
                    _ => return Err(Bail),
                };
                let a = u.arm_for(key).ok_or(Bail)?;
                let named = match (&a.name, arm) {
                    (Some(a), Some(b)) => same_name(a, b),
                    (None, None) => true,
                    _ => false,
                };
                if !named {
                    return Err(Bail);
                }
                encode_scalar(w, dt, discriminant).ok_or(Bail)??;
                self.encode_child(w, a.ty, value, depth + 1)?;
            }
            _ => return Err(Bail),
        }
        Ok(())
    }

    /// A part of a compound at `depth`: a scalar written here, anything else by a call.
    #[inline(always)]
    fn encode_child(
        &self,
        w: &mut Writer<'_>,
        ty: TypeId,
        v: &Value<'_>,
        depth: u32,
    ) -> std::result::Result<(), Bail> {
        match encode_scalar(w, self.ty(ty), v) {
            Some(r) => r,
            None => self.encode_fast(w, ty, v, depth),
        }
    }

    /// Encode `v` as type `ty`.
    pub(crate) fn encode(
        &self,
        w: &mut Writer<'_>,
        ty: TypeId,
        v: &Value<'_>,
        depth: u32,
    ) -> Result<()> {
        let t = self.ty(ty);
        let mismatch = |w: &Writer<'_>, expected: &str| {
            w.error(ErrorKind::Invalid(
                format!("expected {expected}, found {}", v.kind_name()).into(),
            ))
        };
        match (t, v) {
            (Type::Void, Value::Void) => {}
            (Type::Int, Value::Int(x)) => w.i32(*x),
            (Type::UInt, Value::UInt(x)) => w.u32(*x),
            (Type::Hyper, Value::Hyper(x)) => w.i64(*x),
            (Type::UHyper, Value::UHyper(x)) => w.u64(*x),
            (Type::Float, Value::Float(x)) => w.f32(*x),
            (Type::Double, Value::Double(x)) => w.f64(*x),
            (Type::Bool, Value::Bool(x)) => w.bool(*x),
            (Type::Small(s), Value::Int(_) | Value::UInt(_)) => {
                let x = match (s.is_unsigned(), v) {
                    (false, Value::Int(x)) => *x as i64,
                    (true, Value::UInt(x)) => *x as i64,
                    _ => {
                        return Err(mismatch(
                            w,
                            if s.is_unsigned() {
                                "unsigned int"
                            } else {
                                "int"
                            },
                        ));
                    }
                };
                let (lo, hi) = s.range();
                if !(lo..=hi).contains(&x) {
                    return Err(w.error(ErrorKind::ValueOutOfRange {
                        value: x,
                        type_name: s.c_name(),
                    }));
                }
                w.i32(x as i32);
            }
            (Type::Enum(e), Value::Enum { value, .. }) => {
                if !e.contains(*value) {
                    return Err(w.error(ErrorKind::InvalidEnum {
                        value: *value,
                        enum_name: field_name(&e.name),
                    }));
                }
                w.i32(*value);
            }
            (Type::String { max }, Value::String(b)) => w.string(b, *max)?,
            (Type::Opaque { max }, Value::Opaque(b)) => w.opaque_var(b, *max)?,
            (Type::OpaqueFixed { len }, Value::Opaque(b)) => {
                fixed_len(w, LimitKind::Opaque, *len, b.len())?;
                w.opaque_fixed(b);
            }
            (
                Type::Array { .. }
                | Type::FixedArray { .. }
                | Type::Optional(_)
                | Type::Struct(_)
                | Type::Union(_),
                _,
            ) => {
                if depth >= self.nesting_max {
                    return Err(w.error(nesting_error(self.nesting_max, depth + 1)));
                }
                self.encode_compound(w, t, v, depth + 1)?;
            }
            _ => return Err(mismatch(w, &self.describe(ty))),
        }
        Ok(())
    }

    fn encode_compound(
        &self,
        w: &mut Writer<'_>,
        t: &Type,
        v: &Value<'_>,
        inner: u32,
    ) -> Result<()> {
        let mismatch = |w: &Writer<'_>, expected: &str| {
            w.error(ErrorKind::Invalid(
                format!("expected {expected}, found {}", v.kind_name()).into(),
            ))
        };
        match (t, v) {
            (Type::Array { elem, max }, Value::Array(items)) => {
                w.count(items.len(), *max, LimitKind::Array)?;
                for (i, item) in items.iter().enumerate() {
                    self.encode(w, *elem, item, inner)
                        .map_err(|e| e.at_index(i as u64))?;
                }
            }
            (Type::FixedArray { elem, len }, Value::Array(items)) => {
                fixed_len(w, LimitKind::Array, *len, items.len())?;
                for (i, item) in items.iter().enumerate() {
                    self.encode(w, *elem, item, inner)
                        .map_err(|e| e.at_index(i as u64))?;
                }
            }
            (Type::Optional(t), Value::Optional(o)) => {
                w.optional(o.is_some());
                if let Some(x) = o {
                    self.encode(w, *t, x, inner)?;
                }
            }
            (Type::Struct(s), Value::Struct(fields)) => {
                if fields.len() != s.fields.len() {
                    return Err(w.error(ErrorKind::Invalid(
                        format!(
                            "struct {} has {} fields, the value has {}",
                            s.name,
                            s.fields.len(),
                            fields.len()
                        )
                        .into(),
                    )));
                }
                for (f, (name, x)) in s.fields.iter().zip(fields) {
                    if f.name != *name {
                        return Err(w
                            .error(ErrorKind::Invalid(
                                format!("expected field `{}`, found `{name}`", f.name).into(),
                            ))
                            .in_field(field_name(&f.name)));
                    }
                    self.encode(w, f.ty, x, inner)
                        .map_err(|e| e.in_field(field_name(&f.name)))?;
                }
            }
            (
                Type::Union(u),
                Value::Union {
                    discriminant,
                    arm,
                    value,
                },
            ) => {
                let dname = || field_name(&u.discriminant.name);
                let key = self
                    .discriminant_key(w, u.discriminant.ty, discriminant)
                    .map_err(|e| e.in_field(dname()))?;
                let Some(a) = u.arm_for(key) else {
                    return Err(w
                        .error(ErrorKind::InvalidDiscriminant(key))
                        .in_field(dname()));
                };
                if a.name.as_deref() != *arm {
                    return Err(w.error(ErrorKind::Invalid(
                        format!(
                            "discriminant {key} selects arm `{}`, the value names `{}`",
                            a.name.as_deref().unwrap_or("void"),
                            arm.unwrap_or("void")
                        )
                        .into(),
                    )));
                }
                self.encode(w, u.discriminant.ty, discriminant, inner)
                    .map_err(|e| e.in_field(dname()))?;
                self.encode(w, a.ty, value, inner)
                    .map_err(|e| match &a.name {
                        Some(n) => e.in_field(field_name(n)),
                        None => e,
                    })?;
            }
            (t, _) => {
                return Err(mismatch(w, type_kind(t)));
            }
        }
        Ok(())
    }

    fn discriminant_key(&self, w: &Writer<'_>, ty: TypeId, v: &Value<'_>) -> Result<i64> {
        Ok(match (self.ty(ty), v) {
            (Type::Int, Value::Int(x)) => *x as i64,
            (Type::UInt, Value::UInt(x)) => *x as i64,
            (Type::Bool, Value::Bool(x)) => *x as i64,
            (Type::Enum(_), Value::Enum { value, .. }) => *value as i64,
            (Type::Small(s), Value::Int(x)) if !s.is_unsigned() => *x as i64,
            (Type::Small(s), Value::UInt(x)) if s.is_unsigned() => *x as i64,
            _ => {
                return Err(w.error(ErrorKind::Invalid(
                    format!(
                        "expected a {} discriminant, found {}",
                        self.describe(ty),
                        v.kind_name()
                    )
                    .into(),
                )));
            }
        })
    }

    /// A short description of a type for messages.
    pub(crate) fn describe(&self, ty: TypeId) -> String {
        match self.ty(ty) {
            Type::Enum(e) => format!("enum {}", e.name),
            Type::Struct(s) => format!("struct {}", s.name),
            Type::Union(u) => format!("union {}", u.name),
            Type::Small(s) => s.c_name().to_string(),
            Type::String { max } => format!("string<{max}>"),
            Type::Opaque { max } => format!("opaque<{max}>"),
            Type::OpaqueFixed { len } => format!("opaque[{len}]"),
            Type::Array { max, .. } => format!("array<{max}>"),
            Type::FixedArray { len, .. } => format!("array[{len}]"),
            t => type_kind(t).to_string(),
        }
    }
}

/// The encoder's fast path for a value of a scalar type (`None`: a compound type, which
/// `Graph::encode_fast` takes); `Bail` wherever the full encoder might refuse the value.
#[inline(always)]
fn encode_scalar(
    w: &mut Writer<'_>,
    t: &Type,
    v: &Value<'_>,
) -> Option<std::result::Result<(), Bail>> {
    let ok = match (t, v) {
        (
            Type::Array { .. }
            | Type::FixedArray { .. }
            | Type::Optional(_)
            | Type::Struct(_)
            | Type::Union(_),
            _,
        ) => return None,
        (Type::Void, Value::Void) => true,
        (Type::Int, Value::Int(x)) => {
            w.i32(*x);
            true
        }
        (Type::UInt, Value::UInt(x)) => {
            w.u32(*x);
            true
        }
        (Type::Hyper, Value::Hyper(x)) => {
            w.i64(*x);
            true
        }
        (Type::UHyper, Value::UHyper(x)) => {
            w.u64(*x);
            true
        }
        (Type::Float, Value::Float(x)) => {
            w.f32(*x);
            true
        }
        (Type::Double, Value::Double(x)) => {
            w.f64(*x);
            true
        }
        (Type::Bool, Value::Bool(x)) => {
            w.bool(*x);
            true
        }
        (Type::Enum(e), Value::Enum { value, .. }) if e.contains(*value) => {
            w.i32(*value);
            true
        }
        (Type::String { max }, Value::String(b)) | (Type::Opaque { max }, Value::Opaque(b))
            if b.len() <= *max as usize =>
        {
            w.u32(b.len() as u32);
            w.opaque_fixed(b);
            true
        }
        (Type::OpaqueFixed { len }, Value::Opaque(b)) if b.len() == *len as usize => {
            w.opaque_fixed(b);
            true
        }
        (Type::Small(s), Value::Int(_) | Value::UInt(_)) => {
            let x = match (s.is_unsigned(), v) {
                (false, Value::Int(x)) => i64::from(*x),
                (true, Value::UInt(x)) => i64::from(*x),
                _ => return Some(Err(Bail)),
            };
            let (lo, hi) = s.range();
            let fits = (lo..=hi).contains(&x);
            if fits {
                w.i32(x as i32);
            }
            fits
        }
        _ => false,
    };
    Some(if ok { Ok(()) } else { Err(Bail) })
}

/// Names compared by address first: a decoded value borrows its names from the schema.
#[inline(always)]
fn same_name(schema: &str, value: &str) -> bool {
    std::ptr::eq(schema, value) || schema == value
}

fn type_kind(t: &Type) -> &'static str {
    match t {
        Type::Void => "void",
        Type::Int => "int",
        Type::UInt => "unsigned int",
        Type::Hyper => "hyper",
        Type::UHyper => "unsigned hyper",
        Type::Float => "float",
        Type::Double => "double",
        Type::Bool => "bool",
        Type::Small(s) => s.c_name(),
        Type::Enum(_) => "enum",
        Type::String { .. } => "string",
        Type::OpaqueFixed { .. } | Type::Opaque { .. } => "opaque",
        Type::FixedArray { .. } | Type::Array { .. } => "array",
        Type::Optional(_) => "optional",
        Type::Struct(_) => "struct",
        Type::Union(_) => "union",
    }
}

/// A fixed-size item with the wrong number of elements: too many is over the `[N]` limit, too few
/// is a malformed value.
fn fixed_len(w: &Writer<'_>, limit: LimitKind, len: u32, actual: usize) -> Result<()> {
    if actual as u64 > len as u64 {
        return Err(w.error(ErrorKind::OverLimit {
            limit,
            max: len as u64,
            actual: actual as u64,
        }));
    }
    if actual as u64 != len as u64 {
        return Err(w.error(ErrorKind::Invalid(
            format!("fixed size {len}, the value has {actual}").into(),
        )));
    }
    Ok(())
}
