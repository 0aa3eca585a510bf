//! SDP summary (RFC 4566, RFC 3264): the connection address, each media line with its port,
//! protocol and payload types, and the direction attribute. Enough to show what was offered and
//! answered; the body itself is always kept raw.

use compact_str::CompactString;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SdpSummary {
    /// Session-level `c=` address.
    pub connection: Option<CompactString>,
    pub media: Vec<SdpMedia>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SdpMedia {
    /// audio, video, image (T.38), application...
    pub kind: CompactString,
    pub port: u16,
    pub protocol: CompactString,
    /// Payload types (RTP/AVP) or formats as written.
    pub formats: Vec<CompactString>,
    /// `a=rtpmap` encodings per payload type, in `formats` order where known: "0 PCMU/8000".
    pub rtpmap: Vec<CompactString>,
    /// Media-level `c=` address, when it overrides the session one.
    pub connection: Option<CompactString>,
    /// sendrecv (the default), sendonly, recvonly or inactive.
    pub direction: &'static str,
    /// `a=rtcp:PORT` (RFC 3605): the RTCP port when it is not the RTP port + 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtcp_port: Option<u16>,
    /// `a=rtcp-mux` (RFC 5761): RTCP on the RTP port.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rtcp_mux: bool,
    /// The suites of the `a=crypto` lines (SDES, RFC 4568), as written, in order; never
    /// their keys.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub crypto: Vec<CompactString>,
    /// An `a=fingerprint` (RFC 8122) at the session or media level: keys by DTLS-SRTP.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fingerprint: bool,
}

impl SdpMedia {
    /// SRTP (`RTP/SAVP`, `RTP/SAVPF`, `UDP/TLS/RTP/SAVP(F)`), rather than plain RTP.
    pub fn is_srtp(&self) -> bool {
        self.protocol.contains("SAVP")
    }
}

/// `a=crypto` lines kept per media line at most.
const MAX_CRYPTO: usize = 8;

/// Reads one `a=` attribute into the media line it follows (or the session's defaults).
fn attribute(
    value: &str,
    media: Option<&mut SdpMedia>,
    session_direction: &mut &'static str,
    session_fingerprint: &mut bool,
) {
    if let Some(d) = direction(value.trim()) {
        match media {
            Some(m) => m.direction = d,
            None => *session_direction = d,
        }
        return;
    }
    if value.starts_with("fingerprint:") {
        match media {
            Some(m) => m.fingerprint = true,
            None => *session_fingerprint = true,
        }
        return;
    }
    let Some(m) = media else {
        return;
    };
    if let Some(map) = value.strip_prefix("rtpmap:") {
        if m.rtpmap.len() < MAX_FORMATS {
            m.rtpmap.push(clip(map.trim()));
        }
    } else if value.trim() == "rtcp-mux" {
        m.rtcp_mux = true;
    } else if let Some(port) = value.strip_prefix("rtcp:") {
        m.rtcp_port = port.split_whitespace().next().and_then(|p| p.parse().ok());
    } else if let Some(crypto) = value.strip_prefix("crypto:") {
        // "1 AES_CM_128_HMAC_SHA1_80 inline:…": the suite only.
        if let Some(suite) = crypto.split_whitespace().nth(1)
            && m.crypto.len() < MAX_CRYPTO
        {
            m.crypto.push(clip(suite));
        }
    }
}

/// Limits so that a hostile body cannot make the summary large.
const MAX_MEDIA: usize = 16;
const MAX_FORMATS: usize = 32;
const MAX_FIELD: usize = 64;

/// Fields are short (payload types, `0 PCMU/8000`, addresses) and kept inline: a summary of
/// a typical body is then two or three allocations, not twenty, and the rules summarise every
/// offer and answer of every call.
fn clip(s: &str) -> CompactString {
    if s.len() <= MAX_FIELD {
        return CompactString::from(s); // nearly always: no need to count characters
    }
    s.chars().take(MAX_FIELD).collect()
}

fn direction(attr: &str) -> Option<&'static str> {
    match attr {
        "sendrecv" => Some("sendrecv"),
        "sendonly" => Some("sendonly"),
        "recvonly" => Some("recvonly"),
        "inactive" => Some("inactive"),
        _ => None,
    }
}

