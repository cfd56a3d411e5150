//! Shared helpers of the schema_* tests: loading libvirt's .x files from the cache (or skipping
//! loudly; a failure under `VIRTWIRE_REQUIRE_ALL=1`), minimal values and a random value
//! generator driven by the compiled schema.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use virtwire_protocol::BodyRole;
use virtwire_protocol::schema::{Schema, Type, TypeId, Value};

/// The libvirt tree the tests use, found as the tools find it: `$VIRTWIRE_PROTOCOL_DIR` when set
/// (and not empty), else the repository's `.cache/libvirt-9.0.0` (`scripts/setup.sh --xdr-only`).
pub fn libvirt_dir() -> PathBuf {
    std::env::var_os("VIRTWIRE_PROTOCOL_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.cache/libvirt-9.0.0")
        })
}

/// Is `VIRTWIRE_REQUIRE_ALL=1` set (scripts/test.sh, CI, scripts/mutants.sh)? Then every skip
/// is a failure naming what is missing.
pub fn require_all() -> bool {
    std::env::var_os("VIRTWIRE_REQUIRE_ALL").is_some_and(|v| v == "1")
}

/// Skip a test that cannot run here: print why, or fail when `VIRTWIRE_REQUIRE_ALL=1`.
pub fn skip(why: &str) {
    assert!(
        !require_all(),
        "VIRTWIRE_REQUIRE_ALL=1 but {why} — this test would check nothing"
    );
    eprintln!("SKIPPED: {why} (this test checked nothing)");
}

/// The compiled 9.0.0 schema, or `None` (after printing why) when the .x files are not installed.
/// Files that are there but do not load (a parser regression, a truncated file) fail the test
/// always; a missing tree fails it under `VIRTWIRE_REQUIRE_ALL=1`.
pub fn schema() -> Option<&'static Schema> {
    static S: OnceLock<Result<Schema, String>> = OnceLock::new();
    let s = S.get_or_init(|| {
        let dir = libvirt_dir();
        if !dir.join("src/remote/remote_protocol.x").is_file() {
            return Err(format!(
                "libvirt .x files not found in {} (no src/remote/remote_protocol.x) — run \
                 scripts/setup.sh --xdr-only or set VIRTWIRE_PROTOCOL_DIR",
                dir.display()
            ));
        }
        Ok(Schema::load_dir(&dir).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display())))
    });
    match s {
        Ok(s) => Some(s),
        Err(why) => {
            skip(why);
            None
        }
    }
}

/// Early-return from a test when the cache is absent.
#[macro_export]
macro_rules! schema_or_skip {
    () => {
        match $crate::schema_support::schema() {
            Some(s) => s,
            None => return,
        }
    };
}

/// A fixed pool of pseudo-random bytes that generated strings and opaques borrow from.
pub fn pool() -> &'static [u8] {
    static P: OnceLock<Vec<u8>> = OnceLock::new();
    P.get_or_init(|| {
        let mut r = Rng(0x5eed);
        (0..1 << 20).map(|_| r.next() as u8).collect()
    })
}

/// SplitMix64.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in 0..=max.
    pub fn upto(&mut self, max: u64) -> u64 {
        if max == u64::MAX {
            self.next()
        } else {
            self.next() % (max + 1)
        }
    }
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }
    /// An integer biased towards edge values.
    pub fn edgy(&mut self) -> u64 {
        match self.next() % 8 {
            0 => 0,
            1 => u64::MAX,
            2 => 1,
            3 => self.next() % 256,
            4 => 1 << (self.next() % 64),
            _ => self.next(),
        }
    }
}

/// The minimal value of a type and a union discriminant's value: the library's own
/// (`schema::bounds`), so that every test builds them one way.
#[allow(unused_imports)] // each test binary uses its part
pub use virtwire_protocol::schema::bounds::{disc_value, zero};

/// A discriminant value of a union that selects its (default) arm `i`.
fn free_case(s: &Schema, ty: TypeId, i: usize) -> i64 {
    virtwire_protocol::schema::bounds::arm_key(s, ty, i).unwrap_or_else(|| {
        panic!(
            "no discriminant value selects arm {i} of {}",
            s.describe(ty)
        )
    })
}

/// Knobs of the random generator.
#[derive(Clone, Copy, Debug)]
pub struct GenCfg {
    /// Most elements of one variable array.
    pub max_elems: u64,
    /// Longest string/opaque.
    pub max_bytes: u64,
    /// Elements left for the whole value (keeps values small).
    pub budget: u64,
}

impl Default for GenCfg {
    fn default() -> Self {
        GenCfg {
            max_elems: 6,
            max_bytes: 40,
            budget: 200,
        }
    }
}

