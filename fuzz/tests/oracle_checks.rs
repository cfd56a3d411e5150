//! The differential harness must notice a disagreement. A hand-made oracle answers for the worked
//! CONNECT_OPEN call: told truthfully the harness passes; every kind of lie makes it fail with the
//! message that names the difference. (No libvirt needed: this checks the harness, not libvirt.)

use virtwire_protocol::fuzzing::{
    BodyCompared, BodyVerdict, Compared, LibvirtOracle, LibvirtVerdict, OValue, TheirBody,
    differential_libvirt,
};
use virtwire_protocol::{Header, MessageStatus, MessageType};

/// CONNECT_OPEN("qemu:///system", 0), serial 1 (docs/protocol.md §6).
const CONNECT_OPEN: [u8; 56] = [
    0x00, 0x00, 0x00, 0x38, 0x20, 0x00, 0x80, 0x86, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1,
    0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0x0e, b'q', b'e', b'm', b'u', b':', b'/', b'/', b'/', b's',
    b'y', b's', b't', b'e', b'm', 0, 0, 0, 0, 0, 0,
];

fn truth() -> LibvirtVerdict {
    LibvirtVerdict::Frame {
        header: Header::new(0x2000_8086, 1, 1, MessageType::Call, 1, MessageStatus::Ok),
        nfds: None,
        body: Some(said(BodyVerdict::Value(OValue::Rec(vec![
            OValue::Opt(Some(Box::new(OValue::Str(b"qemu:///system".to_vec())))),
            OValue::U(0),
        ])))),
    }
}

/// libvirt's filter for the CONNECT_OPEN args, with this verdict.
fn said(verdict: BodyVerdict) -> TheirBody {
    TheirBody {
        filter: "remote_connect_open_args",
        verdict,
    }
}

struct Says(LibvirtVerdict);

impl LibvirtOracle for Says {
    fn decode(&self, _: &[u8]) -> LibvirtVerdict {
        self.0.clone()
    }
}

fn with(f: impl FnOnce(&mut LibvirtVerdict)) -> Says {
    let mut v = truth();
    f(&mut v);
    Says(v)
}

#[test]
fn the_truth_passes() {
    assert_eq!(
        differential_libvirt(&CONNECT_OPEN, &Says(truth())),
        Compared::Body {
            filter: "remote_connect_open_args",
            reached: BodyCompared::Value
        }
    );
}

/// Strings are compared as C strings (libvirt's side is read with strlen): bytes after a NUL in a
/// string do not count.
#[test]
fn a_string_is_compared_up_to_its_nul() {
    let mut frame = CONNECT_OPEN;
    frame[40] = 0; // "qemu" -> "qemu\0//system" on our side
    let r = differential_libvirt(
        &frame,
        &with(|v| {
            if let LibvirtVerdict::Frame { body, .. } = v {
                *body = Some(said(BodyVerdict::Value(OValue::Rec(vec![
                    OValue::Opt(Some(Box::new(OValue::Str(b"qemu".to_vec())))),
                    OValue::U(0),
                ]))));
            }
        }),
    );
    assert_eq!(r.body(), Some(BodyCompared::Value));
}

/// Opaque bytes are data, NULs included: a UUID that differs after a leading 0x00 is a difference.
#[test]
#[should_panic(expected = "body values differ")]
fn opaque_bytes_after_a_nul_are_compared() {
    // CONNECT_LIST_ALL_DOMAINS ret: one domain "d", UUID 00 01 02 … 0f, id 1; ret 1.
    let mut body = vec![0, 0, 0, 1, 0, 0, 0, 1, b'd', 0, 0, 0];
    let uuid: Vec<u8> = (0..16).collect();
    body.extend(&uuid);
    body.extend([0, 0, 0, 1, 0, 0, 0, 1]);
    let mut frame = ((28 + body.len()) as u32).to_be_bytes().to_vec();
    frame.extend(
        Header::new(
            0x2000_8086,
            1,
            273,
            MessageType::Reply,
            3,
            MessageStatus::Ok,
        )
        .to_bytes(),
    );
    frame.extend(&body);
    let mut their_uuid = uuid.clone();
    their_uuid[15] = 0xff; // differs only after the leading NUL
    let says = Says(LibvirtVerdict::Frame {
        header: Header::new(
            0x2000_8086,
            1,
            273,
            MessageType::Reply,
            3,
            MessageStatus::Ok,
        ),
        nfds: None,
        body: Some(TheirBody {
            filter: "remote_connect_list_all_domains_ret",
            verdict: BodyVerdict::Value(OValue::Rec(vec![
                OValue::List(vec![OValue::Rec(vec![
                    OValue::Str(b"d".to_vec()),
                    OValue::Bytes(their_uuid),
                    OValue::I(1),
                ])]),
                OValue::U(1),
            ])),
        }),
    });
    differential_libvirt(&frame, &says);
}

#[test]
#[should_panic(expected = "header fields differ")]
fn a_different_serial_is_caught() {
    differential_libvirt(
        &CONNECT_OPEN,
        &with(|v| {
            if let LibvirtVerdict::Frame { header, .. } = v {
                header.serial = 2;
            }
        }),
    );
}

#[test]
#[should_panic(expected = "body values differ")]
fn a_different_body_value_is_caught() {
    differential_libvirt(
        &CONNECT_OPEN,
        &with(|v| {
            if let LibvirtVerdict::Frame { body, .. } = v {
                *body = Some(said(BodyVerdict::Value(OValue::Rec(vec![
                    OValue::Opt(None),
                    OValue::U(0),
                ]))));
            }
        }),
    );
}

#[test]
#[should_panic(expected = "libvirt rejected the body")]
fn a_body_only_libvirt_rejects_is_caught() {
    differential_libvirt(
        &CONNECT_OPEN,
        &with(|v| {
            if let LibvirtVerdict::Frame { body, .. } = v {
                *body = Some(said(BodyVerdict::Rejected));
            }
        }),
    );
}

#[test]
fn accept_only_verdicts_pass_when_both_accept() {
    differential_libvirt(
        &CONNECT_OPEN,
        &with(|v| {
            if let LibvirtVerdict::Frame { body, .. } = v {
                *body = Some(said(BodyVerdict::Accepted));
            }
        }),
    );
}

#[test]
#[should_panic(expected = "libvirt says LengthRejected")]
fn a_stage_verdict_mismatch_is_caught() {
    differential_libvirt(&CONNECT_OPEN, &Says(LibvirtVerdict::LengthRejected));
}

#[test]
#[should_panic(expected = "FD count differs")]
fn a_different_fd_count_is_caught() {
    differential_libvirt(
        &CONNECT_OPEN,
        &with(|v| {
            if let LibvirtVerdict::Frame { nfds, .. } = v {
                *nfds = Some(0);
            }
        }),
    );
}
