//! A call: every message that shares a Call-ID, with its transactions and dialogs, and the
//! outcome derived from them. Correlation happens here, one message at a time, in capture
//! order; nothing is looked up across calls.

use super::dialog::{Dialog, DialogState, creates_dialog, invite_session_method};
use super::message::SipMessage;
use super::transaction::{Transaction, TransactionKey};
use crate::WireMap;
use crate::time::{Interval, Timestamp};
use compact_str::CompactString;
use serde::Serialize;

/// RFC 3261 timer T1 (500 ms) times 64: how long a transaction may wait for its final response
/// (Timer B/F) and how long a completed one lingers (Timer H/J).
pub const T1_X64: Interval = Interval::from_millis(32_000);

/// How long an INVITE that has had a provisional response may wait for its final response:
/// Timer B runs only until the first provisional (RFC 3261 §17.1.1.2, the Calling state), and
/// a ringing phone may ring for minutes; a proxy gives up after its Timer C, more than three
/// minutes (§16.6, step 11).
pub const TIMER_C: Interval = Interval::from_millis(180_000);

/// How a call ended, from the final response the originating side received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Answered,
    Redirected,
    Busy,
    Cancelled,
    Rejected,
    ServerError,
    Timeout,
    InProgress,
    Completed,
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Redirected => "redirected",
            Outcome::Busy => "busy",
            Outcome::Cancelled => "cancelled",
            Outcome::Rejected => "rejected",
            Outcome::ServerError => "server_error",
            Outcome::Timeout => "timeout",
            Outcome::InProgress => "in_progress",
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
        }
    }

    pub const ALL: [Outcome; 10] = [
        Outcome::Answered,
        Outcome::Redirected,
        Outcome::Busy,
        Outcome::Cancelled,
        Outcome::Rejected,
        Outcome::ServerError,
        Outcome::Timeout,
        Outcome::InProgress,
        Outcome::Completed,
        Outcome::Failed,
    ];
}

/// A party as the first message of the call names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Party {
    pub display: Option<CompactString>,
    pub uri: CompactString,
    pub user: Option<CompactString>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CallSummary {
    pub outcome: Outcome,
    pub final_status: Option<u16>,
    pub final_reason: Option<CompactString>,
    /// Seconds from the first request to the first 18x (post-dial delay).
    pub post_dial_delay: Option<f64>,
    /// Seconds from the first request to the 2xx.
    pub setup_time: Option<f64>,
    /// Seconds from the 2xx to the BYE (or to the last message when no BYE was seen).
    pub duration: Option<f64>,
    /// The transaction whose final response decides the outcome.
    pub originating: Option<usize>,
}

#[derive(Debug, Clone)]
pub struct Call {
    /// Shared with the engine's call table and timer queues.
    pub call_id: std::sync::Arc<str>,
    /// Order of creation in the engine, for stable output.
    pub seq: u64,
    /// In capture order. The lists are read through [`Call::messages`],
    /// [`Call::transactions`] and [`Call::dialogs`] outside the crate: their positions are the
    /// indexes that messages, transactions and dialogs hold of each other.
    pub(crate) messages: Vec<SipMessage>,
    pub(crate) transactions: Vec<Transaction>,
    pub(crate) dialogs: Vec<Dialog>,
    pub from: Party,
    pub to: Party,
    /// X-Call-ID / X-CID: the other leg of a B2BUA, when the B2BUA says so.
    pub linked_call_id: Option<CompactString>,
    /// Messages not kept because the call reached its message limit.
    pub dropped_messages: u64,
    /// The keyed hash of each transaction's key ([`TransactionKey`]), by transaction.
    tx_keys: KeyList,
    /// The keyed hash of each dialog's tag pair, by dialog.
    dialog_keys: KeyList,
    /// [`signature`] of each message, by message: the retransmission test compares these
    /// before it reads a message record.
    signatures: Vec<u64>,
    /// For transactions with many messages (hostile or broken peers), the first message of
    /// each (transaction, signature), so that telling a retransmission stays O(1); small
    /// transactions are searched directly and cost nothing here.
    /// Boxed: nearly every call goes without, and a call of one request should not carry an
    /// empty table's 40 bytes.
    retransmission_index: Option<Box<WireMap<(usize, u64), usize>>>,
    /// The engine's streaming timer for this call (`engine::Model`); nothing in `flow` reads
    /// it.
    pub(crate) clock: Clock,
    /// The call has messages from more than one capture point ([`Call::add_seen`]).
    multi_point: bool,
    /// The capture time at which the engine found the call over ([`Call::is_over`]) and closed
    /// it: a later message with the same Call-ID begins a new call. The call is judged as of
    /// then ([`Call::as_of`]), in every output mode. `None` while it is open.
    pub closed_at: Option<Timestamp>,
    /// Bytes of the TCP connections this call used that the capture did not hold or that
    /// could not be read as SIP, while the call was open: a message the call lacks may be
    /// among them, so what was not seen is no proof that it was not sent.
    pub lost_bytes: u64,
    /// What the call holds, in bytes, kept up as messages come ([`Call::footprint`]).
    bytes: usize,
    /// The call's RTP streams, in the order they began: set by the media analysis when the
    /// call leaves the engine's table ([`Call::set_media`]).
    pub media: Vec<crate::media::Stream>,
    /// Whether the capture carried RTP at all when the streams were set.
    pub media_capture: crate::media::MediaCapture,
}

/// Moves a vector's items into an allocation of their exact size. Not `shrink_to_fit`:
/// allocators shrink a block in place when the new size is at least half the old one
/// (mimalloc's `mi_realloc` returns the same block), so nothing would be given back while the
/// budget's accounting believed it was.
fn exact<T>(v: &mut Vec<T>) {
    if v.capacity() > v.len() {
        let mut fresh = Vec::with_capacity(v.len());
        fresh.append(v);
        *v = fresh;
    }
}

/// What the engine's timer reads of a call when its entry runs out, together in one place:
/// the call is far from the cache by then, and reading its last message's time as well (from
/// the message vector) was a second cache miss, a third of the time spent on timers.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Clock {
    /// The deadline of the call's one live queue entry.
    pub wake: Timestamp,
    /// The time of the last message kept ([`Call::end`], kept up by [`Call::add`]).
    pub last: Timestamp,
}

