//! SIP message boundaries (RFC 3261 §18.3): where one message ends in a datagram or a byte
//! stream, from the end of the headers and Content-Length. Keep-alives (CRLF, RFC 5626 §3.5.1)
//! between messages are skipped and counted. Knows nothing of TCP sequence numbers: it is fed
//! bytes in order by [`super::tcp`].

use crate::sip::looks_like_start;

/// End of the header block: offset just past the empty line, for CRLF and bare-LF endings.
pub fn header_end(buf: &[u8]) -> Option<usize> {
    // Two vector searches for the whole empty line, rather than a stop at every line end: a
    // head has a dozen lines, and each stop cost a search's set-up. The first empty line
    // wins, whichever ending it has.
    static CRLF: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n\r\n"));
    static LF: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n\n"));
    let crlf = CRLF.find(buf);
    // Up to and with the first byte of the CRLF ending: "\n\n\r\n" ends at the LF pair.
    let lf = LF.find(buf.get(..crlf.map_or(buf.len(), |c| c + 1)).unwrap_or(buf));
    match (lf, crlf) {
        (Some(nl), _) => Some(nl + 2),
        (None, Some(nl)) => Some(nl + 3),
        (None, None) => None,
    }
}

/// The Content-Length value in a header block (long or compact `l` form), if numeric.
/// `Err(())` when present but unreadable.
pub fn content_length(headers: &[u8]) -> Option<Result<u64, ()>> {
    let mut start = 0;
    for nl in memchr::memchr_iter(b'\n', headers) {
        let line = headers.get(start..nl).unwrap_or(&[]);
        start = nl + 1;
        // Most lines are other headers: only a name that can be ours is looked at further.
        if !matches!(
            line.first(),
            Some(b'c' | b'C' | b'l' | b'L' | b' ' | b'\t' | b'\r' | b'\x0c')
        ) {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            continue;
        };
        let name = line.get(..colon).unwrap_or(&[]).trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = line.get(colon + 1..).unwrap_or(&[]).trim_ascii();
            if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
                return Some(Err(()));
            }
            return Some(
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or(()),
            );
        }
    }
    None
}

/// Length of leading CR/LF bytes (keep-alives and padding between messages).
pub fn leading_crlf(buf: &[u8]) -> usize {
    buf.iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count()
}

/// True if `buf` starts with a complete SIP start line.
pub fn starts_with_start_line(buf: &[u8]) -> bool {
    crate::sip::message::line_end(buf)
        .and_then(|(len, _)| buf.get(..len))
        .is_some_and(looks_like_start)
}

/// Every SIP message of a PDU in turn (a datagram or a stream unit may hold several, CRLFs
/// between them): `each` gets each parsed message, or `Err(())` for a start line the parser
/// still rejects, which ends the walk (the rest cannot be told apart). The engine and the
/// read-back of raw messages cut PDUs the same way through this.
pub fn each_message<'a>(
    bytes: &'a [u8],
    mut each: impl FnMut(Result<&crate::sip::Message<'a>, ()>),
) {
    let mut rest = bytes;
    loop {
        // Matched by reference: moving the parsed message (600 bytes) out of the result
        // would copy it.
        match &crate::sip::Message::parse(rest) {
            Ok((parsed, used)) => {
                each(Ok(parsed));
                let after = rest.get((*used).max(1)..).unwrap_or(&[]);
                rest = after.get(leading_crlf(after)..).unwrap_or(&[]);
                if !starts_with_start_line(rest) {
                    return;
                }
            }
            Err(_) => return each(Err(())),
        }
    }
}

/// What the stream framer did with bytes it was given.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FramerStats {
    /// Bytes skipped while looking for a start line (mid-stream join, gaps, non-SIP data).
    pub skipped_bytes: u64,
    /// Messages dropped for exceeding the size limit.
    pub oversized: u64,
    pub keepalives: u64,
}

