//! Connections the capture joined mid-stream: the last bytes of untracked text flows (a start
//! line split over two segments), and their recent segments held whole, so that a SIP message
//! whose segments came out of order before its start line is replayed into its new stream.

use super::*;

/// Drops the copies kept for a stream that no longer needs them.
pub(super) fn st_settled(early: &mut WireMap<FlowKey, Vec<Held>>, bytes: &mut usize, key: FlowKey) {
    if let Some(list) = early.remove(&key) {
        *bytes -= list.iter().map(|h| h.bytes.len()).sum::<usize>();
    }
}

/// A segment held for an untracked flow.
pub(super) struct Held {
    pub(super) seq: u32,
    pub(super) bytes: Vec<u8>,
    pub(super) frames: Frames,
    pub(super) meta: SegmentMeta,
}

/// Early segments kept per untracked flow (the newest win).
pub(super) const EARLY_PER_FLOW: usize = 8;
/// Bytes of early segments kept over all flows; beyond this they are all dropped, counted.
pub(super) const EARLY_BYTES: usize = 4 << 20;

/// Bytes of an untracked flow's last segment remembered (a start line fits easily).
pub(super) const TAIL: usize = 1024;
/// Untracked flows remembered at once; beyond this the cache is emptied and that is counted.
pub(super) const MAX_TAILS: usize = 8192;

/// Text that may hold the beginning of a SIP start line: no control bytes but CR, LF, tab.
pub(super) fn is_text(b: &[u8]) -> bool {
    b.iter()
        .all(|&c| c >= 0x20 || matches!(c, b'\r' | b'\n' | b'\t'))
}

/// Cheap test for "this segment may belong to a SIP stream", so that only SIP connections
/// get state: a start line's version token appears in every SIP message.
pub(super) fn may_be_sip(payload: &[u8]) -> bool {
    memchr::memmem::find(payload, b"SIP/2.0").is_some()
}

impl Reassembler {
    /// A stream joined mid-message that has yielded nothing yet, and a segment from before
    /// its first byte that begins with a start line: the message it was waiting for arrived
    /// out of order, so the stream starts again there.
    pub(super) fn restarts(&self, seg: &Segment<'_>) -> bool {
        let Some(st) = self.streams.get(&FlowKey(seg.src, seg.dst)) else {
            return false;
        };
        if !st.unanchored || st.emitted || seg.syn || seg.payload.is_empty() {
            return false;
        }
        let start = st.next_seq.wrapping_sub(st.delivered as u32);
        let before = start.wrapping_sub(seg.seq) as i32;
        if before <= 0 || before as usize >= EARLY_BYTES {
            return false;
        }
        // The start line may itself be split: join the held segments that follow this one.
        let mut probe = seg.payload.to_vec();
        let held = self.early.get(&FlowKey(seg.src, seg.dst));
        while probe.len() < TAIL {
            let next = seg.seq.wrapping_add(probe.len() as u32);
            let Some(h) =
                held.and_then(|l| l.iter().find(|h| h.seq == next && !h.bytes.is_empty()))
            else {
                break;
            };
            probe.extend_from_slice(&h.bytes);
        }
        starts_with_start_line(probe.get(leading_crlf(&probe)..).unwrap_or(&[]))
    }

    /// Segments held while the flow was untracked that lie after the new stream's start go
    /// into it now, as out-of-order segments do.
    pub(super) fn replay_early(&mut self, key: FlowKey, stats: &mut TcpStats, emit: &mut Emit<'_>) {
        let Some(held) = self.early.remove(&key) else {
            return;
        };
        let bytes = held.iter().map(|h| h.bytes.len()).sum::<usize>();
        self.early_bytes -= bytes;
        let Some(st) = self.streams.get(&key) else {
            return;
        };
        let start = st.next_seq.wrapping_sub(st.delivered as u32);
        self.replaying = true;
        for h in &held {
            if (h.seq.wrapping_sub(start) as i32) <= 0 {
                continue; // before the first SIP start line: not part of a message
            }
            let seg = Segment {
                src: key.0,
                dst: key.1,
                seq: h.seq,
                syn: false,
                fin: false,
                rst: false,
                payload: &h.bytes,
                meta: h.meta,
                frames: &h.frames,
            };
            self.segment_in(seg, stats, emit);
        }
        self.replaying = false;
        // A stream that still waits for its first message keeps the copies for a restart.
        if self
            .streams
            .get(&key)
            .is_some_and(|st| st.unanchored && !st.emitted)
        {
            self.early_bytes += bytes;
            self.early.insert(key, held);
        }
    }

    /// Keeps a text segment of an untracked flow for [`Reassembler::replay_early`].
    pub(super) fn hold_early(&mut self, key: FlowKey, seg: &Segment<'_>, stats: &mut TcpStats) {
        let p = seg.payload;
        if p.is_empty() || p.len() > EARLY_BYTES / 16 || !is_text(p) {
            return;
        }
        if self.early_bytes + p.len() > EARLY_BYTES
            || (self.early.len() >= MAX_TAILS && !self.early.contains_key(&key))
        {
            stats.early_evicted += self.early.values().map(|v| v.len() as u64).sum::<u64>();
            self.early.clear();
            self.early_bytes = 0;
        }
        let list = self.early.entry(key).or_default();
        if list.len() >= EARLY_PER_FLOW {
            let old = list.remove(0);
            self.early_bytes -= old.bytes.len();
        }
        list.push(Held {
            seq: seg.seq,
            bytes: p.to_vec(),
            frames: seg.frames.iter().copied().collect(),
            meta: seg.meta,
        });
        self.early_bytes += p.len();
    }

    pub(super) fn remember_tail(&mut self, key: FlowKey, seg: &Segment<'_>, stats: &mut TcpStats) {
        let p = seg.payload;
        if p.is_empty() || !is_text(p.get(p.len().saturating_sub(TAIL)..).unwrap_or(&[])) {
            return;
        }
        if self.tails.len() >= MAX_TAILS && !self.tails.contains_key(&key) {
            stats.tails_evicted += self.tails.len() as u64;
            self.tails.clear();
        }
        let next = seg.seq.wrapping_add(p.len() as u32);
        // Continue a remembered tail when this segment follows it; keep the last TAIL bytes.
        let (mut tail, mut frames) = match self.tails.remove(&key) {
            Some((expected, mut t, mut f)) if expected == seg.seq => {
                t.extend_from_slice(p);
                f.extend(seg.frames.iter().copied());
                (t, f)
            }
            _ => (p.to_vec(), seg.frames.iter().copied().collect()),
        };
        if tail.len() > TAIL {
            tail.drain(..tail.len() - TAIL);
            // The kept bytes come from the last segments: a few frames are enough.
            if frames.len() > 4 {
                frames.drain(..frames.len() - 4);
            }
        }
        self.tails.insert(key, (next, tail, frames));
    }
}
