//! Targets `body` and `validate_vs_decode`: procedure bodies through the schema codec.

use super::cursor::Cursor;
use super::setup::{fuzz_limits, schema};
use crate::*;

/// Split a `body` / `validate_vs_decode` input: `data[0]` picks limits, bytes 1..25 are a header,
/// the rest is the payload. Unless `data[0]` has bit 7 (resp. 6) set, an unknown program (resp.
/// procedure) is folded onto a known one, so most inputs reach a real body type.
fn body_input(data: &[u8]) -> Option<(Header, &[u8], Limits)> {
    if data.len() < 1 + Header::LEN {
        return None;
    }
    let mut input = Cursor::new(data);
    let conf = input.u8();
    let s = schema();
    let mut h = Header::decode(&mut Reader::new(input.take(Header::LEN), Compat::Libvirt)).ok()?;
    let programs = s.programs();
    if conf & 0x80 == 0 && s.program(h.prog, h.vers).is_none() && !programs.is_empty() {
        let p = &programs[h.prog as usize % programs.len()];
        h.prog = p.number();
        h.vers = p.version();
    }
    if conf & 0x40 == 0
        && let Some(p) = s.program(h.prog, h.vers)
        && p.procedure(h.procedure).is_none()
        && !p.procedure_list().is_empty()
    {
        let list = p.procedure_list();
        h.procedure = list[h.procedure.unsigned_abs() as usize % list.len()].number;
    }
    let mut limits = fuzz_limits(conf);
    if conf & 0x20 != 0 {
        limits = limits
            .to_builder()
            .nesting_max(3)
            .build()
            .expect("coherent limits");
    }
    Some((h, input.rest(), limits))
}

/// Target `body`: a (program, procedure, type, status, payload) through the schema codec in both
/// modes. Oracles: strict acceptance implies libvirt acceptance; a strictly accepted body re-encodes
/// to the same bytes (from either mode's value); a libvirt-accepted body that encodes gives a
/// canonical encoding that strict decoding accepts and that re-encodes identically.
pub fn body(data: &[u8]) {
    let Some((h, payload, limits)) = body_input(data) else {
        return;
    };
    let s = schema();
    let base = 28;
    let strict = s.decode_body(&h, payload, base, &limits, Compat::Strict);
    let lib = s.decode_body(&h, payload, base, &limits, Compat::Libvirt);
    if let Ok(v) = &strict {
        let Ok(lv) = &lib else {
            panic!(
                "strict accepted, libvirt mode refused: {}",
                lib.unwrap_err()
            )
        };
        for (mode, value) in [("strict", v), ("libvirt", lv)] {
            let mut out = Vec::new();
            s.encode_body(&h, value, &mut out, &limits)
                .unwrap_or_else(|e| panic!("{mode} value of a strict body does not encode: {e}"));
            assert_eq!(out, payload, "{mode} value re-encodes differently");
        }
    }
    if let Ok(v) = &lib {
        let mut canon = Vec::new();
        match s.encode_body(&h, v, &mut canon, &limits) {
            Ok(()) => {
                let v2 = s
                    .decode_body(&h, &canon, base, &limits, Compat::Strict)
                    .unwrap_or_else(|e| panic!("canonical encoding is not strict: {e}"));
                let mut again = Vec::new();
                s.encode_body(&h, &v2, &mut again, &limits)
                    .expect("a strict value encodes");
                assert_eq!(canon, again, "canonical encoding is not stable");
            }
            // The only libvirt-mode leniencies that survive into a value: an enum value that is not
            // a member, a 4-byte char/short out of its C range, and a header whose (type, status)
            // pair libvirt never sends (libvirt mode decodes the body anyway; the encoder checks the
            // header first). The encoder refuses exactly those (it writes what strict mode
            // accepts), and strict decoding refused the body.
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::InvalidEnum { .. }
                            | ErrorKind::ValueOutOfRange { .. }
                            | ErrorKind::UnexpectedStatus { .. }
                    ),
                    "a libvirt-mode value does not encode for another reason: {e}"
                );
                assert!(
                    strict.is_err(),
                    "strict mode accepted a body whose value does not encode: {e}"
                );
            }
        }
    }
}

/// Target `validate_vs_decode`: the validate-only walk and the full decoder give the same verdict
/// (the same error, at the same offset and path) for every input, in both modes.
pub fn validate_vs_decode(data: &[u8]) {
    let Some((h, payload, limits)) = body_input(data) else {
        return;
    };
    let s = schema();
    for compat in [Compat::Strict, Compat::Libvirt] {
        let d = s.decode_body(&h, payload, 28, &limits, compat).map(|_| ());
        let v = s.validate_body(&h, payload, 28, &limits, compat);
        assert_eq!(d, v, "validate and decode disagree ({})", compat.name());
    }
}
