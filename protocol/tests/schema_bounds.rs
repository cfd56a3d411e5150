//! Every bounded field of libvirt 9.0.0's protocol, nested ones included: max accepted, max+1
//! rejected, by the encoder and by the decoder (both compat modes), with the right limit kind, byte
//! offset and field path (issue 3).
//!
//! The compiled schema is walked from every body (args/ret/msg of every procedure of every program,
//! then `virNetMessageError`, then any named struct/union no body reaches) through struct fields,
//! union arms (with a discriminant that selects the arm), present optionals, one array element and
//! the first element of fixed arrays. Every `string<N>`, `opaque<N>` and `T x<N>` found is one
//! bounded field, identified by its enclosing struct/union and its name there (plus `[0]` for an
//! array of bounded items); each distinct one is tested once, through the first body that reaches
//! it, with a value that is minimal everywhere except that field.

mod schema_support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use schema_support::{bodies, header_for};
use virtwire_protocol::schema::bounds::{Step, arm_key, counted_fields, disc_value, zero};
use virtwire_protocol::schema::{Schema, Type, TypeId, Value};
use virtwire_protocol::{Compat, ErrorKind, Header, LimitKind, Limits, MessageStatus, Op};

// A counting allocator (per thread), to show that a count the bytes cannot back allocates nothing.
#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::peak_during;

// ---------------------------------------------------------------------------------------------
// Finding the bounded fields (the library's walker, `schema::bounds::counted_fields`).

/// Where a value is encoded and decoded: as a message body, or as a bare type.
#[derive(Clone, Debug)]
enum Target {
    Body(Header),
    Type,
}

/// One bounded field, reached from a root type.
#[derive(Clone, Debug)]
struct Node {
    /// The program whose body reached it first (`virnet` for the RPC layer's error body,
    /// `unreachable` for named types no body uses).
    program: String,
    /// The body (for messages) and a description of it.
    target: Target,
    origin: String,
    root: TypeId,
    steps: Vec<Step>,
    /// The path an error at this field names (`retStats[0].params[0].value.s`).
    path: String,
    /// The bounded type (`String`, `Opaque` or `Array`).
    ty: TypeId,
    max: u32,
    limit: LimitKind,
    /// (enclosing struct/union, the field's name there): what makes it distinct.
    key: (TypeId, String),
}

/// The counted items of the roots walked, each distinct one (by `key`) once, through the first
/// root that reaches it.
struct Found<'s> {
    s: &'s Schema,
    keys: HashSet<(TypeId, String)>,
    found: Vec<Node>,
}

impl<'s> Found<'s> {
    fn new(s: &'s Schema) -> Self {
        Found {
            s,
            keys: HashSet::new(),
            found: Vec::new(),
        }
    }

    /// Walk a root (a body or a named type) and record its counted items not found before.
    fn root(&mut self, program: &str, target: Target, origin: &str, root: TypeId) {
        for f in counted_fields(self.s, root) {
            assert!(
                matches!(self.s.ty(f.enclosing), Type::Struct(_) | Type::Union(_)),
                "{origin}: {} — a body is a struct, so every counted item has an enclosing type",
                f.path
            );
            let key = (f.enclosing, f.name);
            if self.keys.insert(key.clone()) {
                self.found.push(Node {
                    program: program.to_string(),
                    target: target.clone(),
                    origin: origin.to_string(),
                    root,
                    steps: f.steps,
                    path: f.path,
                    ty: f.ty,
                    max: f.max,
                    limit: f.limit,
                    key,
                });
            }
        }
    }
}

