//! The bounded fields of a type, minimal values, and the bytes that probe one field at its bound.
//!
//! libvirt's `.x` files bound every variable-length item: `string<N>`, `opaque<N>`, `T x<N>`. Each
//! receiver is expected to refuse a count above N before it allocates. This module finds every such
//! item reachable from a type ([`bounded_fields`]), builds the minimal value of any type ([`zero`])
//! and writes the minimal encoding of a type with one chosen item holding exactly N items
//! ([`at_max`]) or N + 1 ([`over_max`]; written by hand, since the encoder refuses it). The same walk
//! finds every union ([`union_sites`]); [`with_unknown_arm`] writes the minimal encoding with one of
//! them carrying a discriminant no arm takes ([`unknown_key`]).
//!
//! Reachable means: through struct fields, union arms (each with a discriminant that selects it),
//! present optionals, one element of a variable array and the first element of a fixed array. Every
//! path is walked (a struct used by two fields is found twice, under two paths); a struct or union
//! already being walked on the current path is not entered again, so recursive types end.
//!
//! ```no_run
//! use virtwire_protocol::schema::{Schema, bounds};
//! use virtwire_protocol::{Compat, Limits};
//! let schema = Schema::load_dir("libvirt-9.0.0".as_ref())?;
//! let args = schema.type_id("remote_domain_create_xml_args").unwrap();
//! for field in bounds::bounded_fields(&schema, args) {
//!     let over = bounds::over_max(&schema, args, &field, b'x');
//!     let err = schema.decode_type(args, &over, 0, &Limits::default(), Compat::Libvirt).unwrap_err();
//!     assert_eq!(err.path_string(), field.path);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use super::Schema;
use super::types::{Type, TypeId};
use super::value::Value;
use crate::error::LimitKind;
use crate::limits::Limits;

/// One step from a type into a part of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// The struct field with this index.
    Field(usize),
    /// The union arm with this index, selected by the discriminant value `key` (in the
    /// discriminant's domain: `i32` range for signed and enum discriminants, `u32` for unsigned,
    /// 0/1 for bool).
    Arm {
        /// Index into the union's arms.
        index: usize,
        /// The discriminant value that selects it.
        key: i64,
    },
    /// The optional, present.
    Some,
    /// A variable array with one element: that element.
    Elem,
    /// A fixed array's first element (the others minimal).
    Fixed,
}

/// A bounded item (`string<N>`, `opaque<N>` or `T x<N>`) reachable from a root type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundedField {
    /// The path a decode error at this item names ([`crate::Error::path_string`]):
    /// `params[0].value.s`, `dom.name`, `xml_desc`.
    pub path: String,
    /// How to reach it from the root.
    pub steps: Vec<Step>,
    /// The bounded type itself.
    pub ty: TypeId,
    /// Its bound N.
    pub max: u32,
    /// Which kind of bound (`String`, `Opaque` or `Array`).
    pub limit: LimitKind,
    /// The struct or union that declares it.
    pub enclosing: TypeId,
    /// Its name in that struct or union (`name`, or `names[0]` for an array of bounded items).
    pub name: String,
}

impl BoundedField {
    /// The first count over the bound (N + 1).
    pub fn over(&self) -> u64 {
        self.max as u64 + 1
    }
}

/// Every bounded item reachable from `root`, in encoding order. Unbounded items (`<>`, bound
/// `u32::MAX`) are not listed: they have no count over their bound.
pub fn bounded_fields(schema: &Schema, root: TypeId) -> Vec<BoundedField> {
    find(schema, root, false)
}

/// Every counted item reachable from `root` (each with a count word), in encoding order: the
/// bounded ones [`bounded_fields`] lists and the unbounded ones (`<>`, `max` = `u32::MAX`), which
/// can only be probed with a count no input can back.
pub fn counted_fields(schema: &Schema, root: TypeId) -> Vec<BoundedField> {
    find(schema, root, true)
}

fn find(schema: &Schema, root: TypeId, unbounded: bool) -> Vec<BoundedField> {
    let mut f = Finder {
        s: schema,
        unbounded,
        active: Vec::new(),
        steps: Vec::new(),
        path: String::new(),
        found: Vec::new(),
        unions: Vec::new(),
    };
    f.walk(root, None);
    f.found
}

