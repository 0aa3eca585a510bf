//! One direction of a TCP connection: sequence numbers to stream offsets, out-of-order
//! segments held and put in order, holes given up on, and the framer that cuts the bytes into
//! SIP messages (or WebSocket frames, or HEP packets), with the frames each message came in.

use super::*;

/// What a stream's bytes are: SIP messages back to back, WebSocket frames carrying them, or
/// HEP packets.
pub(super) enum Framer {
    Sip(StreamFramer),
    Ws(WsDeframer),
    Hep(HepDeframer),
    /// TLS, decrypted with a key log: SIP or WebSocket inside.
    Tls(super::tls::TlsFramer),
}

impl Framer {
    pub(super) fn payload(&self) -> StreamPayload {
        match self {
            Framer::Sip(_) => StreamPayload::Sip(Transport::Tcp),
            Framer::Ws(_) => StreamPayload::Sip(Transport::Ws),
            Framer::Hep(_) => StreamPayload::Hep,
            Framer::Tls(t) if t.websocket() => StreamPayload::Sip(Transport::Wss),
            Framer::Tls(_) => StreamPayload::Sip(Transport::Tls),
        }
    }
    pub(super) fn held(&self) -> usize {
        match self {
            Framer::Sip(f) => f.held(),
            Framer::Ws(f) => f.held(),
            Framer::Hep(f) => f.held(),
            Framer::Tls(f) => f.held(),
        }
    }
    pub(super) fn start(&self) -> u64 {
        match self {
            Framer::Sip(f) => f.start(),
            Framer::Ws(f) => f.start(),
            Framer::Hep(f) => f.start(),
            Framer::Tls(f) => f.start(),
        }
    }
    pub(super) fn gap(&mut self, missing: u64, stats: &mut FramerStats) {
        match self {
            Framer::Sip(f) => f.gap(missing, stats),
            Framer::Ws(f) => f.gap(missing, stats),
            Framer::Hep(f) => f.gap(missing, stats),
            Framer::Tls(f) => f.gap(missing, stats),
        }
    }
    /// Emits each message with the stream offsets of its first and past-last byte on the wire.
    pub(super) fn push(
        &mut self,
        data: &[u8],
        stats: &mut FramerStats,
        emit: &mut dyn FnMut(u64, u64, &[u8]),
    ) {
        match self {
            Framer::Sip(f) => f.push(data, stats, &mut |at, m| emit(at, at + m.len() as u64, m)),
            Framer::Ws(f) => f.push(data, stats, emit),
            Framer::Hep(f) => f.push(data, stats, emit),
            Framer::Tls(f) => f.push(data, stats, emit),
        }
    }
    pub(super) fn finish(
        &mut self,
        stats: &mut FramerStats,
        emit: &mut dyn FnMut(u64, u64, &[u8]),
    ) {
        match self {
            Framer::Sip(f) => f.finish(stats, &mut |at, m| emit(at, at + m.len() as u64, m)),
            Framer::Ws(f) => f.finish(stats),
            Framer::Hep(f) => f.finish(stats),
            Framer::Tls(f) => f.finish(stats, emit),
        }
    }
}

/// Spans of stream bytes kept per stream for attributing messages to frames; a message
/// longer than this many segments lists the frames of its last ones only.
pub(super) const MAX_SPANS: usize = 1024;

pub(super) struct Stream {
    /// Sequence number of the next byte expected.
    pub(super) next_seq: u32,
    pub(super) pending: BTreeMap<StreamOffset, (Vec<u8>, SegmentMeta, Frames)>,
    /// Which frames delivered which stream bytes (start, end, frames), for the bytes the
    /// framer still holds.
    pub(super) spans: VecDeque<Span>,
    pub(super) pending_bytes: usize,
    /// Absolute stream offset of `next_seq` (64-bit, so ordering survives wrap-around).
    pub(super) delivered: u64,
    pub(super) gap_since: Option<Timestamp>,
    pub(super) framer: Framer,
    pub(super) last_seen: Timestamp,
    /// The segment that delivered the latest bytes: messages flushed at the end of the
    /// stream are attributed to it.
    pub(super) last_meta: Option<SegmentMeta>,
    pub(super) closed: bool,
    pub(super) max_message: usize,
    /// Joined in the middle of a message (no SYN, no start line at its first byte): until it
    /// yields a message, an earlier segment that begins with a start line restarts it there.
    pub(super) unanchored: bool,
    /// At least one message came out of this stream.
    pub(super) emitted: bool,
    /// What this stream counted in the reassembler's total when last looked at.
    pub(super) accounted: usize,
    /// With a key log: the TLS connections followed, for a stream that opens with a hello.
    pub(super) tls: Option<Arc<std::sync::Mutex<super::tls::TlsTable>>>,
}

