//! What changed on the wire between two schemas (two libvirt versions, or two source trees).
//!
//! [`Schema::diff`] compares programs (by number and version), procedures (by number), every named
//! type (struct, union, enum, typedef) and every constant. A type's entry lists what changes its
//! encoding: a field added, removed or moved, a type changed, a bound (`<N>`, `[N]`) raised or
//! lowered — named by the constant it was written with —, a union arm added or removed, an enum
//! member added, removed or renumbered. Bounds are compared on the compiled types, so a constant
//! raised between versions (`REMOTE_*_MAX`) shows on every field and typedef that uses it.
//! A named struct or union used inside another is compared by name only; its own entry says what
//! changed in it, and [`ProcedureChange`] lists each procedure body that reaches a changed type.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use super::{Procedure, Schema, Type, TypeId};
use crate::body::BodyRole;

/// Everything that differs between two schemas, `from` → `to`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaDiff {
    /// Programs present in one schema only.
    pub programs: Vec<ProgramChange>,
    /// Procedures added, removed or renamed, bodies whose struct or whose encoding changed.
    pub procedures: Vec<ProcedureChange>,
    /// Named types added, removed or changed, by name.
    pub types: Vec<TypeChange>,
    /// Constants (`const` and enum members) added, removed or changed, by name.
    pub constants: Vec<ConstantChange>,
}

/// Present in one schema only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Only in `to`.
    Added,
    /// Only in `from`.
    Removed,
}

impl Presence {
    /// `added` / `removed`.
    pub fn name(self) -> &'static str {
        match self {
            Presence::Added => "added",
            Presence::Removed => "removed",
        }
    }
}

/// A program present in one schema only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramChange {
    /// Short name (`remote`).
    pub name: String,
    /// Program number.
    pub number: u32,
    /// Program version.
    pub version: u32,
    /// Added or removed.
    pub change: Presence,
}

/// One change to one procedure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcedureChange {
    /// The program's short name.
    pub program: String,
    /// The procedure number.
    pub number: i32,
    /// The procedure's name in `to` (in `from` when removed).
    pub name: String,
    /// What changed.
    pub change: ProcedureDelta,
}

/// What changed in a procedure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcedureDelta {
    /// New in `to`.
    Added,
    /// Gone in `to`.
    Removed,
    /// Same number, another name.
    Renamed {
        /// The name in `from`.
        from: String,
    },
    /// The body of a role is another struct (or void).
    BodyStruct {
        /// args, ret or msg.
        role: BodyRole,
        /// The struct in `from` (`None`: void).
        from: Option<String>,
        /// The struct in `to`.
        to: Option<String>,
    },
    /// The body struct is the same name but its encoding changed: these changed types are reached.
    BodyEncoding {
        /// args, ret or msg.
        role: BodyRole,
        /// The body struct.
        body: String,
        /// The changed named types the body reaches (itself included), sorted.
        via: Vec<String>,
    },
}

/// The kind of a named type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TypeKind {
    /// `struct`.
    Struct,
    /// `union`.
    Union,
    /// `enum`.
    Enum,
    /// `typedef` of anything else.
    Typedef,
}

impl TypeKind {
    /// As written in `.x` files.
    pub fn name(self) -> &'static str {
        match self {
            TypeKind::Struct => "struct",
            TypeKind::Union => "union",
            TypeKind::Enum => "enum",
            TypeKind::Typedef => "typedef",
        }
    }
}

/// A named type that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeChange {
    /// The type's name.
    pub name: String,
    /// Its kind (in `to`, or in `from` when removed).
    pub kind: TypeKind,
    /// What changed.
    pub change: TypeDelta,
}

/// What changed in a named type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeDelta {
    /// New in `to`.
    Added,
    /// Gone in `to`.
    Removed,
    /// Its encoding changed: one entry per field / arm / member / bound.
    Changed(Vec<Change>),
}

/// One encoding change inside a type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Where: a field path (`params[].value`, `*` for an optional's target); empty for the type itself.
    pub path: String,
    /// What.
    pub what: ChangeKind,
}