/// Finds SIP messages in an in-order byte stream.
pub struct StreamFramer {
    buf: Vec<u8>,
    synced: bool,
    /// Whether the buffer begins at a real line start: true from a connection's first byte
    /// (after SYN), false when the stream was joined mid-way or bytes were lost. The first
    /// line after such a join is a fragment: "GE sip:..." must not be read as method "GE".
    line_start: bool,
    max_message: usize,
    /// Bytes of an oversized message's body still to be thrown away.
    discard: u64,
    /// Stream offset of `buf[0]`: every byte given to the framer or skipped over counts, so
    /// that each message's place in the stream (and so the segments that carried it) is known.
    base: u64,
}

/// Gives back the memory of a buffer that once held a large message and now holds little, so
/// that a stream's footprint (counted against the total TCP budget) follows what it holds.
pub(crate) fn shrink(buf: &mut Vec<u8>) {
    const KEEP: usize = 16 << 10;
    if buf.capacity() > 4 * KEEP && buf.len() < buf.capacity() / 4 {
        buf.shrink_to(buf.len().max(KEEP));
    }
}

/// A Content-Length over this many times the message limit is not believed (see `push`).
const LYING_FACTOR: u64 = 16;

/// While unsynchronised, keep at most this much of an unfinished line.
const MAX_UNSYNCED_TAIL: usize = 8 << 10;

impl StreamFramer {
    pub fn new(max_message: usize, line_start: bool) -> StreamFramer {
        StreamFramer {
            buf: Vec::new(),
            synced: false,
            line_start,
            max_message,
            discard: 0,
            base: 0,
        }
    }

    /// Stream offset of the first byte the framer still holds.
    pub fn start(&self) -> u64 {
        self.base
    }

    /// Bytes of memory the framer holds (an unfinished message), for the total TCP budget.
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Stream offset just past the bytes the framer has been given.
    pub fn position(&self) -> u64 {
        self.base + self.buf.len() as u64
    }

    /// `missing` bytes were lost before the next ones: drop any partial message and
    /// resynchronise.
    pub fn gap(&mut self, missing: u64, stats: &mut FramerStats) {
        stats.skipped_bytes += self.buf.len() as u64;
        self.base += self.buf.len() as u64 + missing;
        self.buf.clear();
        self.synced = false;
        self.line_start = false;
        self.discard = 0;
    }

    /// Appends in-order bytes and calls `emit` for each complete message, with the message's
    /// offset in the stream.
    pub fn push(&mut self, data: &[u8], stats: &mut FramerStats, emit: &mut dyn FnMut(u64, &[u8])) {
        let mut data = data;
        if self.discard > 0 {
            let n = (self.discard.min(data.len() as u64)) as usize;
            self.discard -= n as u64;
            stats.skipped_bytes += n as u64;
            // Only reached with an empty buffer: the skipped bytes move its start.
            self.base += n as u64;
            data = data.get(n..).unwrap_or(&[]);
        }
        if self.buf.is_empty() {
            // Nearly always: the segment begins where the last message ended. Its messages are
            // read from it where it is and only an unfinished tail is copied, so a connection
            // at rest holds no buffer (thousands of long-lived connections each kept one).
            let consumed = self.scan(data, stats, emit).min(data.len());
            self.base += consumed as u64;
            self.buf
                .extend_from_slice(data.get(consumed..).unwrap_or(&[]));
            return;
        }
        self.buf.extend_from_slice(data);
        let buf = std::mem::take(&mut self.buf);
        let consumed = self.scan(&buf, stats, emit).min(buf.len());
        self.buf = buf;
        self.base += consumed as u64;
        self.buf.drain(..consumed);
        if self.buf.is_empty() {
            self.buf = Vec::new();
        }
        shrink(&mut self.buf);
    }

