//! TCP reassembly and SIP/WebSocket framing: the input is a sequence of segments on two
//! directions of one connection, each `[flags][seq delta: 2 bytes][length][payload]`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::capture::Timestamp;
use sipscope::net::tcp::{Reassembled, Reassembler, Segment, SegmentMeta, TcpLimits, TcpStats};

fuzz_target!(|data: &[u8]| {
    let a = "10.0.0.1:5060".parse().unwrap();
    let b = "10.0.0.2:5060".parse().unwrap();
    let mut r = Reassembler::new({
        let mut built = TcpLimits::default();
        built.max_pending_per_stream = 1 << 16;
        built.// Small enough that the total budget's shedding runs too.
        max_buffered_total = 1 << 17;
        built
    });
    let mut stats = TcpStats::default();
    let mut seq = [0xFFFF_F000u32, 1000u32]; // one direction near wrap-around
    let mut rest = data;
    let mut frame = 0u64;
    let mut bytes = 0usize;
    while let [flags, d1, d2, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (payload, after) = tail.split_at(len);
        let dir = usize::from(flags & 1);
        let delta = i32::from(i16::from_be_bytes([*d1, *d2]));
        seq[dir] = seq[dir].wrapping_add_signed(delta);
        frame += 1;
        let (src, dst) = if dir == 0 { (a, b) } else { (b, a) };
        let seg = Segment {
            src,
            dst,
            seq: seq[dir],
            syn: flags & 2 != 0,
            fin: flags & 4 != 0,
            rst: flags & 8 != 0,
            payload,
            meta: SegmentMeta {
                source: 0,
                frame,
                time: Timestamp::from_millis(frame as i64 * (1 + i64::from(flags >> 4) * 1000)),
            },
            frames: &[frame],
        };
        r.segment(seg, &mut stats, &mut |u: Reassembled<'_>| {
            bytes += u.bytes.len() + u.frames.len()
        });
        if flags & 0x80 != 0 {
            r.sweep(
                Timestamp::from_millis(frame as i64 * 20_000),
                0,
                &mut stats,
                &mut |u: Reassembled<'_>| bytes += u.bytes.len(),
            );
        }
        rest = after;
    }
    r.finish_all(
        0,
        Timestamp::from_millis(i64::MAX / 2_000_000),
        &mut stats,
        &mut |u: Reassembled<'_>| bytes += u.bytes.len(),
    );
    // Every stream is gone, and so is every byte the total budget counted.
    assert_eq!(r.buffered(), 0);
});