/// A union reachable from a root type (found by the same walk as [`bounded_fields`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnionSite {
    /// Its path (`params[0].value`; a decode error at its discriminant names `params[0].value.type`).
    pub path: String,
    /// How to reach it from the root.
    pub steps: Vec<Step>,
    /// The union type.
    pub ty: TypeId,
}

/// Every union reachable from `root`, in encoding order (each path once, as [`bounded_fields`]
/// walks them).
pub fn union_sites(schema: &Schema, root: TypeId) -> Vec<UnionSite> {
    let mut f = Finder {
        s: schema,
        unbounded: false,
        active: Vec::new(),
        steps: Vec::new(),
        path: String::new(),
        found: Vec::new(),
        unions: Vec::new(),
    };
    f.walk(root, None);
    f.unions
}

/// A discriminant value of `union` that no arm takes: `None` when the union has a `default` arm
/// (every value selects an arm). For an enum discriminant, a member no case names if there is one,
/// else one past the largest member; for a numeric one, one past the largest case (what a newer
/// peer adding a case would send).
pub fn unknown_key(schema: &Schema, union: TypeId) -> Option<i64> {
    let Type::Union(u) = schema.ty(union) else {
        return None;
    };
    if u.arms.iter().any(|a| a.cases.is_empty()) {
        return None;
    }
    let named = |v: &i64| u.cases.binary_search_by_key(v, |&(c, _)| c).is_ok();
    let past = |max: i64, hi: i64| {
        (max.saturating_add(1)..=hi)
            .chain(0..max.min(hi))
            .find(|v| !named(v))
    };
    let last_case = u.cases.last().map_or(0, |c| c.0);
    match schema.ty(u.discriminant.ty) {
        Type::Enum(e) => e
            .members
            .iter()
            .map(|m| m.1 as i64)
            .find(|v| !named(v))
            .or_else(|| {
                let max = e.members.iter().map(|m| m.1 as i64).max().unwrap_or(0);
                past(max.max(last_case), i32::MAX as i64)
            }),
        Type::Bool => [0, 1].into_iter().find(|v| !named(v)),
        Type::UInt => past(last_case, u32::MAX as i64),
        Type::Small(s) => {
            let (lo, hi) = s.range();
            past(last_case, hi).or_else(|| (lo..0).find(|v| !named(v)))
        }
        _ => past(last_case, i32::MAX as i64).or_else(|| (i32::MIN as i64..0).find(|v| !named(v))),
    }
}

/// The minimal encoding of `root` with the union at `site` carrying the discriminant `key` and
/// nothing after it for its arm (a value no arm takes, from [`unknown_key`]); everything else is
/// minimal. A decoder refuses it at the discriminant under `site.path`.
pub fn with_unknown_arm(schema: &Schema, root: TypeId, site: &UnionSite, key: i64) -> Vec<u8> {
    let mut out = Sink::Bytes(Vec::new());
    build(schema, root, &site.steps, Leaf::Disc(key), &mut out);
    match out {
        Sink::Bytes(b) => b,
        Sink::Count(_) => unreachable!(),
    }
}

/// A union arm no discriminant value can select (it is never reached).
pub fn arm_key(schema: &Schema, union: TypeId, index: usize) -> Option<i64> {
    let Type::Union(u) = schema.ty(union) else {
        return None;
    };
    let arm = u.arms.get(index)?;
    if let Some(k) = arm.cases.first() {
        return Some(*k);
    }
    // The default arm: a value no case names (a member, when the discriminant is an enum).
    let named = |v: &i64| u.cases.binary_search_by_key(v, |&(c, _)| c).is_ok();
    match schema.ty(u.discriminant.ty) {
        Type::Enum(e) => e.members.iter().map(|m| m.1 as i64).find(|v| !named(v)),
        Type::Bool => [0, 1].into_iter().find(|v| !named(v)),
        Type::UInt => (0..=u32::MAX as i64).find(|v| !named(v)),
        Type::Small(s) => {
            let (lo, hi) = s.range();
            (lo.max(0)..=hi).chain(lo..0).find(|v| !named(v))
        }
        _ => (0..=i32::MAX as i64)
            .chain(i32::MIN as i64..0)
            .find(|v| !named(v)),
    }
}

