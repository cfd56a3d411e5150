//! libvirt's `.x` protocol definitions, parsed and compiled into a schema that decodes, validates and
//! encodes the body of any procedure of any program.
//!
//! - [`parse_x`] parses one `.x` file (RFC 4506 XDR language plus the rpcgen extensions libvirt
//!   uses) into a syntax tree ([`XFile`]); errors say `file:line:column: message`.
//! - [`Schema`] resolves names across a set of files (libvirt's `qemu`, `lxc` and `admin` files use
//!   types from `remote_protocol.x`), evaluates constants, compiles every type into an indexed graph
//!   ([`Type`], [`TypeId`]) and maps procedure numbers to their body structs the way libvirt's
//!   `gendispatch.pl` does: the procedure `<PREFIX>_PROC_<NAME>` of the enum `<prefix>_procedure` /
//!   `<prefix>Procedure` takes the struct `<prefix>_<name>_args` or `<prefix><Name>Args` (`_ret` /
//!   `Ret`, `_msg` / `Msg` likewise), matched after lower-casing and dropping underscores; a
//!   procedure with no such struct has a void body.
//! - [`Schema::decode_body`] builds a borrowed [`Value`] tree, [`Schema::validate_body`] checks the
//!   same bytes without building anything (same accept/reject, same error), and
//!   [`Schema::encode_body`] writes a tree back. Every `<N>` and `[N]` is enforced in both directions
//!   and in both [`Compat`] modes; counts are checked against their bound and against the bytes left
//!   before anything is sized from them; nesting is bounded by [`Limits::nesting_max`].
//! - [`Schema::decode_body_tape`] decodes into a flat [`Tape`] (one node vector; no allocation
//!   with a reused [`TapeBuf`]).
//! - Speed: validate, tape decode and encode first run a fast path (the type graph compiled into
//!   flat routines, `program.rs`; a lean encoder in `codec.rs`) that reports no errors; on any
//!   failure the full walk reruns and names the error (offset, kind, path). Tests hold the fast
//!   paths to the full ones: they accept exactly what the full walk accepts, with the same result.
//!
//! The `.x` files are libvirt's and are read at run time from the libvirt source tree the caller
//! names ([`Schema::load_dir`]; finding one on disk is the application's job); the crate's core
//! (frames, headers, error, keepalive and stream bodies) never needs them.
//!
//! ```no_run
//! use virtwire_protocol::schema::Schema;
//! use virtwire_protocol::{Compat, Frame, Limits};
//! let schema = Schema::load_dir("libvirt-9.0.0".as_ref())?;
//! # let bytes: &[u8] = &[];
//! let frame = Frame::decode(bytes, &Limits::default(), Compat::Strict)?;
//! let body = schema.decode_body(&frame.header, frame.payload, 28, &Limits::default(), Compat::Strict)?;
//! println!("{body}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ast;
pub mod bounds;
mod codec;
mod compile;
mod diff;
mod parse;
mod program;
mod show;
mod tape;
mod types;
mod value;

use std::fmt;
use std::path::{Path, PathBuf};

pub use ast::{
    ConstRef, Decl, DefKind, Definition, EnumBody, EnumMember, Pos, Shape, StructBody, Tag,
    TypeSpec, UnionArm, UnionBody, XFile,
};
pub use diff::{
    Change, ChangeKind, ConstantChange, DiffCounts, Presence, ProcedureChange, ProcedureDelta,
    ProgramChange, SchemaDiff, TypeChange, TypeDelta, TypeKind,
};
pub use parse::{ParseError, parse_x};
pub use tape::{Fields, Item, ItemKind, Items, Tape, TapeBuf};
pub use types::{Arm, EnumType, Field, SmallInt, StructType, Type, TypeId, UnionType};
pub use value::Value;

use crate::body::{BodyKind, BodyRole};
use crate::error::{Error, ErrorKind, Op, Result};
use crate::header::{self, Header, HeaderField};
use crate::limits::Limits;
use crate::xdr::{Compat, Reader, Scan, Writer};
use codec::{Check, Graph, Tree};
use program::Program;
use tape::TapeBuilder;