/// Absolute offset of a byte in its stream.
pub(super) type StreamOffset = u64;

/// Delivered bytes `start..end` of a stream, the frames that carried them and the segment
/// that delivered them.
pub(super) struct Span {
    pub(super) start: StreamOffset,
    pub(super) end: StreamOffset,
    pub(super) frames: Frames,
    pub(super) meta: SegmentMeta,
}

/// How long a closed stream is kept for late retransmissions (capture time).
pub(super) const CLOSED_LINGER: Interval = Interval::from_secs(30);

/// Sequence distance beyond which a segment is taken for a new connection, not this one.
pub(super) const REUSE_DISTANCE: i64 = 1 << 30;

impl Stream {
    pub(super) fn new(next_seq: u32, now: Timestamp, max_message: usize, from_syn: bool) -> Stream {
        Stream {
            next_seq,
            pending: BTreeMap::new(),
            spans: VecDeque::new(),
            pending_bytes: 0,
            delivered: 0,
            gap_since: None,
            framer: Framer::Sip(StreamFramer::new(max_message, from_syn)),
            last_seen: now,
            last_meta: None,
            closed: false,
            max_message,
            unanchored: false,
            emitted: false,
            accounted: 0,
            tls: None,
        }
    }

    /// Bytes of memory the stream holds: out-of-order segments and the framer's buffer.
    pub(super) fn held(&self) -> usize {
        self.pending_bytes + self.framer.held()
    }

    pub(super) fn deliver(
        &mut self,
        data: &[u8],
        addrs: FlowKey,
        meta: SegmentMeta,
        frames: &[u64],
        stats: &mut TcpStats,
        emit: &mut Emit<'_>,
    ) {
        let start = self.delivered;
        // SIP over WebSocket (RFC 7118): the connection opens with an HTTP upgrade, or, joined
        // after it, with a frame that carries a SIP message.
        if start == 0 && matches!(self.framer, Framer::Sip(_)) {
            if websocket::is_handshake(data) {
                self.framer = Framer::Ws(WsDeframer::new(self.max_message));
            } else if websocket::frame_carries_sip(data) {
                self.framer = Framer::Ws(WsDeframer::joined(self.max_message));
            } else if data.starts_with(b"HEP3") {
                // HEP over TCP: an agent shipping captured SIP to a collector.
                self.framer = Framer::Hep(HepDeframer::new());
            } else if let Some(table) = &self.tls
                && let Some(dir) = super::tls::hello(data)
                && let Ok(mut t) = table.lock()
            {
                // TLS with a key log: the connection is shared with the other direction.
                let conn = t.connection(addrs.0, addrs.1, meta.source);
                if let Ok(mut c) = conn.lock() {
                    c.server.get_or_insert(match dir {
                        crate::tls::session::Dir::ClientToServer => addrs.1,
                        crate::tls::session::Dir::ServerToClient => addrs.0,
                    });
                }
                self.framer = Framer::Tls(super::tls::TlsFramer::new(
                    conn,
                    dir,
                    Arc::clone(&t.keys),
                    self.max_message,
                    start,
                ));
            }
        }
        self.delivered += data.len() as u64;
        self.last_meta = Some(meta);
        self.next_seq = self.next_seq.wrapping_add(data.len() as u32);
        if self.spans.len() >= MAX_SPANS {
            self.spans.pop_front();
        }
        self.spans.push_back(Span {
            start,
            end: self.delivered,
            frames: frames.iter().copied().collect(),
            meta,
        });
        let mut emitted = false;
        {
            let mut out = framed(&self.spans, addrs, meta, self.framer.payload(), emit);
            self.framer
                .push(data, &mut stats.framer, &mut |at, end, m| {
                    emitted = true;
                    out(at, end, m)
                });
        }
        self.emitted |= emitted;
        self.forget_spans();
    }