/// The keyed hashes of a call's transaction or dialog keys, by position. A call has a
/// handful, and scanning one cache line of hashes is cheaper than a hash table per call
/// (which cost more memory than the call's messages and a cache miss per probe). Past
/// [`INDEXED_AFTER`] entries (hostile or broken peers) a hash table from each hash to its first
/// entry keeps a lookup O(1); a normal call never builds it. `find` checks every match with
/// the caller's `is`, so a collision costs a search, never a wrong match.
#[derive(Debug, Clone, Default)]
struct KeyList {
    hashes: Vec<u64>,
    index: Option<Box<WireMap<u64, usize>>>,
    /// Scans of `hashes` made by `find`, for the tests.
    #[cfg(test)]
    scans: std::cell::Cell<usize>,
}

impl KeyList {
    /// Adds the next entry's hash.
    fn push(&mut self, hash: u64) {
        let at = self.hashes.len();
        self.hashes.push(hash);
        if let Some(index) = &mut self.index {
            index.entry(hash).or_insert(at);
        } else if self.hashes.len() > INDEXED_AFTER {
            let mut index = WireMap::default();
            for (i, &h) in self.hashes.iter().enumerate() {
                index.entry(h).or_insert(i);
            }
            self.index = Some(Box::new(index));
        }
    }

    /// The first entry with this hash for which `is` holds.
    fn find(&self, hash: u64, is: impl Fn(usize) -> bool) -> Option<usize> {
        let from = match &self.index {
            // Every hash is in the index: a miss means no such entry, with no scan.
            Some(index) => {
                let first = *index.get(&hash)?;
                if is(first) {
                    return Some(first);
                }
                // A collision (two keys, one hash): the others come after the first.
                first + 1
            }
            None => 0,
        };
        #[cfg(test)]
        self.scans.set(self.scans.get() + 1);
        self.hashes
            .iter()
            .enumerate()
            .skip(from)
            .filter(|&(_, &h)| h == hash)
            .map(|(i, _)| i)
            .find(|&i| is(i))
    }
}

/// A typical call through one proxy has 9 to 14 messages and 2 to 6 transactions.
const TYPICAL_MESSAGES: usize = 16;
const TYPICAL_TRANSACTIONS: usize = 6;

/// Makes room for one more element before a push: room for one at first, for two at the
/// second (a request and its final response: a scanner's probe answered, an OPTIONS ping, a
/// REGISTER), for `typical` at the third (a call with a third message is most likely a whole
/// call, and grows once, with two records to copy), then doubling. A call holds what it has
/// until it looks like a dialog; a typical call moves its first records twice and never again.
fn grow<T>(v: &mut Vec<T>, typical: usize) {
    if v.len() < v.capacity() {
        return;
    }
    let more = match v.len() {
        0 | 1 => 1,
        2 => typical.saturating_sub(2).max(1),
        n => n,
    };
    v.reserve_exact(more);
}

/// Transactions with more messages than this get a retransmission index (a normal one has
/// a handful: request, provisionals, final, ACK and their retransmissions); calls with more
/// transactions or dialogs than this get hash tables for them.
const INDEXED_AFTER: usize = 16;

/// The per-process key of every hash in this module. The hashes are always verified against
/// the messages themselves, so a collision costs only a search, and hostile traffic cannot
/// aim at collisions to make every message cost one.
fn hasher() -> impl std::hash::Hasher {
    use std::hash::BuildHasher;
    static KEY: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    KEY.get_or_init(Default::default).build_hasher()
}

/// The keyed hash of [`TransactionKey::of`]`(msg, method)`, without building the key.
fn tx_hash(msg: &SipMessage, method: &str) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let mut h = hasher();
    match (&msg.branch, &msg.via_sent_by) {
        // The sent-by is left out of the hash: a response matches its client transaction by
        // branch and CSeq method alone (§17.1.3), whatever an ALG did to its top Via; a
        // request's sent-by is compared when a candidate is checked (`Call::transaction_is`).
        (Some(b), Some(_)) if b.starts_with("z9hG4bK") => (0u8, b.as_str(), method).hash(&mut h),
        _ => {
            let (cseq, _) = msg.cseq.as_ref()?;
            (1u8, msg.from_tag.as_deref(), *cseq, method).hash(&mut h);
            (msg.via_sent_by.as_deref(), msg.branch.as_deref()).hash(&mut h);
        }
    }
    Some(h.finish())
}

/// How a message is checked against a transaction's first message.
#[derive(Clone, Copy)]
enum Match {
    /// The whole key: branch and sent-by (§17.2.3), or the RFC 2543 fields.
    Key,
    /// The magic-cookie branch alone, for responses (§17.1.3).
    Branch,
}

/// The keyed hash of a dialog's unordered tag pair.
fn dialog_hash(a: &str, b: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = hasher();
    if a <= b { (a, b) } else { (b, a) }.hash(&mut h);
    h.finish()
}

/// The retransmission test of §17.1.1.2 between two messages of one transaction.
/// How many of a call's latest messages a copy from another capture point is compared with.
const SIGHTING_SEARCH: usize = 256;

fn same_message(m: &SipMessage, msg: &SipMessage) -> bool {
    m.src == msg.src
        && m.dst == msg.dst
        && m.kind == msg.kind
        && (msg.is_request() || m.to_tag == msg.to_tag)
}

/// A hash of what [`same_message`] compares.
fn signature(msg: &SipMessage) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = hasher();
    crate::hash_addr(&msg.src, &mut h);
    crate::hash_addr(&msg.dst, &mut h);
    msg.kind.hash(&mut h);
    if !msg.is_request() {
        msg.to_tag.hash(&mut h);
    }
    h.finish()
}

fn party(na: Option<crate::sip::NameAddr<'_>>, text: &dyn Fn(&[u8]) -> CompactString) -> Party {
    match na {
        Some(na) => Party {
            display: na.display.map(text).filter(|d| !d.is_empty()),
            uri: text(na.uri),
            user: na.user().map(text),
        },
        None => Party::default(),
    }
}

/// What a call takes from its first message: the parties and the B2BUA leg link.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallInit {
    pub from: Party,
    pub to: Party,
    pub linked_call_id: Option<CompactString>,
}

