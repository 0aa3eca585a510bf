//! The engine: a synchronous pipeline fed one frame at a time. Frames go through [`net`] to SIP
//! message bytes, through [`sip`] to parsed messages, and into [`crate::flow`] calls. Owns the call
//! table and its limits; the commands, the exporters and the UI all read what it keeps.
//!
//! In streaming mode ([`EngineConfig::streaming`]) calls that are over (RFC 3261 timers
//! elapsed) are handed out with [`Engine::take_finished`] and forgotten, so memory stays
//! bounded on a capture of any length.
//!
//! The work splits in two halves with one narrow interface, `Prepared`: `ingest` turns frames
//! into parsed message records (decoding, reassembly, parsing), the call table (`table`)
//! correlates them. [`Engine::feed`] runs both in turn; [`run_pipelined`] (`pipeline`) runs
//! them on two threads for whole files, with the same results. Parsing is most of the first
//! half's work, so when the correlating thread runs out of work the reading thread hands it
//! some messages unparsed (`Prepared::Deferred`), and each thread stays busy. This file holds
//! the configuration, the counters and [`Engine`], which owns one of each half.

use crate::WireMap;
use crate::capture::{CaptureDamage, Frame, FrameSource};
use crate::flow::{Call, CallInit, SipMessage, call::T1_X64};
use crate::net::{self, Decoder, NetLimits, SipPdu};
use crate::sip;
use crate::time::{Interval, Timestamp};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

mod ingest;
mod pipeline;
mod table;

use ingest::Defer;
pub(crate) use ingest::{Batch, Ingest, Prepared};
pub use pipeline::{ReaderFailed, run_pipelined, run_pipelined_with};
use table::Model;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Keep each message's raw bytes (needed for `--raw` and the ladder's message view).
    pub keep_raw: bool,
    /// Keep what only the exporters and the diagnosis read: SDP bodies, frame lists, Contact
    /// addresses, Via depth ([`crate::flow::message::Keep::detail`]). Only the call table goes
    /// without: it reads the summary alone, and then most messages cost no allocation beyond
    /// their record.
    pub keep_detail: bool,
    /// Hand out calls as soon as they are over instead of keeping them all.
    pub streaming: bool,
    pub net: NetLimits,
    /// Calls kept at once; beyond it the oldest call is evicted (and counted).
    pub max_calls: usize,
    pub max_messages_per_call: usize,
    /// Messages that belong to no call (no Call-ID) kept as evidence.
    pub max_orphans: usize,
    /// How long after its last message a call that is over is kept (capture time).
    pub linger: Interval,
    /// How long a call that is not over (an answered call without BYE) may stay idle.
    pub idle: Interval,
    /// Not streaming, but long-running (the live UI): calls that are over are forgotten
    /// `linger_ms` after their last message (and counted in `calls_forgotten`) instead of being
    /// kept for ever.
    pub forget_finished: bool,
    /// Bytes the call table may cost, by accounting: what its calls hold ([`Call::footprint`])
    /// and a quarter more for the allocator's rounding (`resident`); over it, calls are
    /// evicted least valuable first (`Model::shed`) and counted (`calls_shed`). `None`: no
    /// budget beyond `max_calls`.
    pub max_memory: Option<usize>,
    /// Media analysis: RTP and RTCP streams measured and tied to the calls whose SDP set them
    /// up ([`crate::media`]). Headers only: no payload is kept.
    pub media: bool,
    pub media_limits: crate::media::MediaConfig,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            keep_raw: false,
            keep_detail: true,
            streaming: false,
            net: NetLimits::default(),
            max_calls: 1_000_000,
            max_messages_per_call: 100_000,
            max_orphans: 10_000,
            linger: T1_X64,
            idle: Interval::from_secs(3_600),
            forget_finished: false,
            max_memory: None,
            media: true,
            media_limits: crate::media::MediaConfig::default(),
        }
    }
}