    /// Emits the complete messages at the start of `bytes` (the framer's own buffer, or a
    /// segment when that is empty), which begin at stream offset `self.base`; returns how
    /// many bytes were used up (emitted or skipped).
    fn scan(
        &mut self,
        bytes: &[u8],
        stats: &mut FramerStats,
        emit: &mut dyn FnMut(u64, &[u8]),
    ) -> usize {
        let mut consumed = 0;
        loop {
            let rest = bytes.get(consumed..).unwrap_or(&[]);
            let crlf = leading_crlf(rest);
            if crlf > 0 {
                stats.keepalives += 1;
                consumed += crlf;
                continue;
            }
            if rest.is_empty() {
                break;
            }
            if !self.synced && !self.line_start {
                // The first line is a fragment: only a start line that a known method or a
                // status line anchors inside it counts; otherwise skip to the next line.
                let Some((len, term)) = crate::sip::message::line_end(rest) else {
                    let keep_from = rest.len().saturating_sub(MAX_UNSYNCED_TAIL);
                    stats.skipped_bytes += keep_from as u64;
                    consumed += keep_from;
                    break;
                };
                let line = rest.get(..len).unwrap_or(&[]);
                let skip = match crate::sip::message::start_within_line(line) {
                    Some(p) => {
                        self.synced = true;
                        p
                    }
                    None => len + term,
                };
                stats.skipped_bytes += skip as u64;
                consumed += skip;
                self.line_start = true;
                continue;
            }
            if !self.synced {
                match crate::sip::find_start_line(rest) {
                    Some(off) => {
                        stats.skipped_bytes += off as u64;
                        consumed += off;
                        self.synced = true;
                    }
                    None => {
                        // Keep only the unfinished last line: it may become a start line.
                        let keep_from = memchr::memrchr(b'\n', rest).map_or(0, |nl| nl + 1);
                        let keep_from = keep_from.max(rest.len().saturating_sub(MAX_UNSYNCED_TAIL));
                        stats.skipped_bytes += keep_from as u64;
                        consumed += keep_from;
                        break;
                    }
                }
                continue;
            }
            if crate::sip::message::line_end(rest).is_some() && !starts_with_start_line(rest) {
                // Framing lost (a wrong Content-Length, or junk between messages).
                self.synced = false;
                continue;
            }
            let Some(h) = header_end(rest) else {
                if rest.len() > self.max_message {
                    stats.oversized += 1;
                    stats.skipped_bytes += rest.len() as u64;
                    consumed += rest.len();
                    self.synced = false;
                }
                break;
            };
            // RFC 3261 §18.3: Content-Length is mandatory on streams; treat absent as 0.
            let body = match content_length(rest.get(..h).unwrap_or(&[])) {
                Some(Ok(cl)) => cl,
                _ => 0,
            };
            let total = (h as u64).saturating_add(body);
            if total > self.max_message as u64 {
                stats.oversized += 1;
                if body > LYING_FACTOR.saturating_mul(self.max_message as u64) {
                    // A length no SIP message has is a lie or garbage, not a body on its way:
                    // throwing that much away would cost every message after it on the
                    // connection. Skip the headers and resynchronise on the next start line.
                    stats.skipped_bytes += h as u64;
                    consumed += h;
                    self.synced = false;
                    continue;
                }
                // Throw the whole message away, body included: a body may hold lines that
                // look like start lines (message/sipfrag), so resynchronising inside it
                // would invent messages.
                let here = (rest.len() as u64).min(total);
                stats.skipped_bytes += here;
                consumed += here as usize;
                self.discard = total - here;
                if self.discard > 0 {
                    break;
                }
                continue;
            }
            let total = total as usize;
            if rest.len() < total {
                break;
            }
            emit(
                self.base + consumed as u64,
                rest.get(..total).unwrap_or(rest),
            );
            consumed += total;
        }
        consumed
    }