/// The kinds of encoding change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// A struct field new in `to`, at this position.
    FieldAdded {
        /// Position in `to`'s field list (from 0).
        index: usize,
        /// Its type.
        ty: String,
    },
    /// A struct field gone in `to`.
    FieldRemoved {
        /// Position in `from`'s field list.
        index: usize,
        /// Its type in `from`.
        ty: String,
    },
    /// The fields both versions have are in another order.
    FieldsReordered {
        /// `from`'s order of the common fields.
        from: Vec<String>,
        /// `to`'s order.
        to: Vec<String>,
    },
    /// Another type.
    TypeChanged {
        /// As described in `from`.
        from: String,
        /// As described in `to`.
        to: String,
    },
    /// A bound raised or lowered: `<N>` (`fixed` false) or `[N]` (`fixed` true).
    Bound {
        /// The bound in `from` (`u32::MAX` for `<>`).
        from: u32,
        /// The bound in `to`.
        to: u32,
        /// The constant it was written with in `from`.
        from_const: Option<String>,
        /// The constant in `to`.
        to_const: Option<String>,
        /// `[N]` rather than `<N>`.
        fixed: bool,
    },
    /// A union arm new in `to`.
    ArmAdded {
        /// Its case values (empty: the default arm).
        cases: Vec<i64>,
        /// Its type.
        ty: String,
    },
    /// A union arm gone in `to`.
    ArmRemoved {
        /// Its case values in `from`.
        cases: Vec<i64>,
        /// Its type in `from`.
        ty: String,
    },
    /// An enum member new in `to`.
    MemberAdded {
        /// Its name.
        name: String,
        /// Its value.
        value: i32,
    },
    /// An enum member gone in `to`.
    MemberRemoved {
        /// Its name.
        name: String,
        /// Its value in `from`.
        value: i32,
    },
    /// An enum member with another value.
    MemberValue {
        /// Its name.
        name: String,
        /// The value in `from`.
        from: i32,
        /// The value in `to`.
        to: i32,
    },
}

/// A constant that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConstantChange {
    /// Its name.
    pub name: String,
    /// Its value in `from` (`None`: new).
    pub from: Option<i64>,
    /// Its value in `to` (`None`: gone).
    pub to: Option<i64>,
}

impl SchemaDiff {
    /// True when nothing differs.
    pub fn is_empty(&self) -> bool {
        self.programs.is_empty()
            && self.procedures.is_empty()
            && self.types.is_empty()
            && self.constants.is_empty()
    }

    /// Counts for a summary line.
    pub fn counts(&self) -> DiffCounts {
        let mut c = DiffCounts::default();
        for p in &self.programs {
            match p.change {
                Presence::Added => c.programs_added += 1,
                Presence::Removed => c.programs_removed += 1,
            }
        }
        for p in &self.procedures {
            match p.change {
                ProcedureDelta::Added => c.procedures_added += 1,
                ProcedureDelta::Removed => c.procedures_removed += 1,
                ProcedureDelta::Renamed { .. } => c.procedures_renamed += 1,
                ProcedureDelta::BodyStruct { .. } | ProcedureDelta::BodyEncoding { .. } => {
                    c.bodies_changed += 1
                }
            }
        }
        for t in &self.types {
            match &t.change {
                TypeDelta::Added => c.types_added += 1,
                TypeDelta::Removed => c.types_removed += 1,
                TypeDelta::Changed(ch) => {
                    c.types_changed += 1;
                    c.bound_changes += ch
                        .iter()
                        .filter(|x| matches!(x.what, ChangeKind::Bound { .. }))
                        .count();
                }
            }
        }
        for k in &self.constants {
            match (k.from, k.to) {
                (None, _) => c.constants_added += 1,
                (_, None) => c.constants_removed += 1,
                _ => c.constants_changed += 1,
            }
        }
        c
    }
}

/// How many of each change a [`SchemaDiff`] holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct DiffCounts {
    pub programs_added: usize,
    pub programs_removed: usize,
    pub procedures_added: usize,
    pub procedures_removed: usize,
    pub procedures_renamed: usize,
    /// Procedure bodies (one per role) whose struct or encoding changed.
    pub bodies_changed: usize,
    pub types_added: usize,
    pub types_removed: usize,
    pub types_changed: usize,
    /// Bound changes across all changed types (one per field or typedef).
    pub bound_changes: usize,
    pub constants_added: usize,
    pub constants_removed: usize,
    pub constants_changed: usize,
}

/// Deepest nesting of anonymous types compared (libvirt's are a few levels).
const DEPTH_MAX: u32 = 64;

struct Cmp<'a> {
    a: &'a Schema,
    b: &'a Schema,
}

fn role_name(r: BodyRole) -> &'static str {
    match r {
        BodyRole::Args => "args",
        BodyRole::Ret => "ret",
        BodyRole::Msg => "msg",
    }
}

/// The kind of the named type `name` whose compiled type is `ty`.
fn kind_of(name: &str, ty: &Type) -> TypeKind {
    match ty {
        Type::Struct(s) if s.name == name => TypeKind::Struct,
        Type::Union(u) if u.name == name => TypeKind::Union,
        Type::Enum(e) if e.name == name => TypeKind::Enum,
        _ => TypeKind::Typedef,
    }
}

