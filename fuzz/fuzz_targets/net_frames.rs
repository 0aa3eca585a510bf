//! Link layers, IP (v4, v6, extension headers), defragmentation, tunnels, UDP, SCTP, HEP: the
//! input is a sequence of frames, each `[link selector][length: 2 bytes][bytes]`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::capture::{Frame, LinkType, Timestamp};
use sipscope::net::{Decoder, NetLimits};

const LINKS: [LinkType; 7] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::IPV6,
];

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::new(NetLimits::default());
    let mut rest = data;
    let mut number = 0;
    let mut bytes = 0usize;
    while let [sel, a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        let (frame, after) = tail.split_at(len);
        number += 1;
        let f = Frame {
            source: 0,
            number,
            time: Timestamp::from_millis(number as i64 * 100),
            link: LINKS[usize::from(*sel) % LINKS.len()],
            data: frame,
            orig_len: frame.len() as u32,
        };
        decoder.feed(&f, &mut |pdu| bytes += pdu.bytes.len());
        rest = after;
    }
    decoder.finish(&mut |pdu| bytes += pdu.bytes.len());
});