/// Every program's bounded fields, each program walked on its own (a type two programs use is
/// found in both), in the order its bodies reach them; the RPC layer's own bodies last, as
/// `virnet`.
fn per_program(s: &Schema) -> Vec<(String, Found<'_>)> {
    let mut out: Vec<(String, Found<'_>)> = Vec::new();
    let mut by_prog: HashMap<(u32, u32), usize> = HashMap::new();
    for (prog, vers, procedure, role, ty) in bodies(s) {
        let p = s.program(prog, vers).unwrap();
        let i = *by_prog.entry((prog, vers)).or_insert_with(|| {
            out.push((p.name().to_string(), Found::new(s)));
            out.len() - 1
        });
        let q = p.procedure(procedure).unwrap();
        let origin = format!("{} {} {}", p.name(), q.name, role.name());
        let h = header_for(prog, vers, procedure, role);
        out[i].1.root(p.name(), Target::Body(h), &origin, ty);
    }
    // The RPC layer's error body (REPLY/ERROR of any procedure) and stream hole.
    let mut virnet = Found::new(s);
    if let Some(err) = s.type_id("virNetMessageError") {
        let h = Header::call(0x2000_8086, 1, 1).reply_to(MessageStatus::Error);
        virnet.root("virnet", Target::Body(h), "virNetMessageError", err);
    }
    if let Some(hole) = s.type_id("virNetStreamHole") {
        virnet.root("virnet", Target::Type, "virNetStreamHole", hole);
    }
    out.push(("virnet".to_string(), virnet));
    out
}

/// The bounded fields of a schema.
struct Census {
    /// Each distinct one once, through the first body that reaches it (programs in file order,
    /// then `virnet`); then those of named structs/unions no body reaches, as bare types.
    distinct: Vec<Node>,
    /// How many each program's bodies reach (each program on its own).
    reachable: BTreeMap<String, usize>,
    /// Arms of named unions no discriminant value selects (the walker passes them over).
    unselectable: Vec<String>,
}

fn census(s: &Schema) -> Census {
    let mut reachable = BTreeMap::new();
    let mut all = Found::new(s);
    for (name, f) in per_program(s) {
        *reachable.entry(name).or_insert(0) += f.found.len();
        for n in f.found {
            if all.keys.insert(n.key.clone()) {
                all.found.push(n);
            }
        }
    }
    // Named structs/unions no body reaches: only their items not found through a body are new.
    let mut names: Vec<(&str, TypeId)> = s.type_names().collect();
    names.sort();
    let mut unselectable = Vec::new();
    for (name, id) in names {
        if let Type::Union(u) = s.ty(id) {
            for (i, arm) in u.arms.iter().enumerate() {
                if let Some(arm_name) = &arm.name
                    && arm_key(s, id, i).is_none()
                {
                    unselectable.push(format!("{name}.{arm_name}"));
                }
            }
        }
        if matches!(s.ty(id), Type::Struct(_) | Type::Union(_)) {
            all.root("unreachable", Target::Type, name, id);
        }
    }
    Census {
        distinct: all.found,
        reachable,
        unselectable,
    }
}

// ---------------------------------------------------------------------------------------------
// Building values and bytes.

fn lim() -> Limits {
    Limits::default()
}

/// Append the encoding of `v` as `ty` (through the library: the minimal parts around the field
/// under test).
fn enc_into(s: &Schema, ty: TypeId, v: &Value<'_>, out: &mut Vec<u8>) {
    s.encode_type(ty, v, out, &lim())
        .unwrap_or_else(|e| panic!("minimal {}: {e}", s.describe(ty)));
}

/// The bounded node's count word and the end of its encoding, as offsets in the built bytes.
#[derive(Clone, Copy, Debug, Default)]
struct Span {
    at: usize,
    end: usize,
}

/// Minimal elements, cached per element type (their encodings are repeated `n` times).
#[derive(Default)]
struct Cache<'s> {
    elems: HashMap<TypeId, (Value<'s>, Vec<u8>)>,
}

impl<'s> Cache<'s> {
    fn elem(&mut self, s: &'s Schema, elem: TypeId) -> &(Value<'s>, Vec<u8>) {
        self.elems.entry(elem).or_insert_with(|| {
            let z = zero(s, elem);
            let mut b = Vec::new();
            enc_into(s, elem, &z, &mut b);
            (z, b)
        })
    }
}

/// Write the node itself with `n` items: count word, then `n` bytes of `fill` (padded) or `n`
/// minimal elements.
fn write_node<'s>(
    s: &'s Schema,
    ty: TypeId,
    n: usize,
    fill: &'s [u8],
    cache: &mut Cache<'s>,
    out: &mut Vec<u8>,
) -> Value<'s> {
    out.extend((n as u32).to_be_bytes());
    match s.ty(ty) {
        Type::String { .. } | Type::Opaque { .. } => {
            out.extend_from_slice(&fill[..n]);
            out.resize(out.len() + (4 - n % 4) % 4, 0);
            if matches!(s.ty(ty), Type::String { .. }) {
                Value::String(&fill[..n])
            } else {
                Value::Opaque(&fill[..n])
            }
        }
        Type::Array { elem, .. } => {
            let (z, zb) = cache.elem(s, *elem);
            out.reserve(n * zb.len());
            for _ in 0..n {
                out.extend_from_slice(zb);
            }
            Value::Array(vec![z.clone(); n])
        }
        t => panic!("not a bounded type: {t:?}"),
    }
}