fn is_anonymous(name: &str) -> bool {
    name.starts_with('<')
}

fn join(path: &str, part: &str) -> String {
    if path.is_empty() {
        part.to_string()
    } else if part.starts_with('[') || part.starts_with('*') {
        format!("{path}{part}")
    } else {
        format!("{path}.{part}")
    }
}

impl Cmp<'_> {
    /// Compare two types at `path`. `top` compares a named struct/union/enum's content; below the
    /// top, named ones are compared by name (their own entries hold their changes).
    fn cmp(&self, a: TypeId, b: TypeId, path: &str, top: bool, depth: u32, out: &mut Vec<Change>) {
        if depth > DEPTH_MAX {
            return;
        }
        let (ta, tb) = (self.a.ty(a), self.b.ty(b));
        let changed = |out: &mut Vec<Change>| {
            out.push(Change {
                path: path.to_string(),
                what: ChangeKind::TypeChanged {
                    from: self.a.declared(a),
                    to: self.b.declared(b),
                },
            })
        };
        let bound = |out: &mut Vec<Change>, from: u32, to: u32, fixed: bool| {
            let (fc, tc) = (self.a.bound_constant(a), self.b.bound_constant(b));
            if from != to {
                out.push(Change {
                    path: path.to_string(),
                    what: ChangeKind::Bound {
                        from,
                        to,
                        from_const: fc.map(str::to_string),
                        to_const: tc.map(str::to_string),
                        fixed,
                    },
                });
            }
        };
        match (ta, tb) {
            (Type::Struct(x), Type::Struct(y))
                if top || (is_anonymous(&x.name) && is_anonymous(&y.name)) =>
            {
                self.fields(&x.fields, &y.fields, path, depth, out)
            }
            (Type::Union(x), Type::Union(y))
                if top || (is_anonymous(&x.name) && is_anonymous(&y.name)) =>
            {
                let d = join(path, &y.discriminant.name);
                self.cmp(
                    x.discriminant.ty,
                    y.discriminant.ty,
                    &d,
                    false,
                    depth + 1,
                    out,
                );
                self.arms(x, y, path, depth, out);
            }
            (Type::Enum(x), Type::Enum(y))
                if top || (is_anonymous(&x.name) && is_anonymous(&y.name)) =>
            {
                members(&x.members, &y.members, path, out)
            }
            (Type::Struct(x), Type::Struct(y)) if x.name == y.name => {}
            (Type::Union(x), Type::Union(y)) if x.name == y.name => {}
            (Type::Enum(x), Type::Enum(y)) if x.name == y.name => {}
            (Type::String { max: x }, Type::String { max: y })
            | (Type::Opaque { max: x }, Type::Opaque { max: y }) => bound(out, *x, *y, false),
            (Type::OpaqueFixed { len: x }, Type::OpaqueFixed { len: y }) => {
                bound(out, *x, *y, true)
            }
            (Type::Array { elem: ea, max: x }, Type::Array { elem: eb, max: y }) => {
                bound(out, *x, *y, false);
                self.cmp(*ea, *eb, &join(path, "[]"), false, depth + 1, out);
            }
            (Type::FixedArray { elem: ea, len: x }, Type::FixedArray { elem: eb, len: y }) => {
                bound(out, *x, *y, true);
                self.cmp(*ea, *eb, &join(path, "[]"), false, depth + 1, out);
            }
            (Type::Optional(x), Type::Optional(y)) => {
                self.cmp(*x, *y, &join(path, "*"), false, depth + 1, out)
            }
            (x, y) if std::mem::discriminant(x) == std::mem::discriminant(y) => {
                if x != y {
                    changed(out)
                }
            }
            _ => changed(out),
        }
    }

    fn fields(
        &self,
        x: &[super::Field],
        y: &[super::Field],
        path: &str,
        depth: u32,
        out: &mut Vec<Change>,
    ) {
        let ix: HashMap<&str, usize> = x.iter().enumerate().map(|(i, f)| (&*f.name, i)).collect();
        let iy: HashMap<&str, usize> = y.iter().enumerate().map(|(i, f)| (&*f.name, i)).collect();
        for (i, f) in x.iter().enumerate() {
            if !iy.contains_key(&*f.name) {
                out.push(Change {
                    path: join(path, &f.name),
                    what: ChangeKind::FieldRemoved {
                        index: i,
                        ty: self.a.declared(f.ty),
                    },
                });
            }
        }
        for (i, f) in y.iter().enumerate() {
            match ix.get(&*f.name) {
                None => out.push(Change {
                    path: join(path, &f.name),
                    what: ChangeKind::FieldAdded {
                        index: i,
                        ty: self.b.declared(f.ty),
                    },
                }),
                Some(&j) => self.cmp(x[j].ty, f.ty, &join(path, &f.name), false, depth + 1, out),
            }
        }
        let common_a: Vec<String> = x
            .iter()
            .filter(|f| iy.contains_key(&*f.name))
            .map(|f| f.name.clone())
            .collect();
        let common_b: Vec<String> = y
            .iter()
            .filter(|f| ix.contains_key(&*f.name))
            .map(|f| f.name.clone())
            .collect();
        if common_a != common_b {
            out.push(Change {
                path: path.to_string(),
                what: ChangeKind::FieldsReordered {
                    from: common_a,
                    to: common_b,
                },
            });
        }
    }

    fn arms(
        &self,
        x: &super::UnionType,
        y: &super::UnionType,
        path: &str,
        depth: u32,
        out: &mut Vec<Change>,
    ) {
        let arm_path = |arm: &super::Arm| match &arm.name {
            Some(n) => join(path, n),
            None if arm.cases.is_empty() => join(path, "default"),
            None => join(path, &format!("case {}", arm.cases[0])),
        };
        // An arm is matched by any case value it shares; default arms match each other.
        let find = |u: &super::UnionType, arm: &super::Arm| -> Option<usize> {
            if arm.cases.is_empty() {
                return u.default;
            }
            u.arms
                .iter()
                .position(|o| !o.cases.is_empty() && o.cases.iter().any(|c| arm.cases.contains(c)))
        };
        for arm in &x.arms {
            if find(y, arm).is_none() {
                out.push(Change {
                    path: arm_path(arm),
                    what: ChangeKind::ArmRemoved {
                        cases: arm.cases.clone(),
                        ty: self.a.declared(arm.ty),
                    },
                });
            }
        }
        for arm in &y.arms {
            match find(x, arm) {
                None => out.push(Change {
                    path: arm_path(arm),
                    what: ChangeKind::ArmAdded {
                        cases: arm.cases.clone(),
                        ty: self.b.declared(arm.ty),
                    },
                }),
                Some(i) => {
                    let old = &x.arms[i];
                    let (sa, sb): (BTreeSet<i64>, BTreeSet<i64>) = (
                        old.cases.iter().copied().collect(),
                        arm.cases.iter().copied().collect(),
                    );
                    if sa != sb {
                        // Cases moved between arms: the arm's domain changed.
                        out.push(Change {
                            path: arm_path(arm),
                            what: ChangeKind::TypeChanged {
                                from: format!("case {sa:?}"),
                                to: format!("case {sb:?}"),
                            },
                        });
                    }
                    self.cmp(old.ty, arm.ty, &arm_path(arm), false, depth + 1, out);
                }
            }
        }
    }
}

