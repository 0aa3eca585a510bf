//! TCP reassembly, one byte stream per direction, feeding the SIP [`StreamFramer`].
//!
//! Handles segments out of order, overlapping and retransmitted (each byte is delivered once,
//! so a TCP retransmission never becomes a duplicate SIP message), sequence-number wrap-around,
//! captures that start mid-connection (the framer resynchronises on the next start line), lost
//! segments (after a timeout or when the out-of-order buffer is full the gap is skipped and
//! counted), connection close and reuse of the same addresses.
//!
//! Why by hand: no maintained crate offers passive (observer-side) reassembly with bounded
//! buffers, gap skipping and per-stream framing; smoltcp and friends are endpoint stacks.
//! Only streams that show SIP are tracked, and their number is capped (oldest evicted, counted).
//!
//! This file holds the stream table ([`Reassembler`]: streams by direction, their eviction and
//! the total budget, losses); `stream` is one direction of a connection, `pickup` the
//! connections the capture joined mid-stream.

use super::Frames;
use super::Transport;
use super::framing::{FramerStats, StreamFramer, leading_crlf, starts_with_start_line};
use super::hep_stream::HepDeframer;
use super::websocket::{self, WsDeframer};
use crate::WireMap;
use crate::time::{Interval, Timestamp};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

mod pickup;
mod stream;
pub mod tls;

use pickup::{Held, TAIL, may_be_sip, st_settled};
use stream::{CLOSED_LINGER, REUSE_DISTANCE, Stream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TcpLimits {
    /// Out-of-order bytes held per stream before the gap in front of them is skipped.
    pub max_pending_per_stream: usize,
    /// Streams tracked at once; the least recently active are evicted beyond this.
    pub max_streams: usize,
    /// How long a hole in the stream may wait for its missing segment (capture time).
    pub gap_timeout: Interval,
    /// Streams with no traffic for this long are closed (capture time).
    pub idle_timeout: Interval,
    /// SIP messages larger than this are dropped and counted.
    pub max_message: usize,
    /// Bytes held over all streams (out-of-order segments and unfinished messages); beyond
    /// this the streams holding the most are dropped (counted) until a tenth is free.
    pub max_buffered_total: usize,
}

impl Default for TcpLimits {
    fn default() -> Self {
        TcpLimits {
            max_pending_per_stream: 1 << 20,
            max_streams: 65_536,
            gap_timeout: Interval::from_secs(10),
            idle_timeout: Interval::from_secs(600),
            max_message: 1 << 20,
            max_buffered_total: 256 << 20,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpStats {
    /// Segments whose bytes had all been delivered already (TCP retransmissions).
    pub retransmitted_segments: u64,
    /// Bytes never seen: holes skipped after the timeout or buffer limit.
    pub gap_bytes: u64,
    pub streams_evicted: u64,
    /// Streams dropped, with what they held, because all streams together held more than
    /// `max_buffered_total`.
    pub buffer_evicted: u64,
    /// Holes given up because a stream's out-of-order bytes passed `max_pending_per_stream`
    /// (their bytes are in `gap_bytes` too).
    pub stream_buffer_full: u64,
    /// Remembered tails of untracked flows dropped because the cache was full.
    pub tails_evicted: u64,
    /// Early segments of untracked flows dropped because their budget was full.
    pub early_evicted: u64,
    /// Notes of lost bytes ([`StreamLoss`]) not kept because too many waited at once.
    pub losses_dropped: u64,
    pub framer: FramerStats,
}

/// Where a segment came from; passed through to the messages it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentMeta {
    pub source: usize,
    pub frame: u64,
    pub time: Timestamp,
}

/// A segment as the reassembler needs it.
pub struct Segment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub payload: &'a [u8],
    pub meta: SegmentMeta,
    /// Every frame that carried this segment (several when its IP datagram was fragmented).
    pub frames: &'a [u64],
}

/// A unit cut from a stream: a SIP message's bytes (or a HEP packet's), the segment that
/// completed it, and every frame that carried a byte of it.
#[derive(Debug, Clone, Copy)]
pub struct Reassembled<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub meta: SegmentMeta,
    pub payload: StreamPayload,
    pub frames: &'a [u64],
    pub bytes: &'a [u8],
}

/// Where the reassembler hands what it cuts from streams; any `FnMut(Reassembled)` is one.
pub trait StreamSink {
    fn reassembled(&mut self, unit: Reassembled<'_>);
}

impl<F: FnMut(Reassembled<'_>)> StreamSink for F {
    fn reassembled(&mut self, unit: Reassembled<'_>) {
        self(unit)
    }
}

/// The sink as the reassembler's methods take it.
pub type Emit<'e> = dyn StreamSink + 'e;

/// What a unit cut from a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamPayload {
    /// A SIP message, over this transport.
    Sip(Transport),
    /// A HEP v3 packet (HEP over TCP), which carries a SIP message of its own.
    Hep,
}

/// One direction of a connection, (source, destination): the key of every per-stream
/// table here. Ordered as the pair of addresses is (sweeps and evictions go in key order).
/// Hashed through [`crate::hash_addr`]: with the derived `Hash` of the pair, hashing was a
/// tenth of all instructions on an all-TCP capture, where every segment looks its stream up
/// several times (docs/performance.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct FlowKey(SocketAddr, SocketAddr);

impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        crate::hash_addr(&self.0, state);
        crate::hash_addr(&self.1, state);
    }
}