/// A value of `ty`, minimal except for the node at `steps` which holds `n` items, and its encoding
/// (written piecewise, appended to `out`); `span` receives the node's offsets.
#[allow(clippy::too_many_arguments)]
fn build<'s>(
    s: &'s Schema,
    ty: TypeId,
    steps: &[Step],
    n: usize,
    fill: &'s [u8],
    cache: &mut Cache<'s>,
    out: &mut Vec<u8>,
    span: &mut Span,
) -> Value<'s> {
    let Some((step, rest)) = steps.split_first() else {
        span.at = out.len();
        let v = write_node(s, ty, n, fill, cache, out);
        span.end = out.len();
        return v;
    };
    match (step, s.ty(ty)) {
        (Step::Some, Type::Optional(t)) => {
            out.extend(1u32.to_be_bytes());
            let v = build(s, *t, rest, n, fill, cache, out, span);
            Value::Optional(Some(Box::new(v)))
        }
        (Step::Elem, Type::Array { elem, .. }) => {
            out.extend(1u32.to_be_bytes());
            Value::Array(vec![build(s, *elem, rest, n, fill, cache, out, span)])
        }
        (Step::Fixed, Type::FixedArray { elem, len }) => {
            let mut items = vec![build(s, *elem, rest, n, fill, cache, out, span)];
            for _ in 1..*len {
                let z = zero(s, *elem);
                enc_into(s, *elem, &z, out);
                items.push(z);
            }
            Value::Array(items)
        }
        (Step::Field(i), Type::Struct(st)) => {
            let mut fields = Vec::with_capacity(st.fields.len());
            for (j, f) in st.fields.iter().enumerate() {
                let v = if j == *i {
                    build(s, f.ty, rest, n, fill, cache, out, span)
                } else {
                    let z = zero(s, f.ty);
                    enc_into(s, f.ty, &z, out);
                    z
                };
                fields.push((f.name.as_str(), v));
            }
            Value::Struct(fields)
        }
        (Step::Arm { index, key }, Type::Union(u)) => {
            let arm = &u.arms[*index];
            let d = disc_value(s, u.discriminant.ty, *key);
            enc_into(s, u.discriminant.ty, &d, out);
            let v = build(s, arm.ty, rest, n, fill, cache, out, span);
            Value::Union {
                discriminant: Box::new(d),
                arm: arm.name.as_deref(),
                value: Box::new(v),
            }
        }
        (step, t) => panic!("cannot take {step:?} into {t:?}"),
    }
}

/// The node inside a value built by [`build`].
fn node_mut<'v, 's>(v: &'v mut Value<'s>, steps: &[Step]) -> &'v mut Value<'s> {
    let Some((step, rest)) = steps.split_first() else {
        return v;
    };
    let inner = match (step, v) {
        (Step::Field(i), Value::Struct(f)) => &mut f[*i].1,
        (Step::Arm { .. }, Value::Union { value, .. }) => &mut **value,
        (Step::Some, Value::Optional(Some(b))) => &mut **b,
        (Step::Elem | Step::Fixed, Value::Array(items)) => &mut items[0],
        (step, v) => panic!("cannot take {step:?} into {}", v.kind_name()),
    };
    node_mut(inner, rest)
}

// ---------------------------------------------------------------------------------------------
// The codec under test, through the body (header) or the bare type.

const BASE: u64 = 28;

