//! The engine: a synchronous pipeline fed one frame at a time. Frames go through [`net`] to SIP
//! message bytes, through [`sip`] to parsed messages, and into [`crate::flow`] calls. Owns the call
//! table and its limits; the commands, exporters and (later) the UI all read what it keeps.
//!
//! In streaming mode ([`EngineConfig::streaming`]) calls that are over (RFC 3261 timers
//! elapsed) are handed out with [`Engine::take_finished`] and forgotten, so memory stays
//! bounded on a capture of any length.
//!
//! The work splits in two halves with one narrow interface, [`Prepared`]: [`Ingest`] turns
//! frames into parsed message records (decoding, reassembly, parsing), the call model
//! correlates them. [`Engine::feed`] runs both in turn; [`run_pipelined`] runs them on two
//! threads for whole files, with the same results. Parsing is most of the first half's work, so
//! when the correlating thread runs out of work the reading thread hands it some messages
//! unparsed ([`Prepared::Deferred`]), and each thread stays busy.

use crate::WireMap;
use crate::capture::{CaptureDamage, Frame, FrameSource};
use crate::flow::{Call, CallInit, SipMessage, call::T1_X64_MS};
use crate::net::{self, Decoder, NetLimits, SipPdu};
use crate::sip;
use crate::time::Timestamp;
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub linger_ms: i64,
    /// How long a call that is not over (an answered call without BYE) may stay idle.
    pub idle_ms: i64,
    /// Not streaming, but long-running (the live UI): calls that are over are forgotten
    /// `linger_ms` after their last message (and counted in `calls_forgotten`) instead of being
    /// kept for ever.
    pub forget_finished: bool,
    /// Bytes the call table may cost, by accounting: what its calls hold ([`Call::footprint`])
    /// and a quarter more for the allocator's rounding (`resident`); over it, calls are
    /// evicted least valuable first (`Model::shed`) and counted (`calls_shed`). `None`: no
    /// budget beyond `max_calls`.
    pub max_memory: Option<usize>,
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
            linger_ms: T1_X64_MS,
            idle_ms: 3_600_000,
            forget_finished: false,
            max_memory: None,
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
    /// Packets decoded from inside tunnels.
    pub tunneled: u64,
    /// SIP messages that came in HEP packets.
    pub hep: u64,
    pub sip_messages: u64,
    pub malformed: u64,
    pub skipped: net::SkipCounts,
    pub damage: CaptureDamage,
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