fn members(x: &[(String, i32)], y: &[(String, i32)], path: &str, out: &mut Vec<Change>) {
    let mx: HashMap<&str, i32> = x.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    let my: HashMap<&str, i32> = y.iter().map(|(n, v)| (n.as_str(), *v)).collect();
    for (n, v) in x {
        if !my.contains_key(n.as_str()) {
            out.push(Change {
                path: path.to_string(),
                what: ChangeKind::MemberRemoved {
                    name: n.clone(),
                    value: *v,
                },
            });
        }
    }
    for (n, v) in y {
        match mx.get(n.as_str()) {
            None => out.push(Change {
                path: path.to_string(),
                what: ChangeKind::MemberAdded {
                    name: n.clone(),
                    value: *v,
                },
            }),
            Some(old) if old != v => out.push(Change {
                path: path.to_string(),
                what: ChangeKind::MemberValue {
                    name: n.clone(),
                    from: *old,
                    to: *v,
                },
            }),
            Some(_) => {}
        }
    }
}

impl Schema {
    /// A type as a `.x` declaration would name it: a named type by its name (`struct
    /// remote_nonnull_domain`, the typedef's name when it has one), bounds with their constant
    /// (`string<REMOTE_STRING_MAX = 4194304>`).
    pub fn declared(&self, id: TypeId) -> String {
        let bound = |n: u32| match self.bound_constant(id) {
            Some(c) => format!("{c} = {n}"),
            None if n == u32::MAX => String::new(),
            None => n.to_string(),
        };
        match self.ty(id) {
            Type::Struct(s) if !is_anonymous(&s.name) => format!("struct {}", s.name),
            Type::Union(u) if !is_anonymous(&u.name) => format!("union {}", u.name),
            Type::Enum(e) if !is_anonymous(&e.name) => format!("enum {}", e.name),
            Type::String { max } => format!("string<{}>", bound(*max)),
            Type::Opaque { max } => format!("opaque<{}>", bound(*max)),
            Type::OpaqueFixed { len } => format!("opaque[{}]", bound(*len)),
            Type::Array { elem, max } => format!("{}<{}>", self.declared(*elem), bound(*max)),
            Type::FixedArray { elem, len } => format!("{}[{}]", self.declared(*elem), bound(*len)),
            Type::Optional(t) => format!("{}*", self.declared(*t)),
            _ => self.describe(id),
        }
    }

