//! Streams (docs/protocol.md §5; libvirt `virnetserverprogram.c`, `remote_daemon_stream.c`): a stream
//! is opened by a CALL and its REPLY; its packets then carry the call's program, procedure and
//! serial with type STREAM (data: CONTINUE; finish: OK; abort: ERROR) or STREAM_HOLE. Packets for no
//! open stream are dropped without an answer.

use std::time::Instant;

use virtwire_protocol::header::REMOTE_PROGRAM;
use virtwire_protocol::{FrameBuilder, Header, MessageStatus, MessageType, Writer};

use super::{OPEN, running_domain, xdr_string};
use crate::runner::ctx::{code, proc};
use crate::runner::{Case, CaseResult, Ctx, Level, Outcome};
use crate::wire::peer::{Event, Peer, Reply};

const SRC: &str =
    "docs/protocol.md §5; src/rpc/virnetserverprogram.c, src/remote/remote_daemon_stream.c";

/// A stream packet of the remote program's `procedure`, for the stream opened by call `serial`.
fn packet(
    procedure: i32,
    serial: u32,
    t: MessageType,
    status: MessageStatus,
    data: &[u8],
) -> Vec<u8> {
    FrameBuilder::new(Header::new(REMOTE_PROGRAM, 1, procedure, t, serial, status))
        .payload(data.to_vec())
        .build_unchecked()
}

/// `virNetStreamHole { hyper length; unsigned int flags; }`.
fn hole(length: i64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = Writer::new(&mut out);
    w.i64(length);
    w.u32(0);
    out
}

/// DOMAIN_SCREENSHOT of a running domain (screen 0): the stream's serial once the server said
/// REPLY/OK. A driver without screenshots makes the case `unsupported`.
fn screenshot(ctx: &mut Ctx<'_>, peer: &mut Peer) -> Result<(u32, Reply), Outcome> {
    let (_, dom) = running_domain(ctx, peer)?;
    let mut args = dom;
    args.extend([0u8; 8]); // screen 0, flags 0
    let s = ctx.call(peer, REMOTE_PROGRAM, proc::DOMAIN_SCREENSHOT, &args)?;
    let r = ctx.expect_reply(peer, s)?;
    match (&r.header.status, &r.error) {
        (MessageStatus::Ok, _) => Ok((s, r)),
        (_, Some(e)) if e.code == code::NO_SUPPORT => Err(Outcome::unsupported(format!(
            "the target's driver takes no screenshots: {r}"
        ))),
        _ => Err(Outcome::fail(
            "REPLY/OK to DOMAIN_SCREENSHOT",
            r.to_string(),
        )),
    }
}

/// What came on one stream until it ended.
#[derive(Default)]
struct Received {
    /// Data packets with a payload, and their bytes.
    packets: usize,
    bytes: u64,
    /// The empty STREAM/CONTINUE that says end of file.
    eof: bool,
    /// The packet that ended the wait: STREAM/OK, STREAM/ERROR (decoded), or what else happened.
    end: Option<Result<Reply, String>>,
}

impl Received {
    fn summary(&self) -> String {
        format!(
            "{} data packet(s), {} bytes{}",
            self.packets,
            self.bytes,
            if self.eof {
                ", then the empty end-of-file packet"
            } else {
                ""
            }
        )
    }
}

/// Read the stream of `serial` until STREAM/OK or STREAM/ERROR, the end of file (when `until_eof`),
/// a close, or `deadline`. Data for other serials and events are ignored.
fn read_stream(
    ctx: &Ctx<'_>,
    peer: &mut Peer,
    serial: u32,
    until_eof: bool,
    deadline: Instant,
) -> Received {
    let mut got = Received::default();
    loop {
        let ev = peer.next_event(deadline);
        let f = match ev {
            Event::Frame(f) => f,
            Event::Timeout if until_eof || got.eof => {
                got.end = Some(Err(ctx.describe(peer, &Event::Timeout)));
                return got;
            }
            other => {
                got.end = Some(Err(ctx.describe(peer, &other)));
                return got;
            }
        };
        let h = *f.header();
        if h.serial != serial || h.prog != REMOTE_PROGRAM || h.msg_type != MessageType::Stream {
            continue;
        }
        let r = peer.judge_frame(&f);
        match h.status {
            MessageStatus::Continue => {
                let len = r.body.get("len").and_then(|l| l.as_u64()).unwrap_or(0);
                if len == 0 {
                    got.eof = true;
                    if until_eof {
                        return got;
                    }
                } else {
                    got.packets += 1;
                    got.bytes += len;
                }
            }
            _ => {
                got.end = Some(Ok(r));
                return got;
            }
        }
    }
}