/// A message that could be framed but not attached to a call (no Call-ID).
#[derive(Debug, Clone)]
pub struct Orphan {
    pub message: SipMessage,
    pub reason: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Per-source counters for the JSON `sources` list and the summaries.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SourceStats {
    pub name: String,
    pub packets: u64,
    /// Packets decoded from inside tunnels.
    pub tunneled: u64,
    /// SIP messages that came in HEP packets.
    pub hep: u64,
    /// RTP and RTCP datagrams read by the media analysis.
    #[serde(skip_serializing_if = "is_zero")]
    pub media: u64,
    pub sip_messages: u64,
    pub malformed: u64,
    pub skipped: net::SkipCounts,
    pub damage: CaptureDamage,
    /// The TLS connections first seen in this source, and what became of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::net::tcp::tls::TlsSummary>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct EngineCounters {
    /// Calls dropped from the table because `max_calls` was reached.
    pub calls_evicted: u64,
    /// Calls forgotten after they were over (`forget_finished`, the live UI).
    pub calls_forgotten: u64,
    /// Messages dropped because their call reached `max_messages_per_call`.
    pub messages_dropped: u64,
    /// Orphan messages not kept because `max_orphans` was reached.
    pub orphans_dropped: u64,
    /// Times the table of which calls use which TCP connection was emptied because it held
    /// `MAX_CONNECTIONS` (65,536) connections with calls still open: a loss on a connection
    /// forgotten then is not told to its calls.
    pub connections_forgotten: u64,
    /// Calls evicted to keep within `max_memory` (in streaming mode handed out early, as they
    /// were then), least valuable first.
    pub calls_shed: u64,
}

/// Sees every SIP PDU as the decoder delivers it (the HEP sender forwards them).
pub type Tap = Box<dyn FnMut(&crate::net::SipPdu<'_>) + Send>;

/// What a front end hangs on an engine: the tap of SIP PDUs and the reporter of RTCP and
/// finished calls (both the HEP sender's).
#[derive(Default)]
pub struct Hooks {
    pub tap: Option<Tap>,
    pub reporter: Option<Box<dyn Reporter>>,
    /// Key logs: TLS connections are decrypted with them.
    pub tls_keys: Option<std::sync::Arc<crate::tls::KeyLog>>,
}

/// Told, on the correlating side, of each RTCP compound with the call it is about, and of
/// each call once it is over with its streams (the HEP sender's RTCP and quality reports).
pub trait Reporter: Send {
    /// An RTCP compound (`bytes`) from `d.src` to `d.dst`, with the Call-ID of the call whose
    /// SDP advertised one of its addresses, when known.
    fn rtcp(&mut self, d: &crate::net::MediaDatagram, bytes: &[u8], call_id: Option<&str>);
    /// A call is over (its timers ran out, or the input ended), its streams attached; `now` is
    /// the capture time it is judged at.
    fn call_over(&mut self, call: &Call, now: Timestamp);
}

pub struct Engine {
    ingest: Ingest,
    model: Model,
    now: Timestamp,
    scratch: Batch,
    /// What deferred PDUs parse into, applied at once.
    deferred: Batch,
}

impl Engine {
    pub fn new(config: EngineConfig) -> Engine {
        Engine {
            ingest: Ingest::new(&config),
            scratch: Batch::default(),
            deferred: Batch::default(),
            model: Model {
                config,
                calls: WireMap::default(),
                slots: Vec::new(),
                free: Vec::new(),
                next_seq: 0,
                counts: std::collections::BTreeMap::new(),
                orphans: Vec::new(),
                linger: VecDeque::new(),
                idle: BinaryHeap::new(),
                finished: Vec::new(),
                closed: std::collections::BTreeMap::new(),
                held: 0,
                expendable: VecDeque::new(),
                expendable_later: VecDeque::new(),
                creation: VecDeque::new(),
                connections: crate::WireMap::default(),
                scanners: crate::flow::scanner::ScannerTable::default(),
                points: crate::flow::points::CapturePoints::default(),
                counters: EngineCounters::default(),
                media: config
                    .media
                    .then(|| crate::media::Tracker::new(config.media_limits)),
                untied: Vec::new(),
                reporter: None,
                media_call_ids: crate::WireMap::default(),
            },
            now: Timestamp::default(),
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.model.config
    }

    /// Shows every SIP PDU to `tap` as it is decoded (before correlation).
    pub fn set_tap(&mut self, tap: Tap) {
        self.ingest.tap = Some(tap);
    }

    /// Sets the hooks that are there.
    pub fn set_hooks(&mut self, hooks: Hooks) {
        if let Some(tap) = hooks.tap {
            self.set_tap(tap);
        }
        if let Some(reporter) = hooks.reporter {
            self.set_reporter(reporter);
        }
        if let Some(keys) = hooks.tls_keys {
            self.set_tls_keys(keys);
        }
    }

    /// What became of the TLS connections followed (decrypted, or why not), in every source.
    pub fn tls_summary(&self) -> crate::net::tcp::tls::TlsSummary {
        self.ingest.decoder.tls_summary(None)
    }

    /// The title bar's word on TLS: connections not read (`None` when every one was, or
    /// there was none).
    pub fn tls_line(&self) -> Option<String> {
        self.tls_summary().title_line()
    }

    /// Decrypts TLS connections with these keys (see [`crate::net::Decoder::set_tls_keys`]).
    pub fn set_tls_keys(&mut self, keys: std::sync::Arc<crate::tls::KeyLog>) {
        self.ingest.decoder.set_tls_keys(keys);
    }

    /// Tells `reporter` of RTCP and of calls as they end ([`Reporter`]).
    pub fn set_reporter(&mut self, reporter: Box<dyn Reporter>) {
        self.model.reporter = Some(reporter);
    }

    pub fn counters(&self) -> EngineCounters {
        self.model.counters
    }

    /// The capture time reached so far.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Feeds one frame.
    pub fn feed(&mut self, frame: &Frame<'_>) {
        let mut batch = std::mem::take(&mut self.scratch);
        self.ingest.feed(frame, &mut batch);
        self.apply(frame.time, &mut batch);
        self.scratch = batch;
    }

    /// Applies prepared messages (the second half), and the streaming timers at their ticks;
    /// `time` is the capture time reached.
    fn apply(&mut self, time: Timestamp, batch: &mut Batch) {
        self.now = self.now.max(time);
        let Batch {
            items,
            text,
            raw,
            frames,
            units,
            pdu_bytes,
            media_bytes,
        } = batch;
        *units = 0;
        *pdu_bytes = 0;
        for p in items.drain(..) {
            match p {
                // Parsed here, in order, by this engine's own preparer (the reading thread
                // has the other).
                Prepared::Deferred(d) => {
                    let out = &mut self.deferred;
                    self.ingest.preparer.prepare_all(&d.pdu(raw, frames), out);
                    for q in out.items.drain(..) {
                        self.model.apply(q, &out.text);
                    }
                    out.text.clear();
                }
                Prepared::Media(d) => self.model.media(&d, media_bytes),
                p => self.model.apply(p, text),
            }
        }
        media_bytes.clear();
        text.clear();
        raw.clear();
        frames.clear();
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
        let mut batch = std::mem::take(&mut self.scratch);
        self.ingest.finish(&mut batch);
        let now = self.now;
        self.apply(now, &mut batch);
        self.finish_model();
    }

    /// End of input, after the last batch: every call left is handed out (streaming) or gets
    /// its streams, and the untied streams end.
    fn finish_model(&mut self) {
        if self.model.config.streaming {
            self.model.hand_out_all(self.now);
        } else {
            self.model.attach_media_to_open_calls(self.now);
        }
        self.model.finish_media();
    }

    /// RTP streams tied to no call (no SDP named them), complete once the input ended.
    pub fn untied_media(&self) -> &[crate::media::Stream] {
        &self.model.untied
    }

    /// The media analysis's counters (`None` with media analysis off).
    pub fn media_counters(&self) -> Option<crate::media::MediaCounters> {
        self.model.media.as_ref().map(|t| t.counters)
    }

    /// Streaming: calls that are over since the last call, in the order they ended.
    pub fn take_finished(&mut self) -> Vec<Box<Call>> {
        std::mem::take(&mut self.model.finished)
    }

    /// The calls kept, open and closed, in order of their first message.
    pub fn calls(&self) -> Vec<&Call> {
        let open = self.model.slots.iter().flatten();
        let mut v: Vec<&Call> = open
            .chain(self.model.closed.values())
            .map(|c| &**c)
            .collect();
        v.sort_by_key(|c| c.seq);
        v
    }

    pub fn into_calls(self) -> Vec<Call> {
        let open = self.model.slots.into_iter().flatten();
        let mut v: Vec<Call> = open
            .chain(self.model.closed.into_values())
            .map(|c| *c)
            .collect();
        v.sort_by_key(|c| c.seq);
        v
    }

    /// Every limit reached so far (docs/security.md), by counter name, with how often: the
    /// network's over all sources (by skip reason) and the call table's. (While
    /// [`run_pipelined`] runs, the network half is on the reading thread and shows at the end.)
    pub fn limits_reached(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let mut out = self.ingest.decoder.limits_reached();
        let c = self.model.counters;
        for (name, n) in [
            ("calls_evicted", c.calls_evicted),
            ("messages_dropped", c.messages_dropped),
            ("orphans_dropped", c.orphans_dropped),
            ("connections_forgotten", c.connections_forgotten),
            ("calls_shed", c.calls_shed),
        ] {
            if n > 0 {
                out.insert(name, n);
            }
        }
        if let Some(m) = self.media_counters() {
            for (name, n) in m.limits() {
                if n > 0 {
                    out.insert(name, n);
                }
            }
        }
        out
    }

    /// [`Engine::limits_reached`] as one line ("2 calls_evicted, 1 tcp_buffer_evicted"), or
    /// `None` when no limit was reached.
    pub fn limits_line(&self) -> Option<String> {
        let reached = self.limits_reached();
        (!reached.is_empty()).then(|| {
            reached
                .iter()
                .map(|(name, n)| format!("{n} {name}"))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// The sources found scanning so far: from the calls that ended, and with `open_too` the
    /// calls still open as well ([`Engine::scanners`]). Without it the answer costs no pass
    /// over the open calls, which a live UI under a flood cannot afford at every refresh.
    pub fn scanning_sources(&self, open_too: bool) -> Vec<std::net::IpAddr> {
        let table = if open_too {
            std::borrow::Cow::Owned(self.scanners())
        } else {
            std::borrow::Cow::Borrowed(&self.model.scanners)
        };
        table.scanners().iter().map(|s| s.source).collect()
    }

    /// Bytes the call table holds now, by accounting ([`EngineConfig::max_memory`]).
    pub fn memory_held(&self) -> usize {
        self.model.held
    }

    pub fn orphans(&self) -> &[Orphan] {
        &self.model.orphans
    }

    /// The sources tallied so far ([`crate::flow::scanner`]): every call that ended, and the
    /// calls still open as they are now.
    /// The clock offsets between capture points that saw the same messages (several files of
    /// one incident, several interfaces, several HEP agents).
    pub fn capture_points(&self) -> Vec<crate::flow::points::OffsetEstimate> {
        self.model.points.estimates()
    }

    pub fn scanners(&self) -> crate::flow::scanner::ScannerTable {
        let mut table = self.model.scanners.clone();
        for call in self.model.slots.iter().flatten() {
            table.add(call);
        }
        table
    }

    pub fn source_stats(&self, source: usize, name: &str, damage: CaptureDamage) -> SourceStats {
        let net::NetStats {
            packets,
            tunneled,
            hep,
            media,
            skipped,
        } = self.ingest.decoder.stats(source);
        let (sip_messages, malformed) = self.model.counts.get(&source).copied().unwrap_or_default();
        let tls = Some(self.ingest.decoder.tls_summary(Some(source))).filter(|t| t.connections > 0);
        SourceStats {
            name: name.to_string(),
            packets,
            tunneled,
            hep,
            media,
            sip_messages,
            malformed,
            skipped,
            damage,
            tls,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::table::Slot;
    use super::*;
    use crate::capture::{LinkType, OwnedFrame};

    fn udp_frame(payload: &[u8]) -> OwnedFrame {
        udp_frame_at(payload, 1000)
    }

    fn udp_frame_at(payload: &[u8], ms: i64) -> OwnedFrame {
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [3; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(5060, 5060);
        let mut data = Vec::new();
        b.write(&mut data, payload).unwrap();
        OwnedFrame {
            source: 0,
            number: 1,
            time: Timestamp::from_millis(ms),
            link: LinkType::ETHERNET,
            orig_len: data.len() as u32,
            data,
        }
    }

    fn options(call_id: &str) -> String {
        format!(
            "OPTIONS sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK{call_id}\r\n\
From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
Content-Length: 0\r\n\r\n"
        )
    }

    /// A generated capture: TCP split at random, IP fragments, retransmissions, and RTP with
    /// media faults (so that the media analysis is held to the same results in every mode).
    fn synthetic_pcap() -> Vec<u8> {
        let cfg = crate::synth::SynthConfig {
            calls: 400,
            tcp_share: 0.5,
            fragment_share: 0.3,
            retransmit_share: 0.3,
            max_hold_secs: 8.0,
            rtp: true,
            media_fault_share: 0.5,
            ..crate::synth::SynthConfig::default()
        };
        let mut pcap = Vec::new();
        crate::synth::write_pcap(&cfg, &mut pcap).unwrap();
        pcap
    }

    /// Everything the engine found in `pcap` (calls, orphans, counters, source statistics) as
    /// JSON, from an engine that `run` fed.
    fn engine_json(
        pcap: &[u8],
        run: impl FnOnce(&mut (dyn FrameSource + Send), Engine) -> Engine,
    ) -> String {
        let reader = Box::new(std::io::Cursor::new(pcap.to_vec()));
        let mut src = crate::capture::FileSource::from_reader(reader, "synth", 0, None).unwrap();
        let config = EngineConfig {
            keep_raw: true,
            ..EngineConfig::default()
        };
        let engine = run(&mut src, Engine::new(config));
        let calls = engine.calls();
        let opts = crate::export::json::JsonOptions {
            raw_source: None,
            raw: true,
            diagnose: Default::default(),
            grouping: None,
        };
        let sources = [engine.source_stats(0, "synth", Default::default())];
        serde_json::to_string(&crate::export::json::Document::of(
            &engine, &sources, &calls, opts,
        ))
        .unwrap()
    }

    /// One thread, deferring every PDU, and deferring on demand (as `calls` runs it) give the
    /// same JSON for `pcap`.
    fn assert_deferral_changes_nothing(pcap: &[u8]) {
        let one_thread = engine_json(pcap, |src, mut engine| {
            engine.run(src);
            engine
        });
        let pipelined = |defer: Defer| {
            engine_json(pcap, move |src, mut engine| {
                engine.ingest.defer = defer;
                run_pipelined_with(src, engine, |_, _| Ok::<_, ReaderFailed>(())).unwrap()
            })
        };
        for (how, got) in [
            ("deferring every PDU", pipelined(Defer::Always)),
            ("deferring on demand", pipelined(Defer::Never)),
        ] {
            // The documents are long: show where they part.
            if let Some(at) = got
                .bytes()
                .zip(one_thread.bytes())
                .position(|(a, b)| a != b)
            {
                let around = |s: &str| {
                    s.get(at.saturating_sub(300)..(at + 300).min(s.len()))
                        .unwrap_or("")
                        .to_string()
                };
                panic!(
                    "{how}: {}\none thread: {}",
                    around(&got),
                    around(&one_thread)
                );
            }
            assert_eq!(got.len(), one_thread.len(), "{how}");
        }
    }

    /// Messages the reading thread leaves unparsed for the correlating one give the same
    /// calls, message for message, as those it parses itself, and as one thread does.
    #[test]
    fn deferred_parsing_gives_the_same_calls() {
        let pcap = synthetic_pcap();
        assert!(
            engine_json(&pcap, |src, mut engine| {
                engine.run(src);
                engine
            })
            .contains("\"call_id\"")
        );
        assert_deferral_changes_nothing(&pcap);
    }

    /// The same on damaged data: bytes overwritten past each frame's Ethernet header (IP, UDP
    /// and TCP headers, SIP text) and the file cut short in the middle of a record.
    #[test]
    fn deferred_parsing_of_damaged_frames_gives_the_same_results() {
        let mut pcap = synthetic_pcap();
        let mut rng = crate::synth::Rng::new(5);
        let mut at = 24; // the pcap file header
        while let Some(header) = pcap.get(at..at + 16) {
            let len = u32::from_le_bytes([header[8], header[9], header[10], header[11]]) as usize;
            let data = at + 16..(at + 16 + len).min(pcap.len());
            if len > 14 && rng.below(10) < 3 {
                for _ in 0..1 + rng.below(4) {
                    let i = data.start + 14 + rng.below((len - 14) as u64) as usize;
                    if let Some(b) = pcap.get_mut(i) {
                        *b = rng.below(256) as u8;
                    }
                }
            }
            at = data.end;
        }
        pcap.truncate(pcap.len() - 100);
        assert_deferral_changes_nothing(&pcap);
    }

    /// Streams `source` through an engine fed frame by frame, as the live UI runs it, and
    /// returns every call it hands out, in order, with the engine.
    #[allow(clippy::vec_box)] // what `take_finished` hands out
    fn stream_one_by_one(source: &mut dyn FrameSource) -> (Vec<Box<Call>>, Engine) {
        let mut engine = Engine::new(EngineConfig {
            streaming: true,
            ..EngineConfig::default()
        });
        let mut calls = Vec::new();
        while let Some(frame) = source.next_frame() {
            engine.feed(&frame);
            calls.extend(engine.take_finished());
        }
        engine.finish();
        calls.extend(engine.take_finished());
        (calls, engine)
    }

    /// A Call-ID that comes back after its call was handed out (a registration refreshed
    /// with the same Call-ID) begins a call with its parties, one by one and pipelined.
    /// Regression: the reader remembered the Call-ID and sent no parties, so the new call had
    /// no From or To.
    #[test]
    fn a_call_id_back_after_its_call_was_handed_out_has_its_parties() {
        let frames: Vec<OwnedFrame> = [1_000, 300_000, 400_000]
            .into_iter()
            .map(|ms| udp_frame_at(options("refresh").as_bytes(), ms))
            .collect();
        let config = EngineConfig {
            streaming: true,
            ..EngineConfig::default()
        };
        let check = |calls: Vec<Box<Call>>| {
            assert_eq!(calls.len(), 3);
            for c in calls {
                assert_eq!(c.from.uri, "sip:a@x");
                assert_eq!(c.to.uri, "sip:b@x");
            }
        };
        check(stream_one_by_one(&mut crate::capture::VecSource::new(frames.clone())).0);
        for defer in [Defer::Never, Defer::Always] {
            let mut source = crate::capture::VecSource::new(frames.clone());
            let mut engine = Engine::new(config);
            engine.ingest.defer = defer;
            let mut calls = Vec::new();
            run_pipelined_with(&mut source, engine, |engine, _| {
                calls.extend(engine.take_finished());
                Ok::<_, ReaderFailed>(())
            })
            .unwrap();
            check(calls);
        }
    }

    /// Streaming hands out the same calls in the same order whether the frames are fed one
    /// by one or through the two threads, with or without deferred parsing. Regression: the
    /// timers ran at the end of each batch, so the order followed where batches ended, and
    /// the NDJSON export of one capture differed from run to run.
    #[test]
    fn streaming_hands_out_calls_in_one_order() {
        let cfg = crate::synth::SynthConfig {
            calls: 3_000,
            tcp_share: 0.3,
            retransmit_share: 0.2,
            ..crate::synth::SynthConfig::default()
        };
        let mut pcap = Vec::new();
        crate::synth::write_pcap(&cfg, &mut pcap).unwrap();
        let config = EngineConfig {
            streaming: true,
            ..EngineConfig::default()
        };
        let source = || {
            let reader = Box::new(std::io::Cursor::new(pcap.clone()));
            crate::capture::FileSource::from_reader(reader, "synth", 0, None).unwrap()
        };
        let brief = |c: Box<Call>| (c.call_id.to_string(), c.messages.len());
        let one_by_one: Vec<_> = stream_one_by_one(&mut source())
            .0
            .into_iter()
            .map(brief)
            .collect();
        assert_eq!(one_by_one.len(), 3_000);
        for defer in [Defer::Never, Defer::Always] {
            let mut engine = Engine::new(config);
            engine.ingest.defer = defer;
            let mut piped = Vec::new();
            run_pipelined_with(&mut source(), engine, |engine, _| {
                piped.extend(engine.take_finished().into_iter().map(brief));
                Ok::<_, ReaderFailed>(())
            })
            .unwrap();
            assert!(piped == one_by_one, "the order of hand-out differs");
        }
    }

    /// Without the detail (SDP bodies, frame lists, Contact addresses, Via depth), as the call
    /// table runs it, every call has the same summary, parties and messages (the same top
    /// Via), and no message keeps what it went without.
    #[test]
    fn calls_without_detail_have_the_same_summaries() {
        let pcap = synthetic_pcap();
        let run = |keep_detail: bool, media: bool| {
            let reader = Box::new(std::io::Cursor::new(pcap.clone()));
            let mut src =
                crate::capture::FileSource::from_reader(reader, "synth", 0, None).unwrap();
            let config = EngineConfig {
                keep_detail,
                media,
                ..EngineConfig::default()
            };
            run_pipelined(&mut src, config, |_, _| {}).unwrap()
        };
        // The media analysis reads each SDP where it is parsed: the lean records still keep
        // no body, and the calls still get their streams.
        let with_media = run(false, true);
        let streams: usize = with_media.calls().iter().map(|c| c.media.len()).sum();
        assert!(streams > 200, "{streams}");
        let (full, lean) = (run(true, true), with_media);
        let end = full.now();
        let (full, lean) = (full.calls(), lean.calls());
        assert_eq!(full.len(), 400);
        assert_eq!(full.len(), lean.len());
        let kept = |c: &Call| c.messages.iter().filter(|m| m.extra.is_some()).count();
        assert!(full.iter().map(|c| kept(c)).sum::<usize>() > 400);
        for (a, b) in full.iter().zip(&lean) {
            assert_eq!(a.call_id, b.call_id);
            assert_eq!(a.summary(end), b.summary(end), "{}", a.call_id);
            assert_eq!((&a.from, &a.to), (&b.from, &b.to));
            let brief = |c: &Call| -> Vec<_> {
                c.messages
                    .iter()
                    .map(|m| (m.time, m.packet, m.transaction, m.dialog, m.retransmission))
                    .collect()
            };
            assert_eq!(brief(a), brief(b));
            for (m, full) in b.messages.iter().zip(&a.messages) {
                assert!(m.contact_ip.is_none(), "{}", b.call_id);
                assert_eq!(m.via_count.min(1), full.via_count.min(1));
                assert_eq!(
                    (&m.branch, &m.via_sent_by),
                    (&full.branch, &full.via_sent_by)
                );
                assert!(
                    m.sdp().is_none() && m.frames() == [m.packet],
                    "{}",
                    b.call_id
                );
            }
        }
    }

    #[test]
    fn several_messages_in_one_datagram_are_split() {
        let payload = format!("{}\r\n{}", options("one"), options("two"));
        let mut engine = Engine::new(EngineConfig::default());
        engine.feed(&udp_frame(payload.as_bytes()).as_frame());
        engine.finish();
        let ids: Vec<&str> = engine.calls().iter().map(|c| &*c.call_id).collect();
        assert_eq!(ids, vec!["one", "two"]);
        assert_eq!(
            engine.source_stats(0, "t", Default::default()).sip_messages,
            2
        );
    }

    /// The live UI forgets calls that are over, counted; a tick (no packet) moves time on.
    #[test]
    fn forgotten_calls_are_counted_and_ticks_move_time() {
        let mut engine = Engine::new(EngineConfig {
            forget_finished: true,
            linger: Interval::from_secs(60),
            ..EngineConfig::default()
        });
        engine.feed(&udp_frame_at(options("short").as_bytes(), 1_000).as_frame());
        assert_eq!(engine.calls().len(), 1);
        let tick = |ms: i64| OwnedFrame {
            source: 0,
            number: 0,
            time: Timestamp::from_millis(ms),
            link: LinkType::TICK,
            data: Vec::new(),
            orig_len: 0,
        };
        engine.feed(&tick(50_000).as_frame());
        assert_eq!(engine.calls().len(), 1, "kept for the linger");
        engine.feed(&tick(200_000).as_frame());
        assert!(engine.calls().is_empty());
        assert_eq!(engine.counters().calls_forgotten, 1);
        assert!(
            engine.take_finished().is_empty(),
            "forgotten, not handed out"
        );
        assert_eq!(engine.source_stats(0, "t", Default::default()).packets, 1);
    }

    #[test]
    fn an_unanswered_request_is_handed_out_when_its_timers_run_out() {
        // Regression: a transaction that never got a final response kept its call in the
        // table for the whole idle limit (an hour), so streaming memory grew with the file.
        let invite = options("lonely").replace("OPTIONS", "INVITE");
        let mut engine = Engine::new(EngineConfig {
            streaming: true,
            ..EngineConfig::default()
        });
        engine.feed(&udp_frame_at(invite.as_bytes(), 1_000).as_frame());
        engine.feed(&udp_frame_at(b"\r\n\r\n", 20_000).as_frame());
        assert!(engine.take_finished().is_empty(), "still waiting at 19 s");
        engine.feed(&udp_frame_at(b"\r\n\r\n", 70_000).as_frame());
        let done = engine.take_finished();
        assert_eq!(
            done.len(),
            1,
            "handed out after Timer B (32 s) and the linger (32 s)"
        );
        assert_eq!(
            done[0].summary(engine.now()).outcome,
            crate::flow::Outcome::Timeout
        );
    }

    /// A phone that rings for a minute is one call: an INVITE that has had a provisional
    /// response waits for its final response past 64·T1 (Timer C). Regression: the call was
    /// handed out 32 s after the 180 as timed out, and the 200 began a second call; on small
    /// captures this showed once the timers ran at ticks.
    #[test]
    fn a_call_that_rings_for_a_minute_is_one_call() {
        let frames = [
            udp_frame_at(
                msg("INVITE sip:b@x SIP/2.0", None, "1 INVITE").as_bytes(),
                1_000,
            ),
            udp_frame_at(
                msg("SIP/2.0 180 Ringing", Some("t"), "1 INVITE").as_bytes(),
                2_000,
            ),
            udp_frame_at(b"\r\n\r\n", 40_000),
            udp_frame_at(
                msg("SIP/2.0 200 OK", Some("t"), "1 INVITE").as_bytes(),
                61_000,
            ),
        ];
        let (calls, engine) =
            stream_one_by_one(&mut crate::capture::VecSource::new(frames.to_vec()));
        assert_eq!(calls.len(), 1);
        let s = calls[0].summary(engine.now());
        assert_eq!(s.outcome, crate::flow::Outcome::Answered);
        assert_eq!(s.setup_time, Some(60.0));
    }

    /// A call keeps one streaming timer entry however many messages it has, and is handed out
    /// its linger after its last message, also when that message (a BYE) comes long after the
    /// call had gone quiet. (Each message had its own entry, with an atomic count on the
    /// shared Call-ID and a table lookup when it ran out.)
    #[test]
    fn a_call_has_one_timer_and_ends_a_linger_after_its_last_message() {
        let mut engine = Engine::new(EngineConfig {
            streaming: true,
            ..EngineConfig::default()
        });
        let with_branch = |m: String, branch: &str| m.replace("z9hG4bKinv", branch);
        let mut frames = vec![
            (1_000, msg("INVITE sip:b@x SIP/2.0", None, "1 INVITE")),
            (2_000, msg("SIP/2.0 200 OK", Some("t"), "1 INVITE")),
            (
                2_100,
                with_branch(msg("ACK sip:b@x SIP/2.0", Some("t"), "1 ACK"), "z9hG4bKack"),
            ),
        ];
        for n in 2..32 {
            let branch = format!("z9hG4bKinfo{n}");
            let cseq = format!("{n} INFO");
            let at = 1_000 * i64::from(n) + 1_000;
            let info = msg("INFO sip:b@x SIP/2.0", Some("t"), &cseq);
            frames.push((at, with_branch(info, &branch)));
            let ok = msg("SIP/2.0 200 OK", Some("t"), &cseq);
            frames.push((at + 10, with_branch(ok, &branch)));
        }
        for (at, m) in &frames {
            engine.feed(&udp_frame_at(m.as_bytes(), *at).as_frame());
        }
        let queued = |e: &Engine| e.model.linger.len() + e.model.idle.len();
        assert_eq!(queued(&engine), 1, "one entry for 63 messages");
        // Quiet from 32 s: answered, so not over; it waits for its BYE.
        engine.feed(&udp_frame_at(b"\r\n\r\n", 100_000).as_frame());
        assert!(engine.take_finished().is_empty());
        assert_eq!(queued(&engine), 1);
        let bye = |start: &str| with_branch(msg(start, Some("t"), "40 BYE"), "z9hG4bKbye");
        engine.feed(&udp_frame_at(bye("BYE sip:b@x SIP/2.0").as_bytes(), 200_000).as_frame());
        engine.feed(&udp_frame_at(bye("SIP/2.0 200 OK").as_bytes(), 200_100).as_frame());
        engine.feed(&udp_frame_at(b"\r\n\r\n", 232_000).as_frame());
        assert!(
            engine.take_finished().is_empty(),
            "32 s after the BYE, not after its 200"
        );
        engine.feed(&udp_frame_at(b"\r\n\r\n", 233_000).as_frame());
        let done = engine.take_finished();
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].messages.len(), 65);
        // The timer's copy of the last message's time is the call's own.
        assert_eq!(done[0].clock.last, done[0].end());
        assert_eq!(done[0].clock.last, Timestamp::from_millis(200_100));
        assert_eq!(
            done[0].summary(engine.now()).outcome,
            crate::flow::Outcome::Answered
        );
        assert!(engine.calls().is_empty());
    }

    /// A call handed out frees its place in the table for the next call, and an entry left in
    /// the queues for the old call no longer finds a call there: the place's new call has
    /// another creation number.
    #[test]
    fn a_freed_place_serves_the_next_call_and_old_entries_miss_it() {
        let mut engine = Engine::new(EngineConfig {
            streaming: true,
            ..EngineConfig::default()
        });
        let feed = |engine: &mut Engine, at: i64, m: &str| {
            engine.feed(&udp_frame_at(m.as_bytes(), at).as_frame());
        };
        feed(
            &mut engine,
            1_000,
            &msg("OPTIONS sip:b@x SIP/2.0", None, "1 OPTIONS"),
        );
        feed(
            &mut engine,
            1_010,
            &msg("SIP/2.0 200 OK", Some("t"), "1 OPTIONS"),
        );
        feed(&mut engine, 40_000, "\r\n\r\n");
        let done = engine.take_finished();
        assert_eq!(done.len(), 1, "the OPTIONS is over after the linger");
        assert_eq!(engine.model.free, vec![0]);
        let other = |m: String| m.replace("Call-ID: fork", "Call-ID: other");
        feed(
            &mut engine,
            41_000,
            &other(msg("OPTIONS sip:b@x SIP/2.0", None, "1 OPTIONS")),
        );
        assert_eq!(engine.model.slots.len(), 1, "the place was reused");
        assert!(engine.model.free.is_empty());
        assert!(engine.model.get_mut(Slot { seq: 0, at: 0 }).is_none());
        let now = engine
            .model
            .get_mut(Slot { seq: 1, at: 0 })
            .map(|c| c.call_id.clone());
        assert_eq!(now.as_deref(), Some("other"));
        assert_eq!(engine.calls().len(), 1);
        assert_eq!(&*engine.calls()[0].call_id, "other");
    }

    /// The same call with nothing after the 180 is handed out once Timer C has run out.
    #[test]
    fn a_call_that_rings_unanswered_is_handed_out_after_timer_c() {
        let mut engine = Engine::new(EngineConfig {
            streaming: true,
            ..EngineConfig::default()
        });
        engine.feed(
            &udp_frame_at(
                msg("INVITE sip:b@x SIP/2.0", None, "1 INVITE").as_bytes(),
                1_000,
            )
            .as_frame(),
        );
        engine.feed(
            &udp_frame_at(
                msg("SIP/2.0 180 Ringing", Some("t"), "1 INVITE").as_bytes(),
                2_000,
            )
            .as_frame(),
        );
        engine.feed(&udp_frame_at(b"\r\n\r\n", 150_000).as_frame());
        assert!(engine.take_finished().is_empty(), "still ringing at 148 s");
        engine.feed(&udp_frame_at(b"\r\n\r\n", 183_000).as_frame());
        assert_eq!(engine.take_finished().len(), 1, "handed out after Timer C");
    }

    fn msg(start: &str, to_tag: Option<&str>, cseq: &str) -> String {
        let to_tag = to_tag.map(|t| format!(";tag={t}")).unwrap_or_default();
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKinv\r\nFrom: <sip:a@x>;tag=caller\r\n\
To: <sip:b@x>{to_tag}\r\nCall-ID: fork\r\nCSeq: {cseq}\r\nContent-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn forked_responses_make_several_dialogs() {
        let mut engine = Engine::new(EngineConfig::default());
        let frames = [
            msg("INVITE sip:b@x SIP/2.0", None, "1 INVITE"),
            msg("SIP/2.0 180 Ringing", Some("left"), "1 INVITE"),
            msg("SIP/2.0 180 Ringing", Some("right"), "1 INVITE"),
            msg("SIP/2.0 200 OK", Some("left"), "1 INVITE"),
        ];
        for (i, f) in frames.iter().enumerate() {
            engine.feed(&udp_frame_at(f.as_bytes(), 1000 + i as i64).as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let call = calls[0];
        assert_eq!(call.dialogs.len(), 2);
        let state = |tag: &str| {
            call.dialogs
                .iter()
                .find(|d| d.remote_tag == tag)
                .map(|d| d.state)
        };
        assert_eq!(state("left"), Some(crate::flow::DialogState::Confirmed));
        assert_eq!(state("right"), Some(crate::flow::DialogState::Early));
        assert_eq!(call.transactions.len(), 1, "all on one INVITE transaction");
        assert_eq!(
            call.summary(engine.now()).outcome,
            crate::flow::Outcome::Answered
        );
    }

    #[test]
    fn a_call_first_seen_through_a_response_is_kept() {
        let mut engine = Engine::new(EngineConfig::default());
        let ok = msg("SIP/2.0 200 OK", Some("t"), "7 BYE");
        engine.feed(&udp_frame(ok.as_bytes()).as_frame());
        engine.finish();
        let calls = engine.calls();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].first_method(), "BYE");
        let tx = &calls[0].transactions[0];
        assert!(!tx.request_seen);
        assert_eq!(tx.final_status(), Some(200));
        assert_eq!(
            calls[0].summary(engine.now()).outcome,
            crate::flow::Outcome::Completed
        );
    }

    #[test]
    fn rfc2543_peers_are_matched_without_the_magic_cookie() {
        // No z9hG4bK branch: transactions match on From tag, CSeq and the top Via (§17.2.3).
        let old = |start: &str, to_tag: Option<&str>, cseq: &str| {
            msg(start, to_tag, cseq).replace("branch=z9hG4bKinv", "branch=old1")
        };
        let mut engine = Engine::new(EngineConfig::default());
        let frames = [
            old("INVITE sip:b@x SIP/2.0", None, "1 INVITE"),
            old("INVITE sip:b@x SIP/2.0", None, "1 INVITE"),
            old("SIP/2.0 486 Busy Here", Some("t"), "1 INVITE"),
            old("ACK sip:b@x SIP/2.0", Some("t"), "1 ACK"),
        ];
        for (i, f) in frames.iter().enumerate() {
            engine.feed(&udp_frame_at(f.as_bytes(), 1000 + i as i64 * 500).as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let call = calls[0];
        assert_eq!(
            call.transactions.len(),
            1,
            "request, retransmission, response and ACK"
        );
        let tx = &call.transactions[0];
        assert_eq!(tx.retransmissions, 1);
        assert_eq!(tx.final_status(), Some(486));
        assert!(tx.ack.is_some());
        assert_eq!(
            call.summary(engine.now()).outcome,
            crate::flow::Outcome::Busy
        );
    }

    #[test]
    fn keepalives_and_other_datagrams_are_counted_not_parsed() {
        let mut engine = Engine::new(EngineConfig::default());
        engine.feed(&udp_frame(b"\r\n\r\n").as_frame());
        engine.feed(&udp_frame(b"GET / HTTP/1.1\r\n\r\n").as_frame());
        engine.finish();
        let s = engine.source_stats(0, "t", Default::default());
        assert_eq!(s.sip_messages, 0);
        assert_eq!(s.skipped.get(net::SkipReason::Keepalive), 1);
        assert_eq!(s.skipped.get(net::SkipReason::NotSip), 1);
    }
}