fn decode<'a>(
    s: &'a Schema,
    n: &Node,
    bytes: &'a [u8],
    compat: Compat,
) -> Result<Value<'a>, virtwire_protocol::Error> {
    let (d, v) = match &n.target {
        Target::Body(h) => (
            s.decode_body(h, bytes, BASE, &lim(), compat),
            s.validate_body(h, bytes, BASE, &lim(), compat),
        ),
        Target::Type => (
            s.decode_type(n.root, bytes, BASE, &lim(), compat),
            s.validate_type(n.root, bytes, BASE, &lim(), compat),
        ),
    };
    assert_eq!(
        d.as_ref().err(),
        v.as_ref().err(),
        "{}: validate disagrees with decode",
        n.path
    );
    // The codec's fast path (tried first by validate and the tape decode) accepts exactly what the
    // full walk accepts, at max and one over, with the same value.
    let ty = match &n.target {
        Target::Body(h) => s.body_type(h, bytes.len()).ok().flatten(),
        Target::Type => Some(n.root),
    };
    if let Some(ty) = ty {
        let (checked, tape) = s.fast_path(ty, bytes, &lim(), compat);
        assert_eq!(checked, d.is_ok(), "{}: fast validate, {compat:?}", n.path);
        assert_eq!(
            tape.is_some(),
            d.is_ok(),
            "{}: fast tape, {compat:?}",
            n.path
        );
        if let (Some(tape), Ok(value)) = (tape, &d) {
            assert!(tape.to_value() == *value, "{}: fast tape value", n.path);
        }
    }
    d
}

fn encode(
    s: &Schema,
    n: &Node,
    v: &Value<'_>,
    out: &mut Vec<u8>,
) -> Result<(), virtwire_protocol::Error> {
    let start = out.len();
    let r = match &n.target {
        Target::Body(h) => s.encode_body(h, v, out, &lim()),
        Target::Type => s.encode_type(n.root, v, out, &lim()),
    };
    // The encoder's fast path succeeds exactly where the full encoder does, with the same bytes.
    let ty = match &n.target {
        Target::Body(h) => s.body_type(h, 1).ok().flatten(),
        Target::Type => Some(n.root),
    };
    if let Some(ty) = ty {
        let mut fast = Vec::new();
        let ok = s.encode_fast_path(ty, v, &mut fast, &lim());
        assert_eq!(
            ok,
            r.is_ok(),
            "{}: fast encode ({})",
            n.path,
            s.describe(ty)
        );
        if ok {
            assert!(fast[..] == out[start..], "{}: fast encode bytes", n.path);
        }
    }
    r
}

/// What was checked, counted per direction and mode.
#[derive(Default, Debug)]
struct Tally {
    encode_max: usize,
    encode_over: usize,
    decode_max: [usize; 2],
    decode_over: [usize; 2],
    truncated: [usize; 2],
}

/// Reused between fields.
struct Bufs {
    at_max: Vec<u8>,
    over: Vec<u8>,
    out: Vec<u8>,
    /// Where [`hostile_count`] patched the count word.
    hostile_at: usize,
}

fn mode(compat: Compat) -> usize {
    match compat {
        Compat::Strict => 0,
        _ => 1,
    }
}

/// The minimal encoding (the field empty) with the field's count word set to `count`, in
/// `b.over`; true if that count asks for more bytes than follow it (so that decoding must stop
/// right there).
fn hostile_count<'s>(
    s: &'s Schema,
    n: &Node,
    count: u32,
    cache: &mut Cache<'s>,
    b: &mut Bufs,
) -> bool {
    let mut span = Span::default();
    b.over.clear();
    build(s, n.root, &n.steps, 0, &[], cache, &mut b.over, &mut span);
    b.over[span.at..span.at + 4].copy_from_slice(&count.to_be_bytes());
    b.hostile_at = span.at;
    let min_item = match s.ty(n.ty) {
        Type::Array { elem, .. } => s.min_size(*elem).max(1) as u64,
        _ => 1,
    };
    count as u64 * min_item > (b.over.len() - span.at - 4) as u64
}