/// Send a stream packet; a server that already closed makes it a failure saying so.
fn send(ctx: &mut Ctx<'_>, peer: &mut Peer, bytes: &[u8]) -> Result<(), Outcome> {
    ctx.send(peer, bytes)
}

/// The connection must still answer a call.
fn still_answers(ctx: &mut Ctx<'_>, peer: &mut Peer) -> Result<(), Outcome> {
    let s = ctx.call(peer, REMOTE_PROGRAM, proc::CONNECT_GET_TYPE, &[])?;
    ctx.expect_ok(peer, s).map(|_| ())
}

fn end_is(end: &Option<Result<Reply, String>>, status: MessageStatus) -> bool {
    matches!(end, Some(Ok(r)) if r.header.status == status)
}

fn end_text(end: &Option<Result<Reply, String>>) -> String {
    match end {
        Some(Ok(r)) => r.to_string(),
        Some(Err(what)) => what.clone(),
        None => "nothing".into(),
    }
}

/// A screenshot downloaded to the end of file, then finished: the stream's serial.
fn finished_screenshot(ctx: &mut Ctx<'_>, peer: &mut Peer) -> Result<(u32, String), Outcome> {
    let (s, reply) = screenshot(ctx, peer)?;
    let got = read_stream(ctx, peer, s, true, ctx.read_deadline());
    let expected =
        "STREAM/CONTINUE data packets, an empty one (end of file), then STREAM/OK to our finish";
    if !got.eof || got.packets == 0 {
        return Err(Outcome::fail(
            expected,
            format!("{}; {}", got.summary(), end_text(&got.end)),
        ));
    }
    send(
        ctx,
        peer,
        &packet(
            proc::DOMAIN_SCREENSHOT,
            s,
            MessageType::Stream,
            MessageStatus::Ok,
            &[],
        ),
    )?;
    let fin = read_stream(ctx, peer, s, false, ctx.read_deadline());
    if !end_is(&fin.end, MessageStatus::Ok) || fin.packets > 0 {
        return Err(Outcome::fail(
            expected,
            format!(
                "{}; after our finish: {}",
                got.summary(),
                end_text(&fin.end)
            ),
        ));
    }
    let mime = reply
        .body
        .get("mime")
        .map(|m| m.to_string())
        .unwrap_or_default();
    Ok((
        s,
        format!(
            "REPLY/OK (mime {mime}); {}; our STREAM/OK confirmed with {}",
            got.summary(),
            end_text(&fin.end)
        ),
    ))
}

/// After a client packet that ends the stream of `serial`, whatever the server still sends for it
/// must end in `status` (STREAM/OK for an abort).
fn upload_stream(
    ctx: &mut Ctx<'_>,
    peer: &mut Peer,
    procedure: i32,
    serial: u32,
    what: &str,
) -> CaseResult {
    let chunk = vec![0x5a_u8; 8192];
    for _ in 0..2 {
        send(
            ctx,
            peer,
            &packet(
                procedure,
                serial,
                MessageType::Stream,
                MessageStatus::Continue,
                &chunk,
            ),
        )?;
    }
    send(
        ctx,
        peer,
        &packet(
            procedure,
            serial,
            MessageType::Stream,
            MessageStatus::Ok,
            &[],
        ),
    )?;
    let fin = read_stream(ctx, peer, serial, false, ctx.read_deadline());
    let expected = format!(
        "{what}: two 8 KiB STREAM/CONTINUE packets and our finish confirmed with STREAM/OK"
    );
    if !end_is(&fin.end, MessageStatus::Ok) {
        return Ok(Outcome::fail(expected, end_text(&fin.end)));
    }
    still_answers(ctx, peer)?;
    Ok(Outcome::pass(expected, end_text(&fin.end)))
}

/// The storage pool named first by CONNECT_LIST_ALL_STORAGE_POOLS, as `remote_nonnull_storage_pool`.
fn first_pool(ctx: &mut Ctx<'_>, peer: &mut Peer) -> Result<Option<Vec<u8>>, Outcome> {
    let args: Vec<u8> = [1u32, 0].iter().flat_map(|w| w.to_be_bytes()).collect();
    let s = ctx.call(peer, REMOTE_PROGRAM, LIST_ALL_STORAGE_POOLS, &args)?;
    let r = ctx.expect_reply(peer, s)?;
    let pool = r
        .body
        .get("pools")
        .and_then(|p| p.as_array())
        .and_then(|p| p.first())
        .and_then(|p| {
            let name = p.get("name")?.as_str()?;
            let uuid = super::unhex(p.get("uuid")?.as_str()?)?;
            let mut out = xdr_string(name);
            out.extend(uuid);
            Some(out)
        });
    Ok(pool)
}

/// REMOTE_PROC_CONNECT_LIST_ALL_STORAGE_POOLS.
const LIST_ALL_STORAGE_POOLS: i32 = 281;

