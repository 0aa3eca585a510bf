//! The engine: a synchronous pipeline fed one frame at a time. Frames go through [`net`] to SIP
//! message bytes, through [`sip`] to parsed messages, and into [`flow`] calls. Owns the call
//! table and its limits; the commands, exporters and (later) the UI all read what it keeps.
//!
//! In streaming mode ([`EngineConfig::streaming`]) calls that are over (RFC 3261 timers
//! elapsed) are handed out with [`Engine::take_finished`] and forgotten, so memory stays
//! bounded on a capture of any length.

use crate::capture::{CaptureDamage, Frame, FrameSource, Timestamp};
use crate::flow::{Call, SipMessage, call::T1_X64_MS};
use crate::net::{self, Decoder, NetLimits, SipPdu};
use crate::sip;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Keep each message's raw bytes (needed for `--raw` and the ladder's message view).
    pub keep_raw: bool,
    /// Hand out calls as soon as they are over instead of keeping them all.
    pub streaming: bool,
    pub net: NetLimits,
    /// Calls kept at once; beyond it the oldest call is evicted (and counted).
    pub max_calls: usize,
    pub max_messages_per_call: usize,
    /// Messages that belong to no call (no Call-ID) kept as evidence.
    pub max_orphans: usize,
    /// How long after its last message a call that is over is kept (capture time).
    pub linger_ms: i64,
    /// How long a call that is not over (an answered call without BYE) may stay idle.
    pub idle_ms: i64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            keep_raw: false,
            streaming: false,
            net: NetLimits::default(),
            max_calls: 1_000_000,
            max_messages_per_call: 100_000,
            max_orphans: 10_000,
            linger_ms: T1_X64_MS,
            idle_ms: 3_600_000,
        }
    }
}

/// A message that could be framed but not attached to a call (no Call-ID).
#[derive(Debug, Clone)]
pub struct Orphan {
    pub message: SipMessage,
    pub reason: String,
}

/// Per-source counters for the JSON `sources` list and the summaries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStats {
    pub name: String,
    pub packets: u64,
    pub sip_messages: u64,
    pub malformed: u64,
    pub skipped: std::collections::BTreeMap<&'static str, u64>,
    pub damage: CaptureDamage,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct EngineCounters {
    /// Calls dropped from the table because `max_calls` was reached.
    pub calls_evicted: u64,
    /// Messages dropped because their call reached `max_messages_per_call`.
    pub messages_dropped: u64,
    /// Orphan messages not kept because `max_orphans` was reached.
    pub orphans_dropped: u64,
}

pub struct Engine {
    config: EngineConfig,
    decoder: Decoder,
    calls: HashMap<String, Call>,
    next_seq: u64,
    pdus: Vec<SipPdu>,
    /// (sip_messages, malformed) per source.
    counts: Vec<(u64, u64)>,
    orphans: Vec<Orphan>,
    now: Timestamp,
    /// Streaming: (deadline, Call-ID) to revisit; order of deadlines is non-decreasing.
    expiry: VecDeque<(Timestamp, String)>,
    finished: Vec<Call>,
    /// Creation order of calls, for eviction of the oldest (entries may be stale).
    creation: VecDeque<(u64, String)>,
    pub counters: EngineCounters,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            config,
            decoder: Decoder::new(config.net),
            calls: HashMap::new(),
            next_seq: 0,
            pdus: Vec::new(),
            counts: Vec::new(),
            orphans: Vec::new(),
            now: Timestamp::default(),
            expiry: VecDeque::new(),
            finished: Vec::new(),
            creation: VecDeque::new(),
            counters: EngineCounters::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The capture time reached so far.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Feeds one frame.
    pub fn feed(&mut self, frame: &Frame) {
        self.now = self.now.max(frame.time);
        let mut pdus = std::mem::take(&mut self.pdus);
        self.decoder.feed(frame, &mut pdus);
        for pdu in pdus.drain(..) {
            self.message(&pdu);
        }
        self.pdus = pdus;
        if self.config.streaming {
            self.expire();
        }
    }

    /// Feeds every frame of a source, then finishes.
    pub fn run(&mut self, source: &mut dyn FrameSource) {
        while let Some(frame) = source.next_frame() {
            self.feed(&frame);
        }
        self.finish();
    }

    /// End of input: flushes reassembly buffers. In streaming mode every remaining call is
    /// then finished.
    pub fn finish(&mut self) {
        let mut pdus = std::mem::take(&mut self.pdus);
        self.decoder.finish(&mut pdus);
        for pdu in pdus.drain(..) {
            self.message(&pdu);
        }
        if self.config.streaming {
            let mut rest: Vec<Call> = self.calls.drain().map(|(_, c)| c).collect();
            rest.sort_by_key(|c| c.seq);
            self.finished.extend(rest);
            self.expiry.clear();
            self.creation.clear();
        }
    }