/// The call table and what feeds it; apart from the decoder so that the decoder can hand
/// each message to it directly, without copying.
struct Model {
    config: EngineConfig,
    /// Calls by Call-ID: where each is in `slots`.
    calls: WireMap<Arc<str>, u32>,
    /// The calls. Boxed: a call is 400 bytes, which the table would otherwise hold, and move
    /// on every growth. The queues below name a call by its place here and its `seq` (places
    /// are reused), not by Call-ID: looking a call up by Call-ID when its timer ran out read
    /// the Call-ID and the table's bucket from memory long gone cold, two cache misses of
    /// the three a timer cost, and every queue entry held a count on the shared Call-ID.
    #[allow(clippy::vec_box)]
    slots: Vec<Option<Box<Call>>>,
    /// Places in `slots` free for the next call.
    free: Vec<u32>,
    next_seq: u64,
    /// (sip_messages, malformed) per source.
    counts: std::collections::BTreeMap<usize, (u64, u64)>,
    orphans: Vec<Orphan>,
    /// The timers: when to look at a call again, for a message that moved its timer earlier
    /// (its first, or one after the call had gone quiet), in arrival order. Deadlines are
    /// (nearly) increasing, so a FIFO serves: O(1) and sequential in memory.
    ///
    /// A call has one live entry, here or in `idle`: the one whose deadline is the call's
    /// `clock.wake`; any other is stale and passed over. (One entry per message cost an
    /// atomic count on the shared Call-ID and a table lookup per message, a fifth of the
    /// correlating thread's time; the timer runs out at the same moment either way, the last
    /// message's time plus the linger, because a call not yet quiet is looked at again then.)
    linger: VecDeque<(Timestamp, Slot)>,
    /// The timers: calls looked at again later than their first entry said: not yet quiet for
    /// the linger, or quiet but not over (an answered call with no BYE yet, a ringing INVITE).
    /// Out of order: a heap, of about one entry per call.
    idle: BinaryHeap<Reverse<(Timestamp, Slot)>>,
    /// Boxed as the table holds them: handing out a call moves a pointer, not the record.
    #[allow(clippy::vec_box)]
    finished: Vec<Box<Call>>,
    /// Not streaming: calls that are over, closed by the same rule and at the same moment as
    /// streaming hands them out (so that every output mode finds the same calls), and kept,
    /// by creation order (the oldest is evicted first; one is removed from the middle when it
    /// is shed).
    closed: std::collections::BTreeMap<u64, Box<Call>>,
    /// Bytes held by the calls in `slots` and `closed`, by accounting: each call's
    /// [`Call::footprint`] and [`TABLE_BYTES_PER_CALL`].
    held: usize,
    /// Calls that began with an out-of-dialog request, in creation order: the first to go when
    /// memory runs short, if they are still [`expendable`] then (entries may be stale).
    expendable: VecDeque<Slot>,
    /// Expendable calls passed over by a round of shedding because their source is not a
    /// scanner: the next to go, after the scanners'.
    expendable_later: VecDeque<Slot>,
    /// Creation order of calls, for eviction of the oldest (entries may be stale).
    creation: VecDeque<Slot>,
    /// The calls that last carried messages on each TCP connection (either direction), so
    /// that bytes the connection lost are told to them ([`Call::lost_bytes`]); at most
    /// [`MAX_CONNECTIONS`] connections, beyond which those whose calls are over are dropped
    /// (and, if too few are, the table starts again, counted).
    connections: crate::WireMap<ConnectionKey, [Option<Slot>; CALLS_PER_CONNECTION]>,
    /// Every call that ended (closed, handed out or evicted), tallied by the source that
    /// began it, to tell scanners.
    scanners: crate::flow::scanner::ScannerTable,
    counters: EngineCounters,
}

/// A TCP connection, either direction: the two addresses in order. Hashed through
/// [`crate::hash_addr`], as the TCP stream table's key is (the derived hash of two `SocketAddr`s
/// feeds the hasher field by field, and this is looked up for every TCP message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ConnectionKey {
    low: std::net::SocketAddr,
    high: std::net::SocketAddr,
}

impl std::hash::Hash for ConnectionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        crate::hash_addr(&self.low, state);
        crate::hash_addr(&self.high, state);
    }
}

impl ConnectionKey {
    fn of(a: std::net::SocketAddr, b: std::net::SocketAddr) -> ConnectionKey {
        let (low, high) = if a <= b { (a, b) } else { (b, a) };
        ConnectionKey { low, high }
    }
}

/// Calls remembered per connection: the latest few that carried a message on it (a trunk
/// between two proxies carries many calls, and a loss can only hide the messages of calls
/// that were in progress on it).
const CALLS_PER_CONNECTION: usize = 4;
/// Connections remembered at once ([`Model::connections`]).
const MAX_CONNECTIONS: usize = 65_536;

/// What the call table spends on a call besides the call itself: its entry in the Call-ID
/// table, its place, and its entries in the timer and eviction queues.
const TABLE_BYTES_PER_CALL: usize = 160;

/// What `held` bytes cost in resident memory: the allocator rounds each block up to its size
/// class and keeps pages partly used, 1.2 to 1.3 times the bytes asked for on the benchmark
/// captures and floods (docs/performance.md). The budget counts this share too, so that it
/// bounds the process's memory and not only what was asked for.
fn resident(held: usize) -> usize {
    held.saturating_add(held / 4)
}