/// Numbers libvirt's `.x` files use but take from libvirt's public C headers (`libvirt-common.h`,
/// `libvirt-host.h`): the schema falls back to these when no `.x` file defines the name.
pub const C_CONSTANTS: &[(&str, i64)] = &[
    ("VIR_UUID_BUFLEN", 16),
    ("VIR_SECURITY_MODEL_BUFLEN", 256 + 1),
    ("VIR_SECURITY_LABEL_BUFLEN", 4096 + 1),
    ("VIR_SECURITY_DOI_BUFLEN", 256 + 1),
    ("VIR_TYPED_PARAM_INT", 1),
    ("VIR_TYPED_PARAM_UINT", 2),
    ("VIR_TYPED_PARAM_LLONG", 3),
    ("VIR_TYPED_PARAM_ULLONG", 4),
    ("VIR_TYPED_PARAM_DOUBLE", 5),
    ("VIR_TYPED_PARAM_BOOLEAN", 6),
    ("VIR_TYPED_PARAM_STRING", 7),
];

/// The file (relative to a libvirt source tree) that defines the RPC layer's own types
/// (`virNetMessageHeader`, `virNetMessageError`, `virNetStreamHole`); no program of its own.
pub const VIRNET_XDR_FILE: &str = "src/rpc/virnetprotocol.x";

/// The relative paths of the nine `.x` files [`Schema::load_dir`] reads, the RPC layer's first.
pub fn xdr_files() -> impl Iterator<Item = &'static str> {
    std::iter::once(VIRNET_XDR_FILE).chain(header::PROGRAMS.iter().map(|p| p.xdr_file))
}

/// Why a schema could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum SchemaError {
    /// A `.x` file does not parse.
    Parse(ParseError),
    /// A definition does not resolve (unknown type or constant, duplicate, bad size, …).
    Definition {
        /// The file's label.
        file: String,
        /// Where.
        pos: Pos,
        /// What.
        message: String,
    },
    /// Some `.x` files are missing from a libvirt tree.
    MissingFiles {
        /// The tree.
        dir: PathBuf,
        /// The relative paths not found.
        missing: Vec<String>,
    },
    /// A file (or the tree's directory itself) could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SchemaError::Parse(e) => write!(f, "{e}"),
            SchemaError::Definition { file, pos, message } => {
                write!(f, "{file}:{}:{}: {message}", pos.line, pos.column)
            }
            SchemaError::MissingFiles { dir, missing } => write!(
                f,
                "libvirt protocol files missing in {}: {}",
                dir.display(),
                missing.join(", ")
            ),
            SchemaError::Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for SchemaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SchemaError::Parse(e) => Some(e),
            SchemaError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl From<ParseError> for SchemaError {
    fn from(e: ParseError) -> Self {
        SchemaError::Parse(e)
    }
}

/// One procedure of a program and its body types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Procedure {
    /// The procedure number.
    pub number: i32,
    /// The name without its prefix (`CONNECT_OPEN` for `REMOTE_PROC_CONNECT_OPEN`).
    pub name: String,
    /// The enum member as written (`REMOTE_PROC_CONNECT_OPEN`).
    pub constant: String,
    /// The args struct (CALL body), if any: its name and type.
    pub args: Option<(String, TypeId)>,
    /// The ret struct (REPLY/OK body), if any.
    pub ret: Option<(String, TypeId)>,
    /// The msg struct (MESSAGE body), if any.
    pub msg: Option<(String, TypeId)>,
    /// The annotations of its `.x` doc comment (`("acl", "domain:write")`, …), in order.
    pub annotations: Vec<(String, String)>,
}

impl Procedure {
    /// The body struct of this role (`args`, `ret` or `msg`), if the procedure has one: its name and
    /// type. `None` is a void body.
    pub fn body(&self, role: BodyRole) -> Option<(&str, TypeId)> {
        let b = match role {
            BodyRole::Args => &self.args,
            BodyRole::Ret => &self.ret,
            BodyRole::Msg => &self.msg,
        };
        b.as_ref().map(|(name, ty)| (name.as_str(), *ty))
    }

    /// The values of its `@key:` annotations, in order (`annotation("acl")` → `domain:write`, …).
    pub fn annotation<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.annotations
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// A program: its number, version, name and procedures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgramSchema {
    number: u32,
    version: u32,
    name: String,
    file: String,
    procedure_enum: String,
    struct_prefix: String,
    /// Sorted by number.
    procedures: Vec<Procedure>,
}

