//! Target `differential_libvirt`: the same bytes through libvirt.so's decoder and ours.

use super::setup::schema;
use super::verdict::{BodyCompared, BodyVerdict, Compared, LibvirtOracle, LibvirtVerdict, OValue};
use crate::*;

/// Largest frame the differential target pads a short input up to (bigger claims compare only the
/// length verdict).
pub const DIFFERENTIAL_PAD_MAX: usize = 1 << 16;

/// Target `differential_libvirt`: the same bytes through libvirt.so's decoder and ours (libvirt-
/// compatible mode, current limits). Oracles: same accept/reject at each stage (length, header, FD
/// count, payload), same header fields and FD count, same body values (strings compared as C strings).
/// Returns what it compared (the corpus replay asserts on it); any disagreement panics.
pub fn differential_libvirt(data: &[u8], oracle: &dyn LibvirtOracle) -> Compared {
    let limits = Limits::default();
    // Complete a short frame with zeros so both sides judge whole frames.
    let mut buf = data.to_vec();
    if let Some(claimed) = Header::peek(&buf).len.map(|l| l as usize)
        && claimed > buf.len()
        && claimed <= DIFFERENTIAL_PAD_MAX
    {
        buf.resize(claimed, 0);
    }
    let theirs = oracle.decode(&buf);
    let ours = parse_frame(&buf, &limits, Compat::Libvirt);
    match (&theirs, &ours) {
        (LibvirtVerdict::LengthRejected, Err(e)) => {
            assert!(
                e.path_string() == "length",
                "libvirt rejected the length word, we failed elsewhere: {e}"
            );
            Compared::LengthRejected
        }
        (LibvirtVerdict::HeaderRejected, Err(e)) => {
            assert!(
                e.path_string().starts_with("header"),
                "libvirt rejected the header, we failed elsewhere: {e}"
            );
            Compared::HeaderRejected
        }
        (LibvirtVerdict::FdsRejected, Err(e)) => {
            assert!(
                e.path_string() == "nfds",
                "libvirt rejected the FD count, we failed elsewhere: {e}"
            );
            Compared::FdsRejected
        }
        (LibvirtVerdict::Incomplete, Ok(Parsed::Incomplete { .. })) => Compared::Incomplete,
        (LibvirtVerdict::Incomplete, Err(e)) if buf.len() < 4 || e.path_string() == "nfds" => {
            Compared::Incomplete
        }
        (
            LibvirtVerdict::Frame { header, nfds, body },
            Ok(Parsed::Complete { value: frame, .. }),
        ) => {
            assert_eq!(&frame.header, header, "header fields differ");
            assert_eq!(&frame.nfds, nfds, "FD count differs");
            let Some(their_body) = body else {
                return Compared::Header;
            };
            let mut our_error: Option<Error> = None;
            // `Some(v)`: we accepted the body, with value `v`; `None`: we rejected it.
            let our_body = match Message::decode(*frame, &limits, Compat::Libvirt) {
                Ok(Message {
                    body: Body::Error(e),
                    ..
                }) => Some(OValue::from_error(&e)),
                Ok(Message {
                    body: Body::StreamHole(h),
                    ..
                }) => Some(OValue::from_hole(&h)),
                Ok(Message {
                    body: Body::Procedure { .. },
                    ..
                }) => match schema().decode_body(
                    &frame.header,
                    frame.payload,
                    frame.payload_offset() as u64,
                    &limits,
                    Compat::Libvirt,
                ) {
                    Ok(v) => Some(OValue::from_value(&v)),
                    Err(e) => {
                        our_error = Some(e);
                        None
                    }
                },
                // libvirt decoded a body (error, hole or procedure struct) that our core decoder
                // says is something else: the two body mappings disagree.
                Ok(m) => panic!(
                    "libvirt decoded the body of {} with xdr_{}, we made {:?} of it",
                    frame.header, their_body.filter, m.body
                ),
                Err(e)
                    if e.path_string().starts_with("error")
                        || e.path_string().starts_with("hole") =>
                {
                    our_error = Some(e);
                    None
                }
                Err(e) => panic!("our body decode failed outside the body: {e}"),
            };
            let reached = match (&their_body.verdict, our_body) {
                (BodyVerdict::Rejected, None) => BodyCompared::Rejected,
                (BodyVerdict::Accepted, Some(_)) => BodyCompared::Accepted,
                (BodyVerdict::Value(a), Some(b)) => {
                    assert_eq!(
                        a.clone().c_strings(),
                        b.c_strings(),
                        "body values differ for {} (xdr_{})",
                        frame.header,
                        their_body.filter
                    );
                    BodyCompared::Value
                }
                (a, b) => panic!(
                    "libvirt {} the body of {} (xdr_{}), we {}",
                    if a.accepted() { "accepted" } else { "rejected" },
                    frame.header,
                    their_body.filter,
                    match b {
                        Some(_) => "accepted it".to_string(),
                        None => format!(
                            "rejected it: {}",
                            our_error.map_or_else(String::new, |e| e.to_string())
                        ),
                    }
                ),
            };
            Compared::Body {
                filter: their_body.filter,
                reached,
            }
        }
        (t, o) => panic!("libvirt says {t:?}, we say {o:?}"),
    }
}
