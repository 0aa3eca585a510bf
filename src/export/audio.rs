//! A call's audio as a WAV file: G.711 µ-law and A-law decoded (ITU-T G.711, the exact
//! expansion the standard's tables give), one channel per direction (caller → callee left,
//! callee → caller right), each packet placed by its RTP timestamp so that lost or absent
//! packets are heard as silence. [`decode_call`] reads a call's payloads again from its
//! capture files (the model keeps no payload); the command line (`cli::audio`) and the
//! terminal UI's save to `.wav` both use it.
//!
//! SRTP streams are decrypted with the SDES keys (`a=crypto`) of the call's own SDP
//! ([`crate::srtp`]): each stream takes the key that authenticates its first packet; streams
//! keyed by DTLS-SRTP, or whose keys are not in the capture, are named as not decoded.

use crate::flow::Call;
use crate::media::{Direction, Stream};
use std::io::{self, Write};

/// Samples per second of the output (G.711's clock).
pub const RATE: u32 = 8_000;

/// The longest audio written, per channel (one hour): a hostile or mistaken timestamp cannot
/// make the buffers grow without bound.
pub const MAX_SAMPLES: usize = 3_600 * RATE as usize;

/// ITU-T G.711 µ-law to 16-bit linear.
pub fn ulaw(code: u8) -> i16 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = i32::from(u & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    let v = if u & 0x80 != 0 { -magnitude } else { magnitude };
    v as i16
}

/// ITU-T G.711 A-law to 16-bit linear.
pub fn alaw(code: u8) -> i16 {
    let a = code ^ 0x55;
    let exponent = (a >> 4) & 0x07;
    let mantissa = i32::from(a & 0x0f);
    let magnitude = if exponent == 0 {
        (mantissa << 4) + 8
    } else {
        ((mantissa << 4) + 0x108) << (exponent - 1)
    };
    // The sign bit set means positive in A-law.
    let v = if a & 0x80 != 0 { magnitude } else { -magnitude };
    v as i16
}

/// A codec this module decodes, by the name SDP or the static table gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decoder {
    Ulaw,
    Alaw,
}

impl Decoder {
    pub fn for_codec(name: &str) -> Option<Decoder> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Decoder::Ulaw),
            "PCMA" => Some(Decoder::Alaw),
            _ => None,
        }
    }

    fn sample(self, b: u8) -> i16 {
        match self {
            Decoder::Ulaw => ulaw(b),
            Decoder::Alaw => alaw(b),
        }
    }
}

/// Two channels of samples being filled.
#[derive(Debug, Default)]
pub struct Mixer {
    pub channels: [Vec<i16>; 2],
    /// Samples that fell past [`MAX_SAMPLES`].
    pub clipped: u64,
}

impl Mixer {
    /// Writes a packet's payload decoded into `channel` from sample `at` on.
    pub fn put(&mut self, channel: usize, at: usize, decoder: Decoder, payload: &[u8]) {
        let Some(ch) = self.channels.get_mut(channel) else {
            return;
        };
        let end = at.saturating_add(payload.len());
        if end > MAX_SAMPLES {
            self.clipped += (end - MAX_SAMPLES.max(at)) as u64;
        }
        let end = end.min(MAX_SAMPLES);
        if at >= end {
            return;
        }
        if ch.len() < end {
            ch.resize(end, 0);
        }
        if let Some(dst) = ch.get_mut(at..end) {
            for (d, b) in dst.iter_mut().zip(payload) {
                *d = decoder.sample(*b);
            }
        }
    }

