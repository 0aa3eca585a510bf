//! Property tests: TCP reassembly and IP defragmentation deliver the same SIP messages whatever
//! the split, order and duplication of segments or fragments, and each message names the
//! frames that carried it: every one of them carried some of its bytes, and together they
//! carried all of them.

use proptest::prelude::*;
use sipscope::capture::Timestamp;
use sipscope::net::defrag::{DefragLimits, Defragmenter, FragKey, Fragment};
use sipscope::net::tcp::{Reassembled, Reassembler, Segment, SegmentMeta, TcpLimits, TcpStats};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

fn sip_stream(n: usize, body: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let mut stream = Vec::new();
    let mut msgs = Vec::new();
    for i in 0..n {
        let b = "x".repeat(body + i);
        let m = format!(
            "MESSAGE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP a;branch=z9hG4bK{i}\r\nCall-ID: c{i}\r\nCSeq: {i} MESSAGE\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:b@c>\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        );
        if i % 3 == 1 {
            stream.extend_from_slice(b"\r\n\r\n"); // keep-alive between messages
        }
        stream.extend_from_slice(m.as_bytes());
        msgs.push(m.into_bytes());
    }
    (stream, msgs)
}

/// Each message's bytes, with the frames it names (data segment `i` is frame `i + 2`).
fn run_tcp_frames(
    isn: u32,
    segments: &[(usize, usize)],
    stream: &[u8],
    syn: bool,
) -> Vec<(Vec<u8>, Vec<u64>)> {
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 40000);
    let dst = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), 5060);
    let mut r = Reassembler::new(TcpLimits::default());
    let mut stats = TcpStats::default();
    let mut out = Vec::new();
    let mut emit = |r: Reassembled<'_>| out.push((r.bytes.to_vec(), r.frames.to_vec()));
    let meta = |i: usize| SegmentMeta {
        source: 0,
        frame: i as u64 + 1,
        time: Timestamp::from_millis(i as i64),
    };
    if syn {
        r.segment(
            Segment {
                src,
                dst,
                seq: isn,
                syn: true,
                fin: false,
                rst: false,
                payload: &[],
                meta: meta(0),
                frames: &[1],
            },
            &mut stats,
            &mut emit,
        );
    }
    for (i, (start, end)) in segments.iter().enumerate() {
        let payload = &stream[*start..*end];
        let seq = isn.wrapping_add(1).wrapping_add(*start as u32);
        let frame = [i as u64 + 2];
        r.segment(
            Segment {
                src,
                dst,
                seq,
                syn: false,
                fin: false,
                rst: false,
                payload,
                meta: meta(i + 1),
                frames: &frame,
            },
            &mut stats,
            &mut emit,
        );
    }
    r.finish_all(0, Timestamp::from_millis(1_000_000), &mut stats, &mut emit);
    out
}

fn run_tcp(isn: u32, segments: &[(usize, usize)], stream: &[u8], syn: bool) -> Vec<Vec<u8>> {
    run_tcp_frames(isn, segments, stream, syn)
        .into_iter()
        .map(|(m, _)| m)
        .collect()
}

/// Checks the frames each message names against the segments: each named segment overlaps
/// the message's bytes, and the named segments cover all of them.
fn frames_carried_the_messages(
    out: &[(Vec<u8>, Vec<u64>)],
    segments: &[(usize, usize)],
    stream: &[u8],
) -> Result<(), TestCaseError> {
    let mut from = 0;
    for (m, frames) in out {
        let at = from
            + stream[from..]
                .windows(m.len())
                .position(|w| w == m.as_slice())
                .ok_or_else(|| TestCaseError::fail("message not in the stream"))?;
        from = at + m.len();
        let (lo, hi) = (at, at + m.len());
        let mut covered = vec![false; m.len()];
        for f in frames {
            let (s, e) = segments[(*f - 2) as usize];
            prop_assert!(
                s < hi && e > lo,
                "frame {} ({}..{}) is not in {}..{}",
                f,
                s,
                e,
                lo,
                hi
            );
            for b in s.max(lo)..e.min(hi) {
                covered[b - lo] = true;
            }
        }
        prop_assert!(
            covered.iter().all(|c| *c),
            "frames {:?} leave bytes of {}..{} uncovered",
            frames,
            lo,
            hi
        );
    }
    Ok(())
}