/// Check one bounded field at its max and max+1, both directions, both decode modes; and that a
/// count of max with fewer bytes behind it than max items need is `Truncated` right after the
/// count word, without allocating from the count.
fn check_node<'s>(
    s: &'s Schema,
    n: &Node,
    fill: &'s [u8],
    cache: &mut Cache<'s>,
    b: &mut Bufs,
    t: &mut Tally,
) {
    let max = n.max as usize;
    let what = format!("{} ({}, {})", n.path, n.origin, s.describe(n.ty));
    b.at_max.clear();
    let mut span = Span::default();
    let mut v = build(
        s,
        n.root,
        &n.steps,
        max,
        fill,
        cache,
        &mut b.at_max,
        &mut span,
    );

    // max: the encoder writes exactly the hand-built bytes…
    b.out.clear();
    encode(s, n, &v, &mut b.out).unwrap_or_else(|e| panic!("{what} at max: encode: {e}"));
    assert!(b.out == b.at_max, "{what}: encoding at max differs");
    t.encode_max += 1;
    // …and both modes decode them to the value.
    for compat in [Compat::Strict, Compat::Libvirt] {
        let d = decode(s, n, &b.at_max, compat)
            .unwrap_or_else(|e| panic!("{what} at max, {compat:?}: decode: {e}"));
        assert!(d == v, "{what} at max, {compat:?}: decoded value differs");
        t.decode_max[mode(compat)] += 1;
    }

    // The minimal body with the field's count word patched to max: a count the bytes cannot back
    // is Truncated right after the count word, and nothing is sized from it.
    if hostile_count(s, n, n.max, cache, b) {
        for compat in [Compat::Strict, Compat::Libvirt] {
            let body = &b.over[..];
            let (r, peak) = peak_during(|| decode(s, n, body, compat).map(|_| ()));
            let e = r.expect_err(&what);
            assert!(
                matches!(e.kind(), ErrorKind::Truncated { .. }),
                "{what}, {compat:?}: {e}"
            );
            assert_eq!(e.offset(), BASE + b.hostile_at as u64 + 4, "{what}");
            assert_eq!(e.path_string(), n.path, "{what}");
            assert!(
                peak <= 64 * body.len() + 16384,
                "{what}: {peak} bytes allocated for a {}-byte body",
                body.len()
            );
            t.truncated[mode(compat)] += 1;
        }
    }

    // max + 1, hand-made: the count word patched, one more byte or minimal element in the node.
    let want = ErrorKind::OverLimit {
        limit: n.limit,
        max: max as u64,
        actual: max as u64 + 1,
    };
    b.over.clear();
    b.over.extend_from_slice(&b.at_max[..span.at]);
    write_node(s, n.ty, max + 1, fill, cache, &mut b.over);
    b.over.extend_from_slice(&b.at_max[span.end..]);
    for compat in [Compat::Strict, Compat::Libvirt] {
        let e = decode(s, n, &b.over, compat).expect_err(&what);
        assert_eq!(*e.kind(), want, "{what}, {compat:?}");
        assert_eq!(e.op(), Op::Decode);
        assert_eq!(e.offset(), BASE + span.at as u64, "{what}, {compat:?}");
        assert_eq!(e.path_string(), n.path, "{what}, {compat:?}");
        t.decode_over[mode(compat)] += 1;
    }

    // max + 1 as a value: the encoder refuses at the count word and leaves `out` alone.
    match node_mut(&mut v, &n.steps) {
        Value::String(x) | Value::Opaque(x) => *x = &fill[..max + 1],
        Value::Array(items) => {
            let z = items.first().cloned().unwrap_or_else(|| {
                let Type::Array { elem, .. } = s.ty(n.ty) else {
                    unreachable!()
                };
                zero(s, *elem)
            });
            items.push(z);
        }
        other => panic!("{what}: node is {}", other.kind_name()),
    }
    b.out.clear();
    b.out.push(0xee);
    let e = encode(s, n, &v, &mut b.out).expect_err(&what);
    assert_eq!((e.op(), e.kind().clone()), (Op::Encode, want), "{what}");
    assert_eq!(e.offset(), span.at as u64, "{what}");
    assert_eq!(e.path_string(), n.path, "{what}");
    assert_eq!(
        b.out,
        [0xee],
        "{what}: a failed encode leaves the buffer alone"
    );
    t.encode_over += 1;
}

// ---------------------------------------------------------------------------------------------