impl ProgramSchema {
    /// Short name (`remote`, `qemu`, … as in [`header::PROGRAMS`], else the struct prefix).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Program number.
    pub fn number(&self) -> u32 {
        self.number
    }
    /// Program version.
    pub fn version(&self) -> u32 {
        self.version
    }
    /// The label of the `.x` file that defines it.
    pub fn file(&self) -> &str {
        &self.file
    }
    /// The procedure enum's name (`remote_procedure`, `virLogManagerProtocolProcedure`, …).
    pub fn procedure_enum(&self) -> &str {
        &self.procedure_enum
    }
    /// The prefix of its body structs (`remote`, `virLogManagerProtocol`, …).
    pub fn struct_prefix(&self) -> &str {
        &self.struct_prefix
    }
    /// (number, name) of every procedure, by number.
    pub fn procedures(&self) -> impl ExactSizeIterator<Item = (i32, &str)> + '_ {
        self.procedures.iter().map(|p| (p.number, p.name.as_str()))
    }
    /// Every procedure with its body types, by number.
    pub fn procedure_list(&self) -> &[Procedure] {
        &self.procedures
    }
    /// A procedure by number.
    pub fn procedure(&self, number: i32) -> Option<&Procedure> {
        self.procedures
            .binary_search_by_key(&number, |p| p.number)
            .ok()
            .map(|i| &self.procedures[i])
    }
    /// A procedure by name, with or without its prefix (`CONNECT_OPEN`, `REMOTE_PROC_CONNECT_OPEN`),
    /// case-insensitive.
    pub fn procedure_by_name(&self, name: &str) -> Option<&Procedure> {
        self.procedures
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name) || p.constant.eq_ignore_ascii_case(name))
    }
}

/// The compiled definitions of a set of `.x` files.
///
/// Immutable once built, `Send + Sync`: share one behind an `Arc` or a `static`.
#[derive(Clone)]
pub struct Schema {
    files: Vec<String>,
    types: Vec<Type>,
    min_size: Vec<u32>,
    type_names: std::collections::HashMap<String, TypeId>,
    consts: std::collections::HashMap<String, i64>,
    programs: Vec<ProgramSchema>,
    error_type: Option<TypeId>,
    hole_type: Option<TypeId>,
    bound_names: std::collections::HashMap<TypeId, String>,
    /// The codec's fast path (program.rs): tried first by validate and tape decode.
    program: Program,
}