/// Whether a call is the first to go when memory runs short: a single out-of-dialog request
/// (with its retransmissions) that was never answered, or answered only with a 4xx, and no
/// dialog. A scanner's probe, an OPTIONS ping: the least a user loses.
fn expendable(call: &Call) -> bool {
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
struct Slot {
    seq: u64,
    at: u32,
}

/// One message ready for the call model, or a note that bytes looked like SIP but did not
/// parse. Produced by [`Ingest`], consumed by the model.
// The message variant is large and the other tiny on purpose: boxing the message would add
// an allocation per message to save padding on the rare unparsable case.
#[allow(clippy::large_enum_variant)]
pub enum Prepared {
    Unparsable {
        source: usize,
    },
    Message {
        /// Where the Call-ID is in its batch's [`Batch::text`]; `None` when the message has
        /// no Call-ID (it becomes an orphan).
        call_id: Option<std::ops::Range<usize>>,
        msg: SipMessage,
        /// The parties, with the first message of a call (see [`Ingest`]).
        init: Option<Box<CallInit>>,
        malformed: bool,
    },
    /// SIP bytes left for the consumer to parse: the PDU, its bytes and frames kept in the
    /// batch's `raw` and `frames`.
    Deferred(DeferredPdu),
    /// Capture time has moved on to here: the streaming timers run (see `TICK_MS`).
    Tick(Timestamp),
    /// Bytes of a TCP connection were lost or could not be read: the calls on it are told.
    Loss(net::tcp::StreamLoss),
}

/// How far capture time moves between two [`Prepared::Tick`]s, at most (one frame's time
/// past the last tick brings the next). The timers run at these ticks and nowhere else, so
/// that which calls are handed out, and in what order, follows from the frames alone: when
/// they ran at the end of each batch, it followed from where batches ended, which depends on
/// how the two threads kept pace, and the NDJSON export of one capture came out in a
/// different order from run to run.
const TICK_MS: i64 = 1_000;

/// A [`SipPdu`] whose bytes and frame list are ranges into its batch.
pub struct DeferredPdu {
    source: usize,
    frame: u64,
    frames: std::ops::Range<usize>,
    time: Timestamp,
    src: std::net::SocketAddr,
    dst: std::net::SocketAddr,
    transport: net::Transport,
    bytes: std::ops::Range<usize>,
}

impl DeferredPdu {
    /// Keeps what `pdu` holds in `out`, to be parsed on the other side. Not for HEP (its
    /// agent's details borrow the packet).
    fn keep(pdu: &SipPdu<'_>, out: &mut Batch) -> DeferredPdu {
        if out.raw.capacity() == 0 {
            // Once per batch for its whole life (batches are reused): room for what it may
            // hold, so that it never grows by doubling past that and copying as it goes.
            out.raw.reserve_exact(BATCH_BYTES + DEFER_UP_TO);
        }
        let at = out.raw.len();
        out.raw.extend_from_slice(pdu.bytes);
        let frames_at = out.frames.len();
        out.frames.extend_from_slice(pdu.frames);
        DeferredPdu {
            source: pdu.source,
            frame: pdu.frame,
            frames: frames_at..out.frames.len(),
            time: pdu.time,
            src: pdu.src,
            dst: pdu.dst,
            transport: pdu.transport,
            bytes: at..out.raw.len(),
        }
    }

    fn pdu<'a>(&self, raw: &'a [u8], frames: &'a [u64]) -> SipPdu<'a> {
        SipPdu {
            source: self.source,
            frame: self.frame,
            frames: frames.get(self.frames.clone()).unwrap_or(&[]),
            time: self.time,
            src: self.src,
            dst: self.dst,
            transport: self.transport,
            bytes: raw.get(self.bytes.clone()).unwrap_or(&[]),
            hep: None,
        }
    }
}

/// Prepared messages in the order they were decoded, with the text they refer to. The
/// Call-IDs travel in one buffer per batch rather than one allocation per message (which the
/// correlating thread then freed: a cross-thread free for every message).
#[derive(Default)]
pub struct Batch {
    pub items: Vec<Prepared>,
    pub text: String,
    /// The bytes and frame lists of deferred PDUs.
    raw: Vec<u8>,
    frames: Vec<u64>,
    /// PDUs, ticks and loss notes in the batch, and the PDUs' bytes, whether parsed or
    /// deferred: where the reader ends a batch must not depend on which PDUs the other thread
    /// took (that depends on timing), or the engine's clock would advance at different
    /// places from run to run and the same capture read differently.
    units: usize,
    pdu_bytes: usize,
}

impl Batch {
    fn with_capacity(n: usize) -> Batch {
        Batch {
            items: Vec::with_capacity(n),
            text: String::with_capacity(n * 48),
            raw: Vec::new(),
            frames: Vec::new(),
            units: 0,
            pdu_bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The first half of the engine: frames in, [`Prepared`] messages out.
pub struct Ingest {
    decoder: Decoder,
    preparer: Preparer,
    tap: Option<Tap>,
    defer: Defer,
    /// When the next [`Prepared::Tick`] is due.
    next_tick: Timestamp,
}

/// When [`Ingest`] leaves PDUs for the consumer to parse.
enum Defer {
    Never,
    /// When fewer than [`DEFER_BELOW`] batches wait for the consumer (this counts them): it
    /// is about to run out of work while this side still has plenty.
    WhenIdle(Arc<std::sync::atomic::AtomicUsize>),
    /// Every PDU (tests: the deferred path must give the same results).
    #[cfg(test)]
    Always,
}

/// See [`Defer::WhenIdle`].
const DEFER_BELOW: usize = 2;
/// Larger PDUs are parsed where they are rather than copied.
const DEFER_UP_TO: usize = 8 << 10;
/// A batch goes as soon as it holds this many deferred bytes, so that the bytes between the
/// threads stay bounded whatever the messages' size.
const BATCH_BYTES: usize = 128 << 10;

/// Sees every SIP PDU as the decoder delivers it (the HEP sender forwards them).
pub type Tap = Box<dyn FnMut(&crate::net::SipPdu<'_>) + Send>;

/// Parses what the decoder delivers into [`Prepared`] messages.
///
/// It remembers (by a keyed hash) which Call-IDs it has sent, and when, so that the parties
/// are built and sent only with the first message of a call. The memory is a hint: a
/// direct-mapped table of hashes, where a Call-ID whose slot another took is simply sent with
/// its parties again, which is harmless (the model uses them only for a new call). So it has
/// a fixed size and costs one cache line per message, where a growing set cost a probe and a
/// resize.
///
/// A Call-ID silent for the linger is sent with its parties again: the model may have handed
/// its call out meanwhile (streaming), and the next message then begins a new call, which
/// needs them. (Regression: such a call, a REGISTER refreshed with the same Call-ID, had no
/// From or To.)
struct Preparer {
    keep: crate::flow::message::Keep,
    /// Per slot: the upper half of the Call-ID's hash (never 0: 0 is an empty slot) and the
    /// capture second it was last sent in.
    seen: Box<[u64]>,
    /// Seconds of silence after which a Call-ID counts as unseen: one less than the linger,
    /// so that it is never later than the model's hand-out.
    forget_after: u32,
    hasher: foldhash::fast::FixedState,
}

/// Slots in [`Preparer`]'s table (512 KiB): far more than the calls in flight at once on a
/// busy link, so that a call's parties are rarely built twice.
const SEEN_SLOTS: usize = 1 << 16;

impl Preparer {
    /// Parses every message in the PDU (a datagram may carry several).
    fn prepare_all(&mut self, pdu: &SipPdu<'_>, out: &mut Batch) {
        let mut rest = pdu.bytes;
        loop {
            // Matched by reference: moving the parsed message (600 bytes) out of the result
            // would copy it.
            match &sip::Message::parse(rest) {
                Ok((parsed, used)) => {
                    let used = *used;
                    self.prepare(pdu, parsed, out);
                    let after = rest.get(used.max(1)..).unwrap_or(&[]);
                    let skip = crate::net::framing::leading_crlf(after);
                    rest = after.get(skip..).unwrap_or(&[]);
                    if !crate::net::framing::starts_with_start_line(rest) {
                        return;
                    }
                }
                Err(_) => {
                    // The decoder only hands over bytes that start with a start line, so this
                    // is rare (a start line the parser still rejects); counted as malformed.
                    out.items.push(Prepared::Unparsable { source: pdu.source });
                    return;
                }
            }
        }
    }

    /// Builds the message's record and pushes it to `out`.
    fn prepare(&mut self, pdu: &SipPdu<'_>, parsed: &sip::Message<'_>, out: &mut Batch) {
        let text = &mut out.text;
        // (The record's issues are the parser's.)
        let malformed = parsed.issues.iter().any(sip::Issue::is_malformed);
        let head = crate::flow::message::Head::of(parsed);
        let call_id = parsed.call_id().map(|raw| {
            let start = text.len();
            head.push_text(raw, text);
            start..text.len()
        });
        let first_sight = call_id.as_ref().is_some_and(|range| {
            let id = text.get(range.clone()).unwrap_or("");
            let hash = std::hash::BuildHasher::hash_one(&self.hasher, id);
            // The slot is chosen by the low bits, the tag is the high ones.
            let tag = (hash >> 32) | 1;
            // Wrapping seconds: a time that goes backwards counts as a long silence, which
            // only sends the parties once more.
            let second = pdu.time.secs() as u32;
            let entry = tag << 32 | u64::from(second);
            match self.seen.get_mut(hash as usize % SEEN_SLOTS) {
                Some(slot)
                    if *slot >> 32 == tag
                        && second.wrapping_sub(*slot as u32) < self.forget_after =>
                {
                    *slot = entry;
                    false
                }
                Some(slot) => {
                    *slot = entry;
                    true
                }
                None => true,
            }
        });
        // (The record is made, then moved into the batch: one 336-byte copy, which building
        // the call's parties from the same From and To parse more than pays for.)
        let (msg, init) = SipMessage::build(pdu, parsed, self.keep, &head, first_sight);
        out.items.push(Prepared::Message {
            call_id,
            msg,
            init,
            malformed,
        });
    }
}

impl Ingest {
    pub fn new(config: &EngineConfig) -> Ingest {
        // A key drawn per run keeps hostile Call-IDs from aiming at collisions.
        let seed = std::hash::BuildHasher::hash_one(&foldhash::fast::RandomState::default(), 0u64);
        let hasher = foldhash::fast::FixedState::with_seed(seed);
        Ingest {
            decoder: Decoder::new(config.net),
            preparer: Preparer {
                keep: crate::flow::message::Keep {
                    raw: config.keep_raw,
                    detail: config.keep_detail,
                },
                seen: vec![0; SEEN_SLOTS].into_boxed_slice(),
                forget_after: u32::try_from(config.linger_ms / 1_000)
                    .unwrap_or(u32::MAX)
                    .saturating_sub(1),
                hasher,
            },
            tap: None,
            defer: Defer::Never,
            next_tick: Timestamp(i64::MIN),
        }
    }

    /// Decodes one frame and prepares every SIP message it completes.
    pub fn feed(&mut self, frame: &Frame<'_>, out: &mut Batch) {
        let defer = match &self.defer {
            Defer::Never => false,
            Defer::WhenIdle(waiting) => {
                waiting.load(std::sync::atomic::Ordering::Relaxed) < DEFER_BELOW
            }
            #[cfg(test)]
            Defer::Always => true,
        };
        // Before the frame's messages: the timers that ran out by its time go first, so that a
        // message after a call was over and quiet for the linger begins a new call. The timers
        // run in every mode: they decide where a call ends, whether calls are streamed or kept.
        if frame.time >= self.next_tick {
            out.items.push(Prepared::Tick(frame.time));
            out.units += 1;
            self.next_tick = frame.time.saturating_add_millis(TICK_MS);
        }
        let (preparer, tap) = (&mut self.preparer, &mut self.tap);
        self.decoder.feed(frame, &mut |pdu| {
            if let Some(tap) = tap {
                tap(&pdu);
            }
            out.units += 1;
            out.pdu_bytes += pdu.bytes.len();
            if defer && pdu.hep.is_none() && pdu.bytes.len() <= DEFER_UP_TO {
                let d = DeferredPdu::keep(&pdu, out);
                out.items.push(Prepared::Deferred(d));
            } else {
                preparer.prepare_all(&pdu, out)
            }
        });
        // After the frame's messages, so that a call whose message came with the frame hears
        // of what the frame showed lost. (Rare: the test keeps the common case to one load.)
        if self.decoder.has_losses() {
            let before = out.items.len();
            out.items
                .extend(self.decoder.take_losses().map(Prepared::Loss));
            out.units += out.items.len() - before;
        }
    }

    /// End of input: flushes reassembly buffers.
    pub fn finish(&mut self, out: &mut Batch) {
        let (preparer, tap) = (&mut self.preparer, &mut self.tap);
        self.decoder.finish(&mut |pdu| {
            if let Some(tap) = tap {
                tap(&pdu);
            }
            preparer.prepare_all(&pdu, out)
        });
        out.items
            .extend(self.decoder.take_losses().map(Prepared::Loss));
    }
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
                counters: EngineCounters::default(),
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
                p => self.model.apply(p, text),
            }
        }
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
        if self.model.config.streaming {
            self.model.hand_out_all();
        }
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
            skipped,
        } = self.ingest.decoder.stats(source);
        let (sip_messages, malformed) = self.model.counts.get(&source).copied().unwrap_or_default();
        SourceStats {
            name: name.to_string(),
            packets,
            tunneled,
            hep,
            sip_messages,
            malformed,
            skipped,
            damage,
        }
    }
}

impl Model {
    fn count(&mut self, source: usize) -> &mut (u64, u64) {
        self.counts.entry(source).or_default()
    }

    // Inlined (one caller) for the same reason as `Call::add`: fewer copies of each record.
    #[inline]
    fn apply(&mut self, p: Prepared, text: &str) {
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
                malformed,
            } => self.apply_message(call_id, msg, init, malformed, text),
            // Parsed by `Engine::apply` before they reach the model.
            Prepared::Deferred(_) => {}
            Prepared::Tick(time) => self.expire(time),
            Prepared::Loss(loss) => self.lost(loss),
        }
    }

    /// A prepared message, its fields moved straight out of the batch entry (gathering them
    /// into a tuple first copied the record once more).
    #[inline]
    fn apply_message(
        &mut self,
        call_id: Option<std::ops::Range<usize>>,
        msg: SipMessage,
        init: Option<Box<CallInit>>,
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
        let due = msg.time.saturating_add_millis(self.config.linger_ms);
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
                let before = call.dropped_messages;
                let bytes = call.footprint();
                call.add(msg, max_messages);
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
                call.add(msg, max_messages);
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
    fn uses_connection(&mut self, key: ConnectionKey, slot: Slot) {
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
    fn lost(&mut self, loss: net::tcp::StreamLoss) {
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
    fn evict_oldest(&mut self) {
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
    fn get_mut(&mut self, slot: Slot) -> Option<&mut Box<Call>> {
        self.slots
            .get_mut(slot.at as usize)?
            .as_mut()
            .filter(|c| c.seq == slot.seq)
    }

    /// Takes the call a queue entry names out of the table, if it is still there.
    fn take(&mut self, slot: Slot) -> Option<Box<Call>> {
        let place = self.slots.get_mut(slot.at as usize)?;
        if place.as_ref()?.seq != slot.seq {
            return None;
        }
        let call = place.take()?;
        self.calls.remove(&*call.call_id);
        self.free.push(slot.at);
        self.held = self
            .held
            .saturating_sub(call.footprint() + TABLE_BYTES_PER_CALL);
        Some(call)
    }

    /// Over the memory budget: evicts calls until a sixteenth of it is free, least valuable
    /// first: [`expendable`] calls from sources that are scanning, then other expendable calls,
    /// then the oldest calls. Each is counted (`calls_shed`); in streaming mode it is handed
    /// out, as it is now. Every queue entry is looked at once, so shedding is O(1) per call.
    fn shed(&mut self, budget: usize) {
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
    fn find(&self, slot: Slot) -> Option<&Call> {
        let open = self
            .slots
            .get(slot.at as usize)
            .and_then(Option::as_ref)
            .filter(|c| c.seq == slot.seq);
        open.or_else(|| self.closed.get(&slot.seq)).map(|c| &**c)
    }

    /// Evicts the call a queue entry names for memory.
    fn shed_one(&mut self, slot: Slot) {
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

    /// Hands out (streaming) or closes calls whose timers have run out.
    fn expire(&mut self, now: Timestamp) {
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
    fn revisit(&mut self, slot: Slot, deadline: Timestamp, now: Timestamp) {
        let (linger_ms, idle_ms) = (self.config.linger_ms, self.config.idle_ms);
        let Some(call) = self.get_mut(slot) else {
            return; // already handed out or evicted
        };
        if call.clock.wake != deadline {
            return; // stale: a message brought the timer forward, and that entry decided
        }
        let last = call.clock.last;
        let quiet_for = now.0.saturating_sub(last.0);
        if quiet_for < linger_ms.saturating_mul(1_000_000) {
            // Newer activity: the linger counts from the last message.
            call.clock.wake = last.saturating_add_millis(linger_ms);
            let wake = call.clock.wake;
            self.idle.push(Reverse((wake, slot)));
            return;
        }
        let idle_over = quiet_for >= idle_ms.saturating_mul(1_000_000);
        let over_at = call.waiting_until();
        if over_at.is_some_and(|t| now >= t) || idle_over {
            if let Some(mut call) = self.take(slot) {
                call.closed_at = Some(now);
                self.scanners.add(&call);
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
            let idle = last.saturating_add_millis(idle_ms);
            let again = over_at.map_or(idle, |t| t.min(idle));
            call.clock.wake = again;
            self.idle.push(Reverse((again, slot)));
        }
    }

    /// End of input in streaming mode: every call left is handed out, oldest first.
    fn hand_out_all(&mut self) {
        let mut rest: Vec<Box<Call>> = self.slots.drain(..).flatten().collect();
        rest.sort_by_key(|c| c.seq);
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

/// How many prepared messages travel between the two threads at once. (1,024 held twice the
/// memory between the threads, 3 MB more at the peak, for no gain in speed.)
const BATCH: usize = 512;
/// Batches in flight: bounds the memory between the threads.
const IN_FLIGHT: usize = 8;

/// Runs a whole source through a new engine on two threads: this thread correlates while a
/// second one reads, decodes and parses. `each` is called on this thread after every batch
/// (for streaming output) with the bytes read so far. Results are the same as feeding the
/// frames one by one to [`Engine::feed`].
pub fn run_pipelined(
    source: &mut (dyn FrameSource + Send),
    config: EngineConfig,
    mut each: impl FnMut(&mut Engine, u64),
) -> Result<Engine, ReaderFailed> {
    run_pipelined_with(source, Engine::new(config), |engine, done| {
        each(engine, done);
        Ok::<(), ReaderFailed>(())
    })
}

/// The reading thread of [`run_pipelined`] ended by a panic: a bug (the library does not
/// panic on data), reported rather than passed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reading thread failed")]
pub struct ReaderFailed;

/// [`run_pipelined`] with an engine made by the caller (with a tap, say) and a callback that
/// can fail (an output error): the first error stops the run and is returned.
pub fn run_pipelined_with<E: From<ReaderFailed>>(
    source: &mut (dyn FrameSource + Send),
    mut engine: Engine,
    mut each: impl FnMut(&mut Engine, u64) -> Result<(), E>,
) -> Result<Engine, E> {
    let config = engine.model.config;
    let mut ingest = std::mem::replace(&mut engine.ingest, Ingest::new(&config));
    let waiting = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = Arc::clone(&waiting);
    if matches!(ingest.defer, Defer::Never) {
        ingest.defer = Defer::WhenIdle(Arc::clone(&waiting));
    }
    let (tx, rx) = std::sync::mpsc::sync_channel::<(Batch, Timestamp, u64)>(IN_FLIGHT);
    let (back_tx, back_rx) = std::sync::mpsc::channel::<Batch>();
    let reading: &mut (dyn FrameSource + Send) = &mut *source;
    let result = std::thread::scope(|scope| -> Result<(), E> {
        let reader = scope.spawn(move || {
            let source = reading;
            let mut batch = Batch::with_capacity(BATCH);
            let mut last = Timestamp::default();
            let mut frames = 0u64;
            while let Some(frame) = source.next_frame() {
                last = last.max(frame.time);
                ingest.feed(&frame, &mut batch);
                frames += 1;
                // Frames carry time forward even when they hold no SIP (streaming timers). A
                // live input's tick (a quiet network) sends what there is at once.
                let tick = frame.link == crate::capture::LinkType::TICK;
                if tick
                    || batch.units >= BATCH
                    || batch.pdu_bytes >= BATCH_BYTES
                    || frames.is_multiple_of(BATCH as u64 * 4)
                {
                    let next = back_rx
                        .try_recv()
                        .unwrap_or_else(|_| Batch::with_capacity(BATCH));
                    let full = std::mem::replace(&mut batch, next);
                    // Counted before it is sent, so that the consumer never counts it first.
                    counting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if tx.send((full, last, source.progress().0)).is_err() {
                        return ingest; // the consumer stopped (an output error)
                    }
                }
            }
            ingest.finish(&mut batch);
            counting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = tx.send((batch, last, source.progress().0));
            ingest
        });
        let mut failure = None;
        for (mut batch, time, progress) in rx.iter() {
            waiting.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            if failure.is_some() {
                continue; // drain so the reader can finish
            }
            engine.apply(time, &mut batch);
            let _ = back_tx.send(batch);
            if let Err(e) = each(&mut engine, progress) {
                failure = Some(e);
            }
        }
        match reader.join() {
            Ok(ingest) => engine.ingest = ingest,
            Err(_) => return Err(E::from(ReaderFailed)),
        }
        failure.map_or(Ok(()), Err)
    });
    result?;
    // What `finish` does after the last frame, minus the flush the reader already did.
    if engine.model.config.streaming {
        engine.model.hand_out_all();
    }
    each(&mut engine, source.progress().0)?;
    Ok(engine)
}

#[cfg(test)]
mod tests {
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

    /// A generated capture: TCP split at random, IP fragments, retransmissions.
    fn synthetic_pcap() -> Vec<u8> {
        let cfg = crate::synth::SynthConfig {
            calls: 400,
            tcp_share: 0.5,
            fragment_share: 0.3,
            retransmit_share: 0.3,
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
        let run = |keep_detail: bool| {
            let reader = Box::new(std::io::Cursor::new(pcap.clone()));
            let mut src =
                crate::capture::FileSource::from_reader(reader, "synth", 0, None).unwrap();
            let config = EngineConfig {
                keep_detail,
                ..EngineConfig::default()
            };
            run_pipelined(&mut src, config, |_, _| {}).unwrap()
        };
        let (full, lean) = (run(true), run(false));
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
            linger_ms: 60_000,
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