/// What [`run`] tested.
#[derive(Debug, Default)]
struct Outcome {
    tally: Tally,
    /// Bounded fields tested, by the program whose body reaches them first.
    per_program: BTreeMap<String, usize>,
    /// Bounded fields tested, by their type (`string<4194304>`, `array<16>`, …).
    per_type: BTreeMap<String, usize>,
    /// Bounded fields tested whose path goes through a union arm, a present optional, a variable
    /// array's element, a fixed array's element.
    through: [usize; 4],
    /// The paths (`origin: path`) of the bounded fields tested.
    bounded: Vec<String>,
    /// The paths of `<>` declarations (checked only with a count the bytes cannot back).
    unbounded: Vec<String>,
}

/// Check every distinct bounded field of `s`; `<>` declarations only with a hostile count.
fn run(s: &Schema) -> Outcome {
    let c = census(s);
    assert!(
        c.unselectable.is_empty(),
        "union arms no discriminant selects: {:?}",
        c.unselectable
    );
    let largest = c
        .distinct
        .iter()
        .map(|n| n.max)
        .filter(|m| *m != u32::MAX)
        .max()
        .unwrap_or(0) as usize;
    let fill: Vec<u8> = (0..=largest).map(|i| b'a' + (i % 26) as u8).collect();
    let mut cache = Cache::default();
    let mut bufs = Bufs {
        at_max: Vec::new(),
        over: Vec::new(),
        out: Vec::new(),
        hostile_at: 0,
    };
    let mut o = Outcome::default();
    for n in &c.distinct {
        let label = format!("{}: {}", n.origin, n.path);
        if n.max == u32::MAX {
            // No max + 1 exists; a count no input can back must stop the decoder at once.
            assert!(hostile_count(s, n, u32::MAX, &mut cache, &mut bufs));
            for compat in [Compat::Strict, Compat::Libvirt] {
                let body = &bufs.over[..];
                let (r, peak) = peak_during(|| decode(s, n, body, compat).map(|_| ()));
                let e = r.expect_err(&label);
                assert!(
                    matches!(e.kind(), ErrorKind::Truncated { .. }),
                    "{label}: {e}"
                );
                assert_eq!(e.offset(), BASE + bufs.hostile_at as u64 + 4, "{label}");
                assert_eq!(e.path_string(), n.path, "{label}");
                assert!(peak <= 64 * body.len() + 16384, "{label}: {peak} bytes");
            }
            o.unbounded.push(label);
            continue;
        }
        check_node(s, n, &fill, &mut cache, &mut bufs, &mut o.tally);
        *o.per_program.entry(n.program.clone()).or_default() += 1;
        *o.per_type.entry(s.describe(n.ty)).or_default() += 1;
        for (i, kind) in o.through.iter_mut().enumerate() {
            let hit = n.steps.iter().any(|st| {
                matches!(
                    (i, st),
                    (0, Step::Arm { .. }) | (1, Step::Some) | (2, Step::Elem) | (3, Step::Fixed)
                )
            });
            *kind += hit as usize;
        }
        o.bounded.push(label);
    }
    // (`check_node` panics on any failed check, so its tally is the number of fields checked: it is
    // printed, not asserted against itself.)
    o
}

