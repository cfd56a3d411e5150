//! The compiled schema against libvirt's own flattened layouts: `src/*_protocol-structs` (what
//! libvirt's `make check` compares its generated C structs with, extracted by scripts/setup.sh
//! beside the `.x` files). Every struct (and union, which rpcgen flattens into a struct holding the
//! discriminant and a C union) that both know has the same members in the same order, each of the
//! same kind — scalar type, named type, optional, fixed array of the same size, variable array — so
//! a compiler bug (a dropped member, a wrong fixed size, an array taken for a scalar) shows even
//! where our own walker would test it "right".

mod schema_support;

use std::path::Path;

use virtwire_protocol::schema::{Schema, Type, TypeId};

/// One member as the structs file declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CDecl {
    /// `T name;`
    Plain(String),
    /// `T * name;`
    Pointer(String),
    /// `T name[N];`
    Fixed(String, u32),
    /// `struct { u_int name_len; T * name_val; } name;`
    Var(String),
}

/// A struct of the structs file: its name and members (for a flattened union: the discriminant,
/// then the arms of the C union, in order; void arms do not appear).
#[derive(Debug)]
struct CStruct {
    name: String,
    members: Vec<(String, CDecl)>,
    is_union: bool,
}

/// `T name`, `T * name`, `T name[N]` (without the `;`).
fn decl(line: &str) -> (String, CDecl) {
    let line = line.trim().trim_end_matches(';').trim();
    if let Some((t, name)) = line.split_once(" * ").or_else(|| line.split_once(" *")) {
        return (
            name.trim().to_string(),
            CDecl::Pointer(t.trim().to_string()),
        );
    }
    let (t, name) = line
        .rsplit_once(char::is_whitespace)
        .expect("type and name");
    let t = t.trim().to_string();
    if let Some((n, size)) = name.split_once('[') {
        let size = size.trim_end_matches(']').parse().expect("a fixed size");
        return (n.to_string(), CDecl::Fixed(t, size));
    }
    (name.to_string(), CDecl::Plain(t))
}

fn parse_structs(text: &str) -> Vec<CStruct> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        let Some(name) = l.strip_prefix("struct ").and_then(|r| r.strip_suffix(" {")) else {
            continue;
        };
        let mut s = CStruct {
            name: name.to_string(),
            members: Vec::new(),
            is_union: false,
        };
        while let Some(l) = lines.next() {
            let t = l.trim();
            if l.starts_with("};") {
                break;
            }
            match t {
                "struct {" | "union {" => {
                    // Collected by the nested loop below.
                    s.is_union |= t == "union {";
                    let mut inner = Vec::new();
                    for l in lines.by_ref() {
                        let t = l.trim();
                        if let Some(name) = t.strip_prefix("} ") {
                            let name = name.trim_end_matches(';');
                            if s.is_union && name.ends_with("_u") {
                                s.members.append(&mut inner);
                            } else {
                                // A variable array / opaque: `{ u_int x_len; T * x_val; } x`.
                                let elem = match &inner[..] {
                                    [(len, CDecl::Plain(u)), (val, CDecl::Pointer(t))]
                                        if u == "u_int"
                                            && *len == format!("{name}_len")
                                            && *val == format!("{name}_val") =>
                                    {
                                        t.clone()
                                    }
                                    other => panic!("{}: unexpected {other:?}", s.name),
                                };
                                s.members.push((name.to_string(), CDecl::Var(elem)));
                            }
                            break;
                        }
                        inner.push(decl(t));
                    }
                }
                _ => s.members.push(decl(t)),
            }
        }
        out.push(s);
    }
    out
}