struct Finder<'s> {
    s: &'s Schema,
    /// List `<>` items too.
    unbounded: bool,
    /// Structs and unions on the current path (not entered again: recursion ends).
    active: Vec<TypeId>,
    steps: Vec<Step>,
    path: String,
    found: Vec<BoundedField>,
    unions: Vec<UnionSite>,
}

/// Where the enclosing struct/union's own part of the path begins.
#[derive(Clone, Copy)]
struct Encl {
    ty: TypeId,
    start: usize,
}

impl Finder<'_> {
    fn walk(&mut self, ty: TypeId, encl: Option<Encl>) {
        let s = self.s;
        let bound = match s.ty(ty) {
            Type::String { max } => Some((*max, LimitKind::String)),
            Type::Opaque { max } => Some((*max, LimitKind::Opaque)),
            Type::Array { max, .. } => Some((*max, LimitKind::Array)),
            _ => None,
        };
        if let Some((max, limit)) = bound
            && (self.unbounded || max != u32::MAX)
        {
            let (enclosing, start) = encl.map_or((ty, 0), |e| (e.ty, e.start));
            self.found.push(BoundedField {
                path: self.path.clone(),
                steps: self.steps.clone(),
                ty,
                max,
                limit,
                enclosing,
                name: self.path[start.min(self.path.len())..].to_string(),
            });
        }
        match s.ty(ty) {
            Type::Array { elem, .. } => self.enter(*elem, Step::Elem, "[0]", encl),
            Type::FixedArray { elem, len } if *len > 0 => {
                self.enter(*elem, Step::Fixed, "[0]", encl)
            }
            Type::Optional(t) => self.enter(*t, Step::Some, "", encl),
            Type::Struct(st) => {
                if self.active.contains(&ty) {
                    return;
                }
                self.active.push(ty);
                for (i, f) in st.fields.iter().enumerate() {
                    let start = field_start(&self.path);
                    let seg = dotted(&self.path, &f.name);
                    self.enter(f.ty, Step::Field(i), &seg, Some(Encl { ty, start }));
                }
                self.active.pop();
            }
            Type::Union(u) => {
                if self.active.contains(&ty) {
                    return;
                }
                self.unions.push(UnionSite {
                    path: self.path.clone(),
                    steps: self.steps.clone(),
                    ty,
                });
                self.active.push(ty);
                for (i, arm) in u.arms.iter().enumerate() {
                    let Some(name) = &arm.name else { continue };
                    let Some(key) = arm_key(s, ty, i) else {
                        continue;
                    };
                    let start = field_start(&self.path);
                    let seg = dotted(&self.path, name);
                    self.enter(
                        arm.ty,
                        Step::Arm { index: i, key },
                        &seg,
                        Some(Encl { ty, start }),
                    );
                }
                self.active.pop();
            }
            _ => {}
        }
    }

    fn enter(&mut self, ty: TypeId, step: Step, seg: &str, encl: Option<Encl>) {
        let len = self.path.len();
        self.steps.push(step);
        self.path.push_str(seg);
        self.walk(ty, encl);
        self.path.truncate(len);
        self.steps.pop();
    }
}

fn field_start(path: &str) -> usize {
    if path.is_empty() { 0 } else { path.len() + 1 }
}

fn dotted(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!(".{name}")
    }
}

/// `len` zero bytes that live as long as the program (fixed opaques of a minimal value borrow them).
fn zeros(len: usize) -> &'static [u8] {
    static SMALL: [u8; 4096] = [0; 4096];
    if len <= SMALL.len() {
        return &SMALL[..len];
    }
    // Larger fixed opaques are rare (libvirt's largest is a 16-byte UUID): one buffer per length.
    static BIG: OnceLock<Mutex<HashMap<usize, &'static [u8]>>> = OnceLock::new();
    let mut m = BIG
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    m.entry(len).or_insert_with(|| Vec::leak(vec![0; len]))
}