pub struct Reassembler {
    limits: TcpLimits,
    streams: WireMap<FlowKey, Stream>,
    /// The last bytes of recent text segments of flows not (yet) tracked, with the sequence
    /// number that follows them. When a capture starts mid-stream, the first SIP start line
    /// may begin in a segment that does not yet show "SIP/2.0"; its tail is kept here so the
    /// start line can be completed when the next segment arrives.
    tails: WireMap<FlowKey, (u32, Vec<u8>, Frames)>,
    /// Recent text segments of untracked flows, whole. When the first SIP message seen of a
    /// connection arrives out of order, its later segments come before its start line; once
    /// the start line makes the flow a SIP stream, these are replayed into it.
    early: WireMap<FlowKey, Vec<Held>>,
    early_bytes: usize,
    /// Held segments are being replayed (they are not held again).
    replaying: bool,
    /// Sum of every stream's `accounted` bytes, against `max_buffered_total`.
    buffered: usize,
    /// Bytes lost per connection direction since the decoder last took them
    /// ([`Reassembler::take_losses`]), at most [`MAX_LOSSES`].
    losses: Vec<StreamLoss>,
    /// TLS connections are followed from their hellos: to report them, and with a key log
    /// ([`Reassembler::set_tls_keys`]) to decrypt them.
    tls: Option<Arc<std::sync::Mutex<tls::TlsTable>>>,
}

/// Bytes of one direction of a connection that the capture did not hold (a hole given up on)
/// or that could not be read as SIP (skipped by the framer): the engine ties them to the
/// calls on that connection, whose absent messages may be among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLoss {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub time: Timestamp,
    pub bytes: u64,
}

/// Losses kept between two takes (the decoder takes them after every frame, so only a sweep
/// of many streams at once comes near); beyond it they are counted in
/// [`TcpStats::losses_dropped`].
const MAX_LOSSES: usize = 4096;

/// The bytes lost so far, by the counters that [`StreamLoss`] follows.
fn lost(stats: &TcpStats) -> u64 {
    stats.gap_bytes + stats.framer.skipped_bytes
}

impl Reassembler {
    pub fn new(limits: TcpLimits) -> Reassembler {
        Reassembler {
            limits,
            streams: WireMap::default(),
            tails: WireMap::default(),
            early: WireMap::default(),
            early_bytes: 0,
            replaying: false,
            buffered: 0,
            losses: Vec::new(),
            tls: Some(Arc::default()),
        }
    }

    /// What became of the TLS connections followed: all, or those first seen in one capture
    /// source.
    pub fn tls_summary(&self, source: Option<usize>) -> tls::TlsSummary {
        self.tls
            .as_ref()
            .and_then(|t| t.lock().ok().map(|t| t.summary(source)))
            .unwrap_or_default()
    }

    /// Follows TLS connections and decrypts them with these keys.
    pub fn set_tls_keys(&mut self, keys: Arc<crate::tls::KeyLog>) {
        self.tls = Some(Arc::new(std::sync::Mutex::new(tls::TlsTable::new(keys))));
    }

