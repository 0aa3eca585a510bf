//! The WebSocket deframer, fed in chunks whose sizes come from the input's first byte.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::net::framing::FramerStats;
use sipscope::net::websocket::{WsDeframer, frame_carries_sip, is_handshake};

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let _ = (is_handshake(rest), frame_carries_sip(rest));
    let mut d = WsDeframer::new(1 << 16);
    let mut stats = FramerStats::default();
    let mut n = 0usize;
    for chunk in rest.chunks(usize::from(step).max(1)) {
        d.push(chunk, &mut stats, &mut |a, b, m| {
            n += m.len() + (b - a) as usize
        });
    }
    d.gap(3, &mut stats);
    d.push(rest, &mut stats, &mut |_, _, m| n += m.len());
    d.finish(&mut stats);
});
