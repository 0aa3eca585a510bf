//! The call table: calls by Call-ID in a table of places, the streaming timers that decide
//! when a call is over (linger and idle queues), connections and their calls, the memory
//! budget's accounting and shedding, and the hand-out of finished calls. Applies what
//! [`super::Ingest`] prepared; reads no bytes.

use super::*;

/// The call table and what feeds it; apart from the decoder so that the decoder can hand
/// each message to it directly, without copying.
pub(super) struct Model {
    pub(super) config: EngineConfig,
    /// Calls by Call-ID: where each is in `slots`.
    pub(super) calls: WireMap<Arc<str>, u32>,
    /// The calls. Boxed: a call is 400 bytes, which the table would otherwise hold, and move
    /// on every growth. The queues below name a call by its place here and its `seq` (places
    /// are reused), not by Call-ID: looking a call up by Call-ID when its timer ran out read
    /// the Call-ID and the table's bucket from memory long gone cold, two cache misses of
    /// the three a timer cost, and every queue entry held a count on the shared Call-ID.
    #[allow(clippy::vec_box)]
    pub(super) slots: Vec<Option<Box<Call>>>,
    /// Places in `slots` free for the next call.
    pub(super) free: Vec<u32>,
    pub(super) next_seq: u64,
    /// (sip_messages, malformed) per source.
    pub(super) counts: std::collections::BTreeMap<usize, (u64, u64)>,
    pub(super) orphans: Vec<Orphan>,
    /// The timers: when to look at a call again, for a message that moved its timer earlier
    /// (its first, or one after the call had gone quiet), in arrival order. Deadlines are
    /// (nearly) increasing, so a FIFO serves: O(1) and sequential in memory.
    ///
    /// A call has one live entry, here or in `idle`: the one whose deadline is the call's
    /// `clock.wake`; any other is stale and passed over. (One entry per message cost an
    /// atomic count on the shared Call-ID and a table lookup per message, a fifth of the
    /// correlating thread's time; the timer runs out at the same moment either way, the last
    /// message's time plus the linger, because a call not yet quiet is looked at again then.)
    pub(super) linger: VecDeque<(Timestamp, Slot)>,
    /// The timers: calls looked at again later than their first entry said: not yet quiet for
    /// the linger, or quiet but not over (an answered call with no BYE yet, a ringing INVITE).
    /// Out of order: a heap, of about one entry per call.
    pub(super) idle: BinaryHeap<Reverse<(Timestamp, Slot)>>,
    /// Boxed as the table holds them: handing out a call moves a pointer, not the record.
    #[allow(clippy::vec_box)]
    pub(super) finished: Vec<Box<Call>>,
    /// Not streaming: calls that are over, closed by the same rule and at the same moment as
    /// streaming hands them out (so that every output mode finds the same calls), and kept,
    /// by creation order (the oldest is evicted first; one is removed from the middle when it
    /// is shed).
    pub(super) closed: std::collections::BTreeMap<u64, Box<Call>>,
    /// Bytes held by the calls in `slots` and `closed`, by accounting: each call's
    /// [`Call::footprint`] and [`TABLE_BYTES_PER_CALL`].
    pub(super) held: usize,
    /// Calls that began with an out-of-dialog request, in creation order: the first to go when
    /// memory runs short, if they are still [`expendable`] then (entries may be stale).
    pub(super) expendable: VecDeque<Slot>,
    /// Expendable calls passed over by a round of shedding because their source is not a
    /// scanner: the next to go, after the scanners'.
    pub(super) expendable_later: VecDeque<Slot>,
    /// Creation order of calls, for eviction of the oldest (entries may be stale).
    pub(super) creation: VecDeque<Slot>,
    /// The calls that last carried messages on each TCP connection (either direction), so
    /// that bytes the connection lost are told to them ([`Call::lost_bytes`]); at most
    /// [`MAX_CONNECTIONS`] connections, beyond which those whose calls are over are dropped
    /// (and, if too few are, the table starts again, counted).
    pub(super) connections: crate::WireMap<ConnectionKey, [Option<Slot>; CALLS_PER_CONNECTION]>,
    /// Every call that ended (closed, handed out or evicted), tallied by the source that
    /// began it, to tell scanners.
    pub(super) scanners: crate::flow::scanner::ScannerTable,
    /// The capture points messages came from, and the delays between their copies.
    pub(super) points: crate::flow::points::CapturePoints,
    pub(super) counters: EngineCounters,
    /// The media analysis (`None` when it is off).
    pub(super) media: Option<crate::media::Tracker>,
    /// Streams tied to no call, once the input ended.
    pub(super) untied: Vec<crate::media::Stream>,
    /// Told of RTCP and of calls as they end (`None` mostly).
    pub(super) reporter: Option<Box<dyn super::Reporter>>,
    /// With a reporter: the Call-ID of each call in the table whose SDP the media analysis
    /// knows, by creation number, to name the call of an RTCP compound.
    pub(super) media_call_ids: crate::WireMap<u64, Arc<str>>,
}

