//! HEP over TCP: HEP v3 packets back to back on one direction of a connection, as capture
//! agents (heplify, Kamailio's siptrace, OpenSIPS' proto_hep) send them to a collector on port
//! 9060. Each packet starts with `HEP3` and its total length (RFC-less, the HEP v3 spec).
//!
//! Owns the cutting of the reassembled stream into whole packets, with the stream offsets of
//! each; decoding a packet is the [`crate::hep`] codec's, and turning it into a SIP PDU the
//! decoder's. Hand-written for the same reason as the SIP stream framer: the bytes come from a
//! capture, may begin anywhere and may have holes.

use super::framing::FramerStats;

/// A HEP v3 packet header: `HEP3` and a 16-bit total length.
const HEADER: usize = 6;

/// Cuts one direction of a HEP-over-TCP connection into packets.
pub struct HepDeframer {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
}

impl HepDeframer {
    pub fn new() -> HepDeframer {
        HepDeframer {
            buf: Vec::new(),
            base: 0,
        }
    }

    /// Stream offset of the first byte still needed.
    pub fn start(&self) -> u64 {
        self.base
    }

    /// Bytes of memory held (an unfinished packet), for the total TCP budget. A packet is at
    /// most 64 KiB, so this is bounded.
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Bytes were lost: the unfinished packet goes, and the next `HEP3` is looked for.
    pub fn gap(&mut self, missing: u64, stats: &mut FramerStats) {
        stats.skipped_bytes += self.buf.len() as u64;
        self.base += self.buf.len() as u64 + missing;
        self.buf.clear();
    }

    /// End of the stream: an unfinished packet is counted as skipped.
    pub fn finish(&mut self, stats: &mut FramerStats) {
        stats.skipped_bytes += self.buf.len() as u64;
        self.base += self.buf.len() as u64;
        self.buf.clear();
    }

    /// Adds stream bytes; calls `emit(first, end, packet)` for each whole packet.
    pub fn push(
        &mut self,
        data: &[u8],
        stats: &mut FramerStats,
        emit: &mut dyn FnMut(u64, u64, &[u8]),
    ) {
        self.buf.extend_from_slice(data);
        let mut at = 0usize;
        loop {
            let rest = self.buf.get(at..).unwrap_or(&[]);
            match crate::hep::v3_length(rest) {
                Some(len) if len >= HEADER => match rest.get(..len) {
                    Some(packet) => {
                        let first = self.base + at as u64;
                        emit(first, first + len as u64, packet);
                        at += len;
                    }
                    None => break, // the rest of the packet is still to come
                },
                _ if rest.len() < HEADER
                    && b"HEP3".starts_with(rest.get(..4.min(rest.len())).unwrap_or(&[])) =>
                {
                    break; // perhaps the start of a packet header
                }
                _ => {
                    // Not at a packet: skip to the next `HEP3`, keeping a tail that may begin
                    // one.
                    let skip = memchr::memmem::find(rest.get(1..).unwrap_or(&[]), b"HEP3")
                        .map_or(rest.len().saturating_sub(3), |i| i + 1)
                        .max(1)
                        .min(rest.len());
                    stats.skipped_bytes += skip as u64;
                    at += skip;
                    if skip == 0 {
                        break;
                    }
                }
            }
        }
        self.buf.drain(..at.min(self.buf.len()));
        self.base += at as u64;
    }
}

impl Default for HepDeframer {
    fn default() -> Self {
        HepDeframer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(body: &[u8]) -> Vec<u8> {
        let mut p = b"HEP3".to_vec();
        p.extend_from_slice(&((HEADER + body.len()) as u16).to_be_bytes());
        p.extend_from_slice(body);
        p
    }

    fn cut(stream: &[u8], at: &[usize]) -> (Vec<(u64, u64, Vec<u8>)>, FramerStats) {
        let mut d = HepDeframer::new();
        let mut stats = FramerStats::default();
        let mut out = Vec::new();
        let mut prev = 0;
        for &c in at.iter().chain(std::iter::once(&stream.len())) {
            d.push(&stream[prev..c], &mut stats, &mut |a, b, p| {
                out.push((a, b, p.to_vec()))
            });
            prev = c;
        }
        d.finish(&mut stats);
        (out, stats)
    }

    #[test]
    fn packets_are_cut_wherever_the_segments_end() {
        let (a, b) = (packet(b"first"), packet(b"the second one"));
        let stream = [a.clone(), b.clone()].concat();
        for cuts in [
            vec![],
            vec![1],
            vec![5, 6, 7],
            vec![a.len()],
            vec![3, a.len() + 2],
        ] {
            let (out, stats) = cut(&stream, &cuts);
            assert_eq!(
                out,
                [
                    (0, a.len() as u64, a.clone()),
                    (a.len() as u64, stream.len() as u64, b.clone())
                ],
                "{cuts:?}"
            );
            assert_eq!(stats.skipped_bytes, 0);
        }
    }

    #[test]
    fn junk_and_holes_are_skipped_to_the_next_packet() {
        let a = packet(b"after junk");
        let stream = [b"junk!".to_vec(), a.clone(), b"HEP".to_vec()].concat();
        let (out, stats) = cut(&stream, &[2]);
        assert_eq!(out, [(5, 5 + a.len() as u64, a.clone())]);
        assert_eq!(stats.skipped_bytes, 5 + 3);
        // A length shorter than the header is no packet.
        let bad = b"HEP3\x00\x02".to_vec();
        let (out, stats) = cut(&[bad, a.clone()].concat(), &[]);
        assert_eq!(out, [(6, 6 + a.len() as u64, a.clone())]);
        assert_eq!(stats.skipped_bytes, 6);
        // A hole loses the packet it cut.
        let mut d = HepDeframer::new();
        let mut stats = FramerStats::default();
        let mut got = Vec::new();
        d.push(&a[..8], &mut stats, &mut |_, _, p| got.push(p.to_vec()));
        d.gap(4, &mut stats);
        d.push(&a, &mut stats, &mut |x, _, p| {
            got.push([x.to_be_bytes().to_vec(), p.to_vec()].concat())
        });
        assert_eq!(got.len(), 1);
        assert_eq!(stats.skipped_bytes, 8);
    }

    /// Random bytes with packets mixed in, cut at random: every packet handed out starts
    /// with `HEP3` and has its stated length, offsets add up, and nothing is held unbounded.
    #[test]
    fn random_streams_give_only_whole_packets() {
        let mut rng = crate::synth::Rng::new(7);
        for _ in 0..200 {
            let mut stream = Vec::new();
            for _ in 0..rng.below(20) {
                if rng.below(2) == 0 {
                    stream.extend(packet(&vec![0x41; rng.below(300) as usize]));
                } else {
                    stream.extend((0..rng.below(40)).map(|_| rng.below(256) as u8));
                }
            }
            let mut d = HepDeframer::new();
            let mut stats = FramerStats::default();
            let mut at = 0;
            while at < stream.len() {
                let n = (1 + rng.below(90) as usize).min(stream.len() - at);
                d.push(&stream[at..at + n], &mut stats, &mut |a, b, p| {
                    assert!(p.starts_with(b"HEP3"));
                    assert_eq!(crate::hep::v3_length(p), Some(p.len()));
                    assert_eq!((b - a) as usize, p.len());
                    assert_eq!(&stream[a as usize..b as usize], p);
                });
                assert!(d.held() <= 1 << 17);
                at += n;
            }
            d.finish(&mut stats);
            assert_eq!(d.start(), stream.len() as u64);
        }
    }
}