/// The C spelling rpcgen gives a scalar type, if `ty` is one.
fn c_scalar(s: &Schema, ty: TypeId) -> Option<&'static str> {
    Some(match s.ty(ty) {
        Type::Int => "int",
        Type::UInt => "u_int",
        Type::Hyper => "int64_t",
        Type::UHyper => "uint64_t",
        Type::Float => "float",
        Type::Double => "double",
        Type::Bool => "bool_t",
        Type::Small(k) => match k.c_name() {
            "char" => "char",
            "unsigned char" => "u_char",
            "short" => "short",
            _ => "u_short",
        },
        _ => return None,
    })
}

/// Does our type `ty` match the C type name `c` (a scalar spelling or a named type)?
fn same_type(s: &Schema, ty: TypeId, c: &str) -> bool {
    if let Some(scalar) = c_scalar(s, ty) {
        return scalar == c;
    }
    match s.type_id(c) {
        // A named type: the same compiled type, or one that describes the same (an inline copy).
        Some(id) => id == ty || s.describe(id) == s.describe(ty),
        None => false,
    }
}

/// Compare one member; `Err` says how it differs.
fn check_member(s: &Schema, ty: TypeId, c: &CDecl) -> Result<(), String> {
    let t = s.ty(ty);
    let ok = match (c, t) {
        // `string x<N>` is `char *x`; a named string typedef is spelled by name.
        (CDecl::Pointer(e), Type::String { .. }) => e == "char",
        (CDecl::Pointer(e), Type::Optional(inner)) => same_type(s, *inner, e),
        (CDecl::Fixed(e, n), Type::OpaqueFixed { len }) => e == "char" && n == len,
        (CDecl::Fixed(e, n), Type::FixedArray { elem, len }) => n == len && same_type(s, *elem, e),
        (CDecl::Var(e), Type::Opaque { .. }) => e == "char",
        (CDecl::Var(e), Type::Array { elem, .. }) => same_type(s, *elem, e),
        (CDecl::Plain(c), _) => same_type(s, ty, c),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("libvirt {c:?}, ours {}", s.describe(ty)))
    }
}

/// What [`compare`] found.
#[derive(Debug, Default)]
struct Found {
    structs: usize,
    unions: usize,
    members: usize,
    unknown: Vec<String>,
    bad: Vec<String>,
}

/// Compare one structs file's text (`file` names it in messages) with the schema.
fn compare(s: &Schema, file: &str, text: &str, found: &mut Found) {
    let Found {
        structs,
        unions,
        members,
        unknown,
        bad,
    } = found;
    {
        for c in parse_structs(text) {
            let Some(id) = s.type_id(&c.name) else {
                unknown.push(format!("{file}: {}", c.name));
                continue;
            };
            // Our fields in libvirt's order: a struct's fields; a union's discriminant, then its
            // non-void arms.
            let ours: Vec<(String, TypeId)> = match s.ty(id) {
                Type::Struct(st) if !c.is_union => {
                    st.fields.iter().map(|f| (f.name.clone(), f.ty)).collect()
                }
                Type::Union(u) if c.is_union => {
                    std::iter::once((u.discriminant.name.clone(), u.discriminant.ty))
                        .chain(
                            u.arms
                                .iter()
                                .filter_map(|a| a.name.clone().map(|n| (n, a.ty))),
                        )
                        .collect()
                }
                other => {
                    bad.push(format!(
                        "{file}: {}: libvirt has a {}, ours is {other:?}",
                        c.name,
                        if c.is_union { "union" } else { "struct" }
                    ));
                    continue;
                }
            };
            if c.is_union {
                *unions += 1;
            } else {
                *structs += 1;
            }
            let names = |v: &mut dyn Iterator<Item = &String>| v.cloned().collect::<Vec<_>>();
            let (theirs_n, ours_n) = (
                names(&mut c.members.iter().map(|m| &m.0)),
                names(&mut ours.iter().map(|m| &m.0)),
            );
            if theirs_n != ours_n {
                bad.push(format!(
                    "{file}: {}: members {theirs_n:?}, ours {ours_n:?}",
                    c.name
                ));
                continue;
            }
            for ((name, cd), (_, ty)) in c.members.iter().zip(&ours) {
                *members += 1;
                if let Err(e) = check_member(s, *ty, cd) {
                    bad.push(format!("{file}: {}.{name}: {e}", c.name));
                }
            }
        }
    }
}