impl CallInit {
    /// From the first message's From and To and X-Call-ID value, as the record read them
    /// ([`super::SipMessage::build`]), with `text` turning header bytes into model text.
    pub fn from_parts(
        from: Option<crate::sip::NameAddr<'_>>,
        to: Option<crate::sip::NameAddr<'_>>,
        linked_call_id: Option<&[u8]>,
        text: &dyn Fn(&[u8]) -> CompactString,
    ) -> CallInit {
        CallInit {
            from: party(from, text),
            to: party(to, text),
            linked_call_id: linked_call_id.map(text),
        }
    }
}

impl Call {
    pub fn new(call_id: std::sync::Arc<str>, seq: u64, init: CallInit) -> Call {
        Call {
            call_id,
            seq,
            // Room is made as messages come ([`grow`]): a call of one request (a scanner's
            // probe, most calls of a flood) holds one record, not a typical call's sixteen.
            messages: Vec::new(),
            transactions: Vec::new(),
            dialogs: Vec::new(),
            from: init.from,
            to: init.to,
            linked_call_id: init.linked_call_id,
            dropped_messages: 0,
            tx_keys: KeyList::default(),
            dialog_keys: KeyList::default(),
            signatures: Vec::new(),
            retransmission_index: None,
            clock: Clock::default(),
            multi_point: false,
            closed_at: None,
            lost_bytes: 0,
            bytes: 0,
            media: Vec::new(),
            media_capture: crate::media::MediaCapture::Off,
        }
        .with_footprint()
    }

    fn with_footprint(mut self) -> Call {
        let party = |p: &Party| {
            [&p.display, &p.user]
                .into_iter()
                .flatten()
                .chain(std::iter::once(&p.uri))
                .filter(|s| s.is_heap_allocated())
                .map(CompactString::len)
                .sum::<usize>()
        };
        self.bytes = std::mem::size_of::<Call>()
            + self.call_id.len()
            + 16 // the Arc's counts
            + party(&self.from)
            + party(&self.to);
        self
    }

    /// Bytes the call holds, by accounting (the engine's memory budget): its record, its
    /// messages' records and what they own ([`SipMessage::heap_bytes`]), its transactions and
    /// dialogs, and the indexes over them, by the capacity reserved for each. An estimate kept
    /// up in O(1) per message; `tests/hostile.rs` checks it against a counting allocator.
    pub fn footprint(&self) -> usize {
        self.bytes
    }

    /// Sets the call's streams (the engine's media analysis, when the call leaves its table).
    pub fn set_media(
        &mut self,
        streams: Vec<crate::media::Stream>,
        capture: crate::media::MediaCapture,
    ) {
        let old: usize = self.media.iter().map(crate::media::Stream::footprint).sum();
        let new: usize = streams.iter().map(crate::media::Stream::footprint).sum();
        self.bytes = (self.bytes + new).saturating_sub(old);
        self.media = streams;
        self.media_capture = capture;
    }

    /// The call's messages, in capture order ([`SipMessage::index`] is the position here).
    pub fn messages(&self) -> &[SipMessage] {
        &self.messages
    }

    /// The call's transactions ([`SipMessage::transaction`] indexes them).
    pub fn transactions(&self) -> &[Transaction] {
        &self.transactions
    }

    /// The call's dialogs ([`SipMessage::dialog`] indexes them).
    pub fn dialogs(&self) -> &[Dialog] {
        &self.dialogs
    }

    /// Gives back what the call's vectors reserved beyond what they hold: for a call that is
    /// over and will be kept (the UI, exports), whose lists no longer grow.
    pub fn shrink_to_fit(&mut self) {
        let before = self.reserved();
        exact(&mut self.messages);
        exact(&mut self.signatures);
        exact(&mut self.transactions);
        exact(&mut self.tx_keys.hashes);
        exact(&mut self.dialogs);
        exact(&mut self.dialog_keys.hashes);
        self.bytes = (self.bytes + self.reserved()).saturating_sub(before);
    }

    /// The bytes of the call's vectors, by capacity.
    fn reserved(&self) -> usize {
        use std::mem::size_of;
        self.messages.capacity() * size_of::<SipMessage>()
            + self.signatures.capacity() * 8
            + self.transactions.capacity() * size_of::<Transaction>()
            + self.tx_keys.hashes.capacity() * 8
            + self.dialogs.capacity() * size_of::<Dialog>()
            + self.dialog_keys.hashes.capacity() * 8
    }

    /// The capture time to judge the call at, when capture time has reached `now`: the time it
    /// was closed, if it was, so that a call reads the same whenever and however it is read.
    pub fn as_of(&self, now: Timestamp) -> Timestamp {
        self.closed_at.map_or(now, |t| t.min(now))
    }

    /// Who began the call: the sender of its first message, when that is a request (a call
    /// first seen through a response has no known originator).
    pub fn originator(&self) -> Option<std::net::IpAddr> {
        self.messages
            .first()
            .filter(|m| m.is_request())
            .map(|m| m.src.ip())
    }

    pub fn start(&self) -> Timestamp {
        self.messages.first().map(|m| m.time).unwrap_or_default()
    }

    pub fn end(&self) -> Timestamp {
        self.messages.last().map(|m| m.time).unwrap_or_default()
    }

    /// The method of the first request, or the CSeq method when the call was joined late.
    pub fn first_method(&self) -> &str {
        self.messages
            .first()
            .and_then(|m| m.method().or(m.cseq_method()))
            .unwrap_or("")
    }