/// A TCP connection, either direction: the two addresses in order. Hashed through
/// [`crate::hash_addr`], as the TCP stream table's key is (the derived hash of two `SocketAddr`s
/// feeds the hasher field by field, and this is looked up for every TCP message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ConnectionKey {
    pub(super) low: std::net::SocketAddr,
    pub(super) high: std::net::SocketAddr,
}

impl std::hash::Hash for ConnectionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        crate::hash_addr(&self.low, state);
        crate::hash_addr(&self.high, state);
    }
}

impl ConnectionKey {
    pub(super) fn of(a: std::net::SocketAddr, b: std::net::SocketAddr) -> ConnectionKey {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        ConnectionKey { low, high }
    }
}

/// Calls remembered per connection: the latest few that carried a message on it (a trunk
/// between two proxies carries many calls, and a loss can only hide the messages of calls
/// that were in progress on it).
pub(super) const CALLS_PER_CONNECTION: usize = 4;
/// Connections remembered at once ([`Model::connections`]).
pub(super) const MAX_CONNECTIONS: usize = 65_536;

/// What the call table spends on a call besides the call itself: its entry in the Call-ID
/// table, its place, and its entries in the timer and eviction queues.
pub(super) const TABLE_BYTES_PER_CALL: usize = 160;

/// What `held` bytes cost in resident memory: the allocator rounds each block up to its size
/// class and keeps pages partly used, 1.2 to 1.3 times the bytes asked for on the benchmark
/// captures and floods (docs/performance.md). The budget counts this share too, so that it
/// bounds the process's memory and not only what was asked for.
pub(super) fn resident(held: usize) -> usize {
    held.saturating_add(held / 4)
}

/// Whether a call is the first to go when memory runs short: a single out-of-dialog request
/// (with its retransmissions) that was never answered, or answered only with a 4xx, and no
/// dialog. A scanner's probe, an OPTIONS ping: the least a user loses.
pub(super) fn expendable(call: &Call) -> bool {
    let mut requests = call
        .transactions
        .iter()
        .filter(|t| t.method != "ACK" && t.method != "CANCEL");
    let single = requests.next().is_some_and(|t| {
        t.first_provisional.is_none() && t.final_status().is_none_or(|s| (400..500).contains(&s))
    });
    single && requests.next().is_none() && call.dialogs.is_empty()
}

/// A call as the queues name it: its creation number (which no other call has) first, so
/// that entries due at the same moment are taken in the order the calls began, then its place
/// in [`Model::slots`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Slot {
    pub(super) seq: u64,
    pub(super) at: u32,
}

/// One message ready for the call model, or a note that bytes looked like SIP but did not
/// parse. Produced by [`Ingest`], consumed by the model.
// The message variant is large and the other tiny on purpose: boxing the message would add
// an allocation per message to save padding on the rare unparsable case.
impl Model {
    pub(super) fn count(&mut self, source: usize) -> &mut (u64, u64) {
        self.counts.entry(source).or_default()
    }

    // Inlined (one caller) for the same reason as `Call::add`: fewer copies of each record.
    #[inline]
    pub(super) fn apply(&mut self, p: Prepared, text: &str) {
        match p {
            Prepared::Unparsable { source } => {
                let c = self.count(source);
                c.0 += 1;
                c.1 += 1;
            }
            Prepared::Message {
                call_id,
                msg,
                init,
                offer,
                malformed,
            } => self.apply_message(call_id, msg, init, offer, malformed, text),
            // Parsed by `Engine::apply` before they reach the model.
            Prepared::Deferred(_) => {}
            // Taken by `Engine::apply` with the batch's bytes.
            Prepared::Media(_) => {}
            Prepared::Tick(time) => self.expire(time),
            Prepared::Loss(loss) => self.lost(loss),
        }
    }