/// The minimal value of a type: zero numbers, `false`, the first enum member, empty strings, opaques
/// and variable arrays, zero-filled fixed opaques, absent optionals, the first union arm that a
/// discriminant value selects (with that value). Recursive types end at an absent optional or an
/// empty array, as their definitions must allow.
pub fn zero(schema: &Schema, ty: TypeId) -> Value<'_> {
    match schema.ty(ty) {
        Type::Void => Value::Void,
        Type::Int => Value::Int(0),
        Type::UInt => Value::UInt(0),
        Type::Hyper => Value::Hyper(0),
        Type::UHyper => Value::UHyper(0),
        Type::Float => Value::Float(0.0),
        Type::Double => Value::Double(0.0),
        Type::Bool => Value::Bool(false),
        Type::Small(k) if k.is_unsigned() => Value::UInt(0),
        Type::Small(_) => Value::Int(0),
        Type::Enum(e) => match e.members.first() {
            Some((name, value)) => Value::Enum {
                value: *value,
                name: Some(name),
            },
            None => Value::Enum {
                value: 0,
                name: None,
            },
        },
        Type::String { .. } => Value::String(b""),
        Type::Opaque { .. } => Value::Opaque(b""),
        Type::OpaqueFixed { len } => Value::Opaque(zeros(*len as usize)),
        Type::Array { .. } => Value::Array(Vec::new()),
        Type::FixedArray { elem, len } => {
            Value::Array((0..*len).map(|_| zero(schema, *elem)).collect())
        }
        Type::Optional(_) => Value::Optional(None),
        Type::Struct(st) => Value::Struct(
            st.fields
                .iter()
                .map(|f| (f.name.as_str(), zero(schema, f.ty)))
                .collect(),
        ),
        Type::Union(u) => {
            let picked = (0..u.arms.len()).find_map(|i| arm_key(schema, ty, i).map(|k| (i, k)));
            match picked {
                Some((i, key)) => {
                    let arm = &u.arms[i];
                    Value::Union {
                        discriminant: Box::new(disc_value(schema, u.discriminant.ty, key)),
                        arm: arm.name.as_deref(),
                        value: Box::new(zero(schema, arm.ty)),
                    }
                }
                // No arm can be selected: no valid value exists; the encoder will say so.
                None => Value::Union {
                    discriminant: Box::new(disc_value(schema, u.discriminant.ty, 0)),
                    arm: None,
                    value: Box::new(Value::Void),
                },
            }
        }
    }
}

/// The value of a union discriminant of type `ty` for `key` (a value in its domain).
pub fn disc_value(schema: &Schema, ty: TypeId, key: i64) -> Value<'_> {
    match schema.ty(ty) {
        Type::UInt => Value::UInt(key as u32),
        Type::Bool => Value::Bool(key != 0),
        Type::Small(k) if k.is_unsigned() => Value::UInt(key as u32),
        Type::Enum(e) => Value::Enum {
            value: key as i32,
            name: e.member_name(key as i32),
        },
        _ => Value::Int(key as i32),
    }
}

/// The encoding of [`zero`]`(ty)`. Empty when the type has no valid value (a union no
/// discriminant can select an arm of).
pub fn zero_bytes(schema: &Schema, ty: TypeId) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = schema.encode_type(ty, &zero(schema, ty), &mut out, &generous());
    out
}

/// Limits that let any bounded value through (the bounds checked here are the `.x` ones).
fn generous() -> Limits {
    Limits::default()
}

/// The minimal encoding of `root` with the item `field` holding `count` items (bytes of `fill`
/// for a string or opaque, minimal elements for an array), whatever its bound: `count` over the
/// bound is written as it is (the checked encoder would refuse it). Everything else is minimal.
pub fn with_count(
    schema: &Schema,
    root: TypeId,
    field: &BoundedField,
    count: u32,
    fill: u8,
) -> Vec<u8> {
    let mut out = Sink::Bytes(Vec::new());
    build(
        schema,
        root,
        &field.steps,
        Leaf::Count(count, fill),
        &mut out,
    );
    match out {
        Sink::Bytes(b) => b,
        Sink::Count(_) => unreachable!(),
    }
}

