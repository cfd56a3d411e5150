//! Judging one message: given a frame as libvirt frames it (length word accepted, header read
//! leniently), decode its header and body in the chosen [`Compat`] mode, with the schema for
//! procedure bodies, and say what it is and what is wrong with it. `decode` judges every message of a
//! capture this way; the conformance runner judges a server's replies the same way.

use virtwire_protocol::schema::{Schema, TapeBuf};
use virtwire_protocol::{
    Body, BodyKind, Compat, Error, Frame, Header, KeepaliveProc, Limits, Message,
    header::KEEPALIVE_PROGRAM,
};

use super::record::{BodyOut, MessageRecord, Origin};

/// The name of a procedure when the protocol core knows it without a schema (keepalive PING / PONG).
pub fn core_procedure_name(h: &Header) -> Option<&'static str> {
    let p = KeepaliveProc::from_raw(h.procedure);
    (h.prog == KEEPALIVE_PROGRAM && h.vers == 1 && p.is_known()).then(|| p.name())
}

/// What a message is judged by: limits, strictness, and the schema for procedure bodies (without
/// one, procedure bodies stay raw).
#[derive(Debug)]
pub struct Judge {
    limits: Limits,
    compat: Compat,
    schema: Option<Schema>,
    pub(crate) tape: bool,
}

impl Judge {
    /// A judge with these limits and mode, and optionally a schema.
    pub fn new(limits: Limits, compat: Compat, schema: Option<Schema>) -> Self {
        Judge {
            limits,
            compat,
            schema,
            tape: false,
        }
    }

    /// Decode procedure bodies into [`BodyOut::Tape`] instead of [`BodyOut::Value`] trees: the same
    /// values, errors and JSON, for consumers that only read or serialise them.
    pub fn tape_bodies(mut self, on: bool) -> Self {
        self.tape = on;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The mode messages are judged in.
    pub fn compat(&self) -> Compat {
        self.compat
    }

    /// The schema, if one was given.
    pub fn schema(&self) -> Option<&Schema> {
        self.schema.as_ref()
    }

    /// The procedure's name (`CONNECT_OPEN`): from the schema's program of this number and version,
    /// else from the protocol core (keepalive PING / PONG).
    pub fn procedure_name(&self, h: &Header) -> Option<&str> {
        self.schema
            .as_ref()
            .and_then(|s| s.program(h.prog, h.vers))
            .and_then(|p| p.procedure(h.procedure))
            .map(|p| p.name.as_str())
            .or_else(|| core_procedure_name(h))
    }

    /// Judge one frame, as framed in libvirt mode, into a record: the chosen mode decides whether
    /// its header and body are acceptable. A message that fails keeps its header and raw payload.
    pub fn message<'a>(&'a self, origin: Origin<'a>, lenient: Frame<'a>) -> MessageRecord<'a> {
        let limits = &self.limits;
        let proc_name = self.procedure_name(&lenient.header);
        let kind = BodyKind::of(&lenient.header);
        let fail = |error: Error, body: BodyOut<'a>| MessageRecord {
            origin,
            frame: lenient,
            kind,
            proc_name,
            body,
            error: Some(error),
        };
        let frame = match Frame::decode(lenient.bytes, limits, self.compat) {
            Ok(f) => f,
            Err(e) => return fail(e, BodyOut::Raw(lenient.payload)),
        };
        let msg = match Message::decode(frame, limits, self.compat) {
            Ok(m) => m,
            Err(e) => return fail(e, BodyOut::Raw(lenient.payload)),
        };
        let body = match (msg.body, &self.schema) {
            (Body::Procedure { payload, .. }, Some(schema)) => {
                let base = frame.payload_offset() as u64;
                let type_name = schema.body_type_name(&frame.header);
                let decoded = if self.tape {
                    // Nodes are at most one per 4 payload bytes for libvirt's types; reserving that
                    // much costs address space, not memory, until the nodes are written.
                    let buf = TapeBuf::with_capacity(payload.len() / 4 + 1);
                    schema
                        .decode_body_tape(&frame.header, payload, base, limits, self.compat, buf)
                        .map(|tape| BodyOut::Tape { type_name, tape })
                } else {
                    schema
                        .decode_body(&frame.header, payload, base, limits, self.compat)
                        .map(|value| BodyOut::Value { type_name, value })
                };
                match decoded {
                    Ok(body) => body,
                    Err(e) => {
                        return MessageRecord {
                            frame,
                            ..fail(e, BodyOut::Raw(payload))
                        };
                    }
                }
            }
            (Body::Procedure { payload, .. }, None) => BodyOut::Raw(payload),
            (other, _) => BodyOut::Core(other),
        };
        MessageRecord {
            origin,
            frame,
            kind,
            proc_name,
            body,
            error: None,
        }
    }
}
