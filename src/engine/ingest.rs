//! The first half of the engine: frames to prepared messages. Decoding and reassembly
//! ([`crate::net::Decoder`]), SIP parsing and the message records ([`Preparer`]), in batches
//! that cross to the correlating half ([`Prepared`], [`Batch`]); PDUs handed over unparsed
//! when the other thread is idle ([`DeferredPdu`]). Knows nothing of calls.

use super::*;

#[allow(clippy::large_enum_variant)]
pub(crate) enum Prepared {
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
        /// What its SDP advertises for RTP (media analysis on, and an SDP body).
        offer: Option<Box<crate::media::Offer>>,
        malformed: bool,
    },
    /// SIP bytes left for the consumer to parse: the PDU, its bytes and frames kept in the
    /// batch's `raw` and `frames`.
    Deferred(DeferredPdu),
    /// Capture time has moved on to here: the streaming timers run (see `TICK_MS`).
    Tick(Timestamp),
    /// Bytes of a TCP connection were lost or could not be read: the calls on it are told.
    Loss(net::tcp::StreamLoss),
    /// An RTP or RTCP datagram for the media analysis; an RTCP compound's bytes are in the
    /// batch's `media_bytes`.
    Media(net::MediaDatagram),
}

/// How far capture time moves between two [`Prepared::Tick`]s, at most (one frame's time
/// past the last tick brings the next). The timers run at these ticks and nowhere else, so
/// that which calls are handed out, and in what order, follows from the frames alone: when
/// they ran at the end of each batch, it followed from where batches ended, which depends on
/// how the two threads kept pace, and the NDJSON export of one capture came out in a
/// different order from run to run.
pub(super) const TICK: Interval = Interval::from_secs(1);

/// A [`SipPdu`] whose bytes and frame list are ranges into its batch.
pub(crate) struct DeferredPdu {
    pub(super) source: usize,
    pub(super) frame: u64,
    pub(super) frames: std::ops::Range<usize>,
    pub(super) time: Timestamp,
    pub(super) src: std::net::SocketAddr,
    pub(super) dst: std::net::SocketAddr,
    pub(super) transport: net::Transport,
    pub(super) bytes: std::ops::Range<usize>,
}