    /// What changed on the wire from `self` to `to` (see the [module docs](self)).
    pub fn diff(&self, to: &Schema) -> SchemaDiff {
        let c = Cmp { a: self, b: to };
        let mut d = SchemaDiff::default();
        // Programs, by (number, version).
        for (x, y, change) in [(self, to, Presence::Removed), (to, self, Presence::Added)] {
            for p in x.programs() {
                if y.program(p.number(), p.version()).is_none() {
                    d.programs.push(ProgramChange {
                        name: p.name().to_string(),
                        number: p.number(),
                        version: p.version(),
                        change,
                    });
                }
            }
        }
        // Named types.
        let names_a: BTreeMap<&str, TypeId> = self.type_names().collect();
        let names_b: BTreeMap<&str, TypeId> = to.type_names().collect();
        let mut changed_types: HashSet<String> = HashSet::new();
        for (name, &ia) in &names_a {
            if !names_b.contains_key(name) {
                d.types.push(TypeChange {
                    name: name.to_string(),
                    kind: kind_of(name, self.ty(ia)),
                    change: TypeDelta::Removed,
                });
            }
        }
        for (name, &ib) in &names_b {
            let kind = kind_of(name, to.ty(ib));
            match names_a.get(name) {
                None => d.types.push(TypeChange {
                    name: name.to_string(),
                    kind,
                    change: TypeDelta::Added,
                }),
                Some(&ia) => {
                    let mut ch = Vec::new();
                    let top = kind != TypeKind::Typedef && kind_of(name, self.ty(ia)) == kind;
                    c.cmp(ia, ib, "", top, 0, &mut ch);
                    if !ch.is_empty() {
                        changed_types.insert(name.to_string());
                        d.types.push(TypeChange {
                            name: name.to_string(),
                            kind,
                            change: TypeDelta::Changed(ch),
                        });
                    }
                }
            }
        }
        // Procedures, by program and number.
        for pb in to.programs() {
            let Some(pa) = self.program(pb.number(), pb.version()) else {
                continue;
            };
            for p in pa.procedure_list() {
                if pb.procedure(p.number).is_none() {
                    d.procedures.push(ProcedureChange {
                        program: pa.name().to_string(),
                        number: p.number,
                        name: p.name.clone(),
                        change: ProcedureDelta::Removed,
                    });
                }
            }
            for p in pb.procedure_list() {
                let push = |d: &mut SchemaDiff, change| {
                    d.procedures.push(ProcedureChange {
                        program: pb.name().to_string(),
                        number: p.number,
                        name: p.name.clone(),
                        change,
                    })
                };
                let Some(old) = pa.procedure(p.number) else {
                    push(&mut d, ProcedureDelta::Added);
                    continue;
                };
                if old.name != p.name {
                    push(
                        &mut d,
                        ProcedureDelta::Renamed {
                            from: old.name.clone(),
                        },
                    );
                }
                for role in [BodyRole::Args, BodyRole::Ret, BodyRole::Msg] {
                    if let Some(change) = body_change(to, old, p, role, &changed_types) {
                        push(&mut d, change);
                    }
                }
            }
        }
        // Constants.
        let ka: BTreeMap<&str, i64> = self.constants().collect();
        let kb: BTreeMap<&str, i64> = to.constants().collect();
        let all: BTreeSet<&str> = ka.keys().chain(kb.keys()).copied().collect();
        for name in all {
            let (x, y) = (ka.get(name).copied(), kb.get(name).copied());
            if x != y {
                d.constants.push(ConstantChange {
                    name: name.to_string(),
                    from: x,
                    to: y,
                });
            }
        }
        d
    }