/// The length in bytes of [`with_count`]`(…, count, …)`, computed without writing it (a 16,384-element
/// array of large structs can be far over any frame).
pub fn len_with_count(schema: &Schema, root: TypeId, field: &BoundedField, count: u32) -> u64 {
    let mut out = Sink::Count(0);
    build(schema, root, &field.steps, Leaf::Count(count, 0), &mut out);
    match out {
        Sink::Count(n) => n,
        Sink::Bytes(b) => b.len() as u64,
    }
}

/// The minimal encoding of `root` with `field` at exactly its bound; a decoder accepts it.
pub fn at_max(schema: &Schema, root: TypeId, field: &BoundedField, fill: u8) -> Vec<u8> {
    with_count(schema, root, field, field.max, fill)
}

/// The minimal encoding of `root` with `field` one over its bound; a decoder refuses it at
/// `field.path`.
///
/// # Panics
/// If the bound is `u32::MAX` ([`bounded_fields`] never lists such an item).
pub fn over_max(schema: &Schema, root: TypeId, field: &BoundedField, fill: u8) -> Vec<u8> {
    let over = field.max.checked_add(1).expect("a bound below u32::MAX");
    with_count(schema, root, field, over, fill)
}

enum Sink {
    Bytes(Vec<u8>),
    Count(u64),
}

impl Sink {
    fn extend(&mut self, b: &[u8]) {
        match self {
            Sink::Bytes(v) => v.extend_from_slice(b),
            Sink::Count(n) => *n += b.len() as u64,
        }
    }
    fn repeat(&mut self, b: &[u8], times: u64) {
        match self {
            Sink::Bytes(v) => {
                v.reserve(b.len() * times as usize);
                for _ in 0..times {
                    v.extend_from_slice(b);
                }
            }
            Sink::Count(n) => *n += b.len() as u64 * times,
        }
    }
    fn fill(&mut self, byte: u8, len: u64) {
        match self {
            Sink::Bytes(v) => v.resize(v.len() + len as usize, byte),
            Sink::Count(n) => *n += len,
        }
    }
    fn zero_of(&mut self, schema: &Schema, ty: TypeId) {
        self.extend(&zero_bytes(schema, ty));
    }
}

/// What [`build`] writes where its steps end.
#[derive(Clone, Copy)]
enum Leaf {
    /// A bounded item with this many items, strings and opaques of this byte.
    Count(u32, u8),
    /// A union with this discriminant and no arm after it.
    Disc(i64),
}