#[test]
fn every_bounded_field_of_every_body_at_max_and_max_plus_one() {
    let s = schema_or_skip!();
    let start = Instant::now();
    let c = census(s);
    let o = run(s);
    eprintln!(
        "bounded fields reachable per program (each program on its own): {:?}",
        c.reachable
    );
    eprintln!(
        "distinct bounded fields tested, by the program whose body reaches them first: {:?}",
        o.per_program
    );
    eprintln!("by type: {:?}", o.per_type);
    eprintln!(
        "through a union arm / optional / array element / fixed array: {:?}",
        o.through
    );
    eprintln!(
        "unbounded (`<>`) declarations: {} {:?}",
        o.unbounded.len(),
        o.unbounded
    );
    eprintln!(
        "distinct bounded fields: {} found, {} tested: {:?} (encode has no mode); {:.2?}",
        c.distinct.len() - o.unbounded.len(),
        o.bounded.len(),
        o.tally,
        start.elapsed()
    );
    // libvirt bans `<>` in its .x files; 9.0.0 has none.
    assert!(o.unbounded.is_empty(), "{:?}", o.unbounded);
    // libvirt 9.0.0 has exactly these (fixed numbers: a walker or .x change shows here).
    let want: BTreeMap<String, usize> = [
        ("admin", 15),
        ("lock", 11),
        ("log", 9),
        ("qemu", 9),
        ("remote", 434),
        ("unreachable", 4),
        ("virnet", 6),
    ]
    .into_iter()
    .map(|(p, n)| (p.to_string(), n))
    .collect();
    assert_eq!(o.per_program, want);
    assert_eq!(o.bounded.len(), 488);
    // In libvirt every bound is larger than what follows the field in a minimal body.
    assert_eq!(o.tally.truncated, [488, 488]);
    for i in [0, 1, 2] {
        assert!(o.through[i] > 0, "{:?}", o.through);
    }
    // No body carries remote_protocol.x's own copy of the error struct; its strings are tested as
    // a bare type (its `dom` and `net` are types the bodies reach).
    let unreachable: Vec<&str> = o
        .bounded
        .iter()
        .filter_map(|l| l.strip_prefix("remote_error: "))
        .collect();
    assert_eq!(unreachable, ["message", "str1", "str2", "str3"]);
    // Among them the nested ones the issue names.
    for (ty, field) in [
        ("remote_typed_param_value", "s"),
        ("remote_typed_param", "field"),
        ("remote_domain_stats_record", "params"),
        ("remote_connect_get_all_domain_stats_ret", "retStats"),
        ("remote_nonnull_domain", "name"),
        ("virNetMessageError", "message"),
        ("virNetMessageNonnullDomain", "name"),
    ] {
        let id = s.type_id(ty).unwrap_or_else(|| panic!("no type {ty}"));
        assert!(
            c.distinct.iter().any(|n| n.key == (id, field.to_string())),
            "{ty}.{field} not found"
        );
    }
}

/// The walker and the checks on a small hand-written schema with every way in (nested arrays,
/// fixed arrays, a default union arm selected by an enum member, optionals, recursion), `<>`
/// declarations and a struct no body uses.
#[test]
fn walker_finds_every_kind_of_bounded_field_and_checks_unbounded_ones() {
    let x = "\
        const T_PROGRAM = 0x7e57;
        const T_PROTOCOL_VERSION = 1;
        const T_MAX = 3;
        typedef string t_name<5>;
        enum t_kind { T_A = 1, T_B = 2, T_C = 3 };
        struct t_list { t_name v; t_list *next; };
        struct t_inner { opaque o<2>; int pad; };
        union t_u switch (t_kind k) {
        case T_A: t_name a;
        case T_B: void;
        default: opaque d<7>;
        };
        union t_w switch (unsigned int w) { case 0: void; default: hyper h<4>; };
        struct t_one_args {
            t_name names<T_MAX>;
            t_inner fx[2];
            t_u u;
            t_list *head;
            string s<>;
            opaque o<>;
            int a<>;
            t_w w;
            hyper tail;
        };
        struct t_one_ret { t_u u; t_inner inner<1>; };
        struct t_orphan { string z<1>; };
        enum t_procedure { T_PROC_ONE = 1 };
    ";
    let s = Schema::from_sources(&[("t.x", x)]).unwrap();
    let o = run(&s);
    assert_eq!(
        o.bounded,
        [
            "t ONE args: names",
            "t ONE args: names[0]",
            "t ONE args: fx[0].o",
            "t ONE args: u.a",
            "t ONE args: u.d",
            "t ONE args: head.v",
            "t ONE args: w.h",
            "t ONE ret: inner",
            "t_orphan: z",
        ]
    );
    assert_eq!(
        o.unbounded,
        ["t ONE args: s", "t ONE args: o", "t ONE args: a"]
    );
    assert_eq!(o.through, [3, 1, 1, 1]);
    // The hostile count of max only stops the decoder where fewer bytes follow it than max items
    // need: `w.h`, `inner` and `z` here (the rest have longer tails).
    assert_eq!(o.tally.truncated, [3, 3]);
    let per: Vec<(&str, usize)> = o
        .per_program
        .iter()
        .map(|(p, n)| (p.as_str(), *n))
        .collect();
    assert_eq!(per, [("t", 8), ("unreachable", 1)]);
}
