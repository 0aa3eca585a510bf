//! Raw messages read back from the capture files when they are shown, instead of held: the
//! terminal UI on a file keeps each message's record and the position of its frames, and reads
//! a message's bytes again only for the message pane, the diff and a JSON save (as Wireshark
//! reads a packet's bytes back from the file when it is selected).
//!
//! A message's frames ([`SipMessage::frames`]) are read at their offsets
//! ([`FrameIndex::read`]) and decoded again through a fresh [`crate::net::Decoder`]: IP
//! fragments are put together, TCP segments reassembled and WebSocket frames unmasked as on the
//! first read. The message is the one of those frames whose size, first line, CSeq, branch,
//! tags and addresses are the record's; anything else is refused (a file changed since it was
//! read), never shown in its place. A few recent answers are cached, so that a screen drawn
//! four times a second reads the file once. Owns no model and no terminal.

use crate::capture::{Frame, FrameIndex};
use crate::flow::SipMessage;
use crate::flow::message::{Keep, RawError, RawSource};
use crate::net::{Decoder, NetLimits};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

/// Answers kept: the messages of a screen and the one compared with in the diff.
const CACHE_ENTRIES: usize = 64;

/// What identifies a message among those of its frames, for the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheKey {
    source: usize,
    packet: u64,
    size: u32,
    /// Position in its call and its time: two messages of one frame differ in one of these
    /// or in size.
    index: usize,
    time: i64,
}

#[derive(Debug, Default)]
struct Cache {
    entries: VecDeque<(CacheKey, Arc<[u8]>)>,
    evicted: u64,
}

/// Reads raw messages back from the indexed capture files.
#[derive(Debug)]
pub struct RawReader {
    index: FrameIndex,
    limits: NetLimits,
    cache: Mutex<Cache>,
}

impl RawReader {
    /// A reader over `index`, decoding with the engine's network limits.
    pub fn new(index: FrameIndex, limits: NetLimits) -> RawReader {
        RawReader {
            index,
            limits,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// Answers that left the cache for newer ones.
    pub fn cache_evictions(&self) -> u64 {
        self.lock().evicted
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the message's frames and finds the message among what they decode to.
    fn read(&self, m: &SipMessage) -> Result<Arc<[u8]>, RawError> {
        // In stream order, as the record lists them: the first frame then begins the stream,
        // whatever order the capture had them in.
        let mut seen = std::collections::HashSet::with_capacity(m.frames().len());
        let numbers: Vec<u64> = m
            .frames()
            .iter()
            .copied()
            .filter(|&n| seen.insert(n))
            .collect();
        let mut frames = Vec::with_capacity(numbers.len());
        for &n in &numbers {
            frames.push(
                self.index
                    .read(m.source, n)
                    .map_err(|e| RawError::Unreadable(e.to_string()))?,
            );
        }
        let mut decoder = Decoder::new(self.limits);
        let mut found: Option<Arc<[u8]>> = None;
        let mut candidates = 0usize;
        let mut sink = |pdu: crate::net::SipPdu<'_>| {
            crate::net::framing::each_message(pdu.bytes, |parsed| {
                let Ok(parsed) = parsed else { return };
                let keep = Keep {
                    raw: false,
                    detail: false,
                };
                if same_message(&SipMessage::from_parsed(&pdu, parsed, keep), m) {
                    candidates += 1;
                    if found.is_none() || pdu.frame == m.packet {
                        found = Some(Arc::from(parsed.raw));
                    }
                }
            });
        };
        for (frame, &number) in frames.iter().zip(&numbers) {
            decoder.feed(
                &Frame {
                    source: m.source,
                    number,
                    time: m.time,
                    link: frame.link,
                    data: &frame.data,
                    orig_len: u32::try_from(frame.data.len()).unwrap_or(u32::MAX),
                },
                &mut sink,
            );
        }
        decoder.finish(&mut sink);
        match found {
            Some(bytes) if candidates <= numbers.len().max(1) => Ok(bytes),
            Some(_) => Err(RawError::Ambiguous),
            None => Err(RawError::Gone(m.packet)),
        }
    }
}

/// The fields a record takes from the bytes, compared: the same message, or not.
fn same_message(a: &SipMessage, b: &SipMessage) -> bool {
    a.size == b.size
        && a.kind == b.kind
        && a.cseq == b.cseq
        && a.branch == b.branch
        && a.from_tag == b.from_tag
        && a.to_tag == b.to_tag
        && a.src == b.src
        && a.dst == b.dst
        && a.transport == b.transport
}

impl RawSource for RawReader {
    fn raw_bytes(&self, m: &SipMessage) -> Result<Arc<[u8]>, RawError> {
        let key = CacheKey {
            source: m.source,
            packet: m.packet,
            size: m.size,
            index: m.index,
            time: m.time.0,
        };
        if let Some((_, bytes)) = self.lock().entries.iter().find(|(k, _)| *k == key) {
            return Ok(Arc::clone(bytes));
        }
        let bytes = self.read(m)?;
        let mut cache = self.lock();
        if cache.entries.len() >= CACHE_ENTRIES {
            cache.entries.pop_front();
            cache.evicted += 1;
        }
        cache.entries.push_back((key, Arc::clone(&bytes)));
        Ok(bytes)
    }
}