fn build(schema: &Schema, ty: TypeId, steps: &[Step], leaf: Leaf, out: &mut Sink) {
    let Some((step, rest)) = steps.split_first() else {
        let (count, fill) = match (leaf, schema.ty(ty)) {
            (Leaf::Count(count, fill), _) => (count, fill),
            // Every XDR discriminant (int, unsigned, enum, bool) is one 4-byte word; written as it
            // is, since the checked encoder refuses an enum value that is no member.
            (Leaf::Disc(key), Type::Union(_)) => return out.extend(&(key as u32).to_be_bytes()),
            (Leaf::Disc(_), _) => return out.zero_of(schema, ty),
        };
        out.extend(&count.to_be_bytes());
        match schema.ty(ty) {
            Type::Array { elem, .. } => out.repeat(&zero_bytes(schema, *elem), count as u64),
            _ => {
                out.fill(fill, count as u64);
                out.fill(0, (4 - count as u64 % 4) % 4);
            }
        }
        return;
    };
    match (step, schema.ty(ty)) {
        (Step::Some, Type::Optional(t)) => {
            out.extend(&1u32.to_be_bytes());
            build(schema, *t, rest, leaf, out);
        }
        (Step::Elem, Type::Array { elem, .. }) => {
            out.extend(&1u32.to_be_bytes());
            build(schema, *elem, rest, leaf, out);
        }
        (Step::Fixed, Type::FixedArray { elem, len }) => {
            build(schema, *elem, rest, leaf, out);
            out.repeat(&zero_bytes(schema, *elem), len.saturating_sub(1) as u64);
        }
        (Step::Field(i), Type::Struct(st)) => {
            for (j, f) in st.fields.iter().enumerate() {
                if j == *i {
                    build(schema, f.ty, rest, leaf, out);
                } else {
                    out.zero_of(schema, f.ty);
                }
            }
        }
        (Step::Arm { index, key }, Type::Union(u)) => {
            let mut d = Vec::new();
            let _ = schema.encode_type(
                u.discriminant.ty,
                &disc_value(schema, u.discriminant.ty, *key),
                &mut d,
                &generous(),
            );
            out.extend(&d);
            if let Some(arm) = u.arms.get(*index) {
                build(schema, arm.ty, rest, leaf, out);
            }
        }
        // Steps come from `bounded_fields` over the same schema; anything else is a caller's
        // mix-up, and the result is simply the minimal value there.
        _ => out.zero_of(schema, ty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{ErrorKind, Op};
    use crate::xdr::Compat;

    const X: &str = r#"
const NAME_MAX = 8;
const LIST_MAX = 3;
typedef string name_t<NAME_MAX>;
typedef opaque uuid_t[4];
struct item { name_t name; opaque blob<5>; };
enum kind { K_NONE = 0, K_STR = 1, K_LIST = 2, K_OTHER = 7 };
union val switch (kind type) {
case K_NONE: void;
case K_STR: string s<6>;
case K_LIST: item items<LIST_MAX>;
default: int other;
};
struct node { string label<4>; node *next; };
union pick switch (kind k) { case K_NONE: void; case K_STR: string s<6>; case K_LIST: int n; case K_OTHER: int o; };
union num switch (int t) { case 1: int a; case 3: hyper b; };
struct holder { int lead; pick p<2>; num *maybe; name_t tail; val v; };
struct args {
    uuid_t id;
    name_t *maybe;
    item pair[2];
    val v;
    unsigned int flags;
    node n;
};
"#;

    fn schema() -> Schema {
        Schema::from_sources(&[("t.x", X)]).expect("test schema compiles")
    }

    fn decode(s: &Schema, ty: TypeId, b: &[u8]) -> crate::Result<()> {
        for compat in [Compat::Strict, Compat::Libvirt] {
            let d = s
                .decode_type(ty, b, 0, &Limits::default(), compat)
                .map(|_| ());
            let v = s.validate_type(ty, b, 0, &Limits::default(), compat);
            assert_eq!(d, v, "validate and decode agree");
            d?;
        }
        Ok(())
    }

    #[test]
    fn a_union_with_a_discriminant_no_arm_takes_is_refused_where_it_is() {
        let s = schema();
        let holder = s.type_id("holder").unwrap();
        let sites = union_sites(&s, holder);
        let paths: Vec<&str> = sites.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["p[0]", "maybe", "v"]);
        // `val` has a default arm: every discriminant selects one.
        assert_eq!(unknown_key(&s, sites[2].ty), None);
        // An enum discriminant: one past the members (every member has a case).
        assert_eq!(unknown_key(&s, sites[0].ty), Some(8));
        // An int discriminant: one past the largest case.
        assert_eq!(unknown_key(&s, sites[1].ty), Some(4));
        for (site, key) in [(&sites[1], 4), (&sites[1], 2)] {
            let b = with_unknown_arm(&s, holder, site, key);
            let e = decode(&s, holder, &b).unwrap_err();
            assert!(
                matches!(e.kind(), ErrorKind::InvalidDiscriminant(k) if *k == key),
                "{e}"
            );
            assert_eq!(e.path_string(), format!("{}.t", site.path), "{e}");
        }
        // An enum discriminant outside the enum is refused as the enum's value, under the union.
        let e = decode(&s, holder, &with_unknown_arm(&s, holder, &sites[0], 8)).unwrap_err();
        assert_eq!(e.path_string(), "p[0].k", "{e}");
        // The same bytes with a key an arm takes decode.
        let ok = with_unknown_arm(&s, holder, &sites[1], 3);
        assert!(
            decode(&s, holder, &ok).is_err(),
            "the arm's value is missing"
        );
        assert!(union_sites(&s, s.type_id("item").unwrap()).is_empty());
    }

    #[test]
    fn finds_every_bounded_item_with_its_path() {
        let s = schema();
        let args = s.type_id("args").unwrap();
        let got: Vec<(String, u32, LimitKind, String)> = bounded_fields(&s, args)
            .into_iter()
            .map(|f| (f.path, f.max, f.limit, f.name))
            .collect();
        let want = [
            ("maybe", 8, LimitKind::String, "maybe"),
            ("pair[0].name", 8, LimitKind::String, "name"),
            ("pair[0].blob", 5, LimitKind::Opaque, "blob"),
            ("v.s", 6, LimitKind::String, "s"),
            ("v.items", 3, LimitKind::Array, "items"),
            ("v.items[0].name", 8, LimitKind::String, "name"),
            ("v.items[0].blob", 5, LimitKind::Opaque, "blob"),
            ("n.label", 4, LimitKind::String, "label"),
            // `next` is a `node` again: not entered twice on one path.
        ];
        let want: Vec<(String, u32, LimitKind, String)> = want
            .iter()
            .map(|(p, m, l, n)| (p.to_string(), *m, *l, n.to_string()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn counted_fields_adds_the_unbounded_items() {
        let s = Schema::from_sources(&[("t.x", "struct t { string a<>; opaque b<2>; int c<>; };")])
            .unwrap();
        let t = s.type_id("t").unwrap();
        let got: Vec<(String, u32)> = counted_fields(&s, t)
            .into_iter()
            .map(|f| (f.path, f.max))
            .collect();
        let want = [("a", u32::MAX), ("b", 2), ("c", u32::MAX)];
        let want: Vec<(String, u32)> = want.iter().map(|(p, m)| (p.to_string(), *m)).collect();
        assert_eq!(got, want);
        let bounded: Vec<String> = bounded_fields(&s, t).into_iter().map(|f| f.path).collect();
        assert_eq!(bounded, ["b"]);
    }

    #[test]
    fn zero_encodes_and_decodes_back() {
        let s = schema();
        for name in ["args", "val", "item", "node", "kind", "uuid_t"] {
            let ty = s.type_id(name).unwrap();
            let b = zero_bytes(&s, ty);
            assert!(!b.is_empty(), "{name}");
            let v = s
                .decode_type(ty, &b, 0, &Limits::default(), Compat::Strict)
                .unwrap();
            assert_eq!(v, zero(&s, ty), "{name}");
        }
        // 4 (uuid) + 4 (absent) + 2 × (4 + 4) + 4 (K_NONE) + 4 (flags) + 4 + 4 (node).
        assert_eq!(zero_bytes(&s, s.type_id("args").unwrap()).len(), 40);
    }

    #[test]
    fn default_arm_gets_a_value_no_case_names() {
        let s = schema();
        let val = s.type_id("val").unwrap();
        assert_eq!(
            arm_key(&s, val, 3),
            Some(7),
            "K_OTHER is the only member left"
        );
        assert_eq!(arm_key(&s, val, 1), Some(1));
    }

    #[test]
    fn max_decodes_and_over_is_refused_at_the_path() {
        let s = schema();
        let args = s.type_id("args").unwrap();
        for f in bounded_fields(&s, args) {
            let max = at_max(&s, args, &f, b'a');
            assert_eq!(max.len() as u64, len_with_count(&s, args, &f, f.max));
            decode(&s, args, &max).unwrap_or_else(|e| panic!("{} at max: {e}", f.path));
            // The max value re-encodes to the same bytes through the checked encoder.
            let v = s
                .decode_type(args, &max, 0, &Limits::default(), Compat::Strict)
                .unwrap();
            let mut again = Vec::new();
            s.encode_type(args, &v, &mut again, &Limits::default())
                .unwrap();
            assert_eq!(again, max, "{}", f.path);

            let over = over_max(&s, args, &f, b'a');
            assert_eq!(over.len() as u64, len_with_count(&s, args, &f, f.max + 1));
            let e = decode(&s, args, &over).expect_err(&f.path);
            assert_eq!(e.op(), Op::Decode);
            assert_eq!(e.path_string(), f.path, "{e}");
            assert!(
                matches!(e.kind(), ErrorKind::OverLimit { limit, max, actual }
                    if *limit == f.limit && *max == f.max as u64 && *actual == f.over()),
                "{}: {e}",
                f.path
            );
        }
    }

    #[test]
    fn fill_byte_is_used_and_padding_is_zero() {
        let s = schema();
        let args = s.type_id("args").unwrap();
        let f = bounded_fields(&s, args)
            .into_iter()
            .find(|f| f.path == "v.s")
            .unwrap();
        let b = at_max(&s, args, &f, b'z');
        let v = s
            .decode_type(args, &b, 0, &Limits::default(), Compat::Strict)
            .unwrap();
        assert_eq!(v.at("v.s").and_then(Value::as_bytes), Some(&b"zzzzzz"[..]));
        // 7 bytes over: 7 'z' then one zero pad byte.
        let o = over_max(&s, args, &f, b'z');
        let at = o.windows(7).position(|w| w == b"zzzzzzz").unwrap();
        assert_eq!(o[at + 7], 0);
    }

    /// libvirt 9.0.0's own files (the repository's `.cache`, `scripts/setup.sh --xdr-only`), or
    /// `$VIRTWIRE_PROTOCOL_DIR`: `None` when absent (a failure under `VIRTWIRE_REQUIRE_ALL=1`).
    fn libvirt() -> Option<Schema> {
        let dir = std::env::var_os("VIRTWIRE_PROTOCOL_DIR")
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/libvirt-9.0.0")
            });
        if !dir.join("src/remote/remote_protocol.x").is_file() {
            let why = format!("libvirt .x files not found in {}", dir.display());
            if std::env::var("VIRTWIRE_REQUIRE_ALL").as_deref() == Ok("1") {
                panic!("VIRTWIRE_REQUIRE_ALL=1 but {why}");
            }
            eprintln!("SKIPPED: {why} (run scripts/setup.sh --xdr-only)");
            return None;
        }
        Some(Schema::load_dir(&dir).expect("libvirt 9.0.0's .x files compile"))
    }

    #[test]
    fn every_args_field_of_libvirt_is_refused_one_over_at_its_path() {
        let Some(s) = libvirt() else { return };
        let lim = Limits::default();
        let mut fields = 0;
        let mut too_big = 0;
        for p in s.programs() {
            for q in p.procedure_list() {
                let Some((name, args)) = q.body(crate::BodyRole::Args) else {
                    continue;
                };
                for f in bounded_fields(&s, args) {
                    fields += 1;
                    assert!(
                        matches!(
                            (s.ty(f.ty), f.limit),
                            (Type::String { .. }, LimitKind::String)
                                | (Type::Opaque { .. }, LimitKind::Opaque)
                                | (Type::Array { .. }, LimitKind::Array)
                        ),
                        "{name}.{}",
                        f.path
                    );
                    let over_len = len_with_count(&s, args, &f, f.max + 1);
                    if over_len > lim.payload_max() as u64 {
                        too_big += 1;
                        continue;
                    }
                    let over = over_max(&s, args, &f, b'x');
                    assert_eq!(over.len() as u64, over_len);
                    let e = s
                        .validate_type(args, &over, 0, &lim, Compat::Libvirt)
                        .expect_err(&f.path);
                    assert_eq!(e.path_string(), f.path, "{name}: {e}");
                    assert!(matches!(e.kind(), ErrorKind::OverLimit { .. }), "{e}");
                    if over_len < 1 << 16 {
                        let max = at_max(&s, args, &f, b'x');
                        s.validate_type(args, &max, 0, &lim, Compat::Strict)
                            .unwrap_or_else(|e| panic!("{name}.{} at max: {e}", f.path));
                    }
                }
            }
        }
        eprintln!(
            "{fields} bounded args fields, {too_big} whose over-limit body exceeds a payload"
        );
        assert!(fields > 500, "{fields}");
    }
}
