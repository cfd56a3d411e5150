//! The conversation a scripted server replays: a recorded session (a trace) as the client's messages,
//! each with the server frames that followed it. A client message is matched to the first unused
//! recorded one of the same type, program, procedure (and, for stream packets, status), in order;
//! the answers are sent with the serials the client really used.

use std::collections::HashMap;

use virtwire_protocol::{Header, MessageType};

use crate::trace::{Step, Trace};
use crate::wire::frames::{frame_header, rewrite_serial};

/// One client message of the recording and what the server sent after it (before the next client
/// message).
#[derive(Clone, Debug)]
pub struct Exchange {
    /// The client's message header, as recorded.
    pub call: Header,
    /// The server frames that followed it, as recorded (length word included).
    pub answers: Vec<Vec<u8>>,
}

/// A recorded session, ready to be replayed from the server's side.
#[derive(Clone, Debug)]
pub struct Script {
    /// Where it came from (the trace's name and source).
    pub source: String,
    /// Server frames sent before the client said anything (normally none).
    pub greeting: Vec<Vec<u8>>,
    /// The client's messages in order, with the server's answers.
    pub exchanges: Vec<Exchange>,
}

/// Why a trace cannot be a script.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// A step without the frame the scripted server must send (or match).
    #[error("{trace}:{line}: a {what} step has no frame; check-client replays recorded frames")]
    NoFrame {
        /// The trace.
        trace: String,
        /// The step's line.
        line: usize,
        /// `client` or `server`.
        what: &'static str,
    },
    /// A frame too short for a header.
    #[error("{trace}:{line}: the frame is too short for a header")]
    Short {
        /// The trace.
        trace: String,
        /// The step's line.
        line: usize,
    },
    /// Nothing the client sent.
    #[error("{0}: the recording has no client message")]
    Empty(String),
}

impl Script {
    /// The script of `trace`. `> raw` steps from the client are skipped (a client that sends raw
    /// bytes is not what a recording of a real client holds); `silence` and close steps say nothing
    /// about what the server sends.
    pub fn from_trace(trace: &Trace) -> Result<Script, ScriptError> {
        let mut greeting = Vec::new();
        let mut exchanges: Vec<Exchange> = Vec::new();
        for step in &trace.steps {
            match step {
                Step::Send(m) | Step::Expect(m) => {
                    let send = matches!(step, Step::Send(_));
                    let frame = m.frame.clone().ok_or_else(|| ScriptError::NoFrame {
                        trace: trace.name.clone(),
                        line: m.line.0,
                        what: if send { "client" } else { "server" },
                    })?;
                    let header = frame_header(&frame).ok_or_else(|| ScriptError::Short {
                        trace: trace.name.clone(),
                        line: m.line.0,
                    })?;
                    if send {
                        exchanges.push(Exchange {
                            call: header,
                            answers: Vec::new(),
                        });
                    } else if let Some(last) = exchanges.last_mut() {
                        last.answers.push(frame);
                    } else {
                        greeting.push(frame);
                    }
                }
                Step::Comment(_)
                | Step::Raw(_)
                | Step::Silence { .. }
                | Step::MayClose { .. }
                | Step::ExpectClose { .. } => {}
            }
        }
        if exchanges.is_empty() {
            return Err(ScriptError::Empty(trace.name.clone()));
        }
        let source = match trace.source.first() {
            Some(s) => format!("{} ({s})", trace.name),
            None => trace.name.clone(),
        };
        Ok(Script {
            source,
            greeting,
            exchanges,
        })
    }

