//! Lexer and recursive-descent parser for the XDR language (RFC 4506 §6) with the rpcgen extensions
//! libvirt's `.x` files use: `%` pass-through lines, `char`/`short` (4 bytes on the wire), `unsigned`
//! alone, enum members without a value, `struct X` / `enum X` type references, C and C++ comments.

use std::fmt;

use super::ast::*;

/// A syntax error, with the file label and 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The label the file was parsed under.
    pub file: String,
    /// Where the error is.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.pos.line, self.pos.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Deepest nesting of inline types the parser follows (a guard against hostile input).
const PARSE_NESTING_MAX: u32 = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    /// A non-negative literal (a leading `-` is a separate token).
    Number(u64),
    Punct(char),
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "`{s}`"),
            Tok::Number(n) => write!(f, "number {n}"),
            Tok::Punct(c) => write!(f, "`{c}`"),
            Tok::Eof => f.write_str("end of file"),
        }
    }
}

struct Lexer<'t> {
    chars: std::iter::Peekable<std::str::Chars<'t>>,
    line: u32,
    column: u32,
    /// Only whitespace (or nothing) since the start of the current line.
    at_line_start: bool,
    passthrough: Vec<(Pos, String)>,
    /// The text of the last `/* … */` comment before the token being lexed (its doc comment).
    doc: Option<String>,
}

type PResult<T> = Result<T, (Pos, String)>;

impl<'t> Lexer<'t> {
    fn new(text: &'t str) -> Self {
        Lexer {
            chars: text.chars().peekable(),
            line: 1,
            column: 1,
            at_line_start: true,
            passthrough: Vec::new(),
            doc: None,
        }
    }

    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        if c == '\n' {
            self.line += 1;
            self.column = 1;
            self.at_line_start = true;
        } else {
            self.column += 1;
            if !c.is_whitespace() {
                self.at_line_start = false;
            }
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.chars.clone();
        it.next();
        it.next()
    }

    /// Skip whitespace, comments and `%` lines.
    fn skip_trivia(&mut self) -> PResult<()> {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                Some('/') if self.peek2() == Some('*') => {
                    let start = self.pos();
                    self.bump();
                    self.bump();
                    let mut text = String::new();
                    loop {
                        match self.bump() {
                            None => return Err((start, "unterminated comment".into())),
                            Some('*') if self.peek() == Some('/') => {
                                self.bump();
                                break;
                            }
                            Some(c) => text.push(c),
                        }
                    }
                    self.doc = Some(text);
                }
                Some('/') if self.peek2() == Some('/') => {
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        self.bump();
                    }
                }
                Some('%') if self.at_line_start => {
                    let start = self.pos();
                    self.bump();
                    let mut line = String::new();
                    while let Some(c) = self.peek() {
                        if c == '\n' {
                            break;
                        }
                        line.push(c);
                        self.bump();
                    }
                    self.passthrough.push((start, line));
                }
                Some('#') if self.at_line_start => {
                    return Err((
                        self.pos(),
                        "C preprocessor directive: run the file through cpp first, or write it as a \
                         `%` pass-through line"
                            .into(),
                    ));
                }
                _ => return Ok(()),
            }
        }
    }

    fn next_token(&mut self) -> PResult<(Pos, Tok)> {
        self.doc = None;
        self.skip_trivia()?;
        let pos = self.pos();
        let Some(c) = self.peek() else {
            return Ok((pos, Tok::Eof));
        };
        if c.is_ascii_alphabetic() || c == '_' {
            let mut s = String::new();
            while let Some(c) = self.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    s.push(c);
                    self.bump();
                } else {
                    break;
                }
            }
            return Ok((pos, Tok::Ident(s)));
        }
        if c.is_ascii_digit() {
            let mut s = String::new();
            while let Some(c) = self.peek() {
                if c.is_ascii_alphanumeric() || c == '_' {
                    s.push(c);
                    self.bump();
                } else {
                    break;
                }
            }
            let parsed = if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
                u64::from_str_radix(hex, 16)
            } else if s.len() > 1 && s.starts_with('0') {
                u64::from_str_radix(&s[1..], 8)
            } else {
                s.parse::<u64>()
            };
            return match parsed {
                Ok(n) if n <= i64::MAX as u64 => Ok((pos, Tok::Number(n))),
                Ok(_) => Err((pos, format!("number `{s}` is too large"))),
                Err(_) => Err((pos, format!("malformed number `{s}`"))),
            };
        }
        if "{}()[]<>;,=:*-".contains(c) {
            self.bump();
            return Ok((pos, Tok::Punct(c)));
        }
        Err((pos, format!("unexpected character `{}`", c.escape_debug())))
    }
}