/// A summary (the full type graph is thousands of entries).
impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("files", &self.files)
            .field("types", &self.types.len())
            .field(
                "programs",
                &self
                    .programs
                    .iter()
                    .map(|p| (p.name(), p.procedures.len()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// What a body decodes as.
enum BodyType {
    /// A type (possibly void).
    Typed(TypeId),
    /// Raw bytes (stream data; unexpected pairs in libvirt mode).
    Raw,
    /// Not decodable.
    Fail(Error),
}

impl Schema {
    /// Parse and compile `(label, text)` pairs; names resolve across all of them.
    pub fn from_sources(files: &[(&str, &str)]) -> Result<Schema, SchemaError> {
        let parsed = files
            .iter()
            .map(|(label, text)| parse_x(label, text))
            .collect::<Result<Vec<_>, _>>()?;
        Schema::from_parsed(parsed)
    }

    /// Compile already-parsed files.
    pub fn from_parsed(files: Vec<XFile>) -> Result<Schema, SchemaError> {
        let c = compile::compile(&files)?;
        let error_type = c.type_names.get("virNetMessageError").copied();
        let hole_type = c.type_names.get("virNetStreamHole").copied();
        let program = Program::compile(&c.types, &c.min_size);
        Ok(Schema {
            program,
            files: files.into_iter().map(|f| f.label).collect(),
            types: c.types,
            min_size: c.min_size,
            type_names: c.type_names,
            consts: c.consts,
            programs: c.programs,
            error_type,
            hole_type,
            bound_names: c.bound_names,
        })
    }

    /// Read the nine `.x` files ([`xdr_files`]) from `dir`, the root of a libvirt source tree (or a
    /// pruned copy of one holding the same relative paths). Files are labelled by their relative
    /// path. Errors name the directory and what is missing in it ([`SchemaError::MissingFiles`]),
    /// or the directory itself when it cannot be read ([`SchemaError::Io`]).
    pub fn load_dir(dir: &Path) -> Result<Schema, SchemaError> {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(SchemaError::Io {
                    path: dir.to_path_buf(),
                    error: std::io::Error::other("not a directory"),
                });
            }
            Err(error) => {
                return Err(SchemaError::Io {
                    path: dir.to_path_buf(),
                    error,
                });
            }
        }
        let missing: Vec<String> = xdr_files()
            .filter(|rel| !dir.join(rel).is_file())
            .map(str::to_string)
            .collect();
        if !missing.is_empty() {
            return Err(SchemaError::MissingFiles {
                dir: dir.to_path_buf(),
                missing,
            });
        }
        let mut texts = Vec::new();
        for rel in xdr_files() {
            let path = dir.join(rel);
            let text = std::fs::read_to_string(&path).map_err(|error| SchemaError::Io {
                path: path.clone(),
                error,
            })?;
            texts.push((rel, text));
        }
        let pairs: Vec<(&str, &str)> = texts.iter().map(|(l, t)| (*l, t.as_str())).collect();
        Schema::from_sources(&pairs)
    }

    /// The labels of the files this schema was built from.
    pub fn files(&self) -> &[String] {
        &self.files
    }

    /// Every program, in file order.
    pub fn programs(&self) -> &[ProgramSchema] {
        &self.programs
    }

    /// The program with this number and version.
    pub fn program(&self, prog: u32, vers: u32) -> Option<&ProgramSchema> {
        self.programs
            .iter()
            .find(|p| p.number == prog && p.version == vers)
    }

    /// A procedure's name without its prefix (`CONNECT_OPEN`), for any version of the program.
    pub fn procedure_name(&self, prog: u32, procedure: i32) -> Option<&str> {
        self.programs
            .iter()
            .filter(|p| p.number == prog)
            .find_map(|p| p.procedure(procedure))
            .map(|p| p.name.as_str())
    }

    /// The `.x` struct name of the procedure body a frame with this header carries
    /// (`remote_connect_open_args`): for CALL*, REPLY*+OK and MESSAGE+OK headers (keepalive
    /// included) of a known program and procedure that has such a struct; `None` otherwise (a void
    /// body, or not a procedure body).
    pub fn body_type_name(&self, header: &Header) -> Option<&str> {
        let role = BodyKind::of(header).role()?;
        self.program(header.prog, header.vers)?
            .procedure(header.procedure)?
            .body(role)
            .map(|(name, _)| name)
    }

    /// A named type (typedef, struct, union or enum).
    pub fn type_id(&self, name: &str) -> Option<TypeId> {
        self.type_names.get(name).copied()
    }

    /// Every named type (typedefs, structs, unions, enums) with its id, in no particular order.
    pub fn type_names(&self) -> impl Iterator<Item = (&str, TypeId)> + '_ {
        self.type_names.iter().map(|(n, id)| (n.as_str(), *id))
    }

    /// The compiled type behind an id.
    ///
    /// # Panics
    /// If `id` is not from this schema.
    pub fn ty(&self, id: TypeId) -> &Type {
        &self.types[id.index()]
    }

    /// The smallest encoded size of a type, in bytes (a lower bound for recursive types).
    pub fn min_size(&self, id: TypeId) -> u32 {
        self.min_size[id.index()]
    }

    /// A short description of a type (`struct remote_nonnull_domain`, `string<4194304>`, `int`).
    pub fn describe(&self, id: TypeId) -> String {
        self.graph(&Limits::default()).describe(id)
    }

    /// The named constant a bounded type (`string<N>`, `opaque<N>`, `T x<N>`, `[N]`) was declared
    /// with in the `.x` file (`REMOTE_STRING_MAX`); `None` for a literal, an unbounded `<>` or any
    /// other type.
    pub fn bound_constant(&self, id: TypeId) -> Option<&str> {
        self.bound_names.get(&id).map(String::as_str)
    }

    /// Every named constant (`const` definitions and enum members) with its value, in no
    /// particular order.
    pub fn constants(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.consts.iter().map(|(n, v)| (n.as_str(), *v))
    }

    /// The value of a named constant (a `const` or an enum member).
    pub fn constant(&self, name: &str) -> Option<i64> {
        self.consts.get(name).copied()
    }

    fn graph(&self, limits: &Limits) -> Graph<'_> {
        Graph {
            types: &self.types,
            min_size: &self.min_size,
            nesting_max: limits.nesting_max(),
        }
    }

    /// The type a body of this header decodes as: `Ok(None)` for a void body.
    ///
    /// For CALL*/REPLY*+OK/MESSAGE+OK (and keepalive) the procedure's args/ret/msg struct; for
    /// REPLY/ERROR and STREAM/ERROR with a payload `virNetMessageError`; for STREAM_HOLE
    /// `virNetStreamHole`; STREAM/OK and an empty STREAM/ERROR are void. STREAM/CONTINUE data is raw
    /// and has no type (`Err` with [`ErrorKind::Invalid`]), as has a (type, status) pair libvirt never
    /// sends ([`ErrorKind::UnexpectedStatus`]).
    pub fn body_type(&self, header: &Header, payload_len: usize) -> Result<Option<TypeId>> {
        match self.body_type_inner(header, payload_len, Compat::Strict, Op::Decode) {
            BodyType::Typed(t) if t == compile::VOID => Ok(None),
            BodyType::Typed(t) => Ok(Some(t)),
            BodyType::Raw => Err(Error::decode(
                ErrorKind::Invalid("stream data has no schema type".into()),
                0,
            )),
            BodyType::Fail(e) => Err(e),
        }
    }

    fn body_type_inner(
        &self,
        header: &Header,
        payload_len: usize,
        compat: Compat,
        op: Op,
    ) -> BodyType {
        let kind = BodyKind::of(header);
        let Some(role) = kind.role() else {
            return match kind {
                BodyKind::Error => self.named_body(self.error_type, "virNetMessageError", op),
                BodyKind::StreamError if payload_len == 0 => BodyType::Typed(compile::VOID),
                BodyKind::StreamError => self.named_body(self.error_type, "virNetMessageError", op),
                BodyKind::StreamHole => self.named_body(self.hole_type, "virNetStreamHole", op),
                BodyKind::StreamEnd => BodyType::Typed(compile::VOID),
                BodyKind::StreamData => BodyType::Raw,
                _ if compat == Compat::Libvirt => BodyType::Raw,
                _ => BodyType::Fail(header.unexpected_status(op)),
            };
        };
        let Some(prog) = self.program(header.prog, header.vers) else {
            return BodyType::Fail(HeaderField::Prog.error(
                op,
                ErrorKind::UnknownProgram {
                    prog: header.prog,
                    vers: header.vers,
                },
            ));
        };
        let Some(p) = prog.procedure(header.procedure) else {
            return BodyType::Fail(HeaderField::Proc.error(
                op,
                ErrorKind::UnknownProcedure {
                    prog: header.prog,
                    procedure: header.procedure,
                },
            ));
        };
        BodyType::Typed(p.body(role).map_or(compile::VOID, |(_, id)| id))
    }

    fn named_body(&self, t: Option<TypeId>, name: &str, op: Op) -> BodyType {
        match t {
            Some(t) => BodyType::Typed(t),
            None => {
                let kind = ErrorKind::Invalid(
                    format!("the schema has no `{name}` ({VIRNET_XDR_FILE})").into(),
                );
                BodyType::Fail(match op {
                    Op::Decode => Error::decode(kind, 0),
                    Op::Encode => Error::encode(kind, 0),
                })
            }
        }
    }

    /// Decode the body of a message into a value tree.
    ///
    /// Meant for CALL*/REPLY*+OK/MESSAGE+OK bodies (args/ret/msg); also decodes error bodies
    /// (`virNetMessageError`), stream holes, and returns stream data as [`Value::Opaque`] (see
    /// [`Schema::body_type`]). Unknown program/version → [`ErrorKind::UnknownProgram`], unknown
    /// procedure → [`ErrorKind::UnknownProcedure`] (at the header's frame offsets 4 and 12); a void
    /// body → [`Value::Void`]. Strict mode rejects trailing bytes. `base` is the payload's offset in
    /// the frame, so error offsets are frame offsets; error paths look like
    /// `retStats[17].params[3].value.s`.
    pub fn decode_body<'a>(
        &'a self,
        header: &Header,
        payload: &'a [u8],
        base: u64,
        limits: &Limits,
        compat: Compat,
    ) -> Result<Value<'a>> {
        match self.body_type_inner(header, payload.len(), compat, Op::Decode) {
            BodyType::Typed(t) => self.decode_type(t, payload, base, limits, compat),
            BodyType::Raw => Ok(Value::Opaque(payload)),
            BodyType::Fail(e) => Err(e),
        }
    }

    /// Decode the body of a message into a [`Tape`]: the same accept/reject, errors and values as
    /// [`Schema::decode_body`], in one node vector (taken from `buf`, so a reused buffer makes the
    /// decode allocation-free). Raw stream data is an opaque root.
    pub fn decode_body_tape<'a>(
        &'a self,
        header: &Header,
        payload: &'a [u8],
        base: u64,
        limits: &Limits,
        compat: Compat,
        buf: TapeBuf,
    ) -> Result<Tape<'a>> {
        match self.body_type_inner(header, payload.len(), compat, Op::Decode) {
            BodyType::Typed(t) => self.decode_type_tape(t, payload, base, limits, compat, buf),
            BodyType::Raw => {
                let mut nodes = buf.0;
                nodes.clear();
                let mut b = TapeBuilder {
                    nodes,
                    payload,
                    overflow: false,
                };
                codec::Build::opaque(&mut b, payload);
                Ok(Tape::new(b.nodes, payload, &self.types))
            }
            BodyType::Fail(e) => Err(e),
        }
    }

    /// Decode `payload` as one value of type `ty` into a [`Tape`] (see [`Schema::decode_body_tape`]).
    pub fn decode_type_tape<'a>(
        &'a self,
        ty: TypeId,
        payload: &'a [u8],
        base: u64,
        limits: &Limits,
        compat: Compat,
        buf: TapeBuf,
    ) -> Result<Tape<'a>> {
        let mut nodes = buf.0;
        nodes.clear();
        let mut b = TapeBuilder {
            nodes,
            payload,
            overflow: false,
        };
        let g = self.graph(limits);
        if self.fast(&g, &mut b, ty, payload, compat) && !b.overflow {
            return Ok(Tape::new(b.nodes, payload, &self.types));
        }
        // The full walk: the fast path bailed (an error, or something it leaves to the walk).
        b.nodes.clear();
        b.overflow = false;
        let mut r = Reader::with_base(payload, base, compat);
        g.walk(&mut b, &mut r, ty, 0)?;
        r.finish()?;
        if b.overflow {
            return Err(r.error(ErrorKind::Invalid(
                "the value has more than 2^32 parts".into(),
            )));
        }
        Ok(Tape::new(b.nodes, payload, &self.types))
    }

    /// The fast path (schema/program.rs) over all of `payload` as one `ty`: true when it took the
    /// whole body (strict mode: no byte left over); false when the full walk must decide.
    #[inline]
    fn fast<'a, B>(
        &'a self,
        g: &Graph<'a>,
        b: &mut B,
        ty: TypeId,
        payload: &'a [u8],
        compat: Compat,
    ) -> bool
    where
        B: codec::Build<'a, V = ()>,
        B::Seq: Copy,
        B::Rec: Copy,
        B::Open: Copy,
    {
        let mut c = Scan::new(payload, compat);
        self.program.run(g, b, &mut c, ty.0, 0).is_ok() && c.is_done(compat)
    }

    /// The fast path alone (schema/program.rs), for the tests that hold it to the full walk:
    /// the validate-only run's verdict and the tape run's tape, `None` where it bails.
    #[doc(hidden)]
    pub fn fast_path<'a>(
        &'a self,
        ty: TypeId,
        payload: &'a [u8],
        limits: &Limits,
        compat: Compat,
    ) -> (bool, Option<Tape<'a>>) {
        let g = self.graph(limits);
        let checked = self.fast(&g, &mut Check, ty, payload, compat);
        let mut b = TapeBuilder {
            nodes: Vec::new(),
            payload,
            overflow: false,
        };
        let taped = self.fast(&g, &mut b, ty, payload, compat) && !b.overflow;
        (
            checked,
            taped.then(|| Tape::new(b.nodes, payload, &self.types)),
        )
    }

    /// The encoder's fast path alone (for the tests that hold it to the full encoder): appends
    /// the encoding and returns true, or leaves `out` as it was and returns false where it bails.
    #[doc(hidden)]
    pub fn encode_fast_path(
        &self,
        ty: TypeId,
        value: &Value<'_>,
        out: &mut Vec<u8>,
        limits: &Limits,
    ) -> bool {
        let start = out.len();
        let ok = self
            .graph(limits)
            .encode_fast(&mut Writer::new(out), ty, value, 0)
            .is_ok();
        if !ok {
            out.truncate(start);
        }
        ok
    }

    /// Check a body against the schema without building a tree: same accept/reject and same error
    /// as [`Schema::decode_body`].
    pub fn validate_body(
        &self,
        header: &Header,
        payload: &[u8],
        base: u64,
        limits: &Limits,
        compat: Compat,
    ) -> Result<()> {
        match self.body_type_inner(header, payload.len(), compat, Op::Decode) {
            BodyType::Typed(t) => self.validate_type(t, payload, base, limits, compat),
            BodyType::Raw => Ok(()),
            BodyType::Fail(e) => Err(e),
        }
    }

    /// Encode a body for this header, appending to `out`. Every `<N>` and `[N]` is enforced, enums
    /// must be members and `char`/`short` values must fit their C type (the output is what strict
    /// decoding accepts). Error offsets count from `out`'s length on entry.
    pub fn encode_body(
        &self,
        header: &Header,
        value: &Value<'_>,
        out: &mut Vec<u8>,
        limits: &Limits,
    ) -> Result<()> {
        let len = match value {
            Value::Void => 0,
            _ => 1,
        };
        match self.body_type_inner(header, len, Compat::Strict, Op::Encode) {
            BodyType::Typed(t) => self.encode_type(t, value, out, limits),
            BodyType::Raw => match value {
                Value::Opaque(b) => {
                    out.extend_from_slice(b);
                    Ok(())
                }
                v => Err(Error::encode(
                    ErrorKind::Invalid(
                        format!(
                            "raw stream data is an opaque value, found {}",
                            v.kind_name()
                        )
                        .into(),
                    ),
                    0,
                )),
            },
            BodyType::Fail(e) => Err(e),
        }
    }

    /// Decode `payload` as one value of type `ty` (strict mode: no trailing bytes).
    pub fn decode_type<'a>(
        &'a self,
        ty: TypeId,
        payload: &'a [u8],
        base: u64,
        limits: &Limits,
        compat: Compat,
    ) -> Result<Value<'a>> {
        let mut r = Reader::with_base(payload, base, compat);
        let v = self.graph(limits).walk(&mut Tree, &mut r, ty, 0)?;
        r.finish()?;
        Ok(v)
    }

    /// Validate `payload` as one value of type `ty`.
    pub fn validate_type(
        &self,
        ty: TypeId,
        payload: &[u8],
        base: u64,
        limits: &Limits,
        compat: Compat,
    ) -> Result<()> {
        let g = self.graph(limits);
        if self.fast(&g, &mut Check, ty, payload, compat) {
            return Ok(());
        }
        let mut r = Reader::with_base(payload, base, compat);
        g.walk(&mut Check, &mut r, ty, 0)?;
        r.finish()
    }

    /// Encode one value of type `ty`, appending to `out`.
    pub fn encode_type(
        &self,
        ty: TypeId,
        value: &Value<'_>,
        out: &mut Vec<u8>,
        limits: &Limits,
    ) -> Result<()> {
        let start = out.len();
        let g = self.graph(limits);
        if g.encode_fast(&mut Writer::new(out), ty, value, 0).is_ok() {
            return Ok(());
        }
        // The full encoder names the error (the fast path bailed somewhere in the value).
        out.truncate(start);
        let r = g.encode(&mut Writer::new(out), ty, value, 0);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }
}