/// A client-to-server stream: STORAGE_VOL_UPLOAD into a new volume of the first pool (deleted
/// after), else DOMAIN_OPEN_CONSOLE; `unsupported` when the driver has neither.
fn upload(ctx: &mut Ctx<'_>) -> CaseResult {
    let mut peer = ctx.opened()?;
    let mut refused = Vec::new();
    if let Some(pool) = first_pool(ctx, &mut peer)? {
        let name = format!("virtwire-upload-{}.img", std::process::id());
        let xml = format!("<volume><name>{name}</name><capacity>1048576</capacity></volume>");
        let mut args = pool;
        args.extend(xdr_string(&xml));
        args.extend(0u32.to_be_bytes());
        let s = ctx.call(
            &mut peer,
            REMOTE_PROGRAM,
            proc::STORAGE_VOL_CREATE_XML,
            &args,
        )?;
        let r = ctx.expect_reply(&mut peer, s)?;
        if r.header.status == MessageStatus::Ok {
            let vol = r.body.get("vol").and_then(|v| {
                let mut out = Vec::new();
                for k in ["pool", "name", "key"] {
                    out.extend(xdr_string(v.get(k)?.as_str()?));
                }
                Some(out)
            });
            let Some(vol) = vol else {
                return Ok(Outcome::error(format!(
                    "cannot read the new volume: {}",
                    r.body
                )));
            };
            let mut args = vol.clone();
            args.extend(0u64.to_be_bytes()); // offset
            args.extend(16384u64.to_be_bytes()); // length
            args.extend(0u32.to_be_bytes());
            let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::STORAGE_VOL_UPLOAD, &args)?;
            let r = ctx.expect_reply(&mut peer, s)?;
            let outcome = if r.header.status == MessageStatus::Ok {
                Some(upload_stream(
                    ctx,
                    &mut peer,
                    proc::STORAGE_VOL_UPLOAD,
                    s,
                    "STORAGE_VOL_UPLOAD",
                ))
            } else {
                refused.push(format!("STORAGE_VOL_UPLOAD: {r}"));
                None
            };
            // Leave the shared world as it was.
            let mut del = vol;
            del.extend(0u32.to_be_bytes());
            let d = ctx.call(&mut peer, REMOTE_PROGRAM, proc::STORAGE_VOL_DELETE, &del)?;
            let _ = ctx.expect_reply(&mut peer, d);
            if let Some(o) = outcome {
                return o;
            }
        } else {
            refused.push(format!("STORAGE_VOL_CREATE_XML: {r}"));
        }
    } else {
        refused.push("no storage pool".into());
    }
    let (_, dom) = running_domain(ctx, &mut peer)?;
    let mut args = dom;
    args.extend(0u32.to_be_bytes()); // dev_name absent
    args.extend(0u32.to_be_bytes()); // flags
    let s = ctx.call(&mut peer, REMOTE_PROGRAM, proc::DOMAIN_OPEN_CONSOLE, &args)?;
    let r = ctx.expect_reply(&mut peer, s)?;
    if r.header.status == MessageStatus::Ok {
        return upload_stream(
            ctx,
            &mut peer,
            proc::DOMAIN_OPEN_CONSOLE,
            s,
            "DOMAIN_OPEN_CONSOLE",
        );
    }
    refused.push(format!("DOMAIN_OPEN_CONSOLE: {r}"));
    let all_no_support = refused
        .iter()
        .all(|r| r.contains("code 3 ") || r == "no storage pool");
    if all_no_support {
        Ok(Outcome::unsupported(format!(
            "the target's driver opens no client-to-server stream: {}",
            refused.join("; ")
        )))
    } else {
        Ok(Outcome::fail(
            "an upload stream opened by STORAGE_VOL_UPLOAD or DOMAIN_OPEN_CONSOLE",
            refused.join("; "),
        ))
    }
}