    /// Adds a message seen at capture point `Point::of(&msg)`: a copy of a message of this
    /// call seen at another point that captured at the same time (same addresses, start line,
    /// branch, CSeq, tags and size, within [`super::points::MAX_APART`]) becomes a sighting of
    /// it rather than a message of its own (and never a retransmission); anything else is
    /// added as [`Call::add`] does.
    pub fn add_seen(
        &mut self,
        msg: SipMessage,
        max_messages: usize,
        points: &mut super::points::CapturePoints,
    ) {
        use super::points::{MAX_APART, Point};
        let here = Point::of(&msg);
        points.note(here, msg.time);
        // One point only, as nearly every capture: nothing to look for.
        if !self.multi_point && self.messages.first().is_none_or(|f| Point::of(f) == here) {
            self.add(msg, max_messages);
            return;
        }
        self.multi_point = true;
        // The earliest copy not yet seen here: a retransmission seen at both points pairs
        // with its own copy, not with the original's.
        let window = self
            .messages
            .get(self.messages.len().saturating_sub(SIGHTING_SEARCH)..)
            .unwrap_or(&[]);
        let found = window
            .iter()
            .find(|m| {
                let there = Point::of(m);
                there != here
                    && same_message(m, &msg)
                    && m.branch == msg.branch
                    && m.cseq == msg.cseq
                    && m.from_tag == msg.from_tag
                    && m.size == msg.size
                    && m.time.since(msg.time).max(msg.time.since(m.time)) <= MAX_APART
                    && !m.sightings().iter().any(|s| s.point == here)
                    && points.overlap(there, here)
            })
            .map(|m| m.index);
        let Some(i) = found else {
            self.add(msg, max_messages);
            return;
        };
        let Some(m) = self.messages.get_mut(i) else {
            return;
        };
        points.sighting(m, Point::of(m), here, msg.time.since(m.time));
        let extra = m.extra.get_or_insert_with(Box::default);
        let rare = extra.rare.get_or_insert_with(Box::default);
        let frames: Box<[u64]> = msg.frames().into();
        self.bytes += std::mem::size_of::<super::message::Sighting>() + 8 * frames.len();
        rare.sightings.push(super::message::Sighting {
            point: here,
            time: msg.time,
            packet: msg.packet,
            frames,
        });
    }

    /// Adds a message (in capture order) and correlates it.
    // Inlined into the engine's one call so that the message record is copied fewer times on
    // its way into the call (each copy is a 352-byte memmove per message).
    #[inline]
    pub fn add(&mut self, mut msg: SipMessage, max_messages: usize) {
        if self.messages.len() >= max_messages {
            self.dropped_messages += 1;
            return;
        }
        let reserved = self.reserved();
        let transactions = self.transactions.len();
        // Owned by the message, plus its place in its transaction's and dialog's lists.
        let owned = msg.heap_bytes() + 16;
        let idx = self.messages.len();
        msg.index = idx;
        let sig = signature(&msg);
        let tx = self.match_transaction(&mut msg, idx, sig);
        msg.transaction = tx.and_then(|t| u32::try_from(t).ok());
        msg.dialog = self
            .match_dialog(&msg, idx)
            .and_then(|d| u32::try_from(d).ok());
        self.clock.last = msg.time;
        grow(&mut self.messages, TYPICAL_MESSAGES);
        grow(&mut self.signatures, TYPICAL_MESSAGES);
        self.messages.push(msg);
        self.signatures.push(sig);
        // A new transaction reserves room for four messages (`new_transaction`).
        let new_lists = (self.transactions.len() - transactions) * 32;
        self.bytes = (self.bytes + self.reserved() + owned + new_lists).saturating_sub(reserved);
    }

    /// The transaction `TransactionKey::of(msg, method)` names: `None` when the message has
    /// no such key, else its hash and the transaction if there is one.
    ///
    /// A response whose top Via no longer shows the request's sent-by (an ALG or a UA rewrote
    /// it: a port dropped, another host) still finds its transaction by branch and CSeq
    /// method, as the client does (§17.1.3); one with the request's sent-by is preferred.
    fn find_transaction(&self, msg: &SipMessage, method: &str) -> Option<(u64, Option<usize>)> {
        let hash = tx_hash(msg, method)?;
        let found = self
            .tx_keys
            .find(hash, |t| self.transaction_is(t, msg, method, Match::Key))
            .or_else(|| {
                (!msg.is_request())
                    .then(|| {
                        self.tx_keys
                            .find(hash, |t| self.transaction_is(t, msg, method, Match::Branch))
                    })
                    .flatten()
            });
        Some((hash, found))
    }

    /// Whether transaction `t` has the key `TransactionKey::of(msg, method)` (or, with
    /// [`Match::Branch`], the same magic-cookie branch): compared with the message that
    /// created it, which carried that key.
    fn transaction_is(&self, t: usize, msg: &SipMessage, method: &str, how: Match) -> bool {
        let Some(tr) = self.transactions.get(t) else {
            return false;
        };
        tr.method == method
            && tr
                .messages
                .first()
                .and_then(|&i| self.messages.get(i))
                .is_some_and(|first| match how {
                    Match::Key => TransactionKey::same(first, msg),
                    Match::Branch => TransactionKey::same_branch(first, msg),
                })
    }

    fn new_transaction(&mut self, hash: u64, method: &str, msg: &SipMessage) -> usize {
        let id = self.transactions.len();
        let request = msg.is_request();
        let (client, server) = if request {
            (msg.src, msg.dst)
        } else {
            (msg.dst, msg.src)
        };
        grow(&mut self.transactions, TYPICAL_TRANSACTIONS);
        grow(&mut self.tx_keys.hashes, TYPICAL_TRANSACTIONS);
        self.transactions.push(Transaction {
            id,
            method: method.into(),
            branch: msg.branch.clone(),
            cseq: msg.cseq.as_ref().map_or(0, |(n, _)| *n),
            client,
            server,
            request_seen: request,
            messages: Vec::with_capacity(4),
            first_time: msg.time,
            request_time: request.then_some(msg.time),
            first_provisional: None,
            final_response: None,
            retransmissions: 0,
            cancels: None,
            cancelled_by: Vec::new(),
            ack: None,
            acknowledges: None,
            in_dialog: request && msg.to_tag.is_some(),
        });
        self.tx_keys.push(hash);
        id
    }

    /// Same transaction, same direction, same message: a SIP retransmission (§17.1.1.2).
    fn is_retransmission(&self, tx: usize, msg: &SipMessage, sig: u64) -> bool {
        let Some(t) = self.transactions.get(tx) else {
            return false;
        };
        let same = |i: usize| self.messages.get(i).is_some_and(|m| same_message(m, msg));
        if t.messages.len() > INDEXED_AFTER {
            match self
                .retransmission_index
                .as_ref()
                .and_then(|index| index.get(&(tx, sig)))
            {
                None => return false,
                Some(&first) if same(first) => return true,
                // A hash collision: fall back to the search below.
                Some(_) => {}
            }
        }
        t.messages
            .iter()
            .any(|&i| self.signatures.get(i) == Some(&sig) && same(i))
    }

