//! The compiled type graph: every type reference resolved to a [`TypeId`], every constant evaluated,
//! typedefs collapsed. The codec walks this graph; fuzzers and generators may read it too.

/// Index of a compiled type in a [`Schema`](super::Schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TypeId(pub(crate) u32);

impl TypeId {
    /// The raw index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// rpcgen's 4-byte `char` / `short` types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SmallInt {
    /// `char`: −128..=127.
    Char,
    /// `unsigned char`: 0..=255.
    UChar,
    /// `short`: −32768..=32767.
    Short,
    /// `unsigned short`: 0..=65535.
    UShort,
}

impl SmallInt {
    /// The C type name.
    pub fn c_name(self) -> &'static str {
        match self {
            SmallInt::Char => "char",
            SmallInt::UChar => "unsigned char",
            SmallInt::Short => "short",
            SmallInt::UShort => "unsigned short",
        }
    }
    /// The values the C type holds.
    pub fn range(self) -> (i64, i64) {
        match self {
            SmallInt::Char => (-128, 127),
            SmallInt::UChar => (0, 255),
            SmallInt::Short => (-32768, 32767),
            SmallInt::UShort => (0, 65535),
        }
    }
    /// True for the unsigned types (their values are carried in `Value::UInt`).
    pub fn is_unsigned(self) -> bool {
        matches!(self, SmallInt::UChar | SmallInt::UShort)
    }
}

/// A compiled type.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Type {
    /// `void`: nothing on the wire.
    Void,
    /// `int`.
    Int,
    /// `unsigned int`.
    UInt,
    /// `hyper`.
    Hyper,
    /// `unsigned hyper`.
    UHyper,
    /// `float`.
    Float,
    /// `double`.
    Double,
    /// `bool`.
    Bool,
    /// rpcgen `char`/`short` (4 bytes).
    Small(SmallInt),
    /// An enum.
    Enum(EnumType),
    /// `string<max>` (`max` = `u32::MAX` when unbounded).
    String {
        /// Largest length.
        max: u32,
    },
    /// `opaque[len]`.
    OpaqueFixed {
        /// Exact length.
        len: u32,
    },
    /// `opaque<max>`.
    Opaque {
        /// Largest length.
        max: u32,
    },
    /// `T x[len]`.
    FixedArray {
        /// Element type.
        elem: TypeId,
        /// Exact element count.
        len: u32,
    },
    /// `T x<max>`.
    Array {
        /// Element type.
        elem: TypeId,
        /// Largest element count.
        max: u32,
    },
    /// `T *x`.
    Optional(TypeId),
    /// A struct.
    Struct(StructType),
    /// A union.
    Union(UnionType),
}

/// An enum: its name and members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumType {
    /// The enum's name (or `<anonymous>` for an inline one).
    pub name: String,
    /// Members in declaration order.
    pub members: Vec<(String, i32)>,
    /// (value, index into `members`), sorted by value, for lookup.
    pub(crate) by_value: Vec<(i32, u32)>,
}

impl EnumType {
    pub(crate) fn new(name: String, members: Vec<(String, i32)>) -> Self {
        let mut by_value: Vec<(i32, u32)> = members
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (*v, i as u32))
            .collect();
        by_value.sort_unstable();
        by_value.dedup_by_key(|(v, _)| *v);
        EnumType {
            name,
            members,
            by_value,
        }
    }

    /// The name of the (first) member with this value.
    #[inline]
    pub fn member_name(&self, value: i32) -> Option<&str> {
        self.by_value
            .binary_search_by_key(&value, |&(v, _)| v)
            .ok()
            .map(|i| self.members[self.by_value[i].1 as usize].0.as_str())
    }

    /// True if `value` is a member.
    #[inline]
    pub fn contains(&self, value: i32) -> bool {
        self.by_value
            .binary_search_by_key(&value, |&(v, _)| v)
            .is_ok()
    }
}

/// A struct or union field: name and type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The `.x` name.
    pub name: String,
    /// Its type.
    pub ty: TypeId,
}

/// A struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructType {
    /// The struct's name (or `<anonymous>`).
    pub name: String,
    /// Fields in `.x` order.
    pub fields: Vec<Field>,
}

/// One arm of a union.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arm {
    /// Case values (empty for the default arm), normalised to the discriminant's domain
    /// (`i32` range for signed and enum discriminants, `u32` range for unsigned, 0/1 for bool).
    pub cases: Vec<i64>,
    /// The arm's field name; `None` for a `void` arm.
    pub name: Option<String>,
    /// The arm's type ([`Type::Void`] for a void arm).
    pub ty: TypeId,
}