    fn count(&mut self, source: usize) -> &mut (u64, u64) {
        if self.counts.len() <= source {
            self.counts.resize(source + 1, (0, 0));
        }
        let i = source.min(self.counts.len() - 1);
        &mut self.counts[i]
    }

    fn message(&mut self, pdu: &SipPdu) {
        let Ok((parsed, _)) = sip::Message::parse(&pdu.bytes) else {
            // The framer only hands over bytes that start with a start line, so this is rare
            // (a start line the parser still rejects); count it as malformed.
            let c = self.count(pdu.source);
            c.0 += 1;
            c.1 += 1;
            return;
        };
        let msg = SipMessage::from_parsed(pdu, &parsed, self.config.keep_raw);
        let malformed = msg.is_malformed();
        {
            let c = self.count(pdu.source);
            c.0 += 1;
            c.1 += u64::from(malformed);
        }
        let Some(call_id) = parsed.call_id() else {
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
        let call_id = crate::flow::message::text(call_id);
        if !self.calls.contains_key(&call_id) {
            if self.calls.len() >= self.config.max_calls {
                self.evict_oldest();
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.calls
                .insert(call_id.clone(), Call::new(call_id.clone(), seq, &parsed));
            self.creation.push_back((seq, call_id.clone()));
        }
        let time = msg.time;
        if let Some(call) = self.calls.get_mut(&call_id) {
            let before = call.dropped_messages;
            call.add(msg, self.config.max_messages_per_call);
            self.counters.messages_dropped += call.dropped_messages - before;
        }
        if self.config.streaming {
            self.expiry
                .push_back((time.saturating_add_millis(self.config.linger_ms), call_id));
        }
    }

    /// Evicts the oldest call. In streaming mode it is handed out (nothing is lost); otherwise
    /// it is dropped and counted.
    fn evict_oldest(&mut self) {
        while let Some((seq, id)) = self.creation.pop_front() {
            if self.calls.get(&id).is_some_and(|c| c.seq == seq) {
                if let Some(call) = self.calls.remove(&id) {
                    self.counters.calls_evicted += 1;
                    if self.config.streaming {
                        self.finished.push(call);
                    }
                }
                return;
            }
        }
    }

    /// Streaming: hands out calls whose timers have run out.
    fn expire(&mut self) {
        let now = self.now;
        while let Some((deadline, _)) = self.expiry.front() {
            if *deadline > now {
                break;
            }
            let Some((_, id)) = self.expiry.pop_front() else {
                break;
            };
            let Some(call) = self.calls.get(&id) else {
                continue;
            };
            let last = call.end();
            let quiet_for = now.0.saturating_sub(last.0);
            if quiet_for < self.config.linger_ms.saturating_mul(1_000_000) {
                continue; // newer activity has its own entry further back
            }
            let idle_over = quiet_for >= self.config.idle_ms.saturating_mul(1_000_000);
            if call.is_over() || idle_over {
                if let Some(call) = self.calls.remove(&id) {
                    self.finished.push(call);
                }
            } else {
                // Not over yet (an answered call without BYE): look again when it has been
                // idle for long enough. Deadlines must stay ordered, so insert in place.
                let again = last.saturating_add_millis(self.config.idle_ms);
                let pos = self.expiry.partition_point(|(d, _)| *d <= again);
                self.expiry.insert(pos, (again, id));
            }
        }
    }

    /// Streaming: calls that are over since the last call, in the order they ended.
    pub fn take_finished(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.finished)
    }

    /// The calls kept, in order of their first message.
    pub fn calls(&self) -> Vec<&Call> {
        let mut v: Vec<&Call> = self.calls.values().collect();
        v.sort_by_key(|c| c.seq);
        v
    }

    pub fn into_calls(self) -> Vec<Call> {
        let mut v: Vec<Call> = self.calls.into_values().collect();
        v.sort_by_key(|c| c.seq);
        v
    }

    pub fn orphans(&self) -> &[Orphan] {
        &self.orphans
    }

    pub fn source_stats(&self, source: usize, name: &str, damage: CaptureDamage) -> SourceStats {
        let net::NetStats { packets, skipped } = self.decoder.stats(source);
        let (sip_messages, malformed) = self.counts.get(source).copied().unwrap_or_default();
        SourceStats {
            name: name.to_string(),
            packets,
            sip_messages,
            malformed,
            skipped,
            damage,
        }
    }
}
