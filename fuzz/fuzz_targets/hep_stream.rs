//! The HEP-over-TCP deframer, fed in chunks whose sizes come from the input's first byte; each
//! packet it cuts goes to the HEP decoder.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::net::framing::FramerStats;
use sipscope::net::hep_stream::HepDeframer;

fuzz_target!(|data: &[u8]| {
    let Some((&step, rest)) = data.split_first() else {
        return;
    };
    let mut d = HepDeframer::new();
    let mut stats = FramerStats::default();
    let mut n = 0usize;
    for chunk in rest.chunks(usize::from(step).max(1)) {
        d.push(chunk, &mut stats, &mut |a, b, p| {
            assert_eq!((b - a) as usize, p.len());
            n += usize::from(sipscope::hep::decode(p).is_ok());
        });
    }
    d.gap(3, &mut stats);
    d.push(rest, &mut stats, &mut |_, _, p| n += p.len());
    d.finish(&mut stats);
});