/// A discriminated union.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnionType {
    /// The union's name (or `<anonymous>`).
    pub name: String,
    /// `switch (type name)`.
    pub discriminant: Field,
    /// Arms in `.x` order (the default arm, if any, is last).
    pub arms: Vec<Arm>,
    /// Index of the default arm in `arms`.
    pub default: Option<usize>,
    /// (case value, arm index), sorted, for lookup.
    pub(crate) cases: Vec<(i64, u32)>,
    /// Arm index by `value - dense_base` when the case values span at most [`DENSE_SPAN`] values
    /// ([`NO_CASE`] where no case matches); empty when they span more (then `cases` is searched).
    pub(crate) dense: Vec<u32>,
    /// The smallest case value (the first entry of `dense`).
    pub(crate) dense_base: i64,
}

/// The widest range of case values looked up through a table instead of a binary search (every
/// union of libvirt's protocols fits: `remote_typed_param_value` spans 1..=7).
const DENSE_SPAN: i64 = 256;
/// A `dense` entry for a value no case names.
const NO_CASE: u32 = u32::MAX;

impl UnionType {
    /// A union from its arms and `(case value, arm index)` pairs (any order; values distinct).
    pub(crate) fn new(
        name: String,
        discriminant: Field,
        arms: Vec<Arm>,
        default: Option<usize>,
        mut cases: Vec<(i64, u32)>,
    ) -> Self {
        cases.sort_unstable();
        let (dense, dense_base) = match (cases.first(), cases.last()) {
            (Some(&(lo, _)), Some(&(hi, _))) if hi - lo < DENSE_SPAN => {
                let mut t = vec![NO_CASE; (hi - lo + 1) as usize];
                for &(v, arm) in &cases {
                    t[(v - lo) as usize] = arm;
                }
                (t, lo)
            }
            _ => (Vec::new(), 0),
        };
        UnionType {
            name,
            discriminant,
            arms,
            default,
            cases,
            dense,
            dense_base,
        }
    }

    /// The arm selected by a discriminant value, if any (falls back to the default arm).
    #[inline]
    pub fn arm_for(&self, value: i64) -> Option<&Arm> {
        self.arm_index_for(value).map(|i| &self.arms[i])
    }

    /// The index in [`UnionType::arms`] of the arm `value` selects (the default arm if no case
    /// matches), if any.
    #[inline]
    pub fn arm_index_for(&self, value: i64) -> Option<usize> {
        if !self.dense.is_empty() {
            // Values below the base wrap to large offsets and miss the table like those above it.
            return match self
                .dense
                .get(value.wrapping_sub(self.dense_base) as u64 as usize)
            {
                Some(&arm) if arm != NO_CASE => Some(arm as usize),
                _ => self.default,
            };
        }
        match self.cases.binary_search_by_key(&value, |&(v, _)| v) {
            Ok(i) => Some(self.cases[i].1 as usize),
            Err(_) => self.default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn union(cases: &[(i64, u32)], arms: usize, default: Option<usize>) -> UnionType {
        let arm = |i: usize| Arm {
            cases: cases
                .iter()
                .filter(|c| c.1 as usize == i)
                .map(|c| c.0)
                .collect(),
            name: Some(format!("a{i}")),
            ty: TypeId(0),
        };
        UnionType::new(
            "u".into(),
            Field {
                name: "d".into(),
                ty: TypeId(0),
            },
            (0..arms).map(arm).collect(),
            default,
            cases.to_vec(),
        )
    }

    /// The arm table answers exactly what a search of the case list answers, inside, below and
    /// above its range, with and without a default arm.
    #[test]
    fn dense_table_agrees_with_the_case_list() {
        let probes = [
            i64::MIN,
            i32::MIN as i64,
            -300,
            -2,
            -1,
            0,
            1,
            2,
            3,
            4,
            5,
            6,
            7,
            8,
            254,
            255,
            256,
            1000,
            u32::MAX as i64,
            i64::MAX,
        ];
        let shapes: [&[(i64, u32)]; 5] = [
            &[(1, 0), (2, 1), (3, 2), (4, 3), (5, 4), (6, 5), (7, 6)],
            &[(-1, 0), (5, 1), (3, 0)],
            &[(0, 0), (255, 1)],
            &[(0, 0), (256, 1)],
            &[(i32::MIN as i64, 0), (u32::MAX as i64, 1)],
        ];
        for cases in shapes {
            let arms = cases.iter().map(|c| c.1 as usize + 1).max().unwrap();
            for default in [None, Some(arms)] {
                let u = union(cases, arms, default);
                let dense = cases.iter().map(|c| c.0).max().unwrap()
                    - cases.iter().map(|c| c.0).min().unwrap()
                    < DENSE_SPAN;
                assert_eq!(!u.dense.is_empty(), dense, "{cases:?}");
                for v in probes {
                    let want = cases
                        .iter()
                        .find(|c| c.0 == v)
                        .map(|c| c.1 as usize)
                        .or(default);
                    assert_eq!(u.arm_index_for(v), want, "{cases:?} {default:?} {v}");
                }
            }
        }
    }
}
