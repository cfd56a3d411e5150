//! A peer's numbers are not allocation sizes: a counting global allocator shows that decoding any
//! length word (up to u32::MAX) and any count allocates in proportion to the bytes actually given.
//!
//! Counters are per thread, so the test harness's other threads do not disturb the measurement.

#[path = "common/counting_alloc.rs"]
mod counting_alloc;

use std::cell::Cell;

use counting_alloc::peak_during;
use proptest::prelude::*;
use virtwire_protocol::*;

/// Room for error values (a path segment or two) and the like.
const SLACK: usize = 1024;

fn header_bytes() -> impl Strategy<Value = Vec<u8>> {
    (any::<u32>(), any::<i32>(), 0i32..8, any::<u32>(), 0i32..4).prop_map(|(p, pr, t, s, st)| {
        Header::new(
            p,
            1,
            pr,
            MessageType::from_raw(t),
            s,
            MessageStatus::from_raw(st),
        )
        .to_bytes()
        .to_vec()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// Any length word, a header, some bytes, any chunking: the decoder's allocations stay within the
    /// bytes fed (plus a small constant), never near the claimed length.
    #[test]
    fn frame_decoder_allocates_from_input_only(
        len in prop_oneof![any::<u32>(), u32::MAX - 64..=u32::MAX, 33_554_400u32..33_554_500, 0u32..64],
        header in header_bytes(),
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
        chunk in 1usize..512,
        profile in proptest::sample::select(Profile::NAMED.to_vec()),
    ) {
        let mut input = len.to_be_bytes().to_vec();
        input.extend(&header);
        input.extend(&tail);
        let limits = profile.limits();
        let ((frames, held), peak) = peak_during(|| {
            let mut d = FrameDecoder::new(&limits, Compat::Libvirt);
            let mut frames = 0usize;
            for c in input.chunks(chunk) {
                d.feed(c);
                while let Ok(Some(f)) = d.next_frame() {
                    frames += 1;
                    drop(f);
                }
            }
            (frames, d.capacity())
        });
        prop_assert!(held <= input.len());
        // Only when a frame completes is anything copied out; it is itself part of the input.
        let bound = if frames == 0 { input.len() } else { 2 * input.len() };
        prop_assert!(peak <= bound + SLACK, "peak {} for {} input bytes (len word {})", peak, input.len(), len);
    }
}

/// One-shot decoding of arbitrary bytes allocates nothing on success and only an error on failure.
/// The cases are drawn so that many hold a whole frame that decodes: the run checks that they did
/// (a decoder that failed everything would allocate nothing too).
#[test]
fn one_shot_decoding_allocates_nothing() {
    use proptest::test_runner::{Config, TestRunner};
    let strategy = (
        prop_oneof![any::<u32>(), 28u32..200],
        header_bytes(),
        proptest::collection::vec(any::<u8>(), 0..4096),
    );
    let mut runner = TestRunner::new(Config {
        cases: 4096,
        ..Config::default()
    });
    let (cases, decoded, whole) = (Cell::new(0usize), Cell::new(0usize), Cell::new(0usize));
    runner
        .run(&strategy, |(len, header, tail)| {
            let mut input = len.to_be_bytes().to_vec();
            input.extend(&header);
            input.extend(&tail);
            let limits = Limits::default();
            let (ok, peak) = peak_during(|| {
                let mut ok = 0;
                for r in frames(&input, &limits, Compat::Libvirt) {
                    let Ok((_, f)) = r else { break };
                    if Message::decode(f, &limits, Compat::Libvirt).is_ok() {
                        ok += 1
                    }
                }
                ok
            });
            prop_assert!(peak <= SLACK, "peak {}", peak);
            cases.set(cases.get() + 1);
            decoded.set(decoded.get() + usize::from(ok > 0));
            whole.set(whole.get() + usize::from((28..=input.len()).contains(&(len as usize))));
            Ok(())
        })
        .unwrap();
    // About half the cases draw a short length word that the bytes cover; of those, the header
    // types and statuses libvirt sends (most of `header_bytes`) decode.
    let (cases, decoded, whole) = (cases.get(), decoded.get(), whole.get());
    assert!(
        whole > cases / 4 && decoded > whole / 4,
        "{cases} cases: {whole} held a whole first frame, {decoded} decoded a message"
    );
}

/// A well-formed REPLY/ERROR body whose message string has `count` bytes.
fn error_reply(count: u32, text: &[u8]) -> Vec<u8> {
    let mut payload = vec![0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 1];
    payload.extend(count.to_be_bytes());
    payload.extend(text);
    payload.extend(std::iter::repeat_n(0, (4 - text.len() % 4) % 4));
    // level, dom (absent), str1..3 (absent), int1, int2, net (absent)
    payload.extend([0, 0, 0, 2].iter().chain(&[0; 4 * 7]));
    FrameBuilder::new(Header::new(
        0x2000_8086,
        1,
        1,
        MessageType::Reply,
        1,
        MessageStatus::Error,
    ))
    .payload(payload)
    .build_unchecked()
}

/// Counts inside bodies (error strings) claiming up to u32::MAX allocate nothing. The counts are
/// drawn where it matters on purpose: counts the bytes cover (the body decodes, and the test
/// checks it did), counts under the 4 MiB string limit that the bytes do not cover (where a
/// count-sized allocation could happen), around the limit, and anywhere in u32.
#[test]
fn hostile_counts_in_error_bodies() {
    use proptest::test_runner::{Config, TestRunner};
    let string_max = Limits::default().string_max();
    let strategy = (
        prop_oneof![
            0u32..=256,
            257u32..string_max,
            string_max - 8..=string_max + 8,
            any::<u32>(),
        ],
        proptest::collection::vec(any::<u8>(), 0..256),
    );
    let mut runner = TestRunner::new(Config {
        cases: 4096,
        ..Config::default()
    });
    let (covered, decoded, under_limit) = (Cell::new(0usize), Cell::new(0usize), Cell::new(0usize));
    runner
        .run(&strategy, |(count, fill)| {
            let text: Vec<u8> = fill.iter().map(|b| b | 1).collect(); // no NUL
            let fits = count as usize <= text.len();
            let bytes = error_reply(count, &text[..(count as usize).min(text.len())]);
            let limits = Limits::default();
            let (r, peak) = peak_during(|| {
                Frame::decode(&bytes, &limits, Compat::Libvirt)
                    .and_then(|f| Message::decode(f, &limits, Compat::Libvirt))
                    .map(|m| match m.body {
                        Body::Error(e) => e.message.map(<[u8]>::len),
                        _ => None,
                    })
            });
            prop_assert!(peak <= SLACK, "peak {} for count {}", peak, count);
            if fits {
                covered.set(covered.get() + 1);
                prop_assert_eq!(
                    r.as_ref().ok(),
                    Some(&Some(count as usize)),
                    "count {}",
                    count
                );
                decoded.set(decoded.get() + 1);
            } else if count as usize > bytes.len() {
                // More than every byte of the frame: Truncated, nothing sized from the count.
                prop_assert!(
                    r.is_err(),
                    "count {} with {} bytes decoded",
                    count,
                    bytes.len()
                );
                under_limit.set(under_limit.get() + usize::from(count < string_max));
            }
            Ok(())
        })
        .unwrap();
    let (covered, decoded, under_limit) = (covered.get(), decoded.get(), under_limit.get());
    assert!(
        covered > 400 && decoded == covered && under_limit > 800,
        "{covered} covered counts ({decoded} decoded), {under_limit} uncovered counts under the limit"
    );
}

/// The classic: 28 bytes claiming a 4 GiB frame.
#[test]
fn four_gib_claim_allocates_nothing_big() {
    let mut input = u32::MAX.to_be_bytes().to_vec();
    input.extend(Header::call(0x2000_8086, 1, 1).to_bytes());
    for limits in [
        Limits::default(),
        Limits::builder().message_max(u32::MAX - 4).build().unwrap(),
    ] {
        let (r, peak) = peak_during(|| {
            let mut d = FrameDecoder::new(&limits, Compat::Libvirt);
            d.feed(&input);
            (d.next_frame().map(|f| f.is_some()), d.needed())
        });
        assert!(peak <= input.len() + SLACK, "peak {peak}");
        match r {
            (Err(e), _) => assert_eq!(e.category(), Category::OverLimit),
            // With a custom 4 GiB limit the frame is legal: the decoder waits, holding 28 bytes.
            (Ok(false), needed) => assert_eq!(needed, u32::MAX as usize - 28),
            other => panic!("unexpected {other:?}"),
        }
    }
}