    /// The procedures the client called, in order of first call (program, procedure).
    pub fn procedures(&self) -> Vec<(u32, i32)> {
        let mut out = Vec::new();
        for e in &self.exchanges {
            let p = (e.call.prog, e.call.procedure);
            if e.call.msg_type.is_call() && !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// True when the session has a stream (stream packets either way).
    pub fn has_stream(&self) -> bool {
        self.exchanges.iter().any(|e| {
            is_stream(e.call.msg_type)
                || e.answers
                    .iter()
                    .filter_map(|a| frame_header(a))
                    .any(|h| is_stream(h.msg_type))
        })
    }

    /// The recorded reply (an answer of type REPLY) to the first call of `procedure`.
    pub fn reply_to(&self, prog: u32, procedure: i32) -> Option<&[u8]> {
        self.exchanges
            .iter()
            .filter(|e| {
                e.call.msg_type.is_call() && (e.call.prog, e.call.procedure) == (prog, procedure)
            })
            .flat_map(|e| e.answers.iter())
            .find(|a| frame_header(a).is_some_and(|h| h.msg_type.is_reply()))
            .map(Vec::as_slice)
    }
}

/// STREAM or STREAM_HOLE.
pub fn is_stream(t: MessageType) -> bool {
    matches!(t, MessageType::Stream | MessageType::StreamHole)
}

/// Which recorded exchange answers each client message, and the serials to rewrite.
#[derive(Debug, Default)]
pub struct Matcher {
    used: Vec<bool>,
    /// Recorded serial → the serial the client used.
    serials: HashMap<u32, u32>,
}

impl Matcher {
    /// A matcher for `script`, nothing used yet.
    pub fn new(script: &Script) -> Self {
        Matcher {
            used: vec![false; script.exchanges.len()],
            serials: HashMap::new(),
        }
    }

    /// The exchange for the client's message `h`: the first unused recorded one with its type,
    /// program and procedure (and status, for stream packets). Its index, and its answers with the
    /// client's serials (events keep theirs).
    pub fn answer(&mut self, script: &Script, h: &Header) -> Option<(usize, Vec<Vec<u8>>)> {
        let i = script.exchanges.iter().enumerate().position(|(i, e)| {
            !self.used[i]
                && e.call.msg_type == h.msg_type
                && e.call.prog == h.prog
                && e.call.procedure == h.procedure
                && (!is_stream(h.msg_type) || e.call.status == h.status)
        })?;
        self.used[i] = true;
        let e = &script.exchanges[i];
        self.serials.insert(e.call.serial, h.serial);
        let answers = e.answers.iter().map(|a| self.rewrite(a)).collect();
        Some((i, answers))
    }

    /// A recorded server frame with the serial the client used for its call (events and
    /// keepalives keep the recorded serial).
    pub fn rewrite(&self, frame: &[u8]) -> Vec<u8> {
        match frame_header(frame) {
            Some(h) if h.msg_type != MessageType::Message => match self.serials.get(&h.serial) {
                Some(s) => rewrite_serial(frame, *s).unwrap_or_else(|_| frame.to_vec()),
                None => frame.to_vec(),
            },
            _ => frame.to_vec(),
        }
    }

    /// Recorded client messages the client did not send (index, header).
    pub fn unused<'s>(&self, script: &'s Script) -> impl Iterator<Item = &'s Header> {
        script
            .exchanges
            .iter()
            .zip(self.used.clone())
            .filter(|(_, u)| !u)
            .map(|(e, _)| &e.call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::parse;
    use virtwire_protocol::FrameBuilder;

    fn trace_text() -> String {
        let call = |p: i32, s: u32| FrameBuilder::call(0x2000_8086, p, s).build_unchecked();
        let reply = |p: i32, s: u32| {
            FrameBuilder::call(0x2000_8086, p, s)
                .msg_type(MessageType::Reply)
                .build_unchecked()
        };
        let hex = |b: Vec<u8>| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        format!(
            "virtwire-trace 1\n> CALL remote.AUTH_LIST serial=1\n  frame {}\n< REPLY remote.AUTH_LIST serial=1\n  frame {}\n> CALL remote.CONNECT_GET_TYPE serial=2\n  frame {}\n< REPLY remote.CONNECT_GET_TYPE serial=2\n  frame {}\n> CALL remote.CONNECT_GET_TYPE serial=3\n  frame {}\n< REPLY remote.CONNECT_GET_TYPE serial=3\n  frame {}\n",
            hex(call(66, 1)),
            hex(reply(66, 1)),
            hex(call(3, 2)),
            hex(reply(3, 2)),
            hex(call(3, 3)),
            hex(reply(3, 3)),
        )
    }

    #[test]
    fn calls_match_in_order_and_answers_take_the_clients_serial() {
        let t = parse::parse(&trace_text(), "t").unwrap();
        let s = Script::from_trace(&t).unwrap();
        assert_eq!(s.exchanges.len(), 3);
        assert_eq!(s.procedures(), vec![(0x2000_8086, 66), (0x2000_8086, 3)]);
        let mut m = Matcher::new(&s);
        let (i, a) = m.answer(&s, &Header::call(0x2000_8086, 3, 40)).unwrap();
        assert_eq!(i, 1);
        assert_eq!(frame_header(&a[0]).unwrap().serial, 40);
        let (i, a) = m.answer(&s, &Header::call(0x2000_8086, 3, 41)).unwrap();
        assert_eq!(i, 2);
        assert_eq!(frame_header(&a[0]).unwrap().serial, 41);
        assert!(m.answer(&s, &Header::call(0x2000_8086, 3, 42)).is_none());
        assert_eq!(m.unused(&s).count(), 1, "AUTH_LIST was never called");
    }

    #[test]
    fn a_server_step_without_a_frame_is_refused() {
        let t = parse::parse(
            "virtwire-trace 1\n> CALL remote.AUTH_LIST serial=1\n  frame 0000001c200080860000000100000042000000000000000100000000\n< REPLY remote.AUTH_LIST serial=1\n  body null\n",
            "t",
        )
        .unwrap();
        let e = Script::from_trace(&t).unwrap_err().to_string();
        assert!(e.contains("server step has no frame"), "{e}");
    }
}