    /// A prepared message, its fields moved straight out of the batch entry (gathering them
    /// into a tuple first copied the record once more).
    #[inline]
    pub(super) fn apply_message(
        &mut self,
        call_id: Option<std::ops::Range<usize>>,
        msg: SipMessage,
        init: Option<Box<CallInit>>,
        offer: Option<Box<crate::media::Offer>>,
        malformed: bool,
        text: &str,
    ) {
        {
            let c = self.count(msg.source);
            c.0 += 1;
            c.1 += u64::from(malformed);
        }
        let Some(call_id) = call_id.map(|r| text.get(r).unwrap_or("")) else {
            if self.orphans.len() < self.config.max_orphans {
                self.orphans.push(Orphan {
                    message: msg,
                    reason: "no Call-ID".into(),
                });
            } else {
                self.counters.orphans_dropped += 1;
            }
            return;
        };
        let due = msg.time.saturating_add(self.config.linger);
        let max_messages = self.config.max_messages_per_call;
        let connection = msg
            .transport
            .is_reliable()
            .then(|| ConnectionKey::of(msg.src, msg.dst));
        // One lookup per message; the queues name the call by its place, not its Call-ID.
        let known = self.calls.get(call_id).copied().and_then(|at| {
            let call = self.slots.get_mut(at as usize)?.as_mut()?;
            Some((at, call))
        });
        let dropped = match known {
            Some((at, call)) => {
                if let Some(tracker) = self.media.as_mut() {
                    note_media(
                        tracker,
                        call.seq,
                        call.messages.first(),
                        &msg,
                        offer.as_deref(),
                    );
                    if self.reporter.is_some() && offer.is_some() {
                        self.media_call_ids
                            .entry(call.seq)
                            .or_insert_with(|| call.call_id.clone());
                    }
                }
                let before = call.dropped_messages;
                let bytes = call.footprint();
                call.add_seen(msg, max_messages, &mut self.points);
                self.held = (self.held + call.footprint()).saturating_sub(bytes);
                // Nearly always the call's timer already runs out sooner; only a message after
                // the call went quiet (the BYE of an answered call) brings it forward.
                let slot = Slot { seq: call.seq, at };
                if due < call.clock.wake {
                    call.clock.wake = due;
                    self.linger.push_back((due, slot));
                }
                let dropped = call.dropped_messages - before;
                if let Some(key) = connection {
                    self.uses_connection(key, slot);
                }
                dropped
            }
            None => {
                if self.calls.len() + self.closed.len() >= self.config.max_calls {
                    self.evict_oldest();
                }
                let seq = self.next_seq;
                self.next_seq += 1;
                let init = init.map(|b| *b).unwrap_or_default();
                let key: Arc<str> = Arc::from(call_id);
                let mut call = Box::new(Call::new(key.clone(), seq, init));
                let out_of_dialog = msg.is_request() && msg.to_tag.is_none();
                if let Some(tracker) = self.media.as_mut() {
                    note_media(tracker, seq, Some(&msg), &msg, offer.as_deref());
                    if self.reporter.is_some() && offer.is_some() {
                        self.media_call_ids.insert(seq, key.clone());
                    }
                }
                call.add_seen(msg, max_messages, &mut self.points);
                let dropped = call.dropped_messages;
                let at = match self.free.pop() {
                    Some(at) => at,
                    None => {
                        // More calls at once than u32 places: beyond any `max_calls` that
                        // fits in memory. The call is evicted at once, as `evict_oldest`
                        // would: counted, and handed out when streaming.
                        let Ok(at) = u32::try_from(self.slots.len()) else {
                            self.counters.calls_evicted += 1;
                            self.counters.messages_dropped += dropped;
                            if self.config.streaming {
                                self.finished.push(call);
                            }
                            return;
                        };
                        self.slots.push(None);
                        at
                    }
                };
                let slot = Slot { seq, at };
                call.clock.wake = due;
                self.linger.push_back((due, slot));
                self.held += call.footprint() + TABLE_BYTES_PER_CALL;
                if let Some(place) = self.slots.get_mut(at as usize) {
                    *place = Some(call);
                }
                self.calls.insert(key, at);
                self.creation.push_back(slot);
                if out_of_dialog && self.config.max_memory.is_some() {
                    self.expendable.push_back(slot);
                }
                if let Some(key) = connection {
                    self.uses_connection(key, slot);
                }
                dropped
            }
        };
        self.counters.messages_dropped += dropped;
        if let Some(budget) = self.config.max_memory
            && resident(self.held) > budget
        {
            self.shed(budget);
        }
    }