struct Parser<'t> {
    lexer: Lexer<'t>,
    tok: Tok,
    pos: Pos,
    /// The doc comment of the current token.
    doc: Option<String>,
    depth: u32,
}

const KEYWORDS: &[&str] = &[
    "bool",
    "case",
    "char",
    "const",
    "default",
    "double",
    "enum",
    "float",
    "hyper",
    "int",
    "long",
    "opaque",
    "short",
    "string",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "quadruple",
    "program",
    "version",
];

impl<'t> Parser<'t> {
    fn new(text: &'t str) -> PResult<Self> {
        let mut lexer = Lexer::new(text);
        let (pos, tok) = lexer.next_token()?;
        let doc = lexer.doc.take();
        Ok(Parser {
            lexer,
            tok,
            pos,
            doc,
            depth: 0,
        })
    }

    fn advance(&mut self) -> PResult<()> {
        let (pos, tok) = self.lexer.next_token()?;
        self.pos = pos;
        self.tok = tok;
        self.doc = self.lexer.doc.take();
        Ok(())
    }

    fn err<T>(&self, msg: impl Into<String>) -> PResult<T> {
        Err((self.pos, msg.into()))
    }

    fn is_punct(&self, c: char) -> bool {
        self.tok == Tok::Punct(c)
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.tok, Tok::Ident(s) if s == kw)
    }

    fn expect_punct(&mut self, c: char, context: &str) -> PResult<()> {
        if self.is_punct(c) {
            self.advance()
        } else {
            self.err(format!("expected `{c}` {context}, found {}", self.tok))
        }
    }

    fn expect_kw(&mut self, kw: &str) -> PResult<()> {
        if self.is_kw(kw) {
            self.advance()
        } else {
            self.err(format!("expected `{kw}`, found {}", self.tok))
        }
    }

    fn ident(&mut self, what: &str) -> PResult<String> {
        match &self.tok {
            Tok::Ident(s) if KEYWORDS.contains(&s.as_str()) => {
                self.err(format!("expected {what}, found keyword `{s}`"))
            }
            Tok::Ident(s) => {
                let s = s.clone();
                self.advance()?;
                Ok(s)
            }
            t => self.err(format!("expected {what}, found {t}")),
        }
    }

    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > PARSE_NESTING_MAX {
            return self.err(format!(
                "inline types nested deeper than {PARSE_NESTING_MAX} levels"
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `value`: a (possibly negative) number or an identifier.
    fn value(&mut self, what: &str) -> PResult<ConstRef> {
        let pos = self.pos;
        if self.is_punct('-') {
            self.advance()?;
            return match self.tok {
                Tok::Number(n) => {
                    self.advance()?;
                    Ok(ConstRef::Number(-(n as i64)))
                }
                _ => self.err(format!("expected a number after `-`, found {}", self.tok)),
            };
        }
        match &self.tok {
            Tok::Number(n) => {
                let n = *n as i64;
                self.advance()?;
                Ok(ConstRef::Number(n))
            }
            Tok::Ident(_) => Ok(ConstRef::Name(self.ident(what)?, pos)),
            t => self.err(format!("expected {what}, found {t}")),
        }
    }

    fn specification(&mut self, label: &str) -> PResult<XFile> {
        let mut definitions = Vec::new();
        while self.tok != Tok::Eof {
            definitions.push(self.definition()?);
        }
        Ok(XFile {
            label: label.to_string(),
            definitions,
            passthrough: std::mem::take(&mut self.lexer.passthrough),
        })
    }

    fn definition(&mut self) -> PResult<Definition> {
        let pos = self.pos;
        let kw = match &self.tok {
            Tok::Ident(s) => s.clone(),
            t => {
                return self.err(format!(
                    "expected a definition (const, typedef, enum, struct, union), found {t}"
                ));
            }
        };
        let kind = match kw.as_str() {
            "const" => {
                self.advance()?;
                let name = self.ident("a constant name")?;
                self.expect_punct('=', "after the constant name")?;
                let value = self.value("a constant value")?;
                DefKind::Const { name, value }
            }
            "typedef" => {
                self.advance()?;
                let d = self.declaration(false)?;
                if d.name.is_none() {
                    return Err((pos, "typedef of void".into()));
                }
                DefKind::Typedef(d)
            }
            "enum" => {
                self.advance()?;
                let name = self.ident("an enum name")?;
                DefKind::Enum {
                    name,
                    body: self.enum_body()?,
                }
            }
            "struct" => {
                self.advance()?;
                let name = self.ident("a struct name")?;
                DefKind::Struct {
                    name,
                    body: self.struct_body()?,
                }
            }
            "union" => {
                self.advance()?;
                let name = self.ident("a union name")?;
                DefKind::Union {
                    name,
                    body: self.union_body()?,
                }
            }
            "program" => return self.err("rpcgen `program` definitions are not supported"),
            _ => {
                return self.err(format!(
                    "expected a definition (const, typedef, enum, struct, union), found `{kw}`"
                ));
            }
        };
        self.expect_punct(';', "after the definition")?;
        Ok(Definition { pos, kind })
    }

    fn enum_body(&mut self) -> PResult<EnumBody> {
        self.enter()?;
        self.expect_punct('{', "to open the enum body")?;
        let mut members = Vec::new();
        loop {
            if self.is_punct('}') {
                if members.is_empty() {
                    return self.err("empty enum");
                }
                break;
            }
            let pos = self.pos;
            let annotations = annotations(self.doc.as_deref().unwrap_or(""));
            let name = self.ident("an enum member name")?;
            let value = if self.is_punct('=') {
                self.advance()?;
                Some(self.value("an enum value")?)
            } else {
                None
            };
            members.push(EnumMember {
                pos,
                name,
                value,
                annotations,
            });
            if self.is_punct(',') {
                self.advance()?;
            } else if !self.is_punct('}') {
                return self.err(format!(
                    "expected `,` or `}}` after an enum member, found {}",
                    self.tok
                ));
            }
        }
        self.advance()?;
        self.leave();
        Ok(EnumBody { members })
    }

    fn struct_body(&mut self) -> PResult<StructBody> {
        self.enter()?;
        self.expect_punct('{', "to open the struct body")?;
        let mut fields = Vec::new();
        while !self.is_punct('}') {
            let d = self.declaration(false)?;
            if d.name.is_none() {
                return Err((d.pos, "`void` is only allowed in union arms".into()));
            }
            self.expect_punct(';', "after a struct field")?;
            fields.push(d);
        }
        if fields.is_empty() {
            return self.err("empty struct");
        }
        self.advance()?;
        self.leave();
        Ok(StructBody { fields })
    }

    fn union_body(&mut self) -> PResult<UnionBody> {
        self.enter()?;
        self.expect_kw("switch")?;
        self.expect_punct('(', "after `switch`")?;
        let discriminant = self.declaration(false)?;
        if discriminant.name.is_none() || discriminant.shape != Shape::Plain {
            return Err((
                discriminant.pos,
                "a union discriminant must be a plain `T name`".into(),
            ));
        }
        self.expect_punct(')', "after the discriminant")?;
        self.expect_punct('{', "to open the union body")?;
        let mut arms = Vec::new();
        let mut default = None;
        while !self.is_punct('}') {
            if self.is_kw("default") {
                if default.is_some() {
                    return self.err("second `default` arm");
                }
                self.advance()?;
                self.expect_punct(':', "after `default`")?;
                default = Some(self.declaration(true)?);
                self.expect_punct(';', "after the default arm")?;
                continue;
            }
            if !self.is_kw("case") {
                return self.err(format!(
                    "expected `case`, `default` or `}}`, found {}",
                    self.tok
                ));
            }
            let mut cases = Vec::new();
            let pos = self.pos;
            while self.is_kw("case") {
                self.advance()?;
                cases.push(self.value("a case value")?);
                self.expect_punct(':', "after the case value")?;
            }
            let decl = self.declaration(true)?;
            self.expect_punct(';', "after a union arm")?;
            arms.push(UnionArm { pos, cases, decl });
        }
        if arms.is_empty() && default.is_none() {
            return self.err("union without arms");
        }
        self.advance()?;
        self.leave();
        Ok(UnionBody {
            discriminant,
            arms,
            default,
        })
    }

    /// A type specifier (everything before the declared name).
    fn type_spec(&mut self) -> PResult<TypeSpec> {
        let kw = match &self.tok {
            Tok::Ident(s) => s.clone(),
            t => return self.err(format!("expected a type, found {t}")),
        };
        let simple = |t| Some(t);
        let spec = match kw.as_str() {
            "int" | "long" => simple(TypeSpec::Int),
            "hyper" => simple(TypeSpec::Hyper),
            "float" => simple(TypeSpec::Float),
            "double" => simple(TypeSpec::Double),
            "bool" => simple(TypeSpec::Bool),
            "char" => simple(TypeSpec::Char),
            "short" => simple(TypeSpec::Short),
            "opaque" => simple(TypeSpec::Opaque),
            "string" => simple(TypeSpec::String),
            "void" => simple(TypeSpec::Void),
            "quadruple" => return self.err("`quadruple` is not supported"),
            _ => None,
        };
        if let Some(spec) = spec {
            self.advance()?;
            return Ok(spec);
        }
        match kw.as_str() {
            "unsigned" => {
                self.advance()?;
                let spec = match &self.tok {
                    Tok::Ident(s) if s == "int" || s == "long" => TypeSpec::UInt,
                    Tok::Ident(s) if s == "hyper" => TypeSpec::UHyper,
                    Tok::Ident(s) if s == "char" => TypeSpec::UChar,
                    Tok::Ident(s) if s == "short" => TypeSpec::UShort,
                    // `unsigned` alone means `unsigned int` (rpcgen).
                    _ => return Ok(TypeSpec::UInt),
                };
                self.advance()?;
                Ok(spec)
            }
            "enum" | "struct" | "union" => {
                self.advance()?;
                let tag = match kw.as_str() {
                    "enum" => Tag::Enum,
                    "struct" => Tag::Struct,
                    _ => Tag::Union,
                };
                if matches!(self.tok, Tok::Ident(_)) && !self.is_kw("switch") {
                    let name = self.ident("a type name")?;
                    return Ok(TypeSpec::Named {
                        name,
                        tag: Some(tag),
                    });
                }
                match tag {
                    Tag::Enum => Ok(TypeSpec::Enum(self.enum_body()?)),
                    Tag::Struct => Ok(TypeSpec::Struct(self.struct_body()?)),
                    Tag::Union => Ok(TypeSpec::Union(Box::new(self.union_body()?))),
                }
            }
            _ => Ok(TypeSpec::Named {
                name: self.ident("a type")?,
                tag: None,
            }),
        }
    }

    /// A declaration. `void` is accepted only when `allow_void`.
    fn declaration(&mut self, allow_void: bool) -> PResult<Decl> {
        let pos = self.pos;
        let ty = self.type_spec()?;
        if ty == TypeSpec::Void {
            if !allow_void {
                return Err((pos, "`void` is only allowed in union arms".into()));
            }
            return Ok(Decl {
                pos,
                name: None,
                ty,
                shape: Shape::Plain,
            });
        }
        if self.is_punct('*') {
            self.advance()?;
            let name = self.ident("a name after `*`")?;
            if matches!(ty, TypeSpec::Opaque | TypeSpec::String) {
                return Err((pos, "`opaque`/`string` cannot be optional directly".into()));
            }
            return Ok(Decl {
                pos,
                name: Some(name),
                ty,
                shape: Shape::Optional,
            });
        }
        let name = self.ident("a declaration name")?;
        let shape = if self.is_punct('[') {
            self.advance()?;
            let n = self.value("an array size")?;
            self.expect_punct(']', "to close the array size")?;
            Shape::Fixed(n)
        } else if self.is_punct('<') {
            self.advance()?;
            let n = if self.is_punct('>') {
                None
            } else {
                Some(self.value("an array bound")?)
            };
            self.expect_punct('>', "to close the array bound")?;
            Shape::Variable(n)
        } else {
            Shape::Plain
        };
        match (&ty, &shape) {
            (TypeSpec::String, Shape::Fixed(_)) => {
                return Err((pos, "`string` takes `<N>`, not `[N]`".into()));
            }
            // `string x` without a bound: unbounded, like `string x<>`.
            (TypeSpec::String, Shape::Plain) => {
                return Ok(Decl {
                    pos,
                    name: Some(name),
                    ty,
                    shape: Shape::Variable(None),
                });
            }
            (TypeSpec::Opaque, Shape::Plain) => {
                return Err((pos, "`opaque` needs `[N]` or `<N>`".into()));
            }
            _ => {}
        }
        Ok(Decl {
            pos,
            name: Some(name),
            ty,
            shape,
        })
    }
}

/// The `@key: value` lines of a doc comment, in order (libvirt's procedure annotations: `@generate`,
/// `@acl`, `@aclfilter`, `@priority`, `@readstream`, `@writestream`). A line counts when, after
/// leading spaces and `*`s, it starts with `@`, a word, and `:`.
fn annotations(comment: &str) -> Vec<(String, String)> {
    comment
        .lines()
        .filter_map(|line| {
            let line = line.trim_start_matches(|c: char| c.is_whitespace() || c == '*');
            let (key, value) = line.strip_prefix('@')?.split_once(':')?;
            let ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            ok.then(|| (key.to_string(), value.trim().to_string()))
        })
        .collect()
}

/// Parse the text of one `.x` file. `label` names it in errors (`label:line:column: message`).
pub fn parse_x(label: &str, text: &str) -> Result<XFile, ParseError> {
    let to_err = |(pos, message): (Pos, String)| ParseError {
        file: label.to_string(),
        pos,
        message,
    };
    let mut p = Parser::new(text).map_err(to_err)?;
    p.specification(label).map_err(to_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_constructs_libvirt_uses() {
        let f = parse_x(
            "t.x",
            "/* c */\n%#include \"remote_protocol.h\"\nconst A = 0x10; const B = A; const C = -3;\n\
             typedef string s<A>; typedef s *os; typedef opaque u[16];\n\
             enum e { X, Y = 5, Z };\n\
             struct st { unsigned u; unsigned hyper h; char c[4]; os o; int v<>; string w; };\n\
             union un switch (int t) { case 1: case 2: int i; case X: void; default: st s; };\n\
             typedef struct st st;\n",
        )
        .unwrap();
        assert_eq!(f.definitions.len(), 10);
        assert_eq!(f.includes().collect::<Vec<_>>(), ["remote_protocol.h"]);
        let DefKind::Const { value, .. } = &f.definitions[2].kind else {
            panic!()
        };
        assert_eq!(value, &ConstRef::Number(-3));
        let DefKind::Struct { body, .. } = &f.definitions[7].kind else {
            panic!()
        };
        assert_eq!(body.fields[0].ty, TypeSpec::UInt);
        assert_eq!(body.fields[5].shape, Shape::Variable(None));
    }

    #[test]
    fn enum_members_keep_their_doc_comment_annotations() {
        let f = parse_x(
            "p.x",
            "enum p_procedure {\n\
             /* Notes: @acl: in prose is not a line start.\n * - @acl: <object>:<permission> */\n\
             /**\n * @generate: both\n * @acl: domain:write\n * @acl: domain:save:VIR_X\n */\n\
             P_PROC_A = 1,\n\
             P_PROC_B = 2, /* trailing */ // line comment\n\
             /** @acl: none */ P_PROC_C = 3\n};\n",
        )
        .unwrap();
        let DefKind::Enum { body, .. } = &f.definitions[0].kind else {
            panic!()
        };
        let ann = |i: usize| body.members[i].annotations.clone();
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            ann(0),
            [
                pair("generate", "both"),
                pair("acl", "domain:write"),
                pair("acl", "domain:save:VIR_X")
            ]
        );
        // The block comment after B's comma belongs to nothing with annotations; C has its own.
        assert_eq!(ann(1), []);
        assert_eq!(ann(2), [pair("acl", "none")]);
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let e = parse_x("f.x", "const A = 1;\nstruct s {\n  int x\n};\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "f.x:4:1: expected `;` after a struct field, found `}`"
        );
        let e = parse_x("f.x", "/* open").unwrap_err();
        assert_eq!(e.pos, Pos { line: 1, column: 1 });
        let e = parse_x("f.x", "const A = 99999999999999999999;").unwrap_err();
        assert_eq!(
            e.pos,
            Pos {
                line: 1,
                column: 11
            }
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut s = String::from("struct a {");
        for _ in 0..10_000 {
            s.push_str("struct {");
        }
        let e = parse_x("deep.x", &s).unwrap_err();
        assert!(e.message.contains("nested"), "{e}");
    }
}