    /// The named struct/union/enum types reachable from `id` (itself included).
    fn reached(&self, id: TypeId) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut visited = std::collections::HashSet::new();
        let mut stack = vec![id];
        while let Some(t) = stack.pop() {
            if !visited.insert(t) {
                continue;
            }
            match self.ty(t) {
                Type::Struct(s) => {
                    seen.insert(s.name.clone());
                    stack.extend(s.fields.iter().map(|f| f.ty));
                }
                Type::Union(u) => {
                    seen.insert(u.name.clone());
                    stack.push(u.discriminant.ty);
                    stack.extend(u.arms.iter().map(|a| a.ty));
                }
                Type::Enum(e) => {
                    seen.insert(e.name.clone());
                }
                Type::Array { elem, .. } | Type::FixedArray { elem, .. } | Type::Optional(elem) => {
                    stack.push(*elem)
                }
                _ => {}
            }
        }
        seen
    }
}

fn body_change(
    to: &Schema,
    old: &Procedure,
    new: &Procedure,
    role: BodyRole,
    changed_types: &HashSet<String>,
) -> Option<ProcedureDelta> {
    let (a, b) = (old.body(role), new.body(role));
    match (a, b) {
        (Some((na, _)), Some((nb, tb))) if na == nb => {
            let mut via: Vec<String> = to
                .reached(tb)
                .into_iter()
                .filter(|n| changed_types.contains(n))
                .collect();
            via.sort();
            (!via.is_empty()).then(|| ProcedureDelta::BodyEncoding {
                role,
                body: nb.to_string(),
                via,
            })
        }
        (None, None) => None,
        _ => Some(ProcedureDelta::BodyStruct {
            role,
            from: a.map(|(n, _)| n.to_string()),
            to: b.map(|(n, _)| n.to_string()),
        }),
    }
}

fn cases(c: &[i64]) -> String {
    if c.is_empty() {
        "default".into()
    } else {
        let v: Vec<String> = c.iter().map(i64::to_string).collect();
        format!("case {}", v.join(", "))
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeKind::FieldAdded { index, ty } => write!(f, "field added at {index}: {ty}"),
            ChangeKind::FieldRemoved { index, ty } => {
                write!(f, "field removed (was {index}): {ty}")
            }
            ChangeKind::FieldsReordered { from, to } => {
                write!(
                    f,
                    "fields reordered: {} → {}",
                    from.join(", "),
                    to.join(", ")
                )
            }
            ChangeKind::TypeChanged { from, to } => write!(f, "type changed: {from} → {to}"),
            ChangeKind::Bound {
                from,
                to,
                from_const,
                to_const,
                fixed,
            } => {
                let dir = if to > from { "raised" } else { "lowered" };
                let (l, r) = if *fixed { ('[', ']') } else { ('<', '>') };
                let show = |n: &u32, c: &Option<String>| match c {
                    Some(c) => format!("{l}{c} = {n}{r}"),
                    None => format!("{l}{n}{r}"),
                };
                write!(
                    f,
                    "bound {dir}: {} → {}",
                    show(from, from_const),
                    show(to, to_const)
                )
            }
            ChangeKind::ArmAdded { cases: c, ty } => write!(f, "arm added ({}): {ty}", cases(c)),
            ChangeKind::ArmRemoved { cases: c, ty } => {
                write!(f, "arm removed ({}): {ty}", cases(c))
            }
            ChangeKind::MemberAdded { name, value } => write!(f, "member added: {name} = {value}"),
            ChangeKind::MemberRemoved { name, value } => {
                write!(f, "member removed: {name} = {value}")
            }
            ChangeKind::MemberValue { name, from, to } => {
                write!(f, "member renumbered: {name} {from} → {to}")
            }
        }
    }
}

impl fmt::Display for ProcedureDelta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let opt = |s: &Option<String>| s.clone().unwrap_or_else(|| "void".into());
        match self {
            ProcedureDelta::Added => f.write_str("added"),
            ProcedureDelta::Removed => f.write_str("removed"),
            ProcedureDelta::Renamed { from } => write!(f, "renamed from {from}"),
            ProcedureDelta::BodyStruct { role, from, to } => {
                write!(f, "{} body: {} → {}", role_name(*role), opt(from), opt(to))
            }
            ProcedureDelta::BodyEncoding { role, body, via } => write!(
                f,
                "{} body {body} encodes differently (changed: {})",
                role_name(*role),
                via.join(", ")
            ),
        }
    }
}