    /// Remembers that the call in `slot` carried a message on the connection.
    pub(super) fn uses_connection(&mut self, key: ConnectionKey, slot: Slot) {
        if self.connections.len() >= MAX_CONNECTIONS && !self.connections.contains_key(&key) {
            // Connections whose calls are all over go first; when that frees less than a
            // quarter (so that the pass stays amortised O(1) per connection), the table is
            // emptied (counted).
            let slots = &self.slots;
            let live = |s: &Option<Slot>| {
                s.is_some_and(|s| {
                    slots
                        .get(s.at as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|c| c.seq == s.seq)
                })
            };
            self.connections.retain(|_, calls| calls.iter().any(live));
            if self.connections.len() > MAX_CONNECTIONS / 4 * 3 {
                self.connections.clear();
                self.counters.connections_forgotten += 1;
            }
        }
        let calls = self.connections.entry(key).or_default();
        if calls.contains(&Some(slot)) {
            return;
        }
        // The newest first; the oldest falls off the end.
        calls.rotate_right(1);
        if let Some(first) = calls.first_mut() {
            *first = Some(slot);
        }
    }

    /// Bytes a TCP connection lost: every call still open that used it hears of them.
    pub(super) fn lost(&mut self, loss: net::tcp::StreamLoss) {
        let key = ConnectionKey::of(loss.src, loss.dst);
        let Some(calls) = self.connections.get(&key).copied() else {
            return;
        };
        for slot in calls.into_iter().flatten() {
            if let Some(call) = self.get_mut(slot) {
                call.lost_bytes = call.lost_bytes.saturating_add(loss.bytes);
            }
        }
    }

    /// Evicts the oldest call. In streaming mode it is handed out (nothing is lost); otherwise
    /// it is dropped and counted, the oldest closed call first.
    pub(super) fn evict_oldest(&mut self) {
        if let Some((_, call)) = self.closed.pop_first() {
            self.held = self
                .held
                .saturating_sub(call.footprint() + TABLE_BYTES_PER_CALL);
            self.counters.calls_evicted += 1;
            return;
        }
        while let Some(slot) = self.creation.pop_front() {
            if let Some(call) = self.take(slot) {
                self.counters.calls_evicted += 1;
                self.scanners.add(&call);
                if self.config.streaming {
                    self.finished.push(call);
                }
                return;
            }
        }
    }

    /// The call a queue entry names, if it is still in the table.
    pub(super) fn get_mut(&mut self, slot: Slot) -> Option<&mut Box<Call>> {
        self.slots
            .get_mut(slot.at as usize)?
            .as_mut()
            .filter(|c| c.seq == slot.seq)
    }

    /// Takes the call a queue entry names out of the table, if it is still there.
    pub(super) fn take(&mut self, slot: Slot) -> Option<Box<Call>> {
        let place = self.slots.get_mut(slot.at as usize)?;
        if place.as_ref()?.seq != slot.seq {
            return None;
        }
        let mut call = place.take()?;
        self.calls.remove(&*call.call_id);
        self.free.push(slot.at);
        self.held = self
            .held
            .saturating_sub(call.footprint() + TABLE_BYTES_PER_CALL);
        if let Some(tracker) = self.media.as_mut() {
            attach_media(tracker, &mut call);
        }
        if self.reporter.is_some() {
            self.media_call_ids.remove(&call.seq);
        }
        Some(call)
    }

    /// Over the memory budget: evicts calls until a sixteenth of it is free, least valuable
    /// first: [`expendable`] calls from sources that are scanning, then other expendable calls,
    /// then the oldest calls. Each is counted (`calls_shed`); in streaming mode it is handed
    /// out, as it is now. Every queue entry is looked at once, so shedding is O(1) per call.
    pub(super) fn shed(&mut self, budget: usize) {
        let target = budget - budget / 16;
        while resident(self.held) > target {
            let Some(slot) = self.expendable.pop_front() else {
                break;
            };
            let Some(call) = self.find(slot) else {
                continue;
            };
            if !expendable(call) {
                continue;
            }
            if self.scanners.marks(call) {
                self.shed_one(slot);
            } else {
                self.expendable_later.push_back(slot);
            }
        }
        while resident(self.held) > target {
            let Some(slot) = self.expendable_later.pop_front() else {
                break;
            };
            if self.find(slot).is_some_and(expendable) {
                self.shed_one(slot);
            }
        }
        while resident(self.held) > target && self.calls.len() + self.closed.len() > 0 {
            let before = self.counters.calls_evicted;
            self.evict_oldest();
            if self.counters.calls_evicted == before {
                break;
            }
            self.counters.calls_evicted -= 1;
            self.counters.calls_shed += 1;
        }
        for queue in [&mut self.expendable, &mut self.expendable_later] {
            if queue.len() > 2 * (self.calls.len() + self.closed.len()) + 1024 {
                let (slots, closed) = (&self.slots, &self.closed);
                queue.retain(|s| {
                    closed.contains_key(&s.seq)
                        || slots
                            .get(s.at as usize)
                            .and_then(Option::as_ref)
                            .is_some_and(|c| c.seq == s.seq)
                });
            }
        }
    }

