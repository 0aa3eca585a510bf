//! IPv4 and IPv6 fragment reassembly with a timeout and a memory cap.
//!
//! The per-datagram buffer is etherparse's [`IpDefragBuf`] (fragments in any order, overlaps
//! merged). Its pool is documented as unsafe against memory exhaustion, so this module owns the
//! pool instead: datagrams older than the timeout are dropped, the total buffered bytes are
//! capped (oldest evicted first), and every drop is counted.

use crate::WireMap;
use crate::time::{Interval, Timestamp};
use etherparse::IpNumber;
use etherparse::defrag::IpDefragBuf;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub id: u32,
    pub protocol: u8,
}

/// One fragment as read from the wire.
pub struct Fragment<'a> {
    pub key: FragKey,
    /// Offset in 8-byte units, as in the header.
    pub offset_units: u16,
    pub more: bool,
    pub payload: &'a [u8],
    /// The frame that carried this fragment.
    pub frame: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefragLimits {
    /// Seconds a partial datagram is kept (Linux uses 30 s: `ipfrag_time`).
    pub timeout: Interval,
    /// Total bytes held across all partial datagrams.
    pub max_bytes: usize,
}

impl Default for DefragLimits {
    fn default() -> Self {
        DefragLimits {
            timeout: Interval::from_secs(30),
            max_bytes: 64 << 20,
        }
    }
}

/// What happened to fragments that never became a datagram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefragDrops {
    pub expired: u64,
    pub evicted: u64,
    pub invalid: u64,
}

struct Partial {
    buf: IpDefragBuf,
    first_seen: Timestamp,
    /// Held bytes, counted against the cap: the buffer's and the frame list's.
    bytes: usize,
    /// The frames of the fragments so far, in arrival order.
    frames: Vec<u64>,
}

pub struct Defragmenter {
    limits: DefragLimits,
    partial: WireMap<FragKey, Partial>,
    held: usize,
    pub drops: DefragDrops,
}

impl Defragmenter {
    pub fn new(limits: DefragLimits) -> Defragmenter {
        Defragmenter {
            limits,
            partial: WireMap::default(),
            held: 0,
            drops: DefragDrops::default(),
        }
    }

    /// Adds a fragment; returns the whole datagram payload when this fragment completes it.
    /// Adds a fragment; returns the whole datagram and the frames of its fragments once the
    /// last piece is in.
    pub fn add(&mut self, frag: Fragment<'_>, now: Timestamp) -> Option<(Vec<u8>, Vec<u64>)> {
        let offset = match etherparse::IpFragOffset::try_new(frag.offset_units) {
            Ok(o) => o,
            Err(_) => {
                self.drops.invalid += 1;
                return None;
            }
        };
        let entry = self.partial.entry(frag.key).or_insert_with(|| Partial {
            buf: IpDefragBuf::new(IpNumber(frag.key.protocol), Vec::new(), Vec::new()),
            first_seen: now,
            bytes: 0,
            frames: Vec::new(),
        });
        if let Err(_e) = entry.buf.add(offset, frag.more, frag.payload) {
            // Conflicting ends or misaligned fragments: the datagram cannot be trusted.
            if let Some(p) = self.partial.remove(&frag.key) {
                self.held -= p.bytes;
            }
            self.drops.invalid += 1;
            return None;
        }
        // Count what the buffer really holds: a fragment at a high offset allocates
        // everything below it, which is how hostile fragments would exhaust memory.
        // The frame list is counted too: 65,535 tiny fragments are 512 KiB of frame numbers.
        entry.frames.push(frag.frame);
        let now_bytes = (entry.buf.data().len() + entry.frames.len() * 8).max(entry.bytes);
        self.held += now_bytes - entry.bytes;
        entry.bytes = now_bytes;
        if entry.buf.is_complete() {
            let p = self.partial.remove(&frag.key)?;
            self.held -= p.bytes;
            let (data, _) = p.buf.take_bufs();
            return Some((data, p.frames));
        }
        if self.held > self.limits.max_bytes {
            self.evict_oldest();
        }
        None
    }

    fn evict_oldest(&mut self) {
        // Rare (only under a flood of unfinished fragments): a scan is fine.
        while self.held > self.limits.max_bytes {
            let Some(oldest) = self
                .partial
                .iter()
                .min_by_key(|(_, p)| p.first_seen)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(p) = self.partial.remove(&oldest) {
                self.held -= p.bytes;
                self.drops.evicted += 1;
            }
        }
    }

    /// Drops partial datagrams older than the timeout.
    pub fn expire(&mut self, now: Timestamp) {
        let limit = self.limits.timeout;
        let before = self.partial.len();
        let mut freed = 0;
        self.partial.retain(|_, p| {
            let keep = now.since(p.first_seen) <= limit;
            if !keep {
                freed += p.bytes;
            }
            keep
        });
        self.held -= freed;
        self.drops.expired += (before - self.partial.len()) as u64;
    }

    /// Partial datagrams still waiting (reported as expired at the end of a capture).
    pub fn pending(&self) -> usize {
        self.partial.len()
    }

    pub fn held_bytes(&self) -> usize {
        self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key() -> FragKey {
        FragKey {
            src: IpAddr::V4(Ipv4Addr::LOCALHOST),
            dst: IpAddr::V4(Ipv4Addr::LOCALHOST),
            id: 7,
            protocol: 17,
        }
    }

    #[test]
    fn reassembles_out_of_order_and_overlapping() {
        let data: Vec<u8> = (0..40u8).collect();
        let mut d = Defragmenter::new(DefragLimits::default());
        let t = Timestamp(0);
        let f = |o: u16, more, p: &'static [u8], frame| Fragment {
            key: key(),
            offset_units: o,
            more,
            payload: p,
            frame,
        };
        let data: &'static [u8] = Box::leak(data.into_boxed_slice());
        assert!(d.add(f(3, false, &data[24..], 7), t).is_none());
        assert!(d.add(f(0, true, &data[..16], 8), t).is_none());
        // Overlapping duplicate of the first fragment.
        assert!(d.add(f(0, true, &data[..8], 9), t).is_none());
        let (out, frames) = d.add(f(2, true, &data[16..24], 10), t).unwrap();
        assert_eq!(out, data);
        // Every frame that carried a piece, in arrival order.
        assert_eq!(frames, vec![7, 8, 9, 10]);
        assert_eq!(d.held_bytes(), 0);
    }

    #[test]
    fn expires_and_caps_memory() {
        let mut d = Defragmenter::new(DefragLimits {
            timeout: Interval::from_millis(1000),
            // Two datagrams: 8 bytes of data and 8 of frame number each.
            max_bytes: 32,
        });
        let payload = [0u8; 8];
        for id in 0..4 {
            let mut k = key();
            k.id = id;
            d.add(
                Fragment {
                    key: k,
                    offset_units: 0,
                    more: true,
                    payload: &payload,
                    frame: u64::from(id),
                },
                Timestamp(0),
            );
        }
        assert!(d.held_bytes() <= 32);
        assert_eq!(d.drops.evicted, 2);
        d.expire(Timestamp::from_millis(2000));
        assert_eq!(d.pending(), 0);
        assert_eq!(d.drops.expired, 2);
        assert_eq!(d.held_bytes(), 0);
    }
}
