//! The syntax tree of one `.x` file, as written: names are not resolved and constants are not
//! evaluated (that is [`Schema`](super::Schema)'s job, across all files).

use std::fmt;

/// A 1-based line and column (columns count characters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    /// Line, from 1.
    pub line: u32,
    /// Column, from 1.
    pub column: u32,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A parsed `.x` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XFile {
    /// The label it was parsed under (usually its path in a libvirt tree).
    pub label: String,
    /// Top-level definitions, in file order.
    pub definitions: Vec<Definition>,
    /// `%` pass-through lines (text after the `%`), in file order.
    pub passthrough: Vec<(Pos, String)>,
}

impl XFile {
    /// The file names of `%#include "name"` / `%#include <name>` pass-through lines.
    pub fn includes(&self) -> impl Iterator<Item = &str> {
        self.passthrough.iter().filter_map(|(_, line)| {
            let rest = line.trim_start().strip_prefix('#')?.trim_start();
            let rest = rest.strip_prefix("include")?.trim();
            let inner = rest
                .strip_prefix('"')
                .and_then(|r| r.split('"').next())
                .or_else(|| rest.strip_prefix('<').and_then(|r| r.split('>').next()))?;
            Some(inner)
        })
    }
}

/// A constant operand: a number or a name (a `const`, an enum member, or a C constant libvirt's
/// headers define).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ConstRef {
    /// A literal (decimal, hexadecimal or octal, possibly negative).
    Number(i64),
    /// A named constant, with where it was used.
    Name(String, Pos),
}

impl fmt::Display for ConstRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstRef::Number(n) => write!(f, "{n}"),
            ConstRef::Name(n, _) => f.write_str(n),
        }
    }
}

/// One top-level definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Definition {
    /// Where its keyword starts.
    pub pos: Pos,
    /// What it defines.
    pub kind: DefKind,
}

impl Definition {
    /// The defined name.
    pub fn name(&self) -> &str {
        match &self.kind {
            DefKind::Const { name, .. }
            | DefKind::Enum { name, .. }
            | DefKind::Struct { name, .. }
            | DefKind::Union { name, .. } => name,
            DefKind::Typedef(d) => d.name.as_deref().unwrap_or(""),
        }
    }
}

/// The kinds of top-level definition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefKind {
    /// `const NAME = value;`
    Const {
        /// The constant's name.
        name: String,
        /// Its value (possibly another constant's name).
        value: ConstRef,
    },
    /// `typedef declaration;`
    Typedef(Decl),
    /// `enum NAME { … };`
    Enum {
        /// The enum's name.
        name: String,
        /// Its members.
        body: EnumBody,
    },
    /// `struct NAME { … };`
    Struct {
        /// The struct's name.
        name: String,
        /// Its fields.
        body: StructBody,
    },
    /// `union NAME switch (…) { … };`
    Union {
        /// The union's name.
        name: String,
        /// Discriminant and arms.
        body: UnionBody,
    },
}

/// A declaration: a type, a name and a shape (`x`, `x[N]`, `x<N>`, `*x`), or `void`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decl {
    /// Where the declaration starts.
    pub pos: Pos,
    /// The declared name; `None` for `void`.
    pub name: Option<String>,
    /// The type specifier.
    pub ty: TypeSpec,
    /// Plain, array or optional.
    pub shape: Shape,
}

/// The shape of a declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `T x` (also `void`).
    Plain,
    /// `T x[N]`: exactly N elements, no count on the wire.
    Fixed(ConstRef),
    /// `T x<N>` or `T x<>` (`None`: unbounded, at most 2³²−1); also `string x` written without a bound.
    Variable(Option<ConstRef>),
    /// `T *x`: a presence flag, then T.
    Optional,
}

/// A type specifier as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TypeSpec {
    /// `int` (also rpcgen's `long`).
    Int,
    /// `unsigned int`, `unsigned` alone, `unsigned long`.
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
    /// rpcgen `char`: 4 bytes on the wire, value in −128..=127.
    Char,
    /// rpcgen `unsigned char`: 4 bytes, 0..=255.
    UChar,
    /// rpcgen `short`: 4 bytes, −32768..=32767.
    Short,
    /// rpcgen `unsigned short`: 4 bytes, 0..=65535.
    UShort,
    /// `opaque` (only with `[N]` or `<N>`).
    Opaque,
    /// `string` (only with `<N>`, `<>` or no bound).
    String,
    /// `void` (union arms only).
    Void,
    /// A type name (`foo`, `struct foo`, `enum foo`, `union foo`).
    Named {
        /// The name.
        name: String,
        /// `struct`/`enum`/`union` if written with that keyword (C tag namespace).
        tag: Option<Tag>,
    },
    /// An inline `enum { … }`.
    Enum(EnumBody),
    /// An inline `struct { … }`.
    Struct(StructBody),
    /// An inline `union switch (…) { … }`.
    Union(Box<UnionBody>),
}

/// The keyword of a tagged type reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// `struct`.
    Struct,
    /// `enum`.
    Enum,
    /// `union`.
    Union,
}

/// Members of an enum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumBody {
    /// In file order.
    pub members: Vec<EnumMember>,
}

/// One enum member: `NAME = value` or `NAME` (rpcgen: previous value + 1, first 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnumMember {
    /// Where the name starts.
    pub pos: Pos,
    /// The member's name (also a constant).
    pub name: String,
    /// Its value if written.
    pub value: Option<ConstRef>,
    /// `@key: value` lines of the comment just before it, in order (libvirt annotates each
    /// procedure this way: `@acl: domain:write`, `@generate: both`, …).
    pub annotations: Vec<(String, String)>,
}

/// Fields of a struct.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StructBody {
    /// In file order.
    pub fields: Vec<Decl>,
}

/// A union: discriminant declaration, arms, optional default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnionBody {
    /// `switch (T name)`.
    pub discriminant: Decl,
    /// `case A: case B: decl;` groups, in file order.
    pub arms: Vec<UnionArm>,
    /// `default: decl;`
    pub default: Option<Decl>,
}

/// One arm of a union: its case labels and declaration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnionArm {
    /// Where the first `case` starts.
    pub pos: Pos,
    /// The case labels.
    pub cases: Vec<ConstRef>,
    /// The arm's declaration (`void` allowed).
    pub decl: Decl,
}