impl DeferredPdu {
    /// Keeps what `pdu` holds in `out`, to be parsed on the other side. Not for HEP (its
    /// agent's details borrow the packet).
    pub(super) fn keep(pdu: &SipPdu<'_>, out: &mut Batch) -> DeferredPdu {
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

    pub(super) fn pdu<'a>(&self, raw: &'a [u8], frames: &'a [u64]) -> SipPdu<'a> {
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
pub(crate) struct Batch {
    pub items: Vec<Prepared>,
    pub text: String,
    /// The bytes and frame lists of deferred PDUs.
    pub(super) raw: Vec<u8>,
    pub(super) frames: Vec<u64>,
    /// PDUs, ticks and loss notes in the batch, and the PDUs' bytes, whether parsed or
    /// deferred: where the reader ends a batch must not depend on which PDUs the other thread
    /// took (that depends on timing), or the engine's clock would advance at different
    /// places from run to run and the same capture read differently.
    pub(super) units: usize,
    pub(super) pdu_bytes: usize,
    /// The RTCP compounds of [`Prepared::Media`] items.
    pub(super) media_bytes: Vec<u8>,
}

impl Batch {
    pub(super) fn with_capacity(n: usize) -> Batch {
        Batch {
            items: Vec::with_capacity(n),
            text: String::with_capacity(n * 48),
            raw: Vec::new(),
            frames: Vec::new(),
            units: 0,
            pdu_bytes: 0,
            media_bytes: Vec::new(),
        }
    }
}

/// The first half of the engine: frames in, [`Prepared`] messages out.
pub(crate) struct Ingest {
    pub(super) decoder: Decoder,
    pub(super) preparer: Preparer,
    pub(super) tap: Option<Tap>,
    pub(super) defer: Defer,
    /// When the next [`Prepared::Tick`] is due.
    pub(super) next_tick: Timestamp,
}

/// When [`Ingest`] leaves PDUs for the consumer to parse.
pub(super) enum Defer {
    Never,
    /// When fewer than [`DEFER_BELOW`] batches wait for the consumer (this counts them): it
    /// is about to run out of work while this side still has plenty.
    WhenIdle(Arc<std::sync::atomic::AtomicUsize>),
    /// Every PDU (tests: the deferred path must give the same results).
    #[cfg(test)]
    Always,
}

/// See [`Defer::WhenIdle`].
pub(super) const DEFER_BELOW: usize = 2;
/// Larger PDUs are parsed where they are rather than copied.
pub(super) const DEFER_UP_TO: usize = 8 << 10;
/// A batch goes as soon as it holds this many deferred bytes, so that the bytes between the
/// threads stay bounded whatever the messages' size.
pub(super) const BATCH_BYTES: usize = 128 << 10;

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
pub(super) struct Preparer {
    pub(super) keep: crate::flow::message::Keep,
    /// Make each SDP's [`crate::media::Offer`] for the media analysis.
    pub(super) media: bool,
    /// Per slot: the upper half of the Call-ID's hash (never 0: 0 is an empty slot) and the
    /// capture second it was last sent in.
    pub(super) seen: Box<[u64]>,
    /// Seconds of silence after which a Call-ID counts as unseen: one less than the linger,
    /// so that it is never later than the model's hand-out.
    pub(super) forget_after: u32,
    pub(super) hasher: foldhash::fast::FixedState,
}

/// Slots in [`Preparer`]'s table (512 KiB): far more than the calls in flight at once on a
/// busy link, so that a call's parties are rarely built twice.
pub(super) const SEEN_SLOTS: usize = 1 << 16;

impl Preparer {
    /// Parses every message in the PDU (a datagram may carry several).
    pub(super) fn prepare_all(&mut self, pdu: &SipPdu<'_>, out: &mut Batch) {
        crate::net::framing::each_message(pdu.bytes, |parsed| match parsed {
            Ok(parsed) => self.prepare(pdu, parsed, out),
            // The decoder only hands over bytes that start with a start line, so this is rare
            // (a start line the parser still rejects); counted as malformed.
            Err(()) => out.items.push(Prepared::Unparsable { source: pdu.source }),
        });
    }

    /// Builds the message's record and pushes it to `out`.
    pub(super) fn prepare(&mut self, pdu: &SipPdu<'_>, parsed: &sip::Message<'_>, out: &mut Batch) {
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
        // The offer here, where the body is at hand: the record need not keep it.
        let offer = (self.media && parsed.has_sdp())
            .then(|| crate::media::Offer::parse(parsed.body.get(..16 << 10).unwrap_or(parsed.body)))
            .flatten()
            .map(Box::new);
        out.items.push(Prepared::Message {
            call_id,
            msg,
            init,
            offer,
            malformed,
        });
    }
}

impl Ingest {
    pub fn new(config: &EngineConfig) -> Ingest {
        // A key drawn per run keeps hostile Call-IDs from aiming at collisions.
        let seed = std::hash::BuildHasher::hash_one(&foldhash::fast::RandomState::default(), 0u64);
        let hasher = foldhash::fast::FixedState::with_seed(seed);
        let mut decoder = Decoder::new(config.net);
        decoder.set_media(config.media);
        Ingest {
            decoder,
            preparer: Preparer {
                keep: crate::flow::message::Keep {
                    raw: config.keep_raw,
                    detail: config.keep_detail,
                },
                media: config.media,
                seen: vec![0; SEEN_SLOTS].into_boxed_slice(),
                forget_after: u32::try_from(config.linger.as_millis() / 1_000)
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
            self.next_tick = frame.time.saturating_add(TICK);
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
        self.decoder.drain_media(|mut d, bytes| {
            if let net::MediaPayload::Rtcp(range) = &mut d.payload {
                let at = out.media_bytes.len();
                out.media_bytes
                    .extend_from_slice(bytes.get(range.clone()).unwrap_or(&[]));
                *range = at..out.media_bytes.len();
            }
            out.units += 1;
            out.items.push(Prepared::Media(d));
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
