//! SIP over WebSocket (RFC 7118): the HTTP upgrade that opens a connection, and the WebSocket
//! frames (RFC 6455) that carry one SIP message per WebSocket message, as text or binary,
//! masked from the client, possibly fragmented into several frames.
//!
//! Owns the handshake test and the deframing of one direction of a connection, after TCP
//! reassembly: bytes in order in, whole WebSocket messages out, each with the stream offsets
//! of its first and last frame (so that the frames that carried it are known). Hand-written:
//! the WebSocket crates are clients and servers that own the socket, and none reads a
//! captured byte stream that may begin or break anywhere. It does not parse SIP.

use super::framing::FramerStats;

/// How much of a connection's first bytes is searched for the HTTP upgrade.
const HANDSHAKE_MAX: usize = 16 << 10;

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// The HTTP headers at the start of `b`, lower-cased, when they are complete.
fn head_lower(b: &[u8]) -> Option<Vec<u8>> {
    let end = find(b.get(..HANDSHAKE_MAX.min(b.len()))?, b"\r\n\r\n")?;
    Some(b.get(..end)?.to_ascii_lowercase())
}

/// True when a segment opens SIP over WebSocket: a client's `GET` asking to upgrade to a
/// WebSocket with the `sip` subprotocol, or a server's `101` answer that accepts it.
pub fn is_handshake(b: &[u8]) -> bool {
    if !(b.starts_with(b"GET ") || b.starts_with(b"HTTP/1.1 101")) {
        return false;
    }
    let Some(head) = head_lower(b) else {
        return false;
    };
    let sip_protocol = head.split(|&c| c == b'\n').any(|line| {
        line.strip_prefix(b"sec-websocket-protocol:")
            .is_some_and(|v| v.split(|&c| c == b',').any(|p| p.trim_ascii() == b"sip"))
    });
    sip_protocol && find(&head, b"websocket").is_some()
}

/// The longest start line looked for in the first frame of a connection joined after its
/// handshake ([`frame_carries_sip`]).
const START_LINE_MAX: usize = 512;

/// True when `b` begins with a WebSocket text or binary frame whose payload begins with a SIP
/// start line (unmasked with the frame's key when the client masked it): how a connection
/// whose HTTP upgrade the capture missed is still known to carry SIP over WebSocket. A SIP
/// start line under a frame header is not something plain SIP over TCP begins with.
pub fn frame_carries_sip(b: &[u8]) -> bool {
    let Some(frame) = parse_frame(b) else {
        return false;
    };
    if !frame.valid || !matches!(frame.opcode, 0x1 | 0x2) || frame.len < 12 {
        return false;
    }
    let Some(payload) = b.get(frame.header..) else {
        return false;
    };
    let take = payload
        .len()
        .min(START_LINE_MAX)
        .min(usize::try_from(frame.len).unwrap_or(usize::MAX));
    let mut head = payload.get(..take).unwrap_or(&[]).to_vec();
    if let Some(key) = frame.mask {
        for (b, k) in head.iter_mut().zip(key.iter().cycle()) {
            *b ^= k;
        }
    }
    super::framing::starts_with_start_line(&head)
}

/// Deframes one direction of a WebSocket connection.
pub struct WsDeframer {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    base: u64,
    /// Still inside the HTTP upgrade request or response.
    handshake: bool,
    /// A fragmented message being put together, and the offset of its first frame.
    message: Vec<u8>,
    message_start: Option<u64>,
    max_message: usize,
    /// Bytes of an oversized frame still to be thrown away.
    discard: u64,
    /// Framing was lost (a gap, an invalid frame): WebSocket cannot resynchronise, so the
    /// rest of the stream is counted as skipped.
    lost: bool,
}

impl WsDeframer {
    pub fn new(max_message: usize) -> WsDeframer {
        WsDeframer {
            buf: Vec::new(),
            base: 0,
            handshake: true,
            message: Vec::new(),
            message_start: None,
            max_message,
            discard: 0,
            lost: false,
        }
    }

