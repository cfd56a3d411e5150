//! Resolution of parsed `.x` files into the compiled type graph and the program/procedure tables.
//!
//! Name resolution works across files, the way rpcgen sees them after `%#include`: a name is looked
//! up in its own file first, then in every other file (if several define it, the ones the file
//! `%#include`s win), then in [`C_CONSTANTS`](super::C_CONSTANTS) for the few numbers libvirt takes
//! from its C headers. C's tag namespace is honoured: `typedef struct X X;` is an alias, not a cycle.

use std::collections::HashMap;

use super::ast::*;
use super::types::*;
use super::{C_CONSTANTS, Procedure, ProgramSchema, SchemaError};
use crate::body::BodyRole;
use crate::header;

/// The result of compiling a set of files.
pub(crate) struct Compiled {
    pub types: Vec<Type>,
    pub min_size: Vec<u32>,
    pub type_names: HashMap<String, TypeId>,
    pub consts: HashMap<String, i64>,
    pub programs: Vec<ProgramSchema>,
    /// The constant a `<N>` / `[N]` was written with, per type it made (`REMOTE_STRING_MAX`).
    pub bound_names: HashMap<TypeId, String>,
}

/// Fixed ids of the primitive types.
pub(crate) const VOID: TypeId = TypeId(0);
const PRIMITIVES: [Type; 12] = [
    Type::Void,
    Type::Int,
    Type::UInt,
    Type::Hyper,
    Type::UHyper,
    Type::Float,
    Type::Double,
    Type::Bool,
    Type::Small(SmallInt::Char),
    Type::Small(SmallInt::UChar),
    Type::Small(SmallInt::Short),
    Type::Small(SmallInt::UShort),
];

#[derive(Clone, Copy)]
enum ConstSrc<'f> {
    /// `const X = value;` or `X = value` in an enum.
    Explicit(&'f ConstRef),
    /// An enum member without a value: previous member + 1, or 0 for the first.
    Auto(Option<usize>),
}

struct ConstEntry<'f> {
    file: usize,
    pos: Pos,
    src: ConstSrc<'f>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EvalState {
    Todo,
    InProgress,
    Done(i64),
}

#[derive(Clone, Copy)]
enum TypeDef<'f> {
    Typedef(&'f Decl),
    Enum(&'f str, &'f EnumBody),
    Struct(&'f str, &'f StructBody),
    Union(&'f str, &'f UnionBody),
}

struct TypeEntry<'f> {
    file: usize,
    pos: Pos,
    def: TypeDef<'f>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Memo {
    InProgress,
    Done(TypeId),
}

struct Ctx<'f> {
    files: &'f [XFile],
    /// Per file, the other files it `%#include`s (matched by file stem).
    includes: Vec<Vec<usize>>,
    consts: Vec<ConstEntry<'f>>,
    const_state: Vec<EvalState>,
    const_names: HashMap<&'f str, Vec<usize>>,
    /// Typedef names.
    typedefs: HashMap<&'f str, Vec<usize>>,
    /// struct / enum / union names (C tags).
    tags: HashMap<&'f str, Vec<usize>>,
    type_entries: Vec<TypeEntry<'f>>,
    memo: Vec<Option<Memo>>,
    types: Vec<Type>,
    /// The named constant behind each bounded type's `<N>` / `[N]`.
    bound_names: HashMap<TypeId, String>,
    /// Current recursion depth of constant evaluation and type compilation.
    depth: u32,
}

/// Deepest chain of definitions referring to each other (libvirt's are under 10).
const COMPILE_DEPTH_MAX: u32 = 200;

fn def_err(file: &XFile, pos: Pos, message: impl Into<String>) -> SchemaError {
    SchemaError::Definition {
        file: file.label.clone(),
        pos,
        message: message.into(),
    }
}

fn file_stem(label: &str) -> &str {
    let base = label.rsplit(['/', '\\']).next().unwrap_or(label);
    base.rsplit_once('.').map_or(base, |(s, _)| s)
}

