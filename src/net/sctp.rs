//! SIP over SCTP (RFC 4168): DATA chunks (RFC 9260 §3.3.1) carry SIP messages, one message
//! per SCTP user message, possibly fragmented over several chunks (B and E flags) and bundled
//! several to a packet.
//!
//! Owns the SCTP common header and chunk walk, the reassembly of fragmented user messages and
//! the dropping of retransmitted chunks (same TSN), with bounded state per association
//! direction. It does not parse SIP, and it ignores control chunks (INIT, SACK, HEARTBEAT...).
//! Hand-written: no maintained crate decodes SCTP chunks from captured bytes (etherparse stops
//! at the IP layer for SCTP).

use super::Frames;
use crate::WireMap;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// One DATA chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChunk<'a> {
    pub tsn: u32,
    pub stream: u16,
    pub begin: bool,
    pub end: bool,
    pub data: &'a [u8],
}

/// The ports of an SCTP packet and its DATA chunks, or `None` if the common header is cut.
/// A chunk whose length runs past the packet ends the walk (counted by the caller as damage).
pub fn parse(b: &[u8]) -> Option<(u16, u16, Vec<DataChunk<'_>>, bool)> {
    let sport = u16::from_be_bytes([*b.first()?, *b.get(1)?]);
    let dport = u16::from_be_bytes([*b.get(2)?, *b.get(3)?]);
    let mut at = 12;
    let mut chunks = Vec::new();
    let mut damaged = false;
    while let (Some(&kind), Some(&flags), Some(len)) = (
        b.get(at),
        b.get(at + 1),
        b.get(at + 2..at + 4)
            .and_then(|l| l.try_into().ok())
            .map(|l: [u8; 2]| usize::from(u16::from_be_bytes(l))),
    ) {
        let Some(chunk) = b.get(at..at + len).filter(|_| len >= 4) else {
            damaged = true;
            break;
        };
        if kind == 0 {
            // DATA: TSN, stream id, stream sequence number, payload protocol id, user data.
            let tsn = chunk.get(4..8).and_then(|b| b.try_into().ok());
            let stream = chunk.get(8..10).and_then(|b| b.try_into().ok());
            match (chunk.get(16..), tsn, stream) {
                (Some(data), Some(tsn), Some(stream)) => chunks.push(DataChunk {
                    tsn: u32::from_be_bytes(tsn),
                    stream: u16::from_be_bytes(stream),
                    begin: flags & 0x02 != 0,
                    end: flags & 0x01 != 0,
                    data,
                }),
                _ => damaged = true,
            }
        }
        // Chunks are padded to four bytes.
        at += len.div_ceil(4) * 4;
    }
    Some((sport, dport, chunks, damaged))
}

/// What the assembler did that is not a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SctpStats {
    pub retransmitted_chunks: u64,
    /// Fragments dropped: a message never completed, or grew past the size limit.
    pub dropped_fragments: u64,
    pub evicted: u64,
}

#[derive(Default)]
struct Direction {
    /// Recently seen TSNs, to drop retransmissions.
    recent: VecDeque<u32>,
    /// A fragmented user message being put together: stream, next TSN, bytes, frames.
    partial: Option<(u16, u32, Vec<u8>, Frames)>,
}

const RECENT: usize = 128;
/// Association directions tracked at once; beyond this the table is emptied and that counted.
const MAX_DIRECTIONS: usize = 16_384;

/// Turns DATA chunks into whole user messages, per association direction.
pub struct SctpAssembler {
    directions: WireMap<(SocketAddr, SocketAddr), Direction>,
    max_message: usize,
}

impl SctpAssembler {
    pub fn new(max_message: usize) -> SctpAssembler {
        SctpAssembler {
            directions: WireMap::default(),
            max_message,
        }
    }