/// The stream cases.
pub fn cases() -> Vec<Case> {
    vec![
        Case::new(
            "streams/screenshot-end-to-end",
            Level::Must,
            "DOMAIN_SCREENSHOT: REPLY/OK, STREAM/CONTINUE data, an empty STREAM/CONTINUE at the end, and our STREAM/OK (finish) confirmed with STREAM/OK",
            SRC,
            |ctx| {
                let mut peer = ctx.opened()?;
                let (_, actual) = finished_screenshot(ctx, &mut peer)?;
                still_answers(ctx, &mut peer)?;
                Ok(Outcome::pass(
                    "the stream's data, its end of file, the finish confirmed; the connection still answers",
                    actual,
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "streams/data-for-no-stream",
            Level::Must,
            "STREAM data for a serial that opened no stream is dropped without an answer; the connection stays usable",
            "docs/protocol.md §4 (\"Ignoring unexpected stream data\")",
            |ctx| {
                let mut peer = ctx.opened()?;
                send(ctx, &mut peer, &packet(proc::DOMAIN_SCREENSHOT, 0x7777, MessageType::Stream, MessageStatus::Continue, b"virtwire"))?;
                let silence = ctx.env().silence;
                ctx.expect_silence(&mut peer, silence)?;
                still_answers(ctx, &mut peer)?;
                Ok(Outcome::pass(
                    "no answer, connection kept",
                    format!("nothing for {:.1} s; the next call answered", silence.as_secs_f64()),
                ))
            },
        )
        .needs(&[OPEN]),
        Case::new(
            "streams/data-after-finish",
            Level::Must,
            "STREAM data and a second finish on a stream already finished are dropped without an answer",
            SRC,
            |ctx| {
                let mut peer = ctx.opened()?;
                let (s, _) = finished_screenshot(ctx, &mut peer)?;
                send(ctx, &mut peer, &packet(proc::DOMAIN_SCREENSHOT, s, MessageType::Stream, MessageStatus::Continue, b"late"))?;
                send(ctx, &mut peer, &packet(proc::DOMAIN_SCREENSHOT, s, MessageType::Stream, MessageStatus::Ok, &[]))?;
                let silence = ctx.env().silence;
                ctx.expect_silence(&mut peer, silence)?;
                still_answers(ctx, &mut peer)?;
                Ok(Outcome::pass(
                    "no answer, connection kept",
                    format!(
                        "nothing for {:.1} s after data and a finish for finished stream {s}; the next call answered",
                        silence.as_secs_f64()
                    ),
                ))
            },
        )
        .needs(&["streams/screenshot-end-to-end"]),
        Case::new(
            "streams/abort",
            Level::Must,
            "An abort (empty STREAM/ERROR from the client) is confirmed with STREAM/OK; the connection stays usable",
            "docs/protocol.md §5 (client abort); src/rpc/virnetserverprogram.c",
            |ctx| {
                let mut peer = ctx.opened()?;
                let (s, _) = screenshot(ctx, &mut peer)?;
                send(ctx, &mut peer, &packet(proc::DOMAIN_SCREENSHOT, s, MessageType::Stream, MessageStatus::Error, &[]))?;
                // Data the server queued before it read the abort may come first.
                let got = read_stream(ctx, &mut peer, s, false, ctx.read_deadline());
                let expected = "STREAM/OK for the aborted stream (after any data already on its way)";
                if !end_is(&got.end, MessageStatus::Ok) {
                    return Ok(Outcome::fail(expected, format!("{}; {}", got.summary(), end_text(&got.end))));
                }
                still_answers(ctx, &mut peer)?;
                Ok(Outcome::pass(expected, format!("{}; {}", got.summary(), end_text(&got.end))))
            },
        )
        .needs(&["streams/screenshot-end-to-end"]),
        Case::new(
            "streams/hole-on-non-sparse-stream",
            Level::Must,
            "A STREAM_HOLE on a stream not opened sparse is refused: the stream ends in STREAM/ERROR (or the connection closes), never a hole accepted",
            "docs/protocol.md §5 (holes only with the sparse flag; \"Unexpected stream hole\")",
            |ctx| {
                let mut peer = ctx.opened()?;
                let (s, _) = screenshot(ctx, &mut peer)?;
                send(ctx, &mut peer, &packet(proc::DOMAIN_SCREENSHOT, s, MessageType::StreamHole, MessageStatus::Continue, &hole(4096)))?;
                let got = read_stream(ctx, &mut peer, s, false, ctx.read_deadline());
                let expected = "STREAM/ERROR for the stream, or the connection closed";
                match &got.end {
                    Some(Ok(r)) if r.header.status == MessageStatus::Error => {
                        still_answers(ctx, &mut peer)?;
                        Ok(Outcome::pass(
                            expected,
                            format!("{}; {r}; the connection still answers", got.summary()),
                        ))
                    }
                    Some(Err(what)) if what.contains("closed") || what.contains("failed") => {
                        Ok(Outcome::pass(expected, format!("{}; {what}", got.summary())))
                    }
                    end => Ok(Outcome::fail(expected, format!("{}; {}", got.summary(), end_text(end)))),
                }
            },
        )
        .needs(&["streams/screenshot-end-to-end"]),
        Case::new(
            "streams/upload",
            Level::Must,
            "A client-to-server stream (STORAGE_VOL_UPLOAD, else DOMAIN_OPEN_CONSOLE): data packets and a finish confirmed with STREAM/OK",
            "docs/protocol.md §5; CVE-2014-8135 (VOL_UPLOAD); src/remote/remote_daemon_stream.c",
            upload,
        )
        .needs(&[OPEN])
        .exclusive(),
    ]
}