    /// Records message `idx` of transaction `tx` in the retransmission index once the
    /// transaction has grown past [`INDEXED_AFTER`] (indexing its earlier messages then).
    fn index_for_retransmissions(&mut self, tx: usize, idx: usize, sig: u64) {
        let Some(t) = self.transactions.get(tx) else {
            return;
        };
        let n = t.messages.len();
        if n <= INDEXED_AFTER {
            return;
        }
        let earlier: &[usize] = if n == INDEXED_AFTER + 1 {
            t.messages.get(..n - 1).unwrap_or(&[])
        } else {
            &[]
        };
        let index = self.retransmission_index.get_or_insert_default();
        for &i in earlier {
            if let Some(&s) = self.signatures.get(i) {
                index.entry((tx, s)).or_insert(i);
            }
        }
        index.entry((tx, sig)).or_insert(idx);
        // An entry and its share of the table's slack, for the memory budget.
        self.bytes += 48 * (earlier.len() + 1);
    }

    fn match_transaction(&mut self, msg: &mut SipMessage, idx: usize, sig: u64) -> Option<usize> {
        let tx = match msg.method() {
            Some("ACK") => {
                // An ACK with its INVITE's branch acknowledges a non-2xx final and belongs to
                // that transaction (§17.1.1.3). The ACK for a 2xx has a new branch and is a
                // transaction of its own, tied to the INVITE through the dialog and CSeq.
                let invite = self
                    .find_transaction(msg, "INVITE")
                    .and_then(|(_, t)| t)
                    .filter(|&t| {
                        self.transactions.get(t).is_some_and(|t| {
                            !t.final_status().is_some_and(|s| (200..300).contains(&s))
                        })
                    });
                match invite {
                    Some(t) => {
                        msg.retransmission = self.is_retransmission(t, msg, sig);
                        if let Some(tr) = self.transactions.get_mut(t) {
                            tr.ack.get_or_insert(idx);
                        }
                        t
                    }
                    None => match self.find_transaction(msg, "ACK")? {
                        (_, Some(t)) => {
                            msg.retransmission = self.is_retransmission(t, msg, sig);
                            t
                        }
                        (hash, None) => {
                            let t = self.new_transaction(hash, "ACK", msg);
                            let acked = self.find_acknowledged_invite(msg);
                            if let Some(tr) = self.transactions.get_mut(t) {
                                tr.acknowledges = acked;
                            }
                            t
                        }
                    },
                }
            }
            Some(method) => {
                let method = CompactString::from(method);
                match self.find_transaction(msg, &method)? {
                    (_, Some(t)) => {
                        msg.retransmission = self.is_retransmission(t, msg, sig);
                        if let Some(tr) = self.transactions.get_mut(t)
                            && !tr.request_seen
                        {
                            tr.request_seen = true;
                            tr.request_time = Some(msg.time);
                        }
                        t
                    }
                    (hash, None) => {
                        let t = self.new_transaction(hash, &method, msg);
                        if method == "CANCEL" {
                            // §9.2: a CANCEL matches the INVITE with the same top Via.
                            let invite = self.find_transaction(msg, "INVITE").and_then(|(_, t)| t);
                            if let Some(inv) = invite {
                                if let Some(tr) = self.transactions.get_mut(t) {
                                    tr.cancels = Some(inv);
                                }
                                if let Some(tr) = self.transactions.get_mut(inv) {
                                    tr.cancelled_by.push(t);
                                }
                            }
                        }
                        t
                    }
                }
            }
            None => {
                let method = CompactString::from(msg.cseq_method()?);
                let code = msg.status()?;
                let t = match self.find_transaction(msg, &method)? {
                    (_, Some(t)) => t,
                    (hash, None) => self.new_transaction(hash, &method, msg),
                };
                msg.retransmission = self.is_retransmission(t, msg, sig);
                if let Some(tr) = self.transactions.get_mut(t) {
                    if code >= 200 {
                        tr.final_response.get_or_insert((code, msg.time));
                    } else if code > 100 {
                        tr.first_provisional.get_or_insert((code, msg.time));
                    }
                }
                t
            }
        };
        if let Some(tr) = self.transactions.get_mut(tx) {
            tr.messages.push(idx);
            if msg.retransmission {
                tr.retransmissions += 1;
            }
        }
        self.index_for_retransmissions(tx, idx, sig);
        Some(tx)
    }

    /// The INVITE transaction a 2xx ACK acknowledges: same CSeq number, answered with a 2xx,
    /// preferring the one on the same hop.
    fn find_acknowledged_invite(&self, ack: &SipMessage) -> Option<usize> {
        let (cseq, _) = ack.cseq.as_ref()?;
        let answered = |t: &&Transaction| {
            t.is_invite()
                && t.cseq == *cseq
                && t.final_status().is_some_and(|s| (200..300).contains(&s))
        };
        self.transactions
            .iter()
            .filter(answered)
            .find(|t| t.client == ack.src)
            .or_else(|| self.transactions.iter().rfind(answered))
            .map(|t| t.id)
    }

    /// The dialog of the tag pair (either order), whose keyed hash is `hash`.
    fn find_dialog(&self, hash: u64, a: &str, b: &str) -> Option<usize> {
        self.dialog_keys.find(hash, |d| {
            self.dialogs.get(d).is_some_and(|d| {
                (d.local_tag == a && d.remote_tag == b) || (d.local_tag == b && d.remote_tag == a)
            })
        })
    }

