//! A decoded value as a flat tape: one fixed-size node per value, in pre-order, in one vector.
//!
//! [`Value`] trees cost about three allocations per typed parameter (a `Vec` per struct, two `Box`es
//! per union) and as much again to drop them. A [`Tape`] is built by the same walk as the tree and the
//! validate-only check (so it accepts and rejects exactly the same bytes, with the same errors) but
//! appends 16-byte nodes to one vector: one allocation per message, or none when a [`TapeBuf`] is
//! reused. Strings and opaque data stay in the payload (the nodes keep offsets), names stay in the
//! schema (the nodes keep type ids).
//!
//! [`Item`] is a read-only view of one node with the same accessors as [`Value`] (`field`, `at`,
//! `as_bytes`, `as_str`, `as_i128`, `kind_name`), [`Item::get`] says what it is ([`ItemKind`]), and
//! [`Item::to_value`] builds the equivalent tree when a caller needs one.

use super::codec::Build;
use super::types::{EnumType, StructType, Type, TypeId};
use super::value::Value;

/// One node. Compound nodes keep `end`, the index one past their last descendant, so a subtree is
/// skipped in O(1); their children follow them directly.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Node {
    Void,
    Int(i32),
    UInt(u32),
    Hyper(i64),
    UHyper(u64),
    Float(f32),
    Double(f64),
    Bool(bool),
    /// `ty` is the enum's type id (for the member's name).
    Enum {
        ty: u32,
        value: i32,
    },
    /// Offset and length in the payload.
    String {
        off: u32,
        len: u32,
    },
    Opaque {
        off: u32,
        len: u32,
    },
    Array {
        len: u32,
        end: u32,
    },
    /// `ty` is the struct's type id (for the field names); one child per field.
    Struct {
        ty: u32,
        end: u32,
    },
    /// Two children: the discriminant and the arm's value (`Void` for a void arm).
    Union {
        ty: u32,
        arm: u32,
        end: u32,
    },
    /// No child when absent, one when present.
    Optional {
        end: u32,
    },
}

/// Reusable storage for tapes: decode into it, read, and take it back with [`Tape::into_buf`], so a
/// stream of messages allocates only when a message needs more nodes than any before it.
#[derive(Clone, Debug, Default)]
pub struct TapeBuf(pub(crate) Vec<Node>);

impl TapeBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        TapeBuf(Vec::new())
    }

    /// An empty buffer with room for `nodes` nodes.
    pub fn with_capacity(nodes: usize) -> Self {
        TapeBuf(Vec::with_capacity(nodes))
    }

    /// Nodes it can hold without allocating.
    pub fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

/// A decoded value as a tape over its payload (see the module docs).
#[derive(Clone, Debug)]
pub struct Tape<'a> {
    nodes: Vec<Node>,
    payload: &'a [u8],
    types: &'a [Type],
}

impl<'a> Tape<'a> {
    pub(crate) fn new(nodes: Vec<Node>, payload: &'a [u8], types: &'a [Type]) -> Self {
        Tape {
            nodes,
            payload,
            types,
        }
    }

    /// The value at the root.
    pub fn root(&self) -> Item<'_, 'a> {
        Item { tape: self, i: 0 }
    }

    /// The number of nodes (one per value, compound values included).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The equivalent [`Value`] tree.
    pub fn to_value(&self) -> Value<'a> {
        self.root().to_value()
    }

    /// The node storage, for the next decode.
    pub fn into_buf(self) -> TapeBuf {
        TapeBuf(self.nodes)
    }
}

/// Two tapes are equal when they hold equal values.
impl PartialEq for Tape<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.to_value() == other.to_value()
    }
}

/// One value on a tape.
#[derive(Clone, Copy)]
pub struct Item<'t, 'a> {
    tape: &'t Tape<'a>,
    i: usize,
}

impl std::fmt::Debug for Item<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_value())
    }
}