    /// Drops the spans of bytes the framer has let go of.
    pub(super) fn forget_spans(&mut self) {
        let kept_from = self.framer.start();
        while self.spans.front().is_some_and(|s| s.end <= kept_from) {
            self.spans.pop_front();
        }
    }

    /// Delivers buffered segments that have become contiguous.
    pub(super) fn drain(&mut self, addrs: FlowKey, stats: &mut TcpStats, emit: &mut Emit<'_>) {
        while let Some(entry) = self.pending.first_entry() {
            let off = *entry.key();
            if off > self.delivered {
                break;
            }
            let (data, meta, frames) = entry.remove();
            self.pending_bytes -= data.len();
            let skip = (self.delivered - off) as usize;
            if let Some(fresh) = data.get(skip..).filter(|f| !f.is_empty()) {
                self.deliver(fresh, addrs, meta, &frames, stats, emit);
            }
        }
        if self.pending.is_empty() {
            self.gap_since = None;
        }
    }

    /// Gives up on the hole before the first buffered segment.
    pub(super) fn skip_gap(&mut self, addrs: FlowKey, stats: &mut TcpStats, emit: &mut Emit<'_>) {
        let Some((&off, _)) = self.pending.first_key_value() else {
            return;
        };
        let missing = off.saturating_sub(self.delivered);
        stats.gap_bytes += missing;
        self.framer.gap(missing, &mut stats.framer);
        self.forget_spans();
        self.delivered += missing;
        self.next_seq = self.next_seq.wrapping_add(missing as u32);
        self.gap_since = None;
        self.drain(addrs, stats, emit);
    }

    pub(super) fn finish(
        &mut self,
        addrs: FlowKey,
        meta: SegmentMeta,
        stats: &mut TcpStats,
        emit: &mut Emit<'_>,
    ) {
        while !self.pending.is_empty() {
            self.skip_gap(addrs, stats, emit);
        }
        let meta = self.last_meta.unwrap_or(meta);
        {
            let mut out = framed(&self.spans, addrs, meta, self.framer.payload(), emit);
            self.framer.finish(&mut stats.framer, &mut out);
        }
        self.spans.clear();
    }
}

/// Hands a framed message (its stream offsets and bytes) on, with the frames that carried it
/// and the segment that completed it (`meta` when the spans no longer know).
pub(super) fn framed<'a>(
    spans: &'a VecDeque<Span>,
    addrs: FlowKey,
    meta: SegmentMeta,
    payload: StreamPayload,
    emit: &'a mut Emit<'_>,
) -> impl FnMut(u64, u64, &[u8]) + 'a {
    move |at, end, m| {
        let (carried, done) = frames_of(spans, at, end);
        emit.reassembled(Reassembled {
            src: addrs.0,
            dst: addrs.1,
            meta: done.unwrap_or(meta),
            payload,
            frames: &carried,
            bytes: m,
        })
    }
}

/// The frames whose bytes overlap stream offsets `at..end`, in stream order, each
/// once; and the segment among them that arrived last, which completed the message (when
/// segments arrive out of order, that is not the one holding its last bytes). A message is
/// reported at that segment's frame and time, as tshark does.
pub(super) fn frames_of(
    spans: &VecDeque<Span>,
    at: u64,
    end: u64,
) -> (Frames, Option<SegmentMeta>) {
    let mut out = Frames::new();
    let mut last: Option<SegmentMeta> = None;
    for Span {
        start: s,
        end: e,
        frames,
        meta,
    } in spans
    {
        if *s < end && *e > at {
            for f in frames {
                if !out.contains(f) {
                    out.push(*f);
                }
            }
            // Frame numbers give the arrival order within one capture file; across merged
            // files only the timestamps compare.
            let later = |l: SegmentMeta| {
                if l.source == meta.source {
                    meta.frame > l.frame
                } else {
                    meta.time > l.time
                }
            };
            if last.is_none_or(later) {
                last = Some(*meta);
            }
        }
    }
    (out, last)
}