#[test]
fn every_struct_matches_libvirts_flattened_layout() {
    let Some(s) = schema_support::schema() else {
        return;
    };
    let dir = schema_support::libvirt_dir().join("src");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("protocol-structs"))
        .collect();
    files.sort();
    if files.is_empty() {
        schema_support::skip(&format!(
            "no *protocol-structs in {} (scripts/setup.sh extracts them)",
            dir.display()
        ));
        return;
    }
    let mut found = Found::default();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let file = Path::new(f).file_name().unwrap().to_string_lossy();
        compare(s, &file, &text, &mut found);
    }
    let Found {
        structs,
        unions,
        members,
        unknown,
        bad,
    } = found;
    eprintln!(
        "protocol-structs: {} files, {structs} structs and {unions} unions with {members} members \
         agree; not in the schema: {unknown:?}",
        files.len()
    );
    assert!(
        bad.is_empty(),
        "{} differences:\n{}",
        bad.len(),
        bad.join("\n")
    );
    // Every struct of the structs files is one of ours, and there are as many as libvirt 9.0 has.
    assert!(unknown.is_empty(), "{unknown:?}");
    assert!(structs + unions > 700, "{structs} structs, {unions} unions");
}

#[test]
fn the_structs_parser_reads_each_form() {
    let text = "struct a {\n        int                        x;\n        char                       m[32];\n        remote_string              s;\n        remote_nonnull_domain *    d;\n        struct {\n                u_int              v_len;\n                char *             v_val;\n        } v;\n};\nstruct u {\n        int                        type;\n        union {\n                int                i;\n                remote_nonnull_string s;\n        } u_u;\n};\n";
    let got = parse_structs(text);
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[0].members,
        [
            ("x".into(), CDecl::Plain("int".into())),
            ("m".into(), CDecl::Fixed("char".into(), 32)),
            ("s".into(), CDecl::Plain("remote_string".into())),
            ("d".into(), CDecl::Pointer("remote_nonnull_domain".into())),
            ("v".into(), CDecl::Var("char".into())),
        ]
    );
    assert!(got[1].is_union && !got[0].is_union);
    assert_eq!(
        got[1].members,
        [
            ("type".into(), CDecl::Plain("int".into())),
            ("i".into(), CDecl::Plain("int".into())),
            ("s".into(), CDecl::Plain("remote_nonnull_string".into())),
        ]
    );
}

#[test]
fn a_different_member_kind_or_size_is_found() {
    let x = "typedef string str<64>; struct t { int a; opaque u[16]; int v<4>; str *o; };";
    let s = Schema::from_sources(&[("t.x", x)]).unwrap();
    let good = "struct t {\n        int                        a;\n        char                       u[16];\n        struct {\n                u_int              v_len;\n                int *              v_val;\n        } v;\n        str *                      o;\n};\n";
    let mut f = Found::default();
    compare(&s, "t", good, &mut f);
    assert_eq!(
        (f.structs, f.members, f.bad.len()),
        (1, 4, 0),
        "{:?}",
        f.bad
    );
    for (what, wrong) in [
        (
            "a scalar of another type",
            good.replace(
                "int                        a",
                "u_int                      a",
            ),
        ),
        ("another fixed size", good.replace("u[16]", "u[15]")),
        (
            "another element type",
            good.replace("int *              v_val", "u_int *            v_val"),
        ),
        ("a renamed member", good.replace(" a;", " b;")),
        (
            "a missing member",
            good.replace("        int                        a;\n", ""),
        ),
    ] {
        let mut f = Found::default();
        compare(&s, "t", &wrong, &mut f);
        assert_eq!(f.bad.len(), 1, "{what}: {:?}", f.bad);
    }
}