/// What an [`Item`] is, with its contents; the cases of [`Value`].
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum ItemKind<'t, 'a> {
    /// No data.
    Void,
    /// `int`, `char`, `short`.
    Int(i32),
    /// `unsigned int`, `unsigned char`, `unsigned short`.
    UInt(u32),
    /// `hyper`.
    Hyper(i64),
    /// `unsigned hyper`.
    UHyper(u64),
    /// `float`.
    Float(f32),
    /// `double`.
    Double(f64),
    /// `bool`.
    Bool(bool),
    /// An enum value and its member's name, if it is a member.
    Enum {
        /// The value on the wire.
        value: i32,
        /// The member's name.
        name: Option<&'a str>,
    },
    /// `string<N>` bytes.
    String(&'a [u8]),
    /// Opaque bytes.
    Opaque(&'a [u8]),
    /// An array.
    Array(Items<'t, 'a>),
    /// A struct: its fields with their `.x` names.
    Struct(Fields<'t, 'a>),
    /// A union.
    Union {
        /// The discriminant.
        discriminant: Item<'t, 'a>,
        /// The arm's field name; `None` for a void arm.
        arm: Option<&'a str>,
        /// The arm's value (void for a void arm).
        value: Item<'t, 'a>,
    },
    /// `T *x`.
    Optional(Option<Item<'t, 'a>>),
}

/// The elements of an array, in order.
#[derive(Clone, Copy, Debug)]
pub struct Items<'t, 'a> {
    tape: &'t Tape<'a>,
    next: usize,
    left: usize,
}

impl<'t, 'a> Iterator for Items<'t, 'a> {
    type Item = Item<'t, 'a>;
    #[inline]
    fn next(&mut self) -> Option<Item<'t, 'a>> {
        if self.left == 0 {
            return None;
        }
        let it = Item {
            tape: self.tape,
            i: self.next,
        };
        self.next = it.end();
        self.left -= 1;
        Some(it)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Items<'_, '_> {}

/// The fields of a struct, in `.x` order, with their names.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'t, 'a> {
    tape: &'t Tape<'a>,
    names: &'a [super::types::Field],
    next: usize,
}

impl<'t, 'a> Iterator for Fields<'t, 'a> {
    type Item = (&'a str, Item<'t, 'a>);
    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (f, rest) = self.names.split_first()?;
        self.names = rest;
        let it = Item {
            tape: self.tape,
            i: self.next,
        };
        self.next = it.end();
        Some((f.name.as_str(), it))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.names.len(), Some(self.names.len()))
    }
}

impl ExactSizeIterator for Fields<'_, '_> {}

impl<'t, 'a> Item<'t, 'a> {
    #[inline]
    fn node(&self) -> Node {
        self.tape.nodes[self.i]
    }

    /// One past the last node of this item's subtree.
    #[inline]
    fn end(&self) -> usize {
        match self.node() {
            Node::Array { end, .. }
            | Node::Struct { end, .. }
            | Node::Union { end, .. }
            | Node::Optional { end } => end as usize,
            _ => self.i + 1,
        }
    }

    #[inline]
    fn at_index(&self, i: usize) -> Item<'t, 'a> {
        Item { tape: self.tape, i }
    }

    #[inline]
    fn bytes(&self, off: u32, len: u32) -> &'a [u8] {
        let payload: &'a [u8] = self.tape.payload;
        &payload[off as usize..off as usize + len as usize]
    }

    /// What this item is.
    #[inline]
    pub fn get(&self) -> ItemKind<'t, 'a> {
        let types: &'a [Type] = self.tape.types;
        match self.node() {
            Node::Void => ItemKind::Void,
            Node::Int(v) => ItemKind::Int(v),
            Node::UInt(v) => ItemKind::UInt(v),
            Node::Hyper(v) => ItemKind::Hyper(v),
            Node::UHyper(v) => ItemKind::UHyper(v),
            Node::Float(v) => ItemKind::Float(v),
            Node::Double(v) => ItemKind::Double(v),
            Node::Bool(v) => ItemKind::Bool(v),
            Node::Enum { ty, value } => ItemKind::Enum {
                value,
                name: match &types[ty as usize] {
                    Type::Enum(e) => e.member_name(value),
                    _ => None,
                },
            },
            Node::String { off, len } => ItemKind::String(self.bytes(off, len)),
            Node::Opaque { off, len } => ItemKind::Opaque(self.bytes(off, len)),
            Node::Array { len, .. } => ItemKind::Array(Items {
                tape: self.tape,
                next: self.i + 1,
                left: len as usize,
            }),
            Node::Struct { ty, .. } => ItemKind::Struct(Fields {
                tape: self.tape,
                names: match &types[ty as usize] {
                    Type::Struct(s) => &s.fields,
                    _ => &[],
                },
                next: self.i + 1,
            }),
            Node::Union { ty, arm, .. } => {
                let discriminant = self.at_index(self.i + 1);
                let value = self.at_index(discriminant.end());
                let arm = match &types[ty as usize] {
                    Type::Union(u) => u.arms.get(arm as usize).and_then(|a| a.name.as_deref()),
                    _ => None,
                };
                ItemKind::Union {
                    discriminant,
                    arm,
                    value,
                }
            }
            Node::Optional { end } => {
                ItemKind::Optional((end as usize > self.i + 1).then(|| self.at_index(self.i + 1)))
            }
        }
    }

    fn unwrap_optional(&self) -> Item<'t, 'a> {
        let mut cur = *self;
        while let ItemKind::Optional(Some(v)) = cur.get() {
            cur = v;
        }
        cur
    }

    /// A struct field by name (as [`Value::field`]).
    pub fn field(&self, name: &str) -> Option<Item<'t, 'a>> {
        match self.get() {
            ItemKind::Struct(mut fields) => fields.find(|(n, _)| *n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The `i`th element of an array.
    pub fn index(&self, i: usize) -> Option<Item<'t, 'a>> {
        match self.get() {
            ItemKind::Array(mut items) => items.nth(i),
            _ => None,
        }
    }

    /// Follow a path of field names and `[i]` indices, as [`Value::at`] does.
    pub fn at(&self, path: &str) -> Option<Item<'t, 'a>> {
        let mut cur = *self;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            let (name, indices) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                cur = cur.unwrap_optional();
                cur = match cur.get() {
                    ItemKind::Struct(_) => cur.field(name)?,
                    ItemKind::Union { arm, value, .. } if arm == Some(name) => value,
                    _ => return None,
                };
            }
            for idx in indices.split('[').filter(|s| !s.is_empty()) {
                let i: usize = idx.strip_suffix(']')?.parse().ok()?;
                cur = cur.unwrap_optional().index(i)?;
            }
        }
        Some(cur)
    }

    /// The bytes of a string or opaque value (also inside a present optional).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.unwrap_optional().get() {
            ItemKind::String(b) | ItemKind::Opaque(b) => Some(b),
            _ => None,
        }
    }

    /// A string as UTF-8 text, if it is (also inside a present optional).
    pub fn as_str(&self) -> Option<&'a str> {
        match self.unwrap_optional().get() {
            ItemKind::String(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Any integer-like value widened to i128 (as [`Value::as_i128`]).
    pub fn as_i128(&self) -> Option<i128> {
        Some(match self.unwrap_optional().get() {
            ItemKind::Int(v) => v as i128,
            ItemKind::UInt(v) => v as i128,
            ItemKind::Hyper(v) => v as i128,
            ItemKind::UHyper(v) => v as i128,
            ItemKind::Bool(v) => v as i128,
            ItemKind::Enum { value, .. } => value as i128,
            _ => return None,
        })
    }

    /// Short name of the kind (`int`, `struct`, …), as [`Value::kind_name`].
    pub fn kind_name(&self) -> &'static str {
        match self.node() {
            Node::Void => "void",
            Node::Int(_) => "int",
            Node::UInt(_) => "unsigned int",
            Node::Hyper(_) => "hyper",
            Node::UHyper(_) => "unsigned hyper",
            Node::Float(_) => "float",
            Node::Double(_) => "double",
            Node::Bool(_) => "bool",
            Node::Enum { .. } => "enum",
            Node::String { .. } => "string",
            Node::Opaque { .. } => "opaque",
            Node::Array { .. } => "array",
            Node::Struct { .. } => "struct",
            Node::Union { .. } => "union",
            Node::Optional { .. } => "optional",
        }
    }

    /// The equivalent [`Value`] tree.
    pub fn to_value(&self) -> Value<'a> {
        match self.get() {
            ItemKind::Void => Value::Void,
            ItemKind::Int(v) => Value::Int(v),
            ItemKind::UInt(v) => Value::UInt(v),
            ItemKind::Hyper(v) => Value::Hyper(v),
            ItemKind::UHyper(v) => Value::UHyper(v),
            ItemKind::Float(v) => Value::Float(v),
            ItemKind::Double(v) => Value::Double(v),
            ItemKind::Bool(v) => Value::Bool(v),
            ItemKind::Enum { value, name } => Value::Enum { value, name },
            ItemKind::String(b) => Value::String(b),
            ItemKind::Opaque(b) => Value::Opaque(b),
            ItemKind::Array(items) => Value::Array(items.map(|v| v.to_value()).collect()),
            ItemKind::Struct(fields) => {
                Value::Struct(fields.map(|(n, v)| (n, v.to_value())).collect())
            }
            ItemKind::Union {
                discriminant,
                arm,
                value,
            } => Value::Union {
                discriminant: Box::new(discriminant.to_value()),
                arm,
                value: Box::new(value.to_value()),
            },
            ItemKind::Optional(o) => Value::Optional(o.map(|v| Box::new(v.to_value()))),
        }
    }
}