    /// The bytes lost since the last take, per connection direction, in the order they were
    /// found.
    pub fn take_losses(&mut self) -> std::vec::Drain<'_, StreamLoss> {
        self.losses.drain(..)
    }

    /// Whether [`Reassembler::take_losses`] has anything to give.
    pub fn has_losses(&self) -> bool {
        !self.losses.is_empty()
    }

    /// Notes the bytes lost on `key` since the counters read `before`.
    fn note_loss(&mut self, key: FlowKey, time: Timestamp, before: u64, stats: &mut TcpStats) {
        let bytes = lost(stats).saturating_sub(before);
        if bytes == 0 {
            return;
        }
        if self.losses.len() >= MAX_LOSSES {
            stats.losses_dropped += 1;
            return;
        }
        self.losses.push(StreamLoss {
            src: key.0,
            dst: key.1,
            time,
            bytes,
        });
    }

    /// Bytes held over all streams (see [`TcpLimits::max_buffered_total`]).
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Removes a stream and its bytes from the total.
    fn take_stream(&mut self, key: &FlowKey) -> Option<Stream> {
        let st = self.streams.remove(key)?;
        self.buffered -= st.accounted;
        Some(st)
    }

    /// Adds a stream (its bytes are counted by [`Reassembler::account`]), replacing any other.
    fn put_stream(&mut self, key: FlowKey, mut st: Stream) {
        st.tls.clone_from(&self.tls);
        if let Some(old) = self.streams.insert(key, st) {
            self.buffered -= old.accounted;
        }
    }

    /// Brings a stream's bytes in the total up to date.
    fn account(&mut self, key: &FlowKey) {
        if let Some(st) = self.streams.get_mut(key) {
            let held = st.held();
            self.buffered = self.buffered - st.accounted + held;
            st.accounted = held;
        }
    }

    /// Over the total budget: the streams holding the most are dropped with what they hold
    /// until a tenth of the budget is free. Their next SIP start line opens them again, as
    /// after a capture that began mid-stream. Rare (only hostile or pathological traffic gets
    /// here), so a sort of the streams is affordable.
    fn shed(&mut self, stats: &mut TcpStats) {
        let target = self.limits.max_buffered_total - self.limits.max_buffered_total / 10;
        let mut by_size: Vec<(usize, FlowKey)> = self
            .streams
            .iter()
            .filter(|(_, st)| st.accounted > 0)
            .map(|(k, st)| (st.accounted, *k))
            .collect();
        by_size.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        for (_, key) in by_size {
            if self.buffered <= target {
                break;
            }
            if let Some(st) = self.take_stream(&key) {
                stats.buffer_evicted += 1;
                stats.framer.skipped_bytes += st.pending_bytes as u64;
            }
        }
    }

    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Feeds one segment. Returns false if the segment belongs to no SIP stream.
    pub fn segment(&mut self, seg: Segment<'_>, stats: &mut TcpStats, emit: &mut Emit<'_>) -> bool {
        let key = FlowKey(seg.src, seg.dst);
        let (before, time) = (lost(stats), seg.meta.time);
        let sip = self.segment_tracked(seg, stats, emit);
        self.note_loss(key, time, before, stats);
        // A segment of no SIP stream changed no stream's bytes (a stream it ended left the
        // total through `take_stream`): most packets of a busy non-SIP link pay nothing here.
        if sip {
            self.account(&key);
            if self.buffered > self.limits.max_buffered_total {
                self.shed(stats);
            }
        }
        sip
    }

    fn segment_tracked(
        &mut self,
        seg: Segment<'_>,
        stats: &mut TcpStats,
        emit: &mut Emit<'_>,
    ) -> bool {
        let key = FlowKey(seg.src, seg.dst);
        if self.restarts(&seg) {
            // Its bytes so far are held in `early` and are replayed into the new stream,
            // which begins at this segment's start line.
            let st = Stream::new(seg.seq, seg.meta.time, self.limits.max_message, false);
            self.put_stream(key, st);
            self.segment_in(seg, stats, emit);
            self.replay_early(key, stats, emit);
            return true;
        }
        let tracked = self.streams.contains_key(&key);
        let sip = self.segment_in(seg, stats, emit);
        if sip && !tracked {
            self.replay_early(key, stats, emit);
        }
        if let Some(st) = self.streams.get(&key)
            && st.unanchored
            && st.emitted
        {
            st_settled(&mut self.early, &mut self.early_bytes, key);
            if let Some(st) = self.streams.get_mut(&key) {
                st.unanchored = false;
            }
        }
        sip
    }

    fn segment_in(&mut self, seg: Segment<'_>, stats: &mut TcpStats, emit: &mut Emit<'_>) -> bool {
        let key = FlowKey(seg.src, seg.dst);
        // Copies of what an unanchored stream receives, in case it restarts.
        if !self.replaying
            && self
                .streams
                .get(&key)
                .is_some_and(|st| st.unanchored && !st.emitted)
        {
            self.hold_early(key, &seg, stats);
        }
        let now = seg.meta.time;
        let seq_after_syn = seg.seq.wrapping_add(u32::from(seg.syn));
        if let Some(st) = self.streams.get(&key) {
            let distance = i64::from(seq_after_syn.wrapping_sub(st.next_seq) as i32);
            let reused = (seg.syn && distance != 0 && st.delivered > 0)
                || (st.closed && !seg.payload.is_empty() && distance.abs() >= REUSE_DISTANCE);
            if reused {
                // A new connection on the same addresses: finish the old one first.
                if let Some(mut old) = self.take_stream(&key) {
                    old.finish(key, seg.meta, stats, emit);
                }
            }
        }
        let mut prefix: Option<(Vec<u8>, Frames)> = None;
        if !self.streams.contains_key(&key) {
            if !seg.syn {
                // A remembered tail that this segment continues, for a start line split across
                // the first segments seen of a connection.
                let tail = self
                    .tails
                    .get(&key)
                    .filter(|(next, _, _)| *next == seg.seq)
                    .map(|(_, t, f)| (t.clone(), f.clone()));
                let joined_is_sip = tail.as_ref().is_some_and(|(t, _)| {
                    let mut probe = t.clone();
                    probe.extend_from_slice(
                        seg.payload
                            .get(..TAIL.min(seg.payload.len()))
                            .unwrap_or(&[]),
                    );
                    may_be_sip(&probe)
                });
                let tls_hello = self.tls.is_some() && tls::hello(seg.payload).is_some();
                if !(may_be_sip(seg.payload)
                    || tls_hello
                    || joined_is_sip
                    || websocket::is_handshake(seg.payload)
                    || websocket::frame_carries_sip(seg.payload)
                    || seg.payload.starts_with(b"HEP3"))
                {
                    self.remember_tail(key, &seg, stats);
                    self.hold_early(key, &seg, stats);
                    return false;
                }
                self.tails.remove(&key);
                prefix = tail;
            }
            if self.streams.len() >= self.limits.max_streams {
                self.evict(stats, seg.meta, emit);
            }
            let start = match &prefix {
                Some((p, _)) => seq_after_syn.wrapping_sub(p.len() as u32),
                None => seq_after_syn,
            };
            let p = seg.payload;
            let unanchored = !seg.syn
                && prefix.is_none()
                && !starts_with_start_line(p.get(leading_crlf(p)..).unwrap_or(&[]))
                && !websocket::is_handshake(p)
                && !websocket::frame_carries_sip(p)
                && !p.starts_with(b"HEP3")
                && !(self.tls.is_some() && tls::hello(p).is_some());
            let mut st = Stream::new(start, now, self.limits.max_message, seg.syn);
            st.unanchored = unanchored;
            if unanchored {
                self.hold_early(key, &seg, stats);
            }
            self.put_stream(key, st);
        }
        let limits = self.limits;
        let Some(st) = self.streams.get_mut(&key) else {
            return false;
        };
        st.last_seen = now;
        if let Some((p, frames)) = prefix {
            st.deliver(&p, key, seg.meta, &frames, stats, emit);
        }
        if seg.rst {
            st.finish(key, seg.meta, stats, emit);
            st.closed = true;
            return true;
        }
        if !seg.payload.is_empty() {
            let rel = i64::from(seq_after_syn.wrapping_sub(st.next_seq) as i32);
            let abs = st.delivered as i64 + rel;
            let end = abs + seg.payload.len() as i64;
            if end <= st.delivered as i64 {
                stats.retransmitted_segments += 1;
            } else if abs <= st.delivered as i64 {
                let skip = (st.delivered as i64 - abs) as usize;
                if let Some(fresh) = seg.payload.get(skip..) {
                    st.deliver(fresh, key, seg.meta, seg.frames, stats, emit);
                }
                st.drain(key, stats, emit);
            } else {
                let abs = abs as u64;
                match st.pending.get(&abs) {
                    Some((existing, _, _)) if existing.len() >= seg.payload.len() => {
                        stats.retransmitted_segments += 1;
                    }
                    _ => {
                        let entry = (
                            seg.payload.to_vec(),
                            seg.meta,
                            seg.frames.iter().copied().collect(),
                        );
                        if let Some((old, _, _)) = st.pending.insert(abs, entry) {
                            st.pending_bytes -= old.len();
                        }
                        st.pending_bytes += seg.payload.len();
                        st.gap_since.get_or_insert(now);
                    }
                }
                while st.pending_bytes > limits.max_pending_per_stream {
                    stats.stream_buffer_full += 1;
                    st.skip_gap(key, stats, emit);
                }
            }
        }
        if seg.fin {
            st.closed = true;
            if st.pending.is_empty() {
                st.finish(key, seg.meta, stats, emit);
            }
        }
        true
    }

    /// Periodic housekeeping on capture time: skip holes that waited too long, close idle
    /// streams.
    pub fn sweep(
        &mut self,
        now: Timestamp,
        source: usize,
        stats: &mut TcpStats,
        emit: &mut Emit<'_>,
    ) {
        let gap_ns = self.limits.gap_timeout.as_nanos();
        let idle_ns = self.limits.idle_timeout.as_nanos();
        let meta = SegmentMeta {
            source,
            frame: 0,
            time: now,
        };
        // Early segments wait as long as a hole would, no longer.
        let mut freed = 0;
        self.early.retain(|_, list| {
            list.retain(|h| {
                let keep = now.0.saturating_sub(h.meta.time.0) <= gap_ns;
                if !keep {
                    freed += h.bytes.len();
                }
                keep
            });
            !list.is_empty()
        });
        self.early_bytes -= freed;
        let gap_due = |st: &Stream| {
            st.gap_since
                .is_some_and(|t| now.0.saturating_sub(t.0) > gap_ns)
        };
        // A closed stream lingers briefly to absorb late retransmissions, then goes.
        let idle = |st: &Stream| {
            let limit = if st.closed {
                CLOSED_LINGER.as_nanos()
            } else {
                idle_ns
            };
            now.0.saturating_sub(st.last_seen.0) > limit
        };
        // Streams with work to do, in key order: both may emit messages, and the table's own
        // order is random per run, so two runs over one capture (or the one-thread and the
        // pipelined engine) put such messages in different orders within their calls.
        let mut due: Vec<_> = self
            .streams
            .iter()
            .filter(|(_, st)| gap_due(st) || idle(st))
            .map(|(key, _)| *key)
            .collect();
        due.sort();
        for key in due {
            let Some(st) = self.streams.get_mut(&key) else {
                continue;
            };
            let before = lost(stats);
            while gap_due(st) {
                st.skip_gap(key, stats, emit);
            }
            if idle(st)
                && let Some(mut st) = self.take_stream(&key)
            {
                st.finish(key, meta, stats, emit);
            }
            self.note_loss(key, now, before, stats);
        }
        // Skipped holes gave bytes back: the total follows.
        let mut total = 0;
        for st in self.streams.values_mut() {
            st.accounted = st.held();
            total += st.accounted;
        }
        self.buffered = total;
    }

    /// Evicts the least recently active tenth of the streams (amortised: eviction is rare).
    fn evict(&mut self, stats: &mut TcpStats, meta: SegmentMeta, emit: &mut Emit<'_>) {
        let mut by_age: Vec<(FlowKey, Timestamp)> = self
            .streams
            .iter()
            .map(|(k, s)| (*k, s.last_seen))
            .collect();
        // Ties in key order, not the table's (random) order: see `sweep`.
        by_age.sort_by_key(|&(k, t)| (t, k));
        let n = (self.streams.len() / 10).max(1);
        for (key, _) in by_age.into_iter().take(n) {
            if let Some(mut st) = self.take_stream(&key) {
                st.finish(key, meta, stats, emit);
                stats.streams_evicted += 1;
            }
        }
    }

    /// End of input: deliver what can be delivered, skipping holes, and flush every framer.
    pub fn finish_all(
        &mut self,
        source: usize,
        now: Timestamp,
        stats: &mut TcpStats,
        emit: &mut Emit<'_>,
    ) {
        let meta = SegmentMeta {
            source,
            frame: 0,
            time: now,
        };
        let mut keys: Vec<_> = self.streams.keys().copied().collect();
        keys.sort();
        for key in keys {
            if let Some(mut st) = self.take_stream(&key) {
                let before = lost(stats);
                st.finish(key, meta, stats, emit);
                self.note_loss(key, now, before, stats);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn flow_keys_hash_equal_when_equal_and_order_as_address_pairs() {
        use std::hash::BuildHasher;
        let hasher = foldhash::fast::RandomState::default();
        let addrs: Vec<SocketAddr> = [
            "10.0.0.1:5060",
            "10.0.0.1:5061",
            "10.0.0.2:5060",
            "0.0.0.0:0",
            "255.255.255.255:65535",
            "[::1]:5060",
            "[::ffff:10.0.0.1]:5060",
            "[2001:db8::1]:5061",
        ]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
        let mut keys = Vec::new();
        for &a in &addrs {
            for &b in &addrs {
                keys.push(FlowKey(a, b));
            }
        }
        for &x in &keys {
            for &y in &keys {
                // The same key from two places hashes the same; order is the pair's order.
                if x == y {
                    assert_eq!(hasher.hash_one(x), hasher.hash_one(FlowKey(y.0, y.1)));
                }
                assert_eq!(x.cmp(&y), (x.0, x.1).cmp(&(y.0, y.1)));
            }
        }
        // Direction matters: (a, b) and (b, a) are two streams, and most pairs hash apart.
        let differ = keys
            .iter()
            .filter(|k| k.0 != k.1 && hasher.hash_one(**k) != hasher.hash_one(FlowKey(k.1, k.0)))
            .count();
        assert_eq!(differ, keys.iter().filter(|k| k.0 != k.1).count());
        // Every key finds its own entry in a table of all of them, whatever the families.
        let table: crate::WireMap<FlowKey, usize> =
            keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        assert_eq!(table.len(), keys.len());
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(table.get(k), Some(&i));
        }
    }

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

    struct Harness {
        r: Reassembler,
        stats: TcpStats,
        out: Vec<Vec<u8>>,
    }

    impl Harness {
        fn new() -> Harness {
            Harness {
                r: Reassembler::new(TcpLimits::default()),
                stats: TcpStats::default(),
                out: Vec::new(),
            }
        }
        fn seg(&mut self, seq: u32, flags: &str, payload: &[u8], ms: i64) -> bool {
            let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
            let b = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);
            let out = &mut self.out;
            let seg = Segment {
                src: a,
                dst: b,
                seq,
                syn: flags.contains('S'),
                fin: flags.contains('F'),
                rst: flags.contains('R'),
                payload,
                meta: SegmentMeta {
                    source: 0,
                    frame: 1,
                    time: Timestamp::from_millis(ms),
                },
                frames: &[1],
            };
            self.r
                .segment(seg, &mut self.stats, &mut |r: Reassembled<'_>| {
                    out.push(r.bytes.to_vec())
                })
        }
    }

    /// Many streams each holding out-of-order bytes and unfinished messages: the total held
    /// never passes the budget by more than one segment, the streams dropped for it are
    /// counted, and a stream that comes after still delivers its messages.
    #[test]
    fn the_total_buffer_budget_holds_over_many_streams() {
        let limits = TcpLimits {
            max_buffered_total: 1 << 20,
            ..TcpLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let mut stats = TcpStats::default();
        let mut out: Vec<Vec<u8>> = Vec::new();
        let b = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);
        let head = b"INVITE sip:a@b SIP/2.0\r\nCall-ID: big\r\nContent-Length: 900000\r\n\r\n";
        let filler = vec![b'x'; 16 << 10];
        let mut most = 0;
        for port in 0..400u16 {
            let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10_000 + port);
            let meta = SegmentMeta {
                source: 0,
                frame: u64::from(port),
                time: Timestamp::from_millis(i64::from(port)),
            };
            let mut feed = |seq: u32, syn: bool, payload: &[u8], r: &mut Reassembler| {
                let seg = Segment {
                    src: a,
                    dst: b,
                    seq,
                    syn,
                    fin: false,
                    rst: false,
                    payload,
                    meta,
                    frames: &[meta.frame],
                };
                r.segment(seg, &mut stats, &mut |r: Reassembled<'_>| {
                    out.push(r.bytes.to_vec())
                });
            };
            // An unfinished message in order, then a segment far ahead (held out of order).
            feed(0, true, b"", &mut r);
            feed(1, false, head, &mut r);
            feed(1 + head.len() as u32, false, &filler, &mut r);
            feed(100_000, false, &filler, &mut r);
            most = most.max(r.buffered());
        }
        assert!(most <= (1 << 20) + 2 * filler.len(), "held {most}");
        assert!(stats.buffer_evicted > 0);
        // A fresh stream is not starved by the earlier ones.
        let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9_999);
        let seg = Segment {
            src: a,
            dst: b,
            seq: 1,
            syn: false,
            fin: false,
            rst: false,
            payload: MSG,
            meta: SegmentMeta {
                source: 0,
                frame: 9_999,
                time: Timestamp::from_millis(9_999),
            },
            frames: &[9_999],
        };
        out.clear();
        r.segment(seg, &mut stats, &mut |r: Reassembled<'_>| {
            out.push(r.bytes.to_vec())
        });
        assert_eq!(out, vec![MSG.to_vec()]);
    }

    /// Each message lists the frames that carried its bytes: one segment, several, or a
    /// segment shared with the message before it; out of order and across a retransmission.
    #[test]
    fn messages_list_the_frames_that_carried_them() {
        let mut r = Reassembler::new(TcpLimits::default());
        let mut stats = TcpStats::default();
        let mut out: Vec<(u64, Vec<u64>, Vec<u8>)> = Vec::new();
        let a = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000);
        let b = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);
        let mut data = MSG.to_vec();
        data.extend_from_slice(MSG);
        data.extend_from_slice(MSG);
        let n = MSG.len();
        // Segments: [0, n-10) [n-10, n+5) [n+5, 2n) [2n, 3n); the third arrives (frame 12)
        // before the second (frame 13), and the first is retransmitted.
        let cuts = [
            (0, n - 10, 11),
            (n + 5, 2 * n, 12),
            (n - 10, n + 5, 13),
            (0, n - 10, 14),
        ];
        let mut feed = |seq: usize, end: usize, frame: u64, syn: bool, out: &mut Vec<_>| {
            let seg = Segment {
                src: a,
                dst: b,
                // The SYN takes sequence number 1000; data byte `k` is 1001 + k.
                seq: if syn { 1000 } else { 1001 + seq as u32 },
                syn,
                fin: false,
                rst: false,
                payload: &data[seq..end],
                meta: SegmentMeta {
                    source: 0,
                    frame,
                    time: Timestamp::from_millis(frame as i64),
                },
                frames: &[frame],
            };
            r.segment(seg, &mut stats, &mut |r: Reassembled<'_>| {
                out.push((r.meta.frame, r.frames.to_vec(), r.bytes.to_vec()))
            });
        };
        feed(0, 0, 10, true, &mut out);
        for (s, e, f) in cuts {
            feed(s, e, f, false, &mut out);
        }
        feed(2 * n, 3 * n, 15, false, &mut out);
        let frames: Vec<Vec<u64>> = out.iter().map(|(_, f, _)| f.clone()).collect();
        assert_eq!(frames, vec![vec![11, 13], vec![13, 12], vec![15]]);
        assert!(out.iter().all(|(_, _, m)| m == MSG));
        // Each message is reported at the frame that completed it: the second message's last
        // bytes came in frame 12, but it was complete only when frame 13 filled the hole
        // (regression: it was reported at frame 12, where tshark reports 13).
        let at: Vec<u64> = out.iter().map(|(a, _, _)| *a).collect();
        assert_eq!(at, vec![13, 13, 15]);
    }

    /// Mid-stream, the first message's segments arrive last-first: the ones without a start
    /// line are held until the start line makes the flow a SIP stream, then replayed into it
    /// (regression: a pcap export of an out-of-order TCP message lost it on re-reading).
    #[test]
    fn an_out_of_order_first_message_mid_stream_is_not_lost() {
        let mut h = Harness::new();
        let body = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n";
        let mut msg = b"INVITE sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: ".to_vec();
        msg.extend_from_slice(format!("{}\r\n\r\n", body.len()).as_bytes());
        msg.extend_from_slice(body);
        let (a, b) = (30, msg.len() - 10);
        // No SYN: the capture begins mid-connection at sequence number 5000. Neither later
        // segment shows "SIP/2.0", so neither can start the stream.
        assert!(!h.seg(5000 + b as u32, "", &msg[b..], 1));
        assert!(!h.seg(5000 + a as u32, "", &msg[a..b], 2));
        assert!(h.seg(5000, "", &msg[..a], 3));
        assert!(h.seg(5000 + msg.len() as u32, "", MSG, 4));
        assert_eq!(h.out.len(), 2);
        assert_eq!(h.out[0], msg);
        assert_eq!(h.out[1], MSG);
        assert_eq!(h.r.early_bytes, 0);
        assert!(h.r.early.is_empty());
    }

    /// The same, when a later segment shows "SIP/2.0" (a Via header) and so starts the
    /// stream mid-message, and the first segment holds only part of the start line: the
    /// stream restarts at the first segment when it comes, as long as nothing came out yet.
    #[test]
    fn a_late_first_segment_restarts_a_stream_joined_mid_message() {
        let mut h = Harness::new();
        let msg: &[u8] =
            b"SIP/2.0 100 Trying\r\nVia: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";
        let (a, b) = (6, msg.len() - 20);
        assert!(!h.seg(7000 + b as u32, "", &msg[b..], 1));
        assert!(
            h.seg(7000 + a as u32, "", &msg[a..b], 2),
            "Via: SIP/2.0 starts a stream"
        );
        assert!(h.out.is_empty());
        assert!(h.seg(7000, "", &msg[..a], 3));
        assert_eq!(h.out, vec![msg.to_vec()]);
        assert!(h.seg(7000 + msg.len() as u32, "", MSG, 4));
        assert_eq!(h.out.len(), 2);
        assert_eq!(h.r.early_bytes, 0);
    }

    /// Held segments of flows that never become SIP streams are forgotten after the gap
    /// timeout, and the budget is returned.
    #[test]
    fn early_segments_expire() {
        let mut h = Harness::new();
        assert!(!h.seg(1000, "", b"not sip, but text\r\n", 0));
        assert_eq!(h.r.early.len(), 1);
        let later = Timestamp::from_millis(TcpLimits::default().gap_timeout.as_millis() + 1000);
        h.r.sweep(later, 0, &mut h.stats, &mut |_: Reassembled<'_>| {});
        assert!(h.r.early.is_empty());
        assert_eq!(h.r.early_bytes, 0);
    }

    #[test]
    fn connection_close_and_reuse_of_the_same_addresses() {
        let mut h = Harness::new();
        h.seg(100, "S", &[], 0);
        h.seg(101, "", MSG, 1);
        h.seg(101 + MSG.len() as u32, "F", &[], 2);
        // A new connection on the same ports with an unrelated sequence number.
        h.seg(900_000, "S", &[], 3);
        h.seg(900_001, "", MSG, 4);
        // And a retransmission of the new message is not a second message.
        h.seg(900_001, "", MSG, 5);
        assert_eq!(h.out.len(), 2);
        assert_eq!(h.stats.retransmitted_segments, 1);
    }

    #[test]
    fn reset_flushes_and_closes() {
        let mut h = Harness::new();
        h.seg(1, "S", &[], 0);
        h.seg(2, "", &MSG[..10], 1);
        h.seg(2 + 10, "R", &[], 2);
        assert!(h.out.is_empty(), "half a message is not a message");
        assert!(h.stats.framer.skipped_bytes >= 10);
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut h = Harness::new();
        let isn = u32::MAX - 5;
        h.seg(isn, "S", &[], 0);
        let (a, b) = MSG.split_at(20);
        h.seg(isn.wrapping_add(1 + 20), "", b, 1); // out of order, across the wrap
        h.seg(isn.wrapping_add(1), "", a, 2);
        assert_eq!(h.out, vec![MSG.to_vec()]);
    }

    #[test]
    fn a_lost_segment_is_skipped_after_the_timeout() {
        let mut h = Harness::new();
        h.seg(1, "S", &[], 0);
        h.seg(2, "", MSG, 1);
        // The next message's first half is never captured; its second half and a third
        // message wait behind the hole until the gap timeout.
        let start = 2 + MSG.len() as u32;
        h.seg(start + 20, "", &MSG[20..], 2);
        h.seg(start + MSG.len() as u32, "", MSG, 3);
        assert_eq!(h.out.len(), 1);
        let (r, stats, out) = (&mut h.r, &mut h.stats, &mut h.out);
        r.sweep(
            Timestamp::from_millis(20_000),
            0,
            stats,
            &mut |r: Reassembled<'_>| out.push(r.bytes.to_vec()),
        );
        assert_eq!(h.out.len(), 2, "the message after the hole is found");
        assert_eq!(h.stats.gap_bytes, 20);
    }

    /// Regression: a sweep skipped the holes of its streams in the stream table's order,
    /// which is random per run, so messages that several streams released in one sweep
    /// reached their calls in a different order from run to run (and the pipelined engine
    /// disagreed with the one-thread one on damaged captures).
    #[test]
    fn a_sweep_releases_streams_in_the_same_order_every_run() {
        let release_order = || {
            let mut r = Reassembler::new(TcpLimits::default());
            let mut stats = TcpStats::default();
            let b = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);
            let mut seg = |r: &mut Reassembler, port: u16, seq: u32, syn: bool, payload: &[u8]| {
                let seg = Segment {
                    src: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
                    dst: b,
                    seq,
                    syn,
                    fin: false,
                    rst: false,
                    payload,
                    meta: SegmentMeta {
                        source: 0,
                        frame: 1,
                        time: Timestamp::from_millis(1),
                    },
                    frames: &[1],
                };
                r.segment(seg, &mut stats, &mut |_: Reassembled<'_>| {});
            };
            // Each stream: a message behind a hole of 20 bytes.
            for port in 40_000..40_064 {
                seg(&mut r, port, 1, true, &[]);
                seg(&mut r, port, 2 + 20, false, MSG);
            }
            let mut order = Vec::new();
            r.sweep(
                Timestamp::from_millis(60_000),
                0,
                &mut stats,
                &mut |r: Reassembled<'_>| order.push(r.src.port()),
            );
            order
        };
        let first = release_order();
        assert_eq!(first, (40_000..40_064).collect::<Vec<u16>>());
        for _ in 0..8 {
            assert_eq!(release_order(), first);
        }
    }

    #[test]
    fn non_sip_connections_get_no_state() {
        let mut h = Harness::new();
        assert!(!h.seg(5, "", b"\x16\x03\x01\x00\x05hello", 0));
        assert!(!h.seg(500, "", b"GET / HTTP/1.1\r\n\r\n", 0));
        assert_eq!(h.r.stream_count(), 0);
    }
}