impl SdpSummary {
    /// Summarises an SDP body; `None` if it has no `v=` or `m=` line at all.
    pub fn parse(body: &[u8]) -> Option<SdpSummary> {
        // Lines and `=` found with the memchr crate's vector search, the body checked as
        // UTF-8 by simdutf8: std's byte-at-a-time scans were four fifths of the summary's cost,
        // and the rules summarise every offer and answer of every call.
        let text = match simdutf8::basic::from_utf8(body) {
            Ok(s) => std::borrow::Cow::Borrowed(s),
            Err(_) => String::from_utf8_lossy(body),
        };
        let mut summary = SdpSummary::default();
        let mut session_direction = "sendrecv";
        let mut session_fingerprint = false;
        let mut seen_sdp = false;
        let mut rest: &str = &text;
        while !rest.is_empty() {
            // As `str::lines`: pieces between LFs, none after a final LF.
            let (line, next) = match memchr::memchr(b'\n', rest.as_bytes()) {
                Some(nl) => (
                    rest.get(..nl).unwrap_or(""),
                    rest.get(nl + 1..).unwrap_or(""),
                ),
                None => (rest, ""),
            };
            rest = next;
            let line = line.trim_end_matches('\r');
            let Some((kind, value)) = memchr::memchr(b'=', line.as_bytes())
                .and_then(|eq| Some((line.get(..eq)?, line.get(eq + 1..)?)))
            else {
                continue;
            };
            match kind {
                "v" => seen_sdp = true,
                "c" => {
                    // c=IN IP4 192.0.2.1
                    let addr = value.split_whitespace().nth(2).map(clip);
                    match summary.media.last_mut() {
                        Some(m) => m.connection = addr,
                        None => summary.connection = addr,
                    }
                }
                "m" => {
                    seen_sdp = true;
                    if summary.media.len() >= MAX_MEDIA {
                        continue;
                    }
                    let mut parts = value.split_whitespace();
                    let kind = parts.next().map(clip).unwrap_or_default();
                    let port = parts
                        .next()
                        .and_then(|p| p.split('/').next())
                        .and_then(|p| p.parse().ok())
                        .unwrap_or(0);
                    let protocol = parts.next().map(clip).unwrap_or_default();
                    let formats = parts.take(MAX_FORMATS).map(clip).collect();
                    summary.media.push(SdpMedia {
                        kind,
                        port,
                        protocol,
                        formats,
                        rtpmap: Vec::new(),
                        connection: None,
                        direction: session_direction,
                        rtcp_port: None,
                        rtcp_mux: false,
                        crypto: Vec::new(),
                        fingerprint: session_fingerprint,
                    });
                }
                "a" => attribute(
                    value,
                    summary.media.last_mut(),
                    &mut session_direction,
                    &mut session_fingerprint,
                ),
                _ => {}
            }
        }
        seen_sdp.then_some(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary with std's line and `=` splitting, as it was: the reference.
    struct Reference;
    impl Reference {
        fn parse_by_std(body: &[u8]) -> Option<SdpSummary> {
            let text = String::from_utf8_lossy(body);
            let mut summary = SdpSummary::default();
            let mut session_direction = "sendrecv";
            let mut session_fingerprint = false;
            let mut seen_sdp = false;
            for line in text.lines() {
                let line = line.trim_end_matches('\r');
                let Some((kind, value)) = line.split_once('=') else {
                    continue;
                };
                match kind {
                    "v" => seen_sdp = true,
                    "c" => {
                        // c=IN IP4 192.0.2.1
                        let addr = value.split_whitespace().nth(2).map(clip);
                        match summary.media.last_mut() {
                            Some(m) => m.connection = addr,
                            None => summary.connection = addr,
                        }
                    }
                    "m" => {
                        seen_sdp = true;
                        if summary.media.len() >= MAX_MEDIA {
                            continue;
                        }
                        let mut parts = value.split_whitespace();
                        let kind = parts.next().map(clip).unwrap_or_default();
                        let port = parts
                            .next()
                            .and_then(|p| p.split('/').next())
                            .and_then(|p| p.parse().ok())
                            .unwrap_or(0);
                        let protocol = parts.next().map(clip).unwrap_or_default();
                        let formats = parts.take(MAX_FORMATS).map(clip).collect();
                        summary.media.push(SdpMedia {
                            kind,
                            port,
                            protocol,
                            formats,
                            rtpmap: Vec::new(),
                            connection: None,
                            direction: session_direction,
                            rtcp_port: None,
                            rtcp_mux: false,
                            crypto: Vec::new(),
                            fingerprint: session_fingerprint,
                        });
                    }
                    "a" => attribute(
                        value,
                        summary.media.last_mut(),
                        &mut session_direction,
                        &mut session_fingerprint,
                    ),
                    _ => {}
                }
            }
            seen_sdp.then_some(summary)
        }
    }

    /// The vector-search summary gives what std's splitting gave, on random bodies of SDP
    /// lines, bare CRs, `=` in odd places, Unicode spaces and invalid UTF-8.
    #[test]
    fn summary_agrees_with_std_splitting() {
        let pieces: [&[u8]; 16] = [
            b"v=0",
            b"\r\n",
            b"\n",
            b"\r",
            b"c=IN IP4 10.0.0.1",
            b"m=audio 4000 RTP/AVP 0 8",
            b"a=rtpmap:0 PCMU/8000",
            b"a=sendonly",
            b" ",
            b"=",
            b"m=video 0/2 RTP/AVP 96",
            b"\xc2\xa0",
            b"\xff",
            "a= inactive\u{2003}".as_bytes(),
            b"c=IN IP6 ::1",
            b"x",
        ];
        let mut rng = crate::synth::Rng::new(23);
        for _ in 0..20_000 {
            let mut body = Vec::new();
            for _ in 0..rng.below(20) {
                body.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
            }
            assert_eq!(
                SdpSummary::parse(&body),
                Reference::parse_by_std(&body),
                "{body:?}"
            );
        }
    }

    #[test]
    fn summarises_offer() {
        let body = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n\
m=video 0 RTP/AVP 31\r\nc=IN IP4 10.0.0.2\r\n";
        let s = SdpSummary::parse(body).unwrap();
        assert_eq!(s.connection.as_deref(), Some("10.0.0.1"));
        assert_eq!(s.media.len(), 2);
        assert_eq!(s.media[0].port, 49170);
        assert_eq!(s.media[0].formats, vec!["0", "8", "101"]);
        assert_eq!(s.media[0].direction, "sendonly");
        assert_eq!(s.media[0].rtpmap, vec!["0 PCMU/8000"]);
        assert_eq!(s.media[1].direction, "sendrecv");
        assert_eq!(s.media[1].connection.as_deref(), Some("10.0.0.2"));
    }

    /// SRTP media lines: SDES suites kept (never their keys), a session-level fingerprint
    /// applying to every media line after it.
    #[test]
    fn srtp_attributes() {
        let body = b"v=0\r\nc=IN IP4 10.0.0.1\r\na=fingerprint:sha-256 AB:CD\r\n\
            m=audio 4000 UDP/TLS/RTP/SAVPF 111\r\n\
            m=audio 4002 RTP/SAVP 0\r\n\
            a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20\r\n\
            a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
        let s = SdpSummary::parse(body).unwrap();
        let (dtls, sdes) = (&s.media[0], &s.media[1]);
        assert!(dtls.is_srtp() && dtls.fingerprint && dtls.crypto.is_empty());
        assert!(sdes.is_srtp());
        assert_eq!(
            sdes.crypto,
            ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"]
        );
        let json = serde_json::to_string(&s).unwrap();
        assert!(!json.contains("inline") && !json.contains("WVNf"), "{json}");
        assert!(
            !SdpSummary::parse(b"v=0\r\nm=audio 1 RTP/AVP 0\r\n")
                .unwrap()
                .media[0]
                .is_srtp()
        );
    }

    #[test]
    fn not_sdp() {
        assert!(SdpSummary::parse(b"hello").is_none());
        assert!(SdpSummary::parse(&[0xff, 0xfe, b'=']).is_none());
    }
}