impl<'f> Ctx<'f> {
    fn new(files: &'f [XFile]) -> Result<Self, SchemaError> {
        let stems: Vec<&str> = files.iter().map(|f| file_stem(&f.label)).collect();
        let includes = files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.includes()
                    .filter_map(|inc| {
                        let stem = file_stem(inc);
                        stems.iter().position(|s| *s == stem).filter(|&j| j != i)
                    })
                    .collect()
            })
            .collect();
        let mut ctx = Ctx {
            files,
            includes,
            consts: Vec::new(),
            const_state: Vec::new(),
            const_names: HashMap::new(),
            typedefs: HashMap::new(),
            tags: HashMap::new(),
            type_entries: Vec::new(),
            memo: Vec::new(),
            types: PRIMITIVES.to_vec(),
            bound_names: HashMap::new(),
            depth: 0,
        };
        for (fi, file) in files.iter().enumerate() {
            for def in &file.definitions {
                ctx.collect(fi, def)?;
            }
        }
        ctx.const_state = vec![EvalState::Todo; ctx.consts.len()];
        ctx.memo = vec![None; ctx.type_entries.len()];
        Ok(ctx)
    }

    fn add_const(
        &mut self,
        fi: usize,
        name: &'f str,
        pos: Pos,
        src: ConstSrc<'f>,
    ) -> Result<usize, SchemaError> {
        let list = self.const_names.entry(name).or_default();
        if let Some(&prev) = list.iter().find(|&&i| self.consts[i].file == fi) {
            let p = self.consts[prev].pos;
            return Err(def_err(
                &self.files[fi],
                pos,
                format!("constant `{name}` is already defined at {p}"),
            ));
        }
        list.push(self.consts.len());
        self.consts.push(ConstEntry { file: fi, pos, src });
        Ok(self.consts.len() - 1)
    }

    fn add_type(
        &mut self,
        fi: usize,
        name: &'f str,
        pos: Pos,
        def: TypeDef<'f>,
        is_tag: bool,
    ) -> Result<(), SchemaError> {
        let map = if is_tag {
            &mut self.tags
        } else {
            &mut self.typedefs
        };
        let list = map.entry(name).or_default();
        if let Some(&prev) = list.iter().find(|&&i| self.type_entries[i].file == fi) {
            let p = self.type_entries[prev].pos;
            return Err(def_err(
                &self.files[fi],
                pos,
                format!("type `{name}` is already defined at {p}"),
            ));
        }
        list.push(self.type_entries.len());
        self.type_entries.push(TypeEntry { file: fi, pos, def });
        Ok(())
    }

    fn collect_enum(&mut self, fi: usize, body: &'f EnumBody) -> Result<(), SchemaError> {
        let mut prev = None;
        for m in &body.members {
            let src = match &m.value {
                Some(v) => ConstSrc::Explicit(v),
                None => ConstSrc::Auto(prev),
            };
            prev = Some(self.add_const(fi, &m.name, m.pos, src)?);
        }
        Ok(())
    }

    /// Collect the enum members of inline enums anywhere inside a type spec (they are constants too).
    fn collect_inline(&mut self, fi: usize, spec: &'f TypeSpec) -> Result<(), SchemaError> {
        match spec {
            TypeSpec::Enum(b) => self.collect_enum(fi, b),
            TypeSpec::Struct(b) => self.collect_struct(fi, b),
            TypeSpec::Union(b) => self.collect_union(fi, b),
            _ => Ok(()),
        }
    }

    fn collect_struct(&mut self, fi: usize, b: &'f StructBody) -> Result<(), SchemaError> {
        for f in &b.fields {
            self.collect_inline(fi, &f.ty)?;
        }
        Ok(())
    }

    fn collect_union(&mut self, fi: usize, b: &'f UnionBody) -> Result<(), SchemaError> {
        self.collect_inline(fi, &b.discriminant.ty)?;
        for a in &b.arms {
            self.collect_inline(fi, &a.decl.ty)?;
        }
        if let Some(d) = &b.default {
            self.collect_inline(fi, &d.ty)?;
        }
        Ok(())
    }

    fn collect(&mut self, fi: usize, def: &'f Definition) -> Result<(), SchemaError> {
        match &def.kind {
            DefKind::Const { name, value } => {
                self.add_const(fi, name, def.pos, ConstSrc::Explicit(value))?;
            }
            DefKind::Typedef(d) => {
                self.collect_inline(fi, &d.ty)?;
                let name = d.name.as_deref().unwrap_or_default();
                // `typedef struct X X;` only restates C's tag: not a new type.
                let self_alias = d.shape == Shape::Plain
                    && matches!(&d.ty, TypeSpec::Named { name: n, tag: Some(_) } if n == name);
                if !self_alias {
                    self.add_type(fi, name, def.pos, TypeDef::Typedef(d), false)?;
                }
            }
            DefKind::Enum { name, body } => {
                self.collect_enum(fi, body)?;
                self.add_type(fi, name, def.pos, TypeDef::Enum(name, body), true)?;
            }
            DefKind::Struct { name, body } => {
                self.collect_struct(fi, body)?;
                self.add_type(fi, name, def.pos, TypeDef::Struct(name, body), true)?;
            }
            DefKind::Union { name, body } => {
                self.collect_union(fi, body)?;
                self.add_type(fi, name, def.pos, TypeDef::Union(name, body), true)?;
            }
        }
        Ok(())
    }

    /// Scoped lookup: own file, else the unique other definition, else the one an include provides.
    fn pick(
        &self,
        candidates: &[usize],
        file_of: impl Fn(usize) -> usize,
        fi: usize,
        name: &str,
        pos: Pos,
    ) -> Result<Option<usize>, SchemaError> {
        if let Some(&c) = candidates.iter().find(|&&c| file_of(c) == fi) {
            return Ok(Some(c));
        }
        match candidates {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => {
                let inc: Vec<usize> = many
                    .iter()
                    .copied()
                    .filter(|&c| self.includes[fi].contains(&file_of(c)))
                    .collect();
                if let [one] = inc[..] {
                    return Ok(Some(one));
                }
                let where_: Vec<&str> = many
                    .iter()
                    .map(|&c| self.files[file_of(c)].label.as_str())
                    .collect();
                Err(def_err(
                    &self.files[fi],
                    pos,
                    format!(
                        "`{name}` is defined in several files ({})",
                        where_.join(", ")
                    ),
                ))
            }
        }
    }

    fn lookup_const(&self, fi: usize, name: &str, pos: Pos) -> Result<Option<usize>, SchemaError> {
        let cands = self.const_names.get(name).map_or(&[][..], |v| &v[..]);
        self.pick(cands, |c| self.consts[c].file, fi, name, pos)
    }

    fn eval_ref(&mut self, fi: usize, r: &ConstRef) -> Result<i64, SchemaError> {
        match r {
            ConstRef::Number(n) => Ok(*n),
            ConstRef::Name(name, pos) => match self.lookup_const(fi, name, *pos)? {
                Some(i) => self.eval_const(i),
                None => C_CONSTANTS
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|&(_, v)| v)
                    .ok_or_else(|| {
                        def_err(&self.files[fi], *pos, format!("unknown constant `{name}`"))
                    }),
            },
        }
    }

    fn eval_const(&mut self, i: usize) -> Result<i64, SchemaError> {
        // Enum members without a value are previous + 1: walk back iteratively (enums are long).
        let mut chain = Vec::new();
        let mut cur = i;
        let mut value = loop {
            match self.const_state[cur] {
                EvalState::Done(v) => break v,
                EvalState::InProgress => {
                    let e = &self.consts[cur];
                    return Err(def_err(
                        &self.files[e.file],
                        e.pos,
                        "constant defined in terms of itself",
                    ));
                }
                EvalState::Todo => {}
            }
            let e = &self.consts[cur];
            match e.src {
                // `prev` is always an earlier entry: no cycle here.
                ConstSrc::Auto(Some(prev)) => {
                    chain.push(cur);
                    cur = prev;
                }
                ConstSrc::Auto(None) => {
                    self.const_state[cur] = EvalState::Done(0);
                    break 0;
                }
                ConstSrc::Explicit(r) => {
                    let fi = e.file;
                    self.const_state[cur] = EvalState::InProgress;
                    self.enter(fi, e.pos)?;
                    let v = self.eval_ref(fi, r);
                    self.depth -= 1;
                    let v = v?;
                    self.const_state[cur] = EvalState::Done(v);
                    break v;
                }
            }
        };
        while let Some(c) = chain.pop() {
            value = value.checked_add(1).ok_or_else(|| {
                let e = &self.consts[c];
                def_err(&self.files[e.file], e.pos, "enum value overflows")
            })?;
            self.const_state[c] = EvalState::Done(value);
        }
        Ok(value)
    }

    /// Guard against hostile definition chains deep enough to exhaust the stack.
    fn enter(&mut self, fi: usize, pos: Pos) -> Result<(), SchemaError> {
        self.depth += 1;
        if self.depth > COMPILE_DEPTH_MAX {
            self.depth -= 1;
            return Err(def_err(
                &self.files[fi],
                pos,
                format!(
                    "definitions refer to each other more than {COMPILE_DEPTH_MAX} levels deep"
                ),
            ));
        }
        Ok(())
    }

    fn eval_bound(&mut self, fi: usize, r: &ConstRef, pos: Pos) -> Result<u32, SchemaError> {
        let v = self.eval_ref(fi, r)?;
        u32::try_from(v).map_err(|_| {
            def_err(
                &self.files[fi],
                pos,
                format!("size `{r}` = {v} is not in 0..=4294967295"),
            )
        })
    }

    fn push(&mut self, t: Type) -> TypeId {
        self.types.push(t);
        TypeId((self.types.len() - 1) as u32)
    }

    fn lookup_type(
        &self,
        fi: usize,
        name: &str,
        tag: Option<Tag>,
        pos: Pos,
    ) -> Result<usize, SchemaError> {
        let file_of = |c: usize| self.type_entries[c].file;
        if tag.is_none() {
            let cands = self.typedefs.get(name).map_or(&[][..], |v| &v[..]);
            if let Some(t) = self.pick(cands, file_of, fi, name, pos)? {
                return Ok(t);
            }
        }
        let cands = self.tags.get(name).map_or(&[][..], |v| &v[..]);
        match self.pick(cands, file_of, fi, name, pos)? {
            Some(t) => {
                let kind_ok = matches!(
                    (tag, self.type_entries[t].def),
                    (None, _)
                        | (Some(Tag::Struct), TypeDef::Struct(..))
                        | (Some(Tag::Enum), TypeDef::Enum(..))
                        | (Some(Tag::Union), TypeDef::Union(..))
                );
                if !kind_ok {
                    return Err(def_err(
                        &self.files[fi],
                        pos,
                        format!("`{name}` is not a {}", tag_name(tag)),
                    ));
                }
                Ok(t)
            }
            None => Err(def_err(
                &self.files[fi],
                pos,
                format!("unknown type `{name}`"),
            )),
        }
    }

    /// The compiled id of a named definition.
    fn entry_type(&mut self, t: usize) -> Result<TypeId, SchemaError> {
        match self.memo[t] {
            Some(Memo::Done(id)) => return Ok(id),
            Some(Memo::InProgress) => {
                let e = &self.type_entries[t];
                return Err(def_err(
                    &self.files[e.file],
                    e.pos,
                    "typedef defined in terms of itself",
                ));
            }
            None => {}
        }
        let TypeEntry { file: fi, def, pos } = self.type_entries[t];
        self.enter(fi, pos)?;
        let id = self.entry_type_inner(t, fi, def);
        self.depth -= 1;
        let id = id?;
        self.memo[t] = Some(Memo::Done(id));
        Ok(id)
    }

    fn entry_type_inner(
        &mut self,
        t: usize,
        fi: usize,
        def: TypeDef<'f>,
    ) -> Result<TypeId, SchemaError> {
        Ok(match def {
            TypeDef::Typedef(d) => {
                self.memo[t] = Some(Memo::InProgress);
                self.decl(fi, d)?
            }
            TypeDef::Enum(name, body) => self.enum_type(fi, name, body)?,
            TypeDef::Struct(name, body) => {
                // Reserve the id first so that recursive references resolve to it.
                let id = self.push(Type::Void);
                self.memo[t] = Some(Memo::Done(id));
                let st = self.struct_type(fi, name, body)?;
                self.types[id.index()] = Type::Struct(st);
                id
            }
            TypeDef::Union(name, body) => {
                let id = self.push(Type::Void);
                self.memo[t] = Some(Memo::Done(id));
                let u = self.union_type(fi, name, body)?;
                self.types[id.index()] = Type::Union(u);
                id
            }
        })
    }

    fn enum_type(
        &mut self,
        fi: usize,
        name: &str,
        body: &'f EnumBody,
    ) -> Result<TypeId, SchemaError> {
        let mut members = Vec::with_capacity(body.members.len());
        for m in &body.members {
            let i = self
                .lookup_const(fi, &m.name, m.pos)?
                .ok_or_else(|| def_err(&self.files[fi], m.pos, "enum member not collected"))?;
            let v = self.eval_const(i)?;
            let v = i32::try_from(v).map_err(|_| {
                def_err(
                    &self.files[fi],
                    m.pos,
                    format!("enum value {v} of `{}` does not fit an int", m.name),
                )
            })?;
            members.push((m.name.clone(), v));
        }
        Ok(self.push(Type::Enum(EnumType::new(name.to_string(), members))))
    }

    fn struct_type(
        &mut self,
        fi: usize,
        name: &str,
        body: &'f StructBody,
    ) -> Result<StructType, SchemaError> {
        let mut fields = Vec::with_capacity(body.fields.len());
        for d in &body.fields {
            let fname = d.name.clone().unwrap_or_default();
            if fields.iter().any(|f: &Field| f.name == fname) {
                return Err(def_err(
                    &self.files[fi],
                    d.pos,
                    format!("duplicate field `{fname}` in `{name}`"),
                ));
            }
            let ty = self.decl(fi, d)?;
            fields.push(Field { name: fname, ty });
        }
        Ok(StructType {
            name: name.to_string(),
            fields,
        })
    }

    fn union_type(
        &mut self,
        fi: usize,
        name: &str,
        body: &'f UnionBody,
    ) -> Result<UnionType, SchemaError> {
        let d = &body.discriminant;
        let dty = self.decl(fi, d)?;
        let domain = match &self.types[dty.index()] {
            Type::Int | Type::Enum(_) => Domain::Signed,
            Type::UInt => Domain::Unsigned,
            Type::Bool => Domain::Bool,
            Type::Small(s) if s.is_unsigned() => Domain::Unsigned,
            Type::Small(_) => Domain::Signed,
            _ => {
                return Err(def_err(
                    &self.files[fi],
                    d.pos,
                    "a union discriminant must be int, unsigned int, bool or an enum",
                ));
            }
        };
        let mut arms = Vec::with_capacity(body.arms.len() + 1);
        let mut cases: Vec<(i64, u32)> = Vec::new();
        for (ai, a) in body.arms.iter().enumerate() {
            let mut vals = Vec::with_capacity(a.cases.len());
            for c in &a.cases {
                let pos = match c {
                    ConstRef::Name(_, p) => *p,
                    ConstRef::Number(_) => a.pos,
                };
                let raw = self.eval_ref(fi, c)?;
                let v = domain.normalise(raw).ok_or_else(|| {
                    def_err(
                        &self.files[fi],
                        pos,
                        format!("case value {raw} does not fit the discriminant's type"),
                    )
                })?;
                if cases.iter().any(|&(cv, _)| cv == v) {
                    return Err(def_err(
                        &self.files[fi],
                        pos,
                        format!("duplicate case {raw}"),
                    ));
                }
                cases.push((v, ai as u32));
                vals.push(v);
            }
            arms.push(Arm {
                cases: vals,
                name: a.decl.name.clone(),
                ty: self.decl(fi, &a.decl)?,
            });
        }
        let default = match &body.default {
            Some(dd) => {
                arms.push(Arm {
                    cases: Vec::new(),
                    name: dd.name.clone(),
                    ty: self.decl(fi, dd)?,
                });
                Some(arms.len() - 1)
            }
            None => None,
        };
        Ok(UnionType::new(
            name.to_string(),
            Field {
                name: d.name.clone().unwrap_or_default(),
                ty: dty,
            },
            arms,
            default,
            cases,
        ))
    }

    fn spec(&mut self, fi: usize, spec: &'f TypeSpec, pos: Pos) -> Result<TypeId, SchemaError> {
        Ok(match spec {
            TypeSpec::Void => VOID,
            TypeSpec::Int => TypeId(1),
            TypeSpec::UInt => TypeId(2),
            TypeSpec::Hyper => TypeId(3),
            TypeSpec::UHyper => TypeId(4),
            TypeSpec::Float => TypeId(5),
            TypeSpec::Double => TypeId(6),
            TypeSpec::Bool => TypeId(7),
            TypeSpec::Char => TypeId(8),
            TypeSpec::UChar => TypeId(9),
            TypeSpec::Short => TypeId(10),
            TypeSpec::UShort => TypeId(11),
            TypeSpec::Opaque | TypeSpec::String => {
                return Err(def_err(
                    &self.files[fi],
                    pos,
                    "`opaque`/`string` need a size",
                ));
            }
            TypeSpec::Named { name, tag } => {
                let t = self.lookup_type(fi, name, *tag, pos)?;
                self.entry_type(t)?
            }
            TypeSpec::Enum(b) => self.enum_type(fi, "<anonymous enum>", b)?,
            TypeSpec::Struct(b) => {
                let st = self.struct_type(fi, "<anonymous struct>", b)?;
                self.push(Type::Struct(st))
            }
            TypeSpec::Union(b) => {
                let u = self.union_type(fi, "<anonymous union>", b)?;
                self.push(Type::Union(u))
            }
        })
    }

    /// Compile a declaration. Inline types, named references and typedefs all pass through here,
    /// so together with the guard in `entry_type` this bounds all compile recursion.
    fn decl(&mut self, fi: usize, d: &'f Decl) -> Result<TypeId, SchemaError> {
        self.enter(fi, d.pos)?;
        let r = self.decl_inner(fi, d);
        self.depth -= 1;
        r
    }

    fn decl_inner(&mut self, fi: usize, d: &'f Decl) -> Result<TypeId, SchemaError> {
        let id = self.decl_type(fi, d)?;
        let bound = match &d.shape {
            Shape::Fixed(ConstRef::Name(n, _)) | Shape::Variable(Some(ConstRef::Name(n, _))) => {
                Some(n)
            }
            _ => None,
        };
        if let Some(n) = bound {
            self.bound_names.insert(id, n.clone());
        }
        Ok(id)
    }

    fn decl_type(&mut self, fi: usize, d: &'f Decl) -> Result<TypeId, SchemaError> {
        match (&d.ty, &d.shape) {
            (TypeSpec::String, Shape::Variable(b)) => {
                let max = self.opt_bound(fi, b.as_ref(), d.pos)?;
                return Ok(self.push(Type::String { max }));
            }
            (TypeSpec::Opaque, Shape::Variable(b)) => {
                let max = self.opt_bound(fi, b.as_ref(), d.pos)?;
                return Ok(self.push(Type::Opaque { max }));
            }
            (TypeSpec::Opaque, Shape::Fixed(n)) => {
                let len = self.eval_bound(fi, n, d.pos)?;
                return Ok(self.push(Type::OpaqueFixed { len }));
            }
            _ => {}
        }
        let base = self.spec(fi, &d.ty, d.pos)?;
        Ok(match &d.shape {
            Shape::Plain => base,
            Shape::Fixed(n) => {
                let len = self.eval_bound(fi, n, d.pos)?;
                self.push(Type::FixedArray { elem: base, len })
            }
            Shape::Variable(b) => {
                let max = self.opt_bound(fi, b.as_ref(), d.pos)?;
                self.push(Type::Array { elem: base, max })
            }
            Shape::Optional => self.push(Type::Optional(base)),
        })
    }

    fn opt_bound(&mut self, fi: usize, b: Option<&ConstRef>, pos: Pos) -> Result<u32, SchemaError> {
        match b {
            Some(r) => self.eval_bound(fi, r, pos),
            None => Ok(u32::MAX),
        }
    }
}