/// A random value of type `ty` within every bound of the schema.
pub fn random_value<'s>(
    s: &'s Schema,
    ty: TypeId,
    r: &mut Rng,
    cfg: &mut GenCfg,
    depth: u32,
) -> Value<'s> {
    let len = |r: &mut Rng, max: u32, cap: u64| -> u64 {
        let cap = cap.min(max as u64);
        // Sometimes exactly at a small bound.
        if (max as u64) <= cap && r.chance(1, 4) {
            max as u64
        } else {
            r.upto(cap)
        }
    };
    match s.ty(ty) {
        Type::Void => Value::Void,
        Type::Int => Value::Int(r.edgy() as i32),
        Type::UInt => Value::UInt(r.edgy() as u32),
        Type::Hyper => Value::Hyper(r.edgy() as i64),
        Type::UHyper => Value::UHyper(r.edgy()),
        Type::Float => {
            let f = f32::from_bits(r.next() as u32);
            Value::Float(if f.is_nan() { -0.5 } else { f })
        }
        Type::Double => {
            let f = f64::from_bits(r.next());
            Value::Double(if f.is_nan() { 1e300 } else { f })
        }
        Type::Bool => Value::Bool(r.chance(1, 2)),
        Type::Small(k) => {
            let (lo, hi) = k.range();
            let v = lo + r.upto((hi - lo) as u64) as i64;
            if k.is_unsigned() {
                Value::UInt(v as u32)
            } else {
                Value::Int(v as i32)
            }
        }
        Type::Enum(e) => {
            let (n, v) = &e.members[r.upto(e.members.len() as u64 - 1) as usize];
            Value::Enum {
                value: *v,
                name: e
                    .members
                    .iter()
                    .find(|m| m.1 == *v)
                    .map(|m| m.0.as_str())
                    .or(Some(n)),
            }
        }
        Type::String { max } => {
            let n = len(r, *max, cfg.max_bytes) as usize;
            let off = r.upto((pool().len() - n) as u64) as usize;
            Value::String(&pool()[off..off + n])
        }
        Type::Opaque { max } => {
            let n = len(r, *max, cfg.max_bytes) as usize;
            let off = r.upto((pool().len() - n) as u64) as usize;
            Value::Opaque(&pool()[off..off + n])
        }
        Type::OpaqueFixed { len } => {
            let n = *len as usize;
            let off = r.upto((pool().len() - n) as u64) as usize;
            Value::Opaque(&pool()[off..off + n])
        }
        Type::Array { elem, max } => {
            let cap = if depth > 12 {
                0
            } else {
                cfg.max_elems.min(cfg.budget)
            };
            let n = len(r, *max, cap);
            cfg.budget = cfg.budget.saturating_sub(n);
            Value::Array(
                (0..n)
                    .map(|_| random_value(s, *elem, r, cfg, depth + 1))
                    .collect(),
            )
        }
        Type::FixedArray { elem, len } => {
            cfg.budget = cfg.budget.saturating_sub(*len as u64);
            Value::Array(
                (0..*len)
                    .map(|_| random_value(s, *elem, r, cfg, depth + 1))
                    .collect(),
            )
        }
        Type::Optional(t) => {
            if depth < 12 && cfg.budget > 0 && r.chance(1, 2) {
                cfg.budget -= 1;
                Value::Optional(Some(Box::new(random_value(s, *t, r, cfg, depth + 1))))
            } else {
                Value::Optional(None)
            }
        }
        Type::Struct(st) => Value::Struct(
            st.fields
                .iter()
                .map(|f| (f.name.as_str(), random_value(s, f.ty, r, cfg, depth + 1)))
                .collect(),
        ),
        Type::Union(u) => {
            let ai = r.upto(u.arms.len() as u64 - 1) as usize;
            let arm = &u.arms[ai];
            let key = if arm.cases.is_empty() {
                free_case(s, ty, ai)
            } else {
                arm.cases[r.upto(arm.cases.len() as u64 - 1) as usize]
            };
            Value::Union {
                discriminant: Box::new(disc_value(s, u.discriminant.ty, key)),
                arm: arm.name.as_deref(),
                value: Box::new(random_value(s, arm.ty, r, cfg, depth + 1)),
            }
        }
        t => panic!("unhandled type {t:?}"),
    }
}

/// Every (program, version, procedure, role, type) body of the schema.
pub fn bodies(s: &Schema) -> Vec<(u32, u32, i32, BodyRole, TypeId)> {
    let mut v = Vec::new();
    for p in s.programs() {
        for q in p.procedure_list() {
            for role in BodyRole::ALL {
                if let Some((_, t)) = q.body(role) {
                    v.push((p.number(), p.version(), q.number, role, t));
                }
            }
        }
    }
    v
}

/// The header that carries a body of this role (serial 0 for a MESSAGE, 7 otherwise).
pub fn header_for(
    prog: u32,
    vers: u32,
    procedure: i32,
    role: BodyRole,
) -> virtwire_protocol::Header {
    use virtwire_protocol::{Header, MessageStatus};
    let serial = if role == BodyRole::Msg { 0 } else { 7 };
    Header::new(
        prog,
        vers,
        procedure,
        role.message_type(),
        serial,
        MessageStatus::Ok,
    )
}
