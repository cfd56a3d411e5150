//! A type written out the way a `.x` file declares it, with every struct and union it reaches
//! expanded in place and every bound resolved (`string name<REMOTE_STRING_MAX = 4194304>`): what
//! `virtwire schema show` prints for a procedure's bodies.

use std::collections::HashSet;
use std::fmt::Write;

use super::{Schema, Type, TypeId};

/// Deepest expansion (libvirt's bodies nest a handful of levels).
const DEPTH_MAX: usize = 32;

impl Schema {
    /// `id` as a `.x` declaration of `name`, nested structs and unions expanded (each named one
    /// once; later uses and recursive references say `/* above */`), every `<N>` / `[N]` shown with
    /// its constant and value. Ends without a newline.
    pub fn expand(&self, id: TypeId, name: &str) -> String {
        let mut out = String::new();
        let mut seen = HashSet::new();
        self.expand_decl(id, name, 0, &mut seen, &mut out);
        out.push(';');
        out
    }

    fn bound_text(&self, id: TypeId, n: u32) -> String {
        match self.bound_constant(id) {
            Some(c) => format!("{c} = {n}"),
            None if n == u32::MAX => String::new(),
            None => n.to_string(),
        }
    }

    fn expand_decl(
        &self,
        id: TypeId,
        name: &str,
        depth: usize,
        seen: &mut HashSet<TypeId>,
        out: &mut String,
    ) {
        let (prefix_id, suffix, name) = match self.ty(id) {
            Type::String { max } => {
                let _ = write!(out, "string {name}<{}>", self.bound_text(id, *max));
                return;
            }
            Type::Opaque { max } => {
                let _ = write!(out, "opaque {name}<{}>", self.bound_text(id, *max));
                return;
            }
            Type::OpaqueFixed { len } => {
                let _ = write!(out, "opaque {name}[{}]", self.bound_text(id, *len));
                return;
            }
            Type::Array { elem, max } => (
                *elem,
                format!("<{}>", self.bound_text(id, *max)),
                name.to_string(),
            ),
            Type::FixedArray { elem, len } => (
                *elem,
                format!("[{}]", self.bound_text(id, *len)),
                name.to_string(),
            ),
            Type::Optional(t) => (*t, String::new(), format!("*{name}")),
            _ => (id, String::new(), name.to_string()),
        };
        self.expand_type(prefix_id, depth, seen, out);
        if !name.is_empty() {
            out.push(' ');
            out.push_str(&name);
        }
        out.push_str(&suffix);
    }

    fn expand_type(&self, id: TypeId, depth: usize, seen: &mut HashSet<TypeId>, out: &mut String) {
        let indent = "    ".repeat(depth + 1);
        let close = "    ".repeat(depth);
        match self.ty(id) {
            Type::Struct(s) => {
                if !seen.insert(id) || depth >= DEPTH_MAX {
                    let _ = write!(out, "struct {} /* above */", s.name);
                    return;
                }
                let _ = writeln!(out, "struct {} {{", s.name);
                for f in &s.fields {
                    out.push_str(&indent);
                    self.expand_decl(f.ty, &f.name, depth + 1, seen, out);
                    out.push_str(";\n");
                }
                let _ = write!(out, "{close}}}");
            }
            Type::Union(u) => {
                if !seen.insert(id) || depth >= DEPTH_MAX {
                    let _ = write!(out, "union {} /* above */", u.name);
                    return;
                }
                let _ = write!(out, "union {} switch (", u.name);
                self.expand_decl(
                    u.discriminant.ty,
                    &u.discriminant.name,
                    depth + 1,
                    seen,
                    out,
                );
                out.push_str(") {\n");
                for arm in &u.arms {
                    out.push_str(&indent);
                    if arm.cases.is_empty() {
                        out.push_str("default:");
                    } else {
                        let disc = match self.ty(u.discriminant.ty) {
                            Type::Enum(e) => Some(e),
                            _ => None,
                        };
                        for c in &arm.cases {
                            let label = disc
                                .and_then(|e| i32::try_from(*c).ok().and_then(|v| e.member_name(v)))
                                .map_or_else(|| c.to_string(), |m| format!("{m} = {c}"));
                            let _ = write!(out, "case {label}:");
                        }
                    }
                    out.push(' ');
                    match &arm.name {
                        Some(n) => self.expand_decl(arm.ty, n, depth + 1, seen, out),
                        None => out.push_str("void"),
                    }
                    out.push_str(";\n");
                }
                let _ = write!(out, "{close}}}");
            }
            _ => out.push_str(&self.declared(id)),
        }
    }
}