    /// Feeds one chunk that arrived in `frame`; calls `emit` with a complete user message and
    /// the frames that carried it.
    pub fn chunk(
        &mut self,
        key: (SocketAddr, SocketAddr),
        chunk: DataChunk<'_>,
        frame: u64,
        stats: &mut SctpStats,
        emit: &mut dyn FnMut(&[u8], &[u64]),
    ) {
        if self.directions.len() >= MAX_DIRECTIONS && !self.directions.contains_key(&key) {
            stats.evicted += self.directions.len() as u64;
            self.directions.clear();
        }
        let dir = self.directions.entry(key).or_default();
        if dir.recent.contains(&chunk.tsn) {
            stats.retransmitted_chunks += 1;
            return;
        }
        if dir.recent.len() >= RECENT {
            dir.recent.pop_front();
        }
        dir.recent.push_back(chunk.tsn);
        match (chunk.begin, chunk.end) {
            (true, true) => {
                if dir.partial.take().is_some() {
                    stats.dropped_fragments += 1;
                }
                emit(chunk.data, &[frame]);
            }
            (true, false) => {
                if dir.partial.is_some() {
                    stats.dropped_fragments += 1;
                }
                let frames: Frames = std::iter::once(frame).collect();
                dir.partial = Some((
                    chunk.stream,
                    chunk.tsn.wrapping_add(1),
                    chunk.data.to_vec(),
                    frames,
                ));
            }
            (false, end) => {
                let fits = |p: &(u16, u32, Vec<u8>, Frames)| {
                    p.0 == chunk.stream
                        && p.1 == chunk.tsn
                        && p.2.len() + chunk.data.len() <= self.max_message
                };
                match dir.partial.take() {
                    Some(mut p) if fits(&p) => {
                        p.1 = p.1.wrapping_add(1);
                        p.2.extend_from_slice(chunk.data);
                        if !p.3.contains(&frame) {
                            p.3.push(frame);
                        }
                        if end {
                            emit(&p.2, &p.3);
                        } else {
                            dir.partial = Some(p);
                        }
                    }
                    Some(_) | None => stats.dropped_fragments += 1,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(chunks: &[(u8, u32, &[u8])]) -> Vec<u8> {
        let mut v = vec![0x13, 0xC4, 0x13, 0xC4, 0, 0, 0, 1, 0, 0, 0, 0];
        for (flags, tsn, data) in chunks {
            let len = 16 + data.len();
            v.extend_from_slice(&[0, *flags]);
            v.extend_from_slice(&(len as u16).to_be_bytes());
            v.extend_from_slice(&tsn.to_be_bytes());
            v.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
            v.extend_from_slice(data);
            v.extend(std::iter::repeat_n(0u8, len.div_ceil(4) * 4 - len));
        }
        v
    }

    #[test]
    fn bundled_fragmented_and_retransmitted_chunks() {
        let key = (
            "127.0.0.1:5060".parse().unwrap(),
            "127.0.0.1:5061".parse().unwrap(),
        );
        let mut a = SctpAssembler::new(1 << 16);
        let mut stats = SctpStats::default();
        let mut out: Vec<(Vec<u8>, Vec<u64>)> = Vec::new();
        let p1 = packet(&[(0x03, 10, b"whole one"), (0x02, 11, b"first ")]);
        let p2 = packet(&[(0x00, 12, b"middle "), (0x01, 13, b"last")]);
        let p3 = packet(&[(0x03, 10, b"whole one")]); // retransmission
        for (n, p) in [(1, &p1), (2, &p2), (3, &p3)] {
            let (sport, dport, chunks, damaged) = parse(p).unwrap();
            assert_eq!((sport, dport, damaged), (5060, 5060, false));
            for c in chunks {
                a.chunk(key, c, n, &mut stats, &mut |m, f| {
                    out.push((m.to_vec(), f.to_vec()))
                });
            }
        }
        assert_eq!(
            out,
            vec![
                (b"whole one".to_vec(), vec![1]),
                (b"first middle last".to_vec(), vec![1, 2])
            ]
        );
        assert_eq!(stats.retransmitted_chunks, 1);
    }

    #[test]
    fn damaged_chunks_end_the_walk() {
        let mut p = packet(&[(0x03, 1, b"ok")]);
        p.extend_from_slice(&[0, 3, 0xFF, 0xFF, 1, 2]);
        let (_, _, chunks, damaged) = parse(&p).unwrap();
        assert_eq!(chunks.len(), 1);
        assert!(damaged);
        assert!(parse(&[1, 2, 3]).is_none());
        // A zero chunk length would loop for ever.
        let (_, _, chunks, damaged) =
            parse(&[0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0]).unwrap();
        assert!(chunks.is_empty() && damaged);
    }
}
