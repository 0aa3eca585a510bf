//! SDP summary (RFC 4566, RFC 3264): the connection address, each media line with its port,
//! protocol and payload types, and the direction attribute. Enough to show what was offered and
//! answered; the body itself is always kept raw.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct SdpSummary {
    /// Session-level `c=` address.
    pub connection: Option<String>,
    pub media: Vec<SdpMedia>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SdpMedia {
    /// audio, video, image (T.38), application...
    pub kind: String,
    pub port: u16,
    pub protocol: String,
    /// Payload types (RTP/AVP) or formats as written.
    pub formats: Vec<String>,
    /// `a=rtpmap` encodings per payload type, in `formats` order where known: "0 PCMU/8000".
    pub rtpmap: Vec<String>,
    /// Media-level `c=` address, when it overrides the session one.
    pub connection: Option<String>,
    /// sendrecv (the default), sendonly, recvonly or inactive.
    pub direction: &'static str,
}

/// Limits so that a hostile body cannot make the summary large.
const MAX_MEDIA: usize = 16;
const MAX_FORMATS: usize = 32;
const MAX_FIELD: usize = 64;

fn clip(s: &str) -> String {
    if s.len() <= MAX_FIELD {
        return s.to_string(); // nearly always: no need to count characters
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
        let text = String::from_utf8_lossy(body);
        let mut summary = SdpSummary::default();
        let mut session_direction = "sendrecv";
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
                    });
                }
                "a" => {
                    if let Some(d) = direction(value.trim()) {
                        match summary.media.last_mut() {
                            Some(m) => m.direction = d,
                            None => session_direction = d,
                        }
                    } else if let Some(map) = value.strip_prefix("rtpmap:")
                        && let Some(m) = summary.media.last_mut()
                        && m.rtpmap.len() < MAX_FORMATS
                    {
                        m.rtpmap.push(clip(map.trim()));
                    }
                }
                _ => {}
            }
        }
        seen_sdp.then_some(summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn not_sdp() {
        assert!(SdpSummary::parse(b"hello").is_none());
        assert!(SdpSummary::parse(&[0xff, 0xfe, b'=']).is_none());
    }
}