    /// The call a queue entry names, open or closed, if it is still kept.
    pub(super) fn find(&self, slot: Slot) -> Option<&Call> {
        let open = self
            .slots
            .get(slot.at as usize)
            .and_then(Option::as_ref)
            .filter(|c| c.seq == slot.seq);
        open.or_else(|| self.closed.get(&slot.seq)).map(|c| &**c)
    }

    /// Evicts the call a queue entry names for memory.
    pub(super) fn shed_one(&mut self, slot: Slot) {
        let call = match self.take(slot) {
            Some(call) => call,
            None => match self.closed.remove(&slot.seq) {
                Some(call) => {
                    self.held = self
                        .held
                        .saturating_sub(call.footprint() + TABLE_BYTES_PER_CALL);
                    call
                }
                None => return,
            },
        };
        self.counters.calls_shed += 1;
        if call.closed_at.is_none() {
            self.scanners.add(&call);
        }
        if self.config.streaming {
            self.finished.push(call);
        }
    }

    /// One RTP or RTCP datagram, to the media analysis.
    pub(super) fn media(&mut self, d: &net::MediaDatagram, bytes: &[u8]) {
        let Some(tracker) = self.media.as_mut() else {
            return;
        };
        match &d.payload {
            net::MediaPayload::Rtp(rtp) => tracker.rtp(&crate::media::Packet {
                source: d.source,
                frame: d.frame,
                time: d.time,
                src: d.src,
                dst: d.dst,
                rtp: *rtp,
            }),
            net::MediaPayload::Rtcp(range) => {
                let rtcp = bytes.get(range.clone()).unwrap_or(&[]);
                tracker.rtcp(d.time, d.src, d.dst, rtcp);
                if let Some(r) = self.reporter.as_mut() {
                    let call = tracker
                        .call_of_rtcp(rtcp)
                        .and_then(|seq| self.media_call_ids.get(&seq));
                    r.rtcp(d, rtcp, call.map(|c| &**c));
                }
            }
        }
    }

    /// End of input, not streaming: the calls still open get their streams (and are told to
    /// the reporter, which heard of the closed ones as they closed).
    pub(super) fn attach_media_to_open_calls(&mut self, now: Timestamp) {
        if let Some(tracker) = self.media.as_mut() {
            for call in self.slots.iter_mut().flatten() {
                let before = call.footprint();
                attach_media(tracker, call);
                self.held = (self.held + call.footprint()).saturating_sub(before);
            }
        }
        if let Some(r) = self.reporter.as_mut() {
            for call in self.slots.iter().flatten() {
                r.call_over(call, now);
            }
        }
    }

    /// End of input: the untied streams.
    pub(super) fn finish_media(&mut self) {
        if let Some(tracker) = self.media.as_mut() {
            self.untied.extend(tracker.finish_untied());
        }
    }

    /// Hands out (streaming) or closes calls whose timers have run out.
    pub(super) fn expire(&mut self, now: Timestamp) {
        if let Some(tracker) = self.media.as_mut() {
            tracker.sweep(now);
        }
        loop {
            let entry = if self.linger.front().is_some_and(|(d, _)| *d <= now) {
                self.linger.pop_front()
            } else if self.idle.peek().is_some_and(|Reverse((d, _))| *d <= now) {
                self.idle.pop().map(|Reverse(entry)| entry)
            } else {
                break;
            };
            if let Some((deadline, slot)) = entry {
                self.revisit(slot, deadline, now);
            }
        }
    }