/// Cuts `len` bytes into contiguous segments at the given fractions.
fn cut(len: usize, cuts: &[f64]) -> Vec<(usize, usize)> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| ((len as f64) * c) as usize)
        .filter(|p| *p > 0 && *p < len)
        .collect();
    points.sort_unstable();
    points.dedup();
    let mut segs = Vec::new();
    let mut prev = 0;
    for p in points.into_iter().chain(std::iter::once(len)) {
        segs.push((prev, p));
        prev = p;
    }
    segs
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn tcp_any_split_order_and_duplication(
        n in 1usize..6,
        body in 0usize..300,
        cuts in prop::collection::vec(0.0f64..1.0, 0..20),
        isn in any::<u32>(),
        shuffle_seed in any::<u64>(),
        dup in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        overlap in any::<bool>(),
    ) {
        let (stream, msgs) = sip_stream(n, body);
        let mut segs = cut(stream.len(), &cuts);
        // Overlapping retransmissions: a segment spanning two neighbours.
        if overlap && segs.len() > 2 {
            let extra = (segs[0].0, segs[1].1);
            segs.push(extra);
        }
        for d in &dup {
            let s = segs[d.index(segs.len())];
            segs.push(s);
        }
        // Deterministic shuffle, but keep the reorder window within the gap timeout.
        let mut state = shuffle_seed | 1;
        for i in (1..segs.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            let j = (state as usize) % (i + 1);
            segs.swap(i, j);
        }
        let out = run_tcp_frames(isn, &segs, &stream, true);
        frames_carried_the_messages(&out, &segs, &stream)?;
        let out: Vec<Vec<u8>> = out.into_iter().map(|(m, _)| m).collect();
        prop_assert_eq!(out, msgs);
    }

    #[test]
    fn tcp_joined_mid_stream_resynchronises(
        n in 2usize..6,
        skip_frac in 0.05f64..0.95,
        cuts in prop::collection::vec(0.0f64..1.0, 0..10),
    ) {
        let (stream, msgs) = sip_stream(n, 40);
        let skip = ((stream.len() as f64) * skip_frac) as usize;
        // The capture starts at `skip`: no SYN, the first bytes are the middle of a message.
        let segs: Vec<(usize, usize)> = cut(stream.len() - skip, &cuts).into_iter().map(|(a, b)| (a + skip, b + skip)).collect();
        let out = run_tcp(1000, &segs, &stream, false);
        // Every message that starts after the join point is found, whole.
        let mut offset = 0;
        let mut expected = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            if i % 3 == 1 { offset += 4; }
            if offset >= skip { expected.push(m.clone()); }
            offset += m.len();
        }
        prop_assert_eq!(out, expected);
    }

    #[test]
    fn ip_fragments_any_order_and_duplication(
        len in 1usize..4000,
        chunk_units in 1usize..200,
        order_seed in any::<u64>(),
        dup in prop::collection::vec(any::<prop::sample::Index>(), 0..5),
    ) {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let chunk = chunk_units * 8;
        let mut frags: Vec<(usize, usize)> = (0..len).step_by(chunk).map(|o| (o, (o + chunk).min(len))).collect();
        for d in &dup {
            let f = frags[d.index(frags.len())];
            frags.push(f);
        }
        let mut state = order_seed | 1;
        for i in (1..frags.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            frags.swap(i, (state as usize) % (i + 1));
        }
        let key = FragKey { src: IpAddr::V4(Ipv4Addr::LOCALHOST), dst: IpAddr::V4(Ipv4Addr::LOCALHOST), id: 9, protocol: 17 };
        let mut d = Defragmenter::new(DefragLimits::default());
        let mut whole = Vec::new();
        let mut fed = Vec::new();
        for (i, (start, end)) in frags.into_iter().enumerate() {
            let f = Fragment { key, offset_units: (start / 8) as u16, more: end < len, payload: &data[start..end], frame: i as u64 + 1 };
            fed.push(i as u64 + 1);
            if let Some((w, frames)) = d.add(f, Timestamp(0)) {
                // Every fragment fed since the last complete datagram, in arrival order.
                prop_assert_eq!(&frames, &fed);
                fed.clear();
                whole.push(w);
            }
        }
        // Delivered whole, and exactly once unless duplicates repeat every fragment after
        // completion (the same datagram captured twice is delivered twice, whole each time).
        prop_assert!(!whole.is_empty());
        for w in &whole {
            prop_assert_eq!(w, &data);
        }
        if dup.is_empty() {
            prop_assert_eq!(whole.len(), 1);
        }
    }
}