fn tag_name(tag: Option<Tag>) -> &'static str {
    match tag {
        Some(Tag::Struct) => "struct",
        Some(Tag::Enum) => "enum",
        Some(Tag::Union) => "union",
        None => "type",
    }
}

#[derive(Clone, Copy)]
enum Domain {
    Signed,
    Unsigned,
    Bool,
}

impl Domain {
    fn normalise(self, v: i64) -> Option<i64> {
        match self {
            Domain::Signed => i32::try_from(v)
                .ok()
                .or_else(|| u32::try_from(v).ok().map(|u| u as i32))
                .map(i64::from),
            Domain::Unsigned => u32::try_from(v)
                .ok()
                .or_else(|| i32::try_from(v).ok().map(|i| i as u32))
                .map(i64::from),
            Domain::Bool => (v == 0 || v == 1).then_some(v),
        }
    }
}

/// Smallest encoded size of every type (a lower bound for recursive types), saturating at u32::MAX.
fn min_sizes(types: &[Type]) -> Vec<u32> {
    let mut min = vec![0u64; types.len()];
    // Fixpoint from below; recursive types converge because recursion only goes through optionals
    // and variable arrays (both 4 bytes minimum) or it is infinite (then the cap stops the loop).
    for _ in 0..64 {
        let mut changed = false;
        for (i, t) in types.iter().enumerate() {
            let m = |id: TypeId| min[id.index()];
            let v: u64 = match t {
                Type::Void => 0,
                Type::Int
                | Type::UInt
                | Type::Float
                | Type::Bool
                | Type::Small(_)
                | Type::Enum(_) => 4,
                Type::Hyper | Type::UHyper | Type::Double => 8,
                Type::String { .. }
                | Type::Opaque { .. }
                | Type::Array { .. }
                | Type::Optional(_) => 4,
                Type::OpaqueFixed { len } => crate::xdr::padded(*len as u64).unwrap_or(u64::MAX),
                Type::FixedArray { elem, len } => m(*elem).saturating_mul(*len as u64),
                Type::Struct(s) => s.fields.iter().fold(0u64, |a, f| a.saturating_add(m(f.ty))),
                Type::Union(u) => {
                    let arms = u.arms.iter().map(|a| m(a.ty)).min().unwrap_or(0);
                    m(u.discriminant.ty).saturating_add(arms)
                }
            };
            let v = v.min(u32::MAX as u64);
            if v != min[i] {
                min[i] = v;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    min.into_iter().map(|v| v as u32).collect()
}

fn normalise_name(s: &str) -> String {
    s.chars()
        .filter(|&c| c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `prefix_NAME_args` or `prefixNameArgs` (libvirt's gendispatch.pl convention) → (normalised NAME, role).
fn body_struct_key(name: &str, prefix: &str) -> Option<(String, BodyRole)> {
    let rest = name.strip_prefix(prefix)?;
    for role in BodyRole::ALL {
        // `_args` / `Args`, from the role's name.
        let us = role.name();
        let mut camel = us.to_string();
        camel[..1].make_ascii_uppercase();
        if let Some(mid) = rest
            .strip_prefix('_')
            .and_then(|r| r.strip_suffix(us))
            .and_then(|r| r.strip_suffix('_'))
            && !mid.is_empty()
        {
            return Some((normalise_name(mid), role));
        }
        if let Some(mid) = rest.strip_suffix(camel.as_str())
            && !mid.is_empty()
            && !mid.starts_with('_')
        {
            return Some((normalise_name(mid), role));
        }
    }
    None
}

impl Ctx<'_> {
    /// The program a file defines, if it has a procedure enum and a `*_PROGRAM` constant.
    fn program(&mut self, fi: usize) -> Result<Option<ProgramSchema>, SchemaError> {
        let file = &self.files[fi];
        let proc_enum = file.definitions.iter().find_map(|d| match &d.kind {
            DefKind::Enum { name, body }
                if name.ends_with("_procedure") || name.ends_with("Procedure") =>
            {
                Some((d.pos, name.as_str(), body))
            }
            _ => None,
        });
        let Some((enum_pos, enum_name, body)) = proc_enum else {
            return Ok(None);
        };
        let struct_prefix = enum_name
            .strip_suffix("_procedure")
            .or_else(|| enum_name.strip_suffix("Procedure"))
            .unwrap_or(enum_name);
        let consts: Vec<(&str, &ConstRef, Pos)> = file
            .definitions
            .iter()
            .filter_map(|d| match &d.kind {
                DefKind::Const { name, value } => Some((name.as_str(), value, d.pos)),
                _ => None,
            })
            .collect();
        let progs: Vec<_> = consts
            .iter()
            .filter(|(n, _, _)| n.ends_with("_PROGRAM"))
            .collect();
        let &&(prog_const, prog_ref, prog_pos) = match progs.as_slice() {
            [one] => one,
            [] => {
                return Err(def_err(
                    file,
                    enum_pos,
                    format!("`{enum_name}` found but no `*_PROGRAM` constant in the file"),
                ));
            }
            _ => {
                return Err(def_err(
                    file,
                    enum_pos,
                    "several `*_PROGRAM` constants in one file",
                ));
            }
        };
        let number = self.eval_ref(fi, prog_ref)?;
        let number = u32::try_from(number).map_err(|_| {
            def_err(
                file,
                prog_pos,
                format!("program number {number} does not fit 32 bits"),
            )
        })?;
        let vers_prefix = prog_const.strip_suffix("PROGRAM").unwrap_or(prog_const);
        let version = match consts
            .iter()
            .find(|(n, _, _)| n.starts_with(vers_prefix) && n.ends_with("_VERSION"))
        {
            Some(&(_, r, pos)) => {
                let v = self.eval_ref(fi, r)?;
                u32::try_from(v).map_err(|_| {
                    def_err(
                        file,
                        pos,
                        format!("program version {v} does not fit 32 bits"),
                    )
                })?
            }
            None => 1,
        };
        // Body structs: top-level structs of this file named after the procedure.
        let mut bodies: HashMap<String, [Option<(String, TypeId)>; 3]> = HashMap::new();
        for (di, d) in file.definitions.iter().enumerate() {
            let DefKind::Struct { name, .. } = &d.kind else {
                continue;
            };
            let Some((key, role)) = body_struct_key(name, struct_prefix) else {
                continue;
            };
            let t = self
                .tags
                .get(name.as_str())
                .and_then(|v| v.iter().copied().find(|&t| self.type_entries[t].file == fi))
                .ok_or_else(|| {
                    def_err(
                        file,
                        d.pos,
                        format!("struct `{name}` (#{di}) not collected"),
                    )
                })?;
            let id = self.entry_type(t)?;
            bodies.entry(key).or_default()[role as usize] = Some((name.clone(), id));
        }
        let mut procedures: Vec<Procedure> = Vec::with_capacity(body.members.len());
        for m in &body.members {
            let Some((_, stripped)) = m.name.split_once("_PROC_") else {
                return Err(def_err(
                    file,
                    m.pos,
                    format!("procedure `{}` has no `_PROC_` in its name", m.name),
                ));
            };
            let i = self
                .lookup_const(fi, &m.name, m.pos)?
                .ok_or_else(|| def_err(file, m.pos, "procedure not collected"))?;
            let number = self.eval_const(i)?;
            let number = i32::try_from(number).map_err(|_| {
                def_err(
                    file,
                    m.pos,
                    format!("procedure number {number} does not fit an int"),
                )
            })?;
            if let Some(p) = procedures.iter().find(|p| p.number == number) {
                return Err(def_err(
                    file,
                    m.pos,
                    format!("procedure number {number} is also `{}`", p.constant),
                ));
            }
            let [args, ret, msg] = bodies
                .get(&normalise_name(stripped))
                .cloned()
                .unwrap_or_default();
            procedures.push(Procedure {
                number,
                name: stripped.to_string(),
                constant: m.name.clone(),
                args,
                ret,
                msg,
                annotations: m.annotations.clone(),
            });
        }
        procedures.sort_by_key(|p| p.number);
        let name = header::program(number)
            .map(|p| p.name.to_string())
            .unwrap_or_else(|| struct_prefix.to_string());
        Ok(Some(ProgramSchema {
            number,
            version,
            name,
            file: file.label.clone(),
            procedure_enum: enum_name.to_string(),
            struct_prefix: struct_prefix.to_string(),
            procedures,
        }))
    }
}

/// Compile parsed files into a schema.
pub(crate) fn compile(files: &[XFile]) -> Result<Compiled, SchemaError> {
    let mut ctx = Ctx::new(files)?;
    // Compile every named type (so that errors anywhere are reported, and names are queryable).
    let mut type_names = HashMap::new();
    for t in 0..ctx.type_entries.len() {
        let id = ctx.entry_type(t)?;
        let name = match ctx.type_entries[t].def {
            TypeDef::Typedef(d) => d.name.as_deref().unwrap_or_default(),
            TypeDef::Enum(n, _) | TypeDef::Struct(n, _) | TypeDef::Union(n, _) => n,
        };
        type_names.entry(name.to_string()).or_insert(id);
    }
    let mut consts = HashMap::new();
    let mut names: Vec<(&str, Vec<usize>)> = ctx
        .const_names
        .iter()
        .map(|(n, v)| (*n, v.clone()))
        .collect();
    names.sort_unstable();
    for (name, list) in names {
        // Several files may define the same name: keep the first file's value.
        let v = ctx.eval_const(list[0])?;
        consts.insert(name.to_string(), v);
    }
    for i in 0..ctx.consts.len() {
        ctx.eval_const(i)?;
    }
    let mut programs: Vec<ProgramSchema> = Vec::new();
    for fi in 0..files.len() {
        if let Some(p) = ctx.program(fi)? {
            if let Some(q) = programs
                .iter()
                .find(|q| q.number == p.number && q.version == p.version)
            {
                return Err(SchemaError::Definition {
                    file: p.file.clone(),
                    pos: Pos::default(),
                    message: format!(
                        "program {:#010x} version {} is also defined by {}",
                        p.number, p.version, q.file
                    ),
                });
            }
            programs.push(p);
        }
    }
    let min_size = min_sizes(&ctx.types);
    Ok(Compiled {
        types: ctx.types,
        min_size,
        type_names,
        consts,
        programs,
        bound_names: ctx.bound_names,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_struct_names() {
        let k = body_struct_key;
        assert_eq!(
            k("remote_connect_open_args", "remote"),
            Some(("connectopen".into(), BodyRole::Args))
        );
        assert_eq!(
            k("remote_connect_open_ret", "remote"),
            Some(("connectopen".into(), BodyRole::Ret))
        );
        assert_eq!(
            k(
                "virLockSpaceProtocolCreateLockSpaceArgs",
                "virLockSpaceProtocol"
            ),
            Some(("createlockspace".into(), BodyRole::Args))
        );
        assert_eq!(
            k("virLXCMonitorExitEventMsg", "virLXCMonitor"),
            Some(("exitevent".into(), BodyRole::Msg))
        );
        assert_eq!(k("remote_args", "remote"), None);
        assert_eq!(k("remote_nonnull_domain", "remote"), None);
        assert_eq!(normalise_name("CREATE_LOCKSPACE"), "createlockspace");
    }
}