    /// A call's timer ran out: hand it out if it is over, else look again later.
    pub(super) fn revisit(&mut self, slot: Slot, deadline: Timestamp, now: Timestamp) {
        let (linger, idle) = (self.config.linger, self.config.idle);
        let Some(call) = self.get_mut(slot) else {
            return; // already handed out or evicted
        };
        if call.clock.wake != deadline {
            return; // stale: a message brought the timer forward, and that entry decided
        }
        let last = call.clock.last;
        let quiet_for = now.0.saturating_sub(last.0);
        if quiet_for < linger.as_nanos() {
            // Newer activity: the linger counts from the last message.
            call.clock.wake = last.saturating_add(linger);
            let wake = call.clock.wake;
            self.idle.push(Reverse((wake, slot)));
            return;
        }
        let idle_over = quiet_for >= idle.as_nanos();
        let over_at = call.waiting_until();
        if over_at.is_some_and(|t| now >= t) || idle_over {
            if let Some(mut call) = self.take(slot) {
                call.closed_at = Some(now);
                self.scanners.add(&call);
                if let Some(r) = self.reporter.as_mut() {
                    r.call_over(&call, now);
                }
                if self.config.streaming {
                    self.finished.push(call);
                } else if self.config.forget_finished {
                    self.counters.calls_forgotten += 1;
                } else {
                    // Kept until the end: its lists no longer grow.
                    call.shrink_to_fit();
                    self.held += call.footprint() + TABLE_BYTES_PER_CALL;
                    self.closed.insert(call.seq, call);
                }
            }
            // The creation order (for eviction) keeps entries of calls already handed out;
            // drop them once they outnumber the live calls, so it stays bounded.
            if self.creation.len() > 2 * self.calls.len() + 1024 {
                let slots = &self.slots;
                self.creation.retain(|s| {
                    slots
                        .get(s.at as usize)
                        .and_then(Option::as_ref)
                        .is_some_and(|c| c.seq == s.seq)
                });
            }
        } else {
            // Not over yet: look again when it will be (a ringing INVITE, after Timer C), or
            // when it has been idle for long enough (an answered call without BYE).
            let idle = last.saturating_add(idle);
            let again = over_at.map_or(idle, |t| t.min(idle));
            call.clock.wake = again;
            self.idle.push(Reverse((again, slot)));
        }
    }

    /// End of input in streaming mode: every call left is handed out, oldest first.
    pub(super) fn hand_out_all(&mut self, now: Timestamp) {
        let mut rest: Vec<Box<Call>> = self.slots.drain(..).flatten().collect();
        rest.sort_by_key(|c| c.seq);
        if let Some(tracker) = self.media.as_mut() {
            for call in &mut rest {
                attach_media(tracker, call);
            }
        }
        if let Some(r) = self.reporter.as_mut() {
            for call in &rest {
                r.call_over(call, now);
            }
        }
        self.media_call_ids.clear();
        for call in &rest {
            self.scanners.add(call);
        }
        self.calls.clear();
        self.free.clear();
        self.finished.extend(rest);
        self.linger.clear();
        self.idle.clear();
        self.creation.clear();
        self.expendable.clear();
        self.expendable_later.clear();
        self.held = self
            .closed
            .values()
            .map(|c| c.footprint() + TABLE_BYTES_PER_CALL)
            .sum();
    }
}

/// What a message tells the media analysis: the endpoints its SDP advertises, with the party
/// that sent it (a request from the call's initiator, by its From tag, or a response to the
/// other party's request), and a BYE's time.
fn note_media(
    tracker: &mut crate::media::Tracker,
    call: u64,
    first: Option<&SipMessage>,
    msg: &SipMessage,
    offer: Option<&crate::media::Offer>,
) {
    if msg.is_request() && msg.method() == Some("BYE") {
        tracker.bye(call, msg.time);
    }
    let Some(offer) = offer else {
        return;
    };
    let initiator = first.and_then(|f| f.from_tag.as_deref());
    let party = crate::media::party_of(msg.is_request(), msg.from_tag.as_deref(), initiator);
    tracker.advertise(call, party, offer);
}

/// A call leaves the table: its streams go with it.
fn attach_media(tracker: &mut crate::media::Tracker, call: &mut Call) {
    let media = tracker.detach(call.seq);
    use crate::media::MediaCapture;
    let capture = if !tracker.any_rtp() {
        MediaCapture::NoRtp
    } else if media.shared {
        MediaCapture::Shared
    } else if media.path_seen {
        MediaCapture::Rtp
    } else {
        MediaCapture::RtpElsewhere
    };
    call.set_media(media.streams, capture);
}