    /// Samples per channel (the longer channel; the other is padded with silence).
    pub fn len(&self) -> usize {
        self.channels.iter().map(Vec::len).max().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The WAV file: RIFF, `fmt ` (PCM, 2 channels, 8 kHz, 16 bits), `data` interleaved.
    pub fn write_wav(&self, out: &mut dyn Write) -> io::Result<()> {
        let frames = self.len();
        let data = u32::try_from(frames * 4).unwrap_or(u32::MAX - 36);
        out.write_all(b"RIFF")?;
        out.write_all(&(36 + data).to_le_bytes())?;
        out.write_all(b"WAVEfmt ")?;
        out.write_all(&16u32.to_le_bytes())?;
        out.write_all(&1u16.to_le_bytes())?; // PCM
        out.write_all(&2u16.to_le_bytes())?; // channels
        out.write_all(&RATE.to_le_bytes())?;
        out.write_all(&(RATE * 4).to_le_bytes())?; // bytes per second
        out.write_all(&4u16.to_le_bytes())?; // block align
        out.write_all(&16u16.to_le_bytes())?; // bits per sample
        out.write_all(b"data")?;
        out.write_all(&data.to_le_bytes())?;
        let mut buf = Vec::with_capacity(64 << 10);
        for i in 0..frames {
            for ch in &self.channels {
                buf.extend_from_slice(&ch.get(i).copied().unwrap_or(0).to_le_bytes());
            }
            if buf.len() >= 60 << 10 {
                out.write_all(&buf)?;
                buf.clear();
            }
        }
        out.write_all(&buf)
    }
}

/// A call's audio, decoded, and what could not be.
#[derive(Debug, Default)]
pub struct CallAudio {
    pub mixer: Mixer,
    /// Streams decoded.
    pub decoded: usize,
    /// One line per stream left silent, naming its codec.
    pub undecoded: Vec<String>,
}

impl CallAudio {
    /// Seconds of audio.
    pub fn seconds(&self) -> f64 {
        self.mixer.len() as f64 / f64::from(RATE)
    }
}

/// The SDES master keys the call's SDP bodies carry, each once, in the order they came.
fn sdes_keys(call: &Call) -> Vec<crate::srtp::MasterKey> {
    let mut keys: Vec<crate::srtp::MasterKey> = Vec::new();
    for m in call.messages() {
        let Some(body) = m.extra.as_ref().and_then(|e| e.sdp_body.as_deref()) else {
            continue;
        };
        for line in String::from_utf8_lossy(body).lines() {
            if let Some(value) = line.trim_end().strip_prefix("a=crypto:")
                && let Some(key) = crate::srtp::Crypto::parse(value).and_then(|c| c.key)
                && !keys.contains(&key)
                && keys.len() < 64
            {
                keys.push(key);
            }
        }
    }
    keys
}

/// An SRTP stream being decrypted: the keys it may use until one authenticates a packet.
struct SrtpStream {
    candidates: Vec<crate::srtp::MasterKey>,
    context: Option<crate::srtp::Context>,
    opened: u64,
    failed: u64,
}

impl SrtpStream {
    /// The payload of an SRTP packet (`header_len` bytes of RTP header), decrypted, its RTP
    /// padding taken off.
    fn open(&mut self, packet: &[u8], header_len: usize) -> Option<Vec<u8>> {
        let mut plain = match &mut self.context {
            Some(c) => c.unprotect(packet, header_len).ok(),
            None => self.candidates.iter().find_map(|k| {
                let mut c = crate::srtp::Context::new(k);
                let plain = c.unprotect(packet, header_len).ok()?;
                self.context = Some(c);
                Some(plain)
            }),
        };
        match &plain {
            Some(_) => self.opened += 1,
            None => self.failed += 1,
        }
        if let Some(p) = &mut plain
            && packet.first().is_some_and(|b| b & 0x20 != 0)
        {
            let pad = usize::from(p.last().copied().unwrap_or(0));
            p.truncate(p.len().saturating_sub(pad));
        }
        plain
    }
}

/// Decodes the call's G.711 streams from its capture files (`names`, read again in order):
/// one channel per direction, each stream placed by its RTP timestamps from its first packet's
/// capture time; SRTP decrypted with the call's SDES keys. Streams in other codecs, and SRTP
/// without keys, are named in [`CallAudio::undecoded`].
pub fn decode_call(
    call: &Call,
    names: &[String],
    net: crate::net::NetLimits,
) -> Result<CallAudio, super::pcap::SaveError> {
    let mut audio = CallAudio::default();
    let keys = sdes_keys(call);
    // The streams to decode, with their channel and decoder; the others named.
    let mut plan: Vec<(&Stream, usize, Decoder)> = Vec::new();
    let mut srtp: Vec<Option<SrtpStream>> = Vec::new();
    for s in &call.media {
        let codec = s.codec.as_deref().unwrap_or("");
        let channel = match s.direction {
            Direction::CallerToCallee => 0,
            Direction::CalleeToCaller => 1,
            Direction::Unknown => continue,
        };
        match Decoder::for_codec(codec) {
            Some(_)
                if s.srtp
                    .as_ref()
                    .is_some_and(|x| x.keying == crate::media::Keying::Dtls) =>
            {
                audio.undecoded.push(format!(
                    "SRTP {} → {} is keyed by DTLS-SRTP (its keys are never in a capture): not decoded",
                    s.src, s.dst
                ));
            }
            Some(_) if s.srtp.is_some() && keys.is_empty() => {
                audio.undecoded.push(format!(
                    "SRTP {} → {}: the call's SDP carries no a=crypto key sipscope reads (AES_CM with HMAC-SHA1): not decoded",
                    s.src, s.dst
                ));
            }
            Some(d) => {
                plan.push((s, channel, d));
                srtp.push(s.srtp.as_ref().map(|_| SrtpStream {
                    candidates: keys.clone(),
                    context: None,
                    opened: 0,
                    failed: 0,
                }));
            }
            None if s.events_only() => {}
            None => audio.undecoded.push(format!(
                "RTP {} → {} carries {}: not decoded (its channel is silent for it)",
                s.src,
                s.dst,
                crate::sanitize::terminal(if codec.is_empty() {
                    "an unknown payload type"
                } else {
                    codec
                })
            )),
        }
    }
    audio.decoded = plan.len();
    if plan.is_empty() {
        return Ok(audio);
    }
    let t0 = call
        .media
        .iter()
        .map(|s| s.start)
        .min()
        .unwrap_or(call.start());
    let mixer = &mut audio.mixer;
    let mut decoder = crate::net::Decoder::new(net);
    decoder.set_media(true);
    decoder.set_media_payloads(true);
    // Per planned stream: the first packet's RTP timestamp and its sample position.
    let mut anchor: Vec<Option<(u32, usize)>> = vec![None; plan.len()];
    let mut source = super::pcap::reopen(names)?;
    while let Some(frame) = source.next_frame() {
        decoder.feed(&frame, &mut |_| {});
        decoder.drain_media(|d, bytes| {
            let crate::net::MediaPayload::Rtp(h) = &d.payload else {
                return;
            };
            let Some(i) = plan.iter().position(|(s, _, _)| {
                s.source == d.source
                    && s.src == d.src
                    && s.dst == d.dst
                    && s.ssrc == h.ssrc
                    && (s.start..=s.end).contains(&d.time)
            }) else {
                return;
            };
            let Some((s, channel, dec)) = plan.get(i) else {
                return;
            };
            // Only the stream's audio codec: events and comfort noise are silence here.
            if h.payload_type != s.payload_type {
                return;
            }
            let Some(anchor) = anchor.get_mut(i) else {
                return;
            };
            let (first_ts, first_at) = *anchor.get_or_insert_with(|| {
                let at = (d.time.seconds_since(t0) * f64::from(RATE))
                    .round()
                    .max(0.0);
                (h.timestamp, at as usize)
            });
            let offset = i64::from(h.timestamp.wrapping_sub(first_ts) as i32);
            let Ok(at) = usize::try_from(first_at as i64 + offset) else {
                return;
            };
            let start = usize::from(h.payload_offset);
            let packet = d
                .rtp_bytes
                .as_ref()
                .and_then(|r| bytes.get(r.clone()))
                .unwrap_or(&[]);
            match srtp.get_mut(i) {
                Some(Some(secure)) => {
                    if let Some(plain) = secure.open(packet, start) {
                        mixer.put(*channel, at, *dec, &plain);
                    }
                }
                _ => {
                    let payload = packet
                        .get(start..start + usize::from(h.payload_len))
                        .unwrap_or(&[]);
                    mixer.put(*channel, at, *dec, payload);
                }
            }
        });
    }
    for ((s, _, _), secure) in plan.iter().zip(&srtp) {
        if let Some(secure) = secure
            && secure.failed > 0
        {
            audio.undecoded.push(if secure.opened == 0 {
                format!(
                    "SRTP {} → {}: no a=crypto key of the call's SDP authenticates its packets: not decoded",
                    s.src, s.dst
                )
            } else {
                format!(
                    "SRTP {} → {}: {} packets failed authentication (silent)",
                    s.src, s.dst, secure.failed
                )
            });
            if secure.opened == 0 {
                audio.decoded = audio.decoded.saturating_sub(1);
            }
        }
    }
    Ok(audio)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known values of the G.711 tables (ITU-T G.711 Tables 1 and 2, and the values every
    /// implementation agrees on).
    #[test]
    fn g711_known_vectors() {
        assert_eq!(ulaw(0xff), 0);
        assert_eq!(ulaw(0x7f), 0);
        assert_eq!(ulaw(0x00), -32124);
        assert_eq!(ulaw(0x80), 32124);
        assert_eq!(ulaw(0xfe), 8);
        assert_eq!(ulaw(0x7e), -8);
        assert_eq!(ulaw(0xef), 132);
        assert_eq!(alaw(0xd5), 8);
        assert_eq!(alaw(0x55), -8);
        assert_eq!(alaw(0xaa), 32256);
        assert_eq!(alaw(0x2a), -32256);
        assert_eq!(alaw(0x80), 5504);
        // Monotonic over the positive µ-law codes (0xff down to 0x80).
        let pos: Vec<i16> = (0x80..=0xffu8).rev().map(ulaw).collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn packets_land_at_their_timestamps_with_silence_between() {
        let mut m = Mixer::default();
        m.put(0, 0, Decoder::Alaw, &[0xd5; 160]);
        m.put(0, 320, Decoder::Alaw, &[0xd5; 160]); // one packet lost in between
        m.put(1, 80, Decoder::Ulaw, &[0xfe; 10]);
        assert_eq!(m.len(), 480);
        assert_eq!(m.channels[0][159], 8);
        assert_eq!(m.channels[0][200], 0);
        assert_eq!(m.channels[0][320], 8);
        let mut wav = Vec::new();
        m.write_wav(&mut wav).unwrap();
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 44 + 480 * 4);
        assert_eq!(u16::from_le_bytes([wav[22], wav[23]]), 2);
        assert_eq!(
            u32::from_le_bytes([wav[24], wav[25], wav[26], wav[27]]),
            8_000
        );
        m.put(0, MAX_SAMPLES - 10, Decoder::Alaw, &[0xd5; 160]);
        assert_eq!(m.clipped, 150);
    }
}