    /// For a connection joined after its handshake: the bytes start with a frame
    /// ([`frame_carries_sip`]).
    pub fn joined(max_message: usize) -> WsDeframer {
        WsDeframer {
            handshake: false,
            ..WsDeframer::new(max_message)
        }
    }

    /// Stream offset of the first byte still needed (for the frames of a message in progress).
    pub fn start(&self) -> u64 {
        self.message_start.unwrap_or(self.base)
    }

    /// Bytes of memory the deframer holds (unfinished frames and messages), for the total TCP
    /// budget.
    pub fn held(&self) -> usize {
        self.buf.capacity() + self.message.capacity()
    }

    /// Bytes were lost: frame boundaries are unknown from here on.
    pub fn gap(&mut self, missing: u64, stats: &mut FramerStats) {
        stats.skipped_bytes += self.buf.len() as u64 + self.message.len() as u64;
        self.base += self.buf.len() as u64 + missing;
        self.buf.clear();
        self.message.clear();
        self.message_start = None;
        self.lost = true;
    }

    /// End of the stream: an unfinished frame or message is counted as skipped.
    pub fn finish(&mut self, stats: &mut FramerStats) {
        stats.skipped_bytes += self.buf.len() as u64 + self.message.len() as u64;
        self.base += self.buf.len() as u64;
        self.buf.clear();
        self.message.clear();
        self.message_start = None;
    }

    /// Adds stream bytes; calls `emit(first, end, message)` for each complete WebSocket
    /// message, where `first..end` are the stream offsets of its frames.
    pub fn push(
        &mut self,
        data: &[u8],
        stats: &mut FramerStats,
        emit: &mut dyn FnMut(u64, u64, &[u8]),
    ) {
        let mut data = data;
        if self.lost {
            stats.skipped_bytes += data.len() as u64;
            self.base += data.len() as u64;
            return;
        }
        if self.discard > 0 {
            let n = self.discard.min(data.len() as u64) as usize;
            self.discard -= n as u64;
            stats.skipped_bytes += n as u64;
            self.base += n as u64;
            data = data.get(n..).unwrap_or(&[]);
        }
        self.buf.extend_from_slice(data);
        let mut at = 0usize;
        loop {
            let rest = self.buf.get(at..).unwrap_or(&[]);
            if self.handshake {
                match find(rest, b"\r\n\r\n") {
                    Some(end) => {
                        at += end + 4;
                        self.handshake = false;
                        continue;
                    }
                    None if rest.len() > HANDSHAKE_MAX => {
                        self.lost = true;
                        break;
                    }
                    None => break,
                }
            }
            let Some(frame) = parse_frame(rest) else {
                break; // incomplete header
            };
            let (header, len) = (frame.header, frame.len);
            if !frame.valid || len > self.max_message as u64 {
                if frame.valid {
                    stats.oversized += 1;
                    // Skip the oversized frame, and any message it belonged to.
                    let have = rest.len() as u64 - header as u64;
                    if have >= len {
                        at += header + len as usize;
                    } else {
                        self.discard = len - have;
                        at = self.buf.len();
                    }
                    self.message.clear();
                    self.message_start = None;
                    continue;
                }
                self.lost = true;
                break;
            }
            let total = header + len as usize;
            let Some(bytes) = rest.get(header..total) else {
                break; // wait for the rest of the frame
            };
            let first = self.base + at as u64;
            let end = first + total as u64;
            let mut payload = bytes.to_vec();
            if let Some(key) = frame.mask {
                for (b, k) in payload.iter_mut().zip(key.iter().cycle()) {
                    *b ^= k;
                }
            }
            at += total;
            match frame.opcode {
                // Text or binary: a whole message, or the first of its fragments.
                0x1 | 0x2 => {
                    if self.message_start.is_some() {
                        // A new message before the last one ended: that one is lost.
                        stats.skipped_bytes += self.message.len() as u64;
                    }
                    if frame.fin {
                        self.message.clear();
                        self.message_start = None;
                        emit(first, end, &payload);
                    } else {
                        self.message = payload;
                        self.message_start = Some(first);
                    }
                }
                // Continuation.
                0x0 => match self.message_start {
                    Some(start) if self.message.len() + payload.len() <= self.max_message => {
                        self.message.extend_from_slice(&payload);
                        if frame.fin {
                            let message = std::mem::take(&mut self.message);
                            self.message_start = None;
                            emit(start, end, &message);
                        }
                    }
                    Some(_) => {
                        stats.oversized += 1;
                        self.message.clear();
                        self.message_start = None;
                    }
                    None => stats.skipped_bytes += total as u64,
                },
                // Close, ping, pong: the connection's keep-alives.
                0x8..=0xA => stats.keepalives += 1,
                _ => {
                    self.lost = true;
                    break;
                }
            }
        }
        let used = at.min(self.buf.len());
        self.buf.drain(..used);
        super::framing::shrink(&mut self.buf);
        super::framing::shrink(&mut self.message);
        self.base += used as u64;
        if self.lost {
            stats.skipped_bytes += self.buf.len() as u64;
            self.base += self.buf.len() as u64;
            self.buf.clear();
        }
    }
}