    fn match_dialog(&mut self, msg: &SipMessage, idx: usize) -> Option<usize> {
        let (Some(ft), Some(tt)) = (&msg.from_tag, &msg.to_tag) else {
            return None;
        };
        let hash = dialog_hash(ft, tt);
        let method = msg.cseq_method().unwrap_or("");
        let status = msg.status();
        let id = match self.find_dialog(hash, ft, tt) {
            Some(d) => d,
            None => {
                let creates = match status {
                    Some(s) => (101..300).contains(&s) && creates_dialog(method),
                    // A request with both tags whose dialog we never saw created (the capture
                    // started mid-call). ACK and CANCEL carry tags of failed attempts too.
                    None => !matches!(msg.method(), Some("ACK") | Some("CANCEL")),
                };
                if !creates {
                    return None;
                }
                let id = self.dialogs.len();
                self.dialogs.push(Dialog {
                    id,
                    local_tag: ft.clone(),
                    remote_tag: tt.clone(),
                    state: if status.is_some_and(|s| s < 200) {
                        DialogState::Early
                    } else {
                        DialogState::Confirmed
                    },
                    method: method.into(),
                    invite_session: false,
                    messages: Vec::new(),
                });
                self.dialog_keys.push(hash);
                id
            }
        };
        let d = self.dialogs.get_mut(id)?;
        d.messages.push(idx);
        d.invite_session |= invite_session_method(method);
        match (msg.method(), status) {
            (Some("BYE"), _) => {
                // §15.1: the session is over for the sender as soon as it sends BYE.
                d.state = DialogState::Terminated;
            }
            (None, Some(s))
                if (200..300).contains(&s)
                    && method == "INVITE"
                    && d.state == DialogState::Early =>
            {
                d.state = DialogState::Confirmed;
            }
            (None, Some(481)) => {
                d.state = DialogState::Terminated;
            }
            (None, Some(s)) if s >= 300 && method == "INVITE" && d.state == DialogState::Early => {
                d.state = DialogState::Terminated;
            }
            _ => {}
        }
        // A failure final to an INVITE ends every early dialog it had created (§12.3).
        if let (None, Some(s)) = (msg.method(), status)
            && s >= 300
            && method == "INVITE"
        {
            for d in self
                .dialogs
                .iter_mut()
                .filter(|d| d.state == DialogState::Early && d.local_tag == ft)
            {
                d.state = DialogState::Terminated;
            }
        }
        Some(id)
    }

    /// The transaction whose final response decides the outcome: among the out-of-dialog
    /// requests the originator sent with the first request's method (authentication retries
    /// and redirect follow-ups included), the latest.
    fn originating(&self) -> Option<&Transaction> {
        let first = self.transactions.first()?;
        self.transactions
            .iter()
            .rfind(|t| t.method == first.method && t.client == first.client && !t.in_dialog)
            .or(Some(first))
    }

    /// Outcome, final status and timings. `now` is the capture time reached (the end of the
    /// capture for a file), used to tell a transaction still waiting from one that timed out.
    pub fn summary(&self, now: Timestamp) -> CallSummary {
        let now = self.as_of(now);
        let Some(orig) = self.originating() else {
            return CallSummary {
                outcome: Outcome::InProgress,
                final_status: None,
                final_reason: None,
                post_dial_delay: None,
                setup_time: None,
                duration: None,
                originating: None,
            };
        };
        let first_request = self
            .transactions
            .iter()
            .find(|t| t.method == orig.method && t.client == orig.client)
            .and_then(|t| t.request_time)
            .or(orig.request_time)
            .unwrap_or(orig.first_time);
        let final_status = orig.final_status();
        let final_reason = orig.final_response.and_then(|(code, t)| {
            orig.messages
                .iter()
                .filter_map(|&i| self.messages.get(i))
                .find(|m| m.status() == Some(code) && m.time == t)
                .and_then(|m| match &m.kind {
                    super::message::Kind::Response { reason, .. } => Some(reason.clone()),
                    _ => None,
                })
        });
        let cancelled = !orig.cancelled_by.is_empty();
        let waited_out = now.since(orig.first_time) >= T1_X64;
        let outcome = if orig.is_invite() {
            match final_status {
                Some(200..=299) => Outcome::Answered,
                Some(300..=399) => Outcome::Redirected,
                Some(486) | Some(600) => Outcome::Busy,
                Some(487) => Outcome::Cancelled,
                Some(408) => Outcome::Timeout,
                Some(500..=599) => Outcome::ServerError,
                Some(_) => Outcome::Rejected,
                None if cancelled => Outcome::Cancelled,
                None if waited_out => Outcome::Timeout,
                None => Outcome::InProgress,
            }
        } else {
            match final_status {
                Some(200..=299) => Outcome::Completed,
                Some(408) => Outcome::Timeout,
                Some(_) => Outcome::Failed,
                None if orig.method == "ACK" => Outcome::Completed,
                None if waited_out => Outcome::Timeout,
                None => Outcome::InProgress,
            }
        };
        let since_first = |t: Timestamp| t.seconds_since(first_request);
        let post_dial_delay = orig
            .first_provisional
            .filter(|(c, _)| *c >= 180)
            .map(|(_, t)| since_first(t));
        let answer_time = orig
            .final_response
            .filter(|(c, _)| (200..300).contains(c))
            .map(|(_, t)| t);
        let setup_time = if orig.is_invite() {
            answer_time.map(since_first)
        } else {
            None
        };
        let duration = match (orig.is_invite(), answer_time) {
            (true, Some(answered)) => {
                let bye = self
                    .messages
                    .iter()
                    .find(|m| m.time >= answered && m.method() == Some("BYE"))
                    .map(|m| m.time)
                    .unwrap_or(self.end());
                Some(bye.seconds_since(answered))
            }
            _ => None,
        };
        CallSummary {
            outcome,
            final_status,
            final_reason,
            post_dial_delay,
            setup_time,
            duration,
            originating: Some(orig.id),
        }
    }

    /// True when nothing more is expected at `now`: every transaction whose request was seen
    /// has a final response (ACKs have none) or has been silent for 64·T1 (Timer B/F: the
    /// client gave up, RFC 3261 §17.1.1.2, §17.1.2.2), or for Timer C when it is an INVITE
    /// that had a provisional response (it rings); and no INVITE dialog is confirmed or still
    /// early (an early dialog silent for Timer C died with its INVITE).
    pub fn is_over(&self, now: Timestamp) -> bool {
        self.waiting_until().is_some_and(|t| now >= t)
    }

