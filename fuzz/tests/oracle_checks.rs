//! The differential harness must notice a disagreement. A hand-made oracle answers for the worked
//! CONNECT_OPEN call: told truthfully the harness passes; every kind of lie makes it fail with the
//! message that names the difference. (No libvirt needed: this checks the harness, not libvirt.)

use virtwire_protocol::fuzzing::{
    BodyVerdict, LibvirtOracle, LibvirtVerdict, OValue, TheirBody, differential_libvirt,
};
use virtwire_protocol::{Header, MessageStatus, MessageType};

/// CONNECT_OPEN("qemu:///system", 0), serial 1 (PROTOCOL.md §6).
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
            OValue::Opt(Some(Box::new(OValue::Bytes(b"qemu:///system".to_vec())))),
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
    differential_libvirt(&CONNECT_OPEN, &Says(truth()));
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