struct FrameHeader {
    fin: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    header: usize,
    len: u64,
    /// Reserved bits clear and a known opcode.
    valid: bool,
}

/// A frame header at the start of `b`, or `None` if not all of it is there yet.
fn parse_frame(b: &[u8]) -> Option<FrameHeader> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let (fin, rsv, opcode) = (b0 & 0x80 != 0, b0 & 0x70, b0 & 0x0F);
    let masked = b1 & 0x80 != 0;
    let (len, mut header) = match b1 & 0x7F {
        126 => (u64::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?])), 4),
        127 => {
            let bytes: [u8; 8] = b.get(2..10)?.try_into().ok()?;
            (u64::from_be_bytes(bytes), 10)
        }
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        let key: [u8; 4] = b.get(header..header + 4)?.try_into().ok()?;
        header += 4;
        Some(key)
    } else {
        None
    };
    let valid = rsv == 0 && matches!(opcode, 0x0..=0x2 | 0x8..=0xA);
    Some(FrameHeader {
        fin,
        opcode,
        mask,
        header,
        len,
        valid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: k\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";
    const SIP: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn frames_carrying_sip_are_recognised_without_the_handshake() {
        let key = Some([0x12, 0x34, 0x56, 0x78]);
        assert!(frame_carries_sip(&frame(true, 0x1, SIP, key)));
        assert!(frame_carries_sip(&frame(true, 0x1, SIP, None)));
        assert!(frame_carries_sip(&frame(false, 0x2, SIP, key)));
        // Not SIP, not a data frame, or not a frame at all.
        assert!(!frame_carries_sip(&frame(
            true,
            0x1,
            b"{\"json\": \"message\"}",
            key
        )));
        assert!(!frame_carries_sip(&frame(true, 0x9, SIP, key)));
        assert!(!frame_carries_sip(SIP));
        assert!(!frame_carries_sip(REQUEST));
        assert!(!frame_carries_sip(&[0x81]));
        // A stream joined there deframes without looking for the upgrade.
        let mut d = WsDeframer::joined(1 << 20);
        let mut stats = FramerStats::default();
        let mut got = Vec::new();
        let mut bytes = frame(true, 0x1, SIP, key);
        bytes.extend(frame(true, 0x1, SIP, key));
        d.push(&bytes, &mut stats, &mut |_, _, m| got.push(m.to_vec()));
        assert_eq!(got, [SIP.to_vec(), SIP.to_vec()]);
    }

    /// A frame as a client (masked) or server (unmasked) would send it.
    pub(crate) fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut v = vec![(u8::from(fin) << 7) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => v.push(m | n as u8),
            n if n < 65536 => {
                v.push(m | 126);
                v.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                v.push(m | 127);
                v.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                v.extend_from_slice(&k);
                v.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => v.extend_from_slice(payload),
        }
        v
    }

    fn run(chunks: &[&[u8]]) -> (Vec<(u64, u64, Vec<u8>)>, FramerStats) {
        let mut d = WsDeframer::new(1 << 16);
        let mut stats = FramerStats::default();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c, &mut stats, &mut |a, b, m| out.push((a, b, m.to_vec())));
        }
        (out, stats)
    }

    #[test]
    fn handshakes_are_recognised() {
        assert!(is_handshake(REQUEST));
        let response = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Protocol: sip\r\n\r\n";
        assert!(is_handshake(response));
        let chat = b"GET / HTTP/1.1\r\nUpgrade: websocket\r\nSec-WebSocket-Protocol: chat, superchat\r\n\r\n";
        assert!(!is_handshake(chat));
        assert!(!is_handshake(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!is_handshake(&REQUEST[..40]), "incomplete headers");
    }

    #[test]
    fn masked_text_and_unmasked_binary_messages() {
        let a = frame(true, 1, SIP, Some([1, 2, 3, 4]));
        let b = frame(true, 2, SIP, None);
        let mut stream = REQUEST.to_vec();
        stream.extend_from_slice(&a);
        stream.extend_from_slice(&b);
        // Byte by byte: every split point is survived.
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let (out, stats) = run(&chunks);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|(_, _, m)| m == SIP));
        let h = REQUEST.len() as u64;
        assert_eq!((out[0].0, out[0].1), (h, h + a.len() as u64));
        assert_eq!(out[1].0, h + a.len() as u64);
        assert_eq!(stats, FramerStats::default());
    }

    #[test]
    fn fragmented_messages_and_control_frames_between() {
        let (x, y) = SIP.split_at(20);
        let mut stream = REQUEST.to_vec();
        stream.extend(frame(false, 1, x, Some([9, 9, 9, 9])));
        stream.extend(frame(true, 9, b"ping", Some([1, 1, 1, 1])));
        stream.extend(frame(true, 0, y, Some([7, 7, 7, 7])));
        let (out, stats) = run(&[&stream]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].2, SIP);
        assert_eq!(out[0].0, REQUEST.len() as u64);
        assert_eq!(out[0].1, stream.len() as u64);
        assert_eq!(stats.keepalives, 1);
    }

    #[test]
    fn oversized_and_invalid_frames() {
        let mut d = WsDeframer::new(100);
        let mut stats = FramerStats::default();
        let mut out = Vec::new();
        let mut stream = REQUEST.to_vec();
        stream.extend(frame(true, 1, &[b'x'; 500], None));
        stream.extend(frame(true, 1, SIP, None));
        for c in stream.chunks(64) {
            d.push(c, &mut stats, &mut |_, _, m| out.push(m.to_vec()));
        }
        assert_eq!(
            out,
            vec![SIP.to_vec()],
            "the message after an oversized one survives"
        );
        assert_eq!(stats.oversized, 1);
        // Reserved bits set: framing is lost for good, and that is counted.
        d.push(&[0xF1, 0x05, 1, 2, 3, 4, 5], &mut stats, &mut |_, _, m| {
            out.push(m.to_vec())
        });
        d.push(&frame(true, 1, SIP, None), &mut stats, &mut |_, _, m| {
            out.push(m.to_vec())
        });
        assert_eq!(out.len(), 1);
        assert!(stats.skipped_bytes > 0);
    }

    #[test]
    fn a_gap_ends_deframing() {
        let mut d = WsDeframer::new(1 << 16);
        let mut stats = FramerStats::default();
        let mut n = 0;
        d.push(REQUEST, &mut stats, &mut |_, _, _| n += 1);
        d.gap(10, &mut stats);
        d.push(&frame(true, 1, SIP, None), &mut stats, &mut |_, _, _| {
            n += 1
        });
        assert_eq!(n, 0);
        assert!(stats.skipped_bytes > 0);
    }

    #[test]
    fn a_huge_length_field_waits_without_allocating() {
        let mut d = WsDeframer::new(1 << 20);
        let mut stats = FramerStats::default();
        let mut hdr = REQUEST.to_vec();
        hdr.extend_from_slice(&[0x81, 127, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        d.push(&hdr, &mut stats, &mut |_, _, _| panic!("nothing to emit"));
        assert_eq!(stats.oversized, 1);
        assert!(d.buf.len() < 64);
    }
}