    /// End of stream: an unfinished message is emitted as it is (the parser will flag it).
    pub fn finish(&mut self, stats: &mut FramerStats, emit: &mut dyn FnMut(u64, &[u8])) {
        if self.synced && starts_with_start_line(&self.buf) {
            emit(self.base, &self.buf);
        } else {
            stats.skipped_bytes += self.buf.len() as u64;
        }
        self.base += self.buf.len() as u64;
        self.buf.clear();
        self.synced = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 5\r\n\r\nhello";

    fn collect(f: &mut StreamFramer, chunks: &[&[u8]]) -> (Vec<Vec<u8>>, FramerStats) {
        let (out, stats) = collect_at(f, chunks);
        (out.into_iter().map(|(_, m)| m).collect(), stats)
    }

    /// Messages with their stream offsets; checks that each offset points at the message.
    fn collect_at(f: &mut StreamFramer, chunks: &[&[u8]]) -> (Vec<(u64, Vec<u8>)>, FramerStats) {
        let mut out = Vec::new();
        let mut stats = FramerStats::default();
        let whole: Vec<u8> = chunks.concat();
        for c in chunks {
            f.push(c, &mut stats, &mut |at, m| {
                assert_eq!(whole.get(at as usize..at as usize + m.len()), Some(m));
                out.push((at, m.to_vec()))
            });
        }
        assert_eq!(f.position(), whole.len() as u64);
        (out, stats)
    }

    /// A connection at rest holds no buffer, whether its last message came in one segment
    /// or in pieces: thousands of long-lived connections each kept the capacity of their
    /// largest message.
    /// The searches agree with the plain definitions (the first line end followed by an LF
    /// or a CRLF; a Content-Length or `l` header, names trimmed) on random heads.
    #[test]
    fn header_end_and_content_length_agree_with_their_definitions() {
        fn header_end_by_lines(buf: &[u8]) -> Option<usize> {
            for nl in memchr::memchr_iter(b'\n', buf) {
                match buf.get(nl + 1) {
                    Some(b'\n') => return Some(nl + 2),
                    Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some(nl + 3),
                    _ => {}
                }
            }
            None
        }
        fn content_length_by_lines(headers: &[u8]) -> Option<Result<u64, ()>> {
            for line in headers.split(|b| *b == b'\n') {
                let Some(colon) = memchr::memchr(b':', line) else {
                    continue;
                };
                let name = line[..colon].trim_ascii();
                if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
                    let value = line[colon + 1..].trim_ascii();
                    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit)
                    {
                        return Some(Err(()));
                    }
                    return Some(std::str::from_utf8(value).unwrap().parse().map_err(|_| ()));
                }
            }
            None
        }
        let pieces: [&[u8]; 12] = [
            b"\n",
            b"\r",
            b"\r\n",
            b"a",
            b":",
            b" ",
            b"\t",
            b"\x0c",
            b"l",
            b"L: 12",
            b"Content-Length: 7",
            b" content-LENGTH :x",
        ];
        let mut rng = crate::synth::Rng::new(17);
        for _ in 0..50_000 {
            let mut buf = Vec::new();
            for _ in 0..rng.below(24) {
                buf.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
            }
            assert_eq!(header_end(&buf), header_end_by_lines(&buf), "{buf:?}");
            // The last line counts only when it has ended, as in a head cut at its empty line.
            let ended = buf.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            let head = &buf[..ended];
            assert_eq!(
                content_length(head),
                content_length_by_lines(head),
                "{head:?}"
            );
        }
    }

    #[test]
    fn a_framer_between_messages_holds_no_memory() {
        let mut f = StreamFramer::new(65536, true);
        let (out, _) = collect_at(&mut f, &[MSG, MSG]);
        assert_eq!((out.len(), f.held()), (2, 0));
        let mut f = StreamFramer::new(65536, true);
        let split: Vec<&[u8]> = MSG.chunks(10).chain([MSG]).collect();
        let (out, _) = collect_at(&mut f, &split);
        assert_eq!((out.len(), f.held()), (2, 0));
        let mut f = StreamFramer::new(65536, true);
        let (out, _) = collect_at(&mut f, &[MSG, &MSG[..20]]);
        assert_eq!(out.len(), 1);
        assert!(f.held() >= 20);
    }

    #[test]
    fn messages_know_their_place_in_the_stream() {
        let mut data = b"junk before\r\n".to_vec();
        data.extend_from_slice(MSG);
        data.extend_from_slice(b"\r\n");
        let second = data.len() as u64;
        data.extend_from_slice(MSG);
        let mut f = StreamFramer::new(65536, false);
        let chunks: Vec<&[u8]> = data.chunks(7).collect();
        let (out, _) = collect_at(&mut f, &chunks);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0, 13);
        assert_eq!(out[1].0, second);
        // An oversized message thrown away still counts its bytes.
        let mut big = b"INFO sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 1000));
        let after = big.len() as u64;
        big.extend_from_slice(MSG);
        let mut f = StreamFramer::new(200, true);
        let chunks: Vec<&[u8]> = big.chunks(100).collect();
        let (out, _) = collect_at(&mut f, &chunks);
        assert_eq!(out, vec![(after, MSG.to_vec())]);
    }

    #[test]
    fn frames_split_and_joined_messages() {
        let mut two = MSG.to_vec();
        two.extend_from_slice(b"\r\n\r\n");
        two.extend_from_slice(MSG);
        let (a, b) = two.split_at(30);
        let mut f = StreamFramer::new(65536, true);
        let (out, stats) = collect(&mut f, &[a, b]);
        assert_eq!(out, vec![MSG.to_vec(), MSG.to_vec()]);
        assert_eq!(stats.keepalives, 1);
    }

    #[test]
    fn resynchronises_mid_stream() {
        let mut data = b"lo\r\nSubject: tail of an earlier message\r\n\r\n".to_vec();
        data.extend_from_slice(MSG);
        let mut f = StreamFramer::new(65536, true);
        let (out, stats) = collect(&mut f, &[&data]);
        assert_eq!(out, vec![MSG.to_vec()]);
        assert!(stats.skipped_bytes > 0);
    }

    #[test]
    fn oversized_message_is_dropped_and_next_survives() {
        let mut big = b"INFO sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 1000));
        big.extend_from_slice(MSG);
        let mut f = StreamFramer::new(200, true);
        let (out, stats) = collect(&mut f, &[&big]);
        assert_eq!(out, vec![MSG.to_vec()]);
        assert_eq!(stats.oversized, 1);
    }

    /// A Content-Length no message has (hostile, or garbage) must not swallow the rest of the
    /// connection: the messages after it survive, and the lie is counted as oversized.
    #[test]
    fn an_absurd_content_length_costs_only_its_own_message() {
        for cl in ["99999999999", "9999999999999999999"] {
            let mut data =
                format!("INFO sip:a@b SIP/2.0\r\nContent-Length: {cl}\r\n\r\n").into_bytes();
            data.extend_from_slice(b"short body\r\n");
            data.extend_from_slice(MSG);
            data.extend_from_slice(MSG);
            let mut f = StreamFramer::new(1 << 20, true);
            let chunks: Vec<&[u8]> = data.chunks(9).collect();
            let (out, stats) = collect(&mut f, &chunks);
            assert_eq!(out, vec![MSG.to_vec(), MSG.to_vec()], "{cl}");
            assert_eq!(stats.oversized, 1, "{cl}");
        }
        // Unreadable (too long for a number): read as no body, the parser flags it, and the
        // messages after it survive too.
        let mut data =
            b"INFO sip:a@b SIP/2.0\r\nContent-Length: 999999999999999999999999\r\n\r\n".to_vec();
        data.extend_from_slice(MSG);
        let mut f = StreamFramer::new(1 << 20, true);
        let (out, _) = collect(&mut f, &[&data]);
        assert_eq!(out.last(), Some(&MSG.to_vec()));
    }
}