/// The text report: a summary line, then programs, procedures, types and constants.
impl fmt::Display for SchemaDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.counts();
        writeln!(
            f,
            "programs: +{} -{}; procedures: +{} -{} renamed {} bodies changed {}; types: +{} -{} \
             changed {} ({} bound changes); constants: +{} -{} changed {}",
            c.programs_added,
            c.programs_removed,
            c.procedures_added,
            c.procedures_removed,
            c.procedures_renamed,
            c.bodies_changed,
            c.types_added,
            c.types_removed,
            c.types_changed,
            c.bound_changes,
            c.constants_added,
            c.constants_removed,
            c.constants_changed
        )?;
        if !self.programs.is_empty() {
            writeln!(f, "\nprograms:")?;
            for p in &self.programs {
                writeln!(
                    f,
                    "  {} {} (0x{:08x} v{})",
                    p.change.name(),
                    p.name,
                    p.number,
                    p.version
                )?;
            }
        }
        if !self.procedures.is_empty() {
            writeln!(f, "\nprocedures:")?;
            for p in &self.procedures {
                writeln!(
                    f,
                    "  {} {:>4} {}: {}",
                    p.program, p.number, p.name, p.change
                )?;
            }
        }
        if !self.types.is_empty() {
            writeln!(f, "\ntypes:")?;
            for t in &self.types {
                match &t.change {
                    TypeDelta::Added | TypeDelta::Removed => {
                        let p = match t.change {
                            TypeDelta::Added => "added",
                            _ => "removed",
                        };
                        writeln!(f, "  {p} {} {}", t.kind.name(), t.name)?;
                    }
                    TypeDelta::Changed(ch) => {
                        writeln!(f, "  changed {} {}:", t.kind.name(), t.name)?;
                        for x in ch {
                            if x.path.is_empty() {
                                writeln!(f, "    {}", x.what)?;
                            } else {
                                writeln!(f, "    {}: {}", x.path, x.what)?;
                            }
                        }
                    }
                }
            }
        }
        if !self.constants.is_empty() {
            writeln!(f, "\nconstants:")?;
            for k in &self.constants {
                match (k.from, k.to) {
                    (None, Some(v)) => writeln!(f, "  added {} = {v}", k.name)?,
                    (Some(v), None) => writeln!(f, "  removed {} (was {v})", k.name)?,
                    (Some(a), Some(b)) => writeln!(f, "  changed {}: {a} → {b}", k.name)?,
                    (None, None) => {}
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: &str = r#"
const REMOTE_STRING_MAX = 1024;
const REMOTE_LIST_MAX = 16;
const UNCHANGED = 7;
const REMOTE_PROGRAM = 0x20008086;
const REMOTE_PROTOCOL_VERSION = 1;
typedef string remote_nonnull_string<REMOTE_STRING_MAX>;
typedef remote_nonnull_string *remote_string;
enum color { RED = 0, GREEN = 1 };
union value switch (int type) { case 1: int i; case 2: remote_nonnull_string s; };
struct remote_item { remote_nonnull_string name; opaque data<REMOTE_STRING_MAX>; };
struct remote_thing_args {
    remote_nonnull_string name;
    remote_string maybe;
    remote_item items<REMOTE_LIST_MAX>;
    string raw<REMOTE_STRING_MAX>;
    int gone;
    color c;
    unsigned int flags;
};
struct remote_other_args { int x; };
struct remote_same_args { int x; };
enum remote_procedure {
    REMOTE_PROC_THING = 1,
    REMOTE_PROC_OTHER = 2,
    REMOTE_PROC_SAME = 3,
    REMOTE_PROC_OLD = 4
};
"#;

    const NEW: &str = r#"
const REMOTE_STRING_MAX = 4096;
const REMOTE_LIST_MAX = 8;
const UNCHANGED = 7;
const REMOTE_PROGRAM = 0x20008086;
const REMOTE_PROTOCOL_VERSION = 1;
typedef string remote_nonnull_string<REMOTE_STRING_MAX>;
typedef remote_nonnull_string *remote_string;
enum color { RED = 0, GREEN = 2, BLUE = 3 };
union value switch (int type) { case 1: int i; case 2: remote_nonnull_string s; case 3: hyper l; };
struct remote_item { remote_nonnull_string name; opaque data<REMOTE_STRING_MAX>; };
struct remote_thing_args {
    remote_nonnull_string name;
    remote_string maybe;
    remote_item items<REMOTE_LIST_MAX>;
    string raw<REMOTE_STRING_MAX>;
    hyper c;
    unsigned int flags;
    value extra;
};
struct remote_other_args { hyper x; };
struct remote_same_args { int x; };
struct remote_new_args { int y; };
enum remote_procedure {
    REMOTE_PROC_THING = 1,
    REMOTE_PROC_OTHER_RENAMED = 2,
    REMOTE_PROC_SAME = 3,
    REMOTE_PROC_NEW = 5
};
"#;

    fn schema(text: &str) -> Schema {
        Schema::from_sources(&[("src/remote/remote_protocol.x", text)]).unwrap()
    }

    fn changes<'d>(d: &'d SchemaDiff, name: &str) -> &'d [Change] {
        match &d.types.iter().find(|t| t.name == name).unwrap().change {
            TypeDelta::Changed(c) => c,
            other => panic!("{name}: {other:?}"),
        }
    }

    fn bound(c: &Change) -> Option<(&str, u32, u32, Option<&str>)> {
        match &c.what {
            ChangeKind::Bound {
                from, to, to_const, ..
            } => Some((c.path.as_str(), *from, *to, to_const.as_deref())),
            _ => None,
        }
    }

    #[test]
    fn a_raised_constant_is_a_bound_change_on_every_field_that_uses_it() {
        let d = schema(OLD).diff(&schema(NEW));
        let thing: Vec<_> = changes(&d, "remote_thing_args")
            .iter()
            .filter_map(bound)
            .collect();
        assert_eq!(
            thing,
            vec![
                ("name", 1024, 4096, Some("REMOTE_STRING_MAX")),
                ("maybe*", 1024, 4096, Some("REMOTE_STRING_MAX")),
                ("items", 16, 8, Some("REMOTE_LIST_MAX")),
                ("raw", 1024, 4096, Some("REMOTE_STRING_MAX")),
            ]
        );
        let item: Vec<_> = changes(&d, "remote_item")
            .iter()
            .filter_map(bound)
            .collect();
        assert_eq!(
            item,
            vec![
                ("name", 1024, 4096, Some("REMOTE_STRING_MAX")),
                ("data", 1024, 4096, Some("REMOTE_STRING_MAX")),
            ]
        );
        // The typedef itself, and the union arm that uses it.
        assert_eq!(
            changes(&d, "remote_nonnull_string")
                .iter()
                .filter_map(bound)
                .collect::<Vec<_>>(),
            vec![("", 1024, 4096, Some("REMOTE_STRING_MAX"))]
        );
        assert!(
            changes(&d, "value")
                .iter()
                .any(|c| bound(c).map(|b| b.0) == Some("s"))
        );
        // The constants, with both values; the unchanged one is not listed.
        let k: Vec<_> = d
            .constants
            .iter()
            .filter(|k| k.name.ends_with("_MAX") || k.name == "UNCHANGED")
            .map(|k| (k.name.as_str(), k.from, k.to))
            .collect();
        assert_eq!(
            k,
            vec![
                ("REMOTE_LIST_MAX", Some(16), Some(8)),
                ("REMOTE_STRING_MAX", Some(1024), Some(4096)),
            ]
        );
        let text = d.to_string();
        assert!(
            text.contains(
                "name: bound raised: <REMOTE_STRING_MAX = 1024> → <REMOTE_STRING_MAX = 4096>"
            ),
            "{text}"
        );
        assert!(text.contains("items: bound lowered"), "{text}");
    }

    #[test]
    fn fields_arms_members_procedures_and_bodies() {
        let d = schema(OLD).diff(&schema(NEW));
        let thing = changes(&d, "remote_thing_args");
        let what: Vec<String> = thing
            .iter()
            .filter(|c| bound(c).is_none())
            .map(|c| format!("{}: {}", c.path, c.what))
            .collect();
        assert_eq!(
            what,
            vec![
                "gone: field removed (was 4): int",
                "c: type changed: enum color → hyper",
                "extra: field added at 6: union value",
            ],
            "{d}"
        );
        let value: Vec<String> = changes(&d, "value")
            .iter()
            .map(|c| c.what.to_string())
            .collect();
        assert!(
            value.contains(&"arm added (case 3): hyper".to_string()),
            "{value:?}"
        );
        let color: Vec<String> = changes(&d, "color")
            .iter()
            .map(|c| c.what.to_string())
            .collect();
        assert_eq!(
            color,
            vec!["member renumbered: GREEN 1 → 2", "member added: BLUE = 3"]
        );
        let procs: Vec<String> = d
            .procedures
            .iter()
            .map(|p| format!("{} {}: {}", p.number, p.name, p.change))
            .collect();
        assert_eq!(
            procs,
            vec![
                "4 OLD: removed",
                "1 THING: args body remote_thing_args encodes differently (changed: \
                 remote_item, remote_thing_args, value)",
                "2 OTHER_RENAMED: renamed from OTHER",
                "2 OTHER_RENAMED: args body: remote_other_args → void",
                "5 NEW: added",
            ],
            "{d}"
        );
        // A schema against itself: nothing.
        assert!(schema(NEW).diff(&schema(NEW)).is_empty());
    }
}