/// Builds a tape. Indices that do not fit a `u32` (more than 4 G nodes) set `overflow`, which the
/// caller turns into an error.
pub(crate) struct TapeBuilder<'a> {
    pub(crate) nodes: Vec<Node>,
    pub(crate) payload: &'a [u8],
    pub(crate) overflow: bool,
}

impl TapeBuilder<'_> {
    #[inline]
    fn push(&mut self, n: Node) {
        self.nodes.push(n);
    }

    #[inline]
    fn offset(&self, b: &[u8]) -> (u32, u32) {
        // Every slice the reader hands out lies inside the payload.
        let off = b.as_ptr() as usize - self.payload.as_ptr() as usize;
        (off as u32, b.len() as u32)
    }

    /// The tape's current length as a `u32` end index.
    #[inline]
    fn end(&mut self) -> u32 {
        match u32::try_from(self.nodes.len()) {
            Ok(v) => v,
            Err(_) => {
                self.overflow = true;
                u32::MAX
            }
        }
    }

    /// Open a compound node: push a placeholder, return its index.
    #[inline]
    fn open(&mut self) -> usize {
        self.nodes.push(Node::Void);
        self.nodes.len() - 1
    }
}

impl<'a> Build<'a> for TapeBuilder<'a> {
    type V = ();
    type Seq = usize;
    type Rec = usize;
    type Open = usize;
    #[inline]
    fn void(&mut self) {
        self.push(Node::Void)
    }
    #[inline]
    fn int(&mut self, v: i32) {
        self.push(Node::Int(v))
    }
    #[inline]
    fn uint(&mut self, v: u32) {
        self.push(Node::UInt(v))
    }
    #[inline]
    fn hyper(&mut self, v: i64) {
        self.push(Node::Hyper(v))
    }
    #[inline]
    fn uhyper(&mut self, v: u64) {
        self.push(Node::UHyper(v))
    }
    #[inline]
    fn float(&mut self, v: f32) {
        self.push(Node::Float(v))
    }
    #[inline]
    fn double(&mut self, v: f64) {
        self.push(Node::Double(v))
    }
    #[inline]
    fn bool(&mut self, v: bool) {
        self.push(Node::Bool(v))
    }
    #[inline]
    fn enumeration(&mut self, id: TypeId, _: &'a EnumType, v: i32) {
        self.push(Node::Enum { ty: id.0, value: v })
    }
    #[inline]
    fn string(&mut self, b: &'a [u8]) {
        let (off, len) = self.offset(b);
        self.push(Node::String { off, len })
    }
    #[inline]
    fn opaque(&mut self, b: &'a [u8]) {
        let (off, len) = self.offset(b);
        self.push(Node::Opaque { off, len })
    }
    #[inline]
    fn seq(&mut self, n: usize) -> usize {
        // `n` is a checked XDR count (at most u32::MAX).
        self.nodes.push(Node::Array {
            len: n as u32,
            end: 0,
        });
        self.nodes.len() - 1
    }
    #[inline]
    fn seq_push(&mut self, _: &mut usize, _: ()) {}
    #[inline]
    fn seq_end(&mut self, at: usize) {
        let end = self.end();
        if let Node::Array { end: e, .. } = &mut self.nodes[at] {
            *e = end;
        }
    }
    #[inline]
    fn rec(&mut self, id: TypeId, _: &'a StructType) -> usize {
        self.nodes.push(Node::Struct { ty: id.0, end: 0 });
        self.nodes.len() - 1
    }
    #[inline]
    fn rec_push(&mut self, _: &mut usize, _: &'a str, _: ()) {}
    #[inline]
    fn rec_end(&mut self, at: usize) {
        let end = self.end();
        if let Node::Struct { end: e, .. } = &mut self.nodes[at] {
            *e = end;
        }
    }
    #[inline]
    fn union_begin(&mut self) -> usize {
        self.open()
    }
    #[inline]
    fn union(&mut self, at: usize, id: TypeId, _: (), arm: usize, _: Option<&'a str>, _: ()) {
        let end = self.end();
        self.nodes[at] = Node::Union {
            ty: id.0,
            arm: arm as u32,
            end,
        };
    }
    #[inline]
    fn optional_begin(&mut self) -> usize {
        self.open()
    }
    #[inline]
    fn optional(&mut self, at: usize, _: Option<()>) {
        let end = self.end();
        self.nodes[at] = Node::Optional { end };
    }
}

#[cfg(test)]
mod tests {
    use super::Node;

    #[test]
    fn nodes_are_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<Node>(), 16);
    }
}