    /// When the call will be over if nothing more arrives ([`Call::is_over`]), or `None` while
    /// it waits for a message (a confirmed INVITE dialog waits for its BYE).
    pub fn waiting_until(&self) -> Option<Timestamp> {
        // The time `wait` after the last of `indexes` (none: it waits for ever).
        let silent_for = |indexes: &[usize], wait: Interval| {
            let last = indexes.last().and_then(|&i| self.messages.get(i))?;
            Some(last.time.saturating_add(wait))
        };
        let mut until = Timestamp(i64::MIN);
        for t in &self.transactions {
            if t.method == "ACK" || t.final_response.is_some() || !t.request_seen {
                continue;
            }
            let rings = t.is_invite() && t.first_provisional.is_some();
            until = until.max(silent_for(
                &t.messages,
                if rings { TIMER_C } else { T1_X64 },
            )?);
        }
        for d in &self.dialogs {
            match d.state {
                DialogState::Terminated => {}
                // A confirmed INVITE session waits for its BYE (or the idle limit), whether
                // or not the capture saw its INVITE.
                _ if !d.invite_session => {}
                DialogState::Early => until = until.max(silent_for(&d.messages, TIMER_C)?),
                DialogState::Confirmed => return None,
            }
        }
        Some(until)
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::{Engine, EngineConfig};
    use crate::synth::script::{Script, sip};

    /// A transaction that grows past the indexed size (here an INVITE answered by forty forked
    /// 180s, each sent twice, from forty addresses) marks exactly the repeated messages as
    /// retransmissions, as the direct search does below that size; regression for the
    /// quadratic search that a 100,000-message transaction made take minutes.
    #[test]
    fn retransmissions_in_large_transactions_are_found_through_the_index() {
        let headers = |tag: &str| {
            vec![
                (
                    "Via".to_string(),
                    "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKbig".to_string(),
                ),
                ("From".to_string(), "<sip:a@x>;tag=caller".to_string()),
                ("To".to_string(), format!("<sip:b@x>{tag}")),
                ("Call-ID".to_string(), "big".to_string()),
                ("CSeq".to_string(), "1 INVITE".to_string()),
            ]
        };
        let msg = |start: &str, tag: &str| {
            let h = headers(tag);
            let h: Vec<(&str, &str)> = h.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            sip(start, &h, "")
        };
        let mut s = Script::new();
        s.udp(
            0,
            "10.0.0.1:5060",
            "10.0.0.2:5060",
            &msg("INVITE sip:b@x SIP/2.0", ""),
        );
        s.udp(
            1,
            "10.0.0.1:5060",
            "10.0.0.2:5060",
            &msg("INVITE sip:b@x SIP/2.0", ""),
        );
        for round in 0..2 {
            for i in 0..40 {
                let from = format!("10.0.1.{i}:5060");
                let tag = format!(";tag=fork{i}");
                s.udp(
                    10 + round * 100 + i,
                    &from,
                    "10.0.0.1:5060",
                    &msg("SIP/2.0 180 Ringing", &tag),
                );
            }
        }
        let mut engine = Engine::new(EngineConfig::default());
        for f in s.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let call = calls[0];
        assert_eq!(call.transactions.len(), 1);
        let tx = &call.transactions[0];
        assert_eq!(tx.messages.len(), 82);
        // The second INVITE and the second round of 180s.
        assert_eq!(tx.retransmissions, 41);
        let marked: Vec<usize> = call
            .messages
            .iter()
            .filter(|m| m.retransmission)
            .map(|m| m.index)
            .collect();
        let expected: Vec<usize> = std::iter::once(1).chain(42..82).collect();
        assert_eq!(marked, expected);
    }

    /// Past the indexed size a lookup reads the index only: a key not there costs no scan
    /// and no check (regression: a miss fell back to scanning every hash, so a call with
    /// 100,000 transactions paid 100,000 comparisons for each new one), and a collision is
    /// still resolved by the check.
    #[test]
    fn indexed_key_lists_do_not_scan() {
        use super::KeyList;
        use std::cell::Cell;
        let mut keys = KeyList::default();
        for h in 0..100u64 {
            keys.push(h * 7);
        }
        keys.push(14); // a second entry (100) whose hash collides with entry 2
        assert!(keys.index.is_some());
        let checks = Cell::new(0);
        let count = |ok: bool| {
            checks.set(checks.get() + 1);
            ok
        };
        assert_eq!(keys.find(5, |_| count(true)), None);
        assert_eq!(checks.get(), 0);
        assert_eq!(keys.scans.get(), 0, "a miss is decided by the index alone");
        assert_eq!(keys.find(21, |i| count(i == 3)), Some(3));
        assert_eq!(
            (checks.get(), keys.scans.get()),
            (1, 0),
            "a hit is checked once"
        );
        assert_eq!(
            keys.find(14, |i| i == 100),
            Some(100),
            "the colliding entry"
        );
        assert_eq!(keys.scans.get(), 1, "only a collision scans");
        let small = {
            let mut k = KeyList::default();
            k.push(1);
            k.push(1);
            k
        };
        assert!(small.index.is_none());
        assert_eq!(small.find(1, |i| i == 1), Some(1));
        assert_eq!(small.scans.get(), 1, "small lists are scanned");
    }

    /// A call with more transactions and dialogs than the lists are scanned for (here 40
    /// OPTIONS-like INVITE attempts, each answered 180 then 486 on its own branch and tag)
    /// matches every response to its own transaction and dialog through the hash tables, as
    /// the scan does below that size.
    #[test]
    fn calls_with_many_transactions_and_dialogs_match_through_the_index() {
        let msg = |start: &str, branch: usize, tag: Option<usize>| {
            let to = match tag {
                Some(t) => format!("<sip:b@x>;tag=t{t}"),
                None => "<sip:b@x>".to_string(),
            };
            let via = format!("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK{branch}");
            let cseq = format!("{} INVITE", branch + 1);
            sip(
                start,
                &[
                    ("Via", via.as_str()),
                    ("From", "<sip:a@x>;tag=caller"),
                    ("To", to.as_str()),
                    ("Call-ID", "many"),
                    ("CSeq", cseq.as_str()),
                ],
                "",
            )
        };
        let mut s = Script::new();
        let (a, b) = ("10.0.0.1:5060", "10.0.0.2:5060");
        for i in 0..40 {
            let t = i as i64 * 10;
            s.udp(t, a, b, &msg("INVITE sip:b@x SIP/2.0", i, None));
            s.udp(t + 1, b, a, &msg("SIP/2.0 180 Ringing", i, Some(i)));
            s.udp(t + 2, b, a, &msg("SIP/2.0 486 Busy Here", i, Some(i)));
            s.udp(t + 3, b, a, &msg("SIP/2.0 486 Busy Here", i, Some(i)));
        }
        let mut engine = Engine::new(EngineConfig::default());
        for f in s.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let call = calls[0];
        assert_eq!(call.transactions.len(), 40);
        assert_eq!(call.dialogs.len(), 40);
        for (i, tx) in call.transactions.iter().enumerate() {
            assert_eq!(tx.messages, vec![4 * i, 4 * i + 1, 4 * i + 2, 4 * i + 3]);
            assert_eq!(tx.final_status(), Some(486));
            assert_eq!(tx.retransmissions, 1, "the second 486 of transaction {i}");
        }
        for (i, d) in call.dialogs.iter().enumerate() {
            assert_eq!(d.remote_tag, format!("t{i}"));
            assert_eq!(d.messages, vec![4 * i + 1, 4 * i + 2, 4 * i + 3]);
            assert_eq!(d.state, crate::flow::DialogState::Terminated);
        }
    }

    /// A response whose top Via an ALG or the UA rewrote (the default port dropped, `rport`
    /// filled in, `received` added, the host's case changed) joins its request's transaction
    /// by branch and CSeq method (RFC 3261 §17.1.3); regression for the 200 OK filed as a
    /// transaction of its own ("request not seen") and a `no_final_response` on a SUBSCRIBE
    /// answered at once. Each hop keeps its own transaction, and retransmissions are still
    /// marked per hop.
    #[test]
    fn responses_with_a_rewritten_via_join_their_transaction() {
        let msg = |start: &str, via: &str, cseq: &str, to_tag: &str| {
            let to = format!("<sip:b@x>{to_tag}");
            sip(
                start,
                &[
                    ("Via", via),
                    ("From", "<sip:a@x>;tag=a1"),
                    ("To", to.as_str()),
                    ("Call-ID", "rewritten"),
                    ("CSeq", cseq),
                ],
                "",
            )
        };
        let (phone, server, proxy) = ("10.0.0.2:5060", "10.0.0.9:5060", "10.0.0.5:5060");
        let mut s = Script::new();
        // Hop 1: the phone's SUBSCRIBE; the server answers with the port dropped, rport and
        // received filled in and the host upper-cased, then the same 200 again.
        let sub = "SIP/2.0/TCP 10.0.0.2:5060;branch=z9hG4bKsub1;rport";
        let answer = "SIP/2.0/TCP 10.0.0.2;branch=z9hG4bKsub1;rport=41000;received=10.0.0.2";
        s.udp(
            0,
            phone,
            server,
            &msg("SUBSCRIBE sip:b@x SIP/2.0", sub, "1 SUBSCRIBE", ""),
        );
        s.udp(
            2,
            server,
            phone,
            &msg("SIP/2.0 200 OK", answer, "1 SUBSCRIBE", ";tag=b1"),
        );
        s.udp(
            3,
            server,
            phone,
            &msg("SIP/2.0 200 OK", answer, "1 SUBSCRIBE", ";tag=b1"),
        );
        // Hop 2: the same request forwarded by a proxy on its own branch, answered with a
        // host name in another case.
        let fwd = "SIP/2.0/UDP Proxy.Example:5060;branch=z9hG4bKfwd1";
        let fwd_answer = "SIP/2.0/UDP proxy.example;branch=z9hG4bKfwd1";
        s.udp(
            10,
            proxy,
            server,
            &msg("NOTIFY sip:b@x SIP/2.0", fwd, "2 NOTIFY", ";tag=b1"),
        );
        s.udp(
            11,
            server,
            proxy,
            &msg("SIP/2.0 200 OK", fwd_answer, "2 NOTIFY", ";tag=b1"),
        );
        let mut engine = Engine::new(EngineConfig::default());
        for f in s.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let call = calls[0];
        assert_eq!(call.transactions.len(), 2, "{:?}", call.transactions);
        let sub = &call.transactions[0];
        assert!(sub.request_seen);
        assert_eq!(sub.messages, vec![0, 1, 2]);
        assert_eq!(sub.final_status(), Some(200));
        assert_eq!(sub.retransmissions, 1, "the second 200");
        let notify = &call.transactions[1];
        assert_eq!(
            (notify.method.as_str(), notify.final_status()),
            ("NOTIFY", Some(200))
        );
        assert_eq!(notify.messages, vec![3, 4]);
        // The second 200 is reported as the retransmission it is, and nothing else.
        let d = crate::diagnose::diagnose(call, engine.now(), &Default::default());
        let kinds: Vec<&str> = d.anomalies.iter().map(|a| a.kind.as_str()).collect();
        assert_eq!(kinds, ["retransmission"]);
    }

    /// Requests still need the whole key (§17.2.3): two requests on one branch from two
    /// sent-bys are two transactions, and a response with neither sent-by joins the first.
    #[test]
    fn requests_keep_their_sent_by_in_the_key() {
        let msg = |start: &str, via: &str| {
            sip(
                start,
                &[
                    ("Via", via),
                    ("From", "<sip:a@x>;tag=a1"),
                    ("To", "<sip:b@x>"),
                    ("Call-ID", "two-sent-bys"),
                    ("CSeq", "1 OPTIONS"),
                ],
                "",
            )
        };
        let mut s = Script::new();
        let (a, b, c) = ("10.0.0.1:5060", "10.0.0.2:5060", "10.0.0.3:5060");
        s.udp(
            0,
            a,
            c,
            &msg(
                "OPTIONS sip:c@x SIP/2.0",
                "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKsame",
            ),
        );
        s.udp(
            1,
            b,
            c,
            &msg(
                "OPTIONS sip:c@x SIP/2.0",
                "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKsame",
            ),
        );
        s.udp(
            2,
            c,
            a,
            &msg(
                "SIP/2.0 200 OK",
                "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsame",
            ),
        );
        s.udp(
            3,
            c,
            b,
            &msg(
                "SIP/2.0 200 OK",
                "SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKsame",
            ),
        );
        let mut engine = Engine::new(EngineConfig::default());
        for f in s.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let t = &calls[0].transactions;
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].messages.clone(), t[1].messages.clone()),
            (vec![0, 2], vec![1, 3])
        );
    }
}
