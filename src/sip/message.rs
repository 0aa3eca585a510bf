//! One SIP message: start line, ordered headers, body, and the issues met while reading it.
//!
//! No-panic contract: every function here accepts any bytes. What cannot be read becomes an
//! [`Issue`] (the message is kept) or a [`ParseError`] (the bytes are not a SIP message).

use super::header::{self, CSeq, HeaderKind, NameAddr, Via, trim};

/// The first line of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request { method: &'a [u8], uri: &'a [u8] },
    Response { code: u16, reason: &'a [u8] },
}

/// One header line (with its folded continuation lines) as written. The name is not kept,
/// only its kind: this is 24 bytes, so a message's inline table of them is small to move,
/// and no reader of the model needs the names of headers it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    pub kind: HeaderKind,
    /// The value after the colon; may contain folding CR/LF + whitespace.
    pub value: &'a [u8],
}

/// Something wrong or unusual in a message that was otherwise read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "issue", rename_all = "snake_case")]
pub enum Issue {
    /// Lines end in bare LF (or bare CR) instead of CRLF. RFC 3261 §7 requires CRLF; many
    /// stacks accept LF.
    LfLineEndings,
    /// A header line has no colon; it was skipped.
    HeaderWithoutColon { line: usize },
    /// A continuation line (starting with whitespace) with no header before it; skipped.
    ContinuationWithoutHeader { line: usize },
    /// No empty line ends the headers: the message is truncated or not framed.
    NoEndOfHeaders,
    /// Content-Length is not a number.
    BadContentLength,
    /// Content-Length does not match the bytes present.
    ContentLengthMismatch { declared: u64, actual: usize },
    /// A mandatory header (Call-ID, CSeq, From, To, Via) is missing or unreadable.
    MissingHeader { name: &'static str },
}

impl Issue {
    /// Whether the issue makes the message malformed, not merely unusual (LF-only line ends
    /// are accepted by most stacks).
    pub fn is_malformed(&self) -> bool {
        !matches!(self, Issue::LfLineEndings)
    }
}

/// Why bytes are not a SIP message at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("not a SIP start line")]
    NotSip,
    #[error("empty message")]
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    /// The bytes of this message only, start line to end of body.
    pub raw: &'a [u8],
    pub start: StartLine<'a>,
    /// Headers in order; inline up to 24 so that parsing a typical message allocates nothing.
    pub headers: smallvec::SmallVec<[Header<'a>; 24]>,
    pub body: &'a [u8],
    pub issues: Vec<Issue>,
}

/// Where the first line of `buf` ends: (length of the line, length of its terminator).
/// A line ends at CRLF, LF or a bare CR, as in Wireshark's `tvb_find_line_end`: mangled line
/// ends are common in broken and fuzzed traffic, and a lenient reader must not lose the message.
/// `None` when no terminator is present yet.
pub fn line_end(buf: &[u8]) -> Option<(usize, usize)> {
    let at = memchr::memchr2(b'\r', b'\n', buf)?;
    if buf.get(at) == Some(&b'\r') && buf.get(at + 1) == Some(&b'\n') {
        Some((at, 2))
    } else {
        Some((at, 1))
    }
}

/// Splits off one line: returns (line without terminator, rest, whether it ended other than
/// in CRLF). The last line may have no terminator.
fn next_line(buf: &[u8]) -> Option<(&[u8], &[u8], bool)> {
    if buf.is_empty() {
        return None;
    }
    match line_end(buf) {
        Some((len, term)) => Some((
            buf.get(..len).unwrap_or(&[]),
            buf.get(len + term..).unwrap_or(&[]),
            term == 1,
        )),
        None => Some((buf, &[], false)),
    }
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Parses a start line, or `None` if the line is not one.
fn parse_start(line: &[u8]) -> Option<StartLine<'_>> {
    if line.len() >= 11 && line.get(..8)?.eq_ignore_ascii_case(b"SIP/2.0 ") {
        let code = line.get(8..11)?;
        let code = header::parse_u32(code)?;
        if !(100..=699).contains(&code) {
            return None;
        }
        match line.get(11) {
            None | Some(b' ') | Some(b'\t') => {}
            Some(_) => return None,
        }
        return Some(StartLine::Response {
            code: code as u16,
            reason: trim(line.get(11..).unwrap_or(&[])),
        });
    }
    let sp1 = header::find_any(line, [b' '])?;
    let method = line.get(..sp1)?;
    if method.is_empty() || method.len() > 32 || !method.iter().all(|b| is_token_char(*b)) {
        return None;
    }
    // `Method SP Request-URI SP SIP-Version`: the version has no space, so the line ends in
    // " SIP/2.0" after its last space, and the URI is what lies between.
    let rest = line.get(sp1 + 1..)?;
    let sp2 = rest.len().checked_sub(8)?;
    let uri = rest.get(..sp2)?;
    if !rest.get(sp2..)?.eq_ignore_ascii_case(b" SIP/2.0")
        || uri.is_empty()
        || header::find_any(uri, [b' ']).is_some()
        || header::find_any(uri, [b':']).is_none()
    {
        return None;
    }
    Some(StartLine::Request { method, uri })
}

/// True if `line` (without its line ending) is a SIP request or status line.
pub fn looks_like_start(line: &[u8]) -> bool {
    parse_start(line).is_some()
}

/// Methods recognised when a start line has to be found in the middle of a line.
const KNOWN_METHODS: [&[u8]; 14] = [
    b"INVITE",
    b"ACK",
    b"BYE",
    b"CANCEL",
    b"OPTIONS",
    b"REGISTER",
    b"PRACK",
    b"SUBSCRIBE",
    b"NOTIFY",
    b"PUBLISH",
    b"INFO",
    b"REFER",
    b"MESSAGE",
    b"UPDATE",
];

/// Where a start line begins inside `line` when something else precedes it on the same line:
/// a body without a final CRLF runs straight into the next message on a stream.
pub fn start_within_line(line: &[u8]) -> Option<usize> {
    // A status line: "SIP/2.0 ddd ..." anywhere.
    let mut best: Option<usize> = memchr::memmem::find_iter(line, b"SIP/2.0 ")
        .find(|&p| line.get(p..).is_some_and(looks_like_start));
    // A request line ends in " SIP/2.0": find the known method that starts it.
    if line.len() >= 8
        && line
            .get(line.len() - 8..)
            .is_some_and(|v| v.eq_ignore_ascii_case(b" SIP/2.0"))
    {
        let request = KNOWN_METHODS
            .iter()
            .flat_map(|m| memchr::memmem::find_iter(line, m))
            .filter(|&p| line.get(p..).is_some_and(looks_like_start))
            .min();
        best = match (best, request) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    best
}

/// Offset of the first SIP start line in `buf`. Used to resynchronise a stream that was joined
/// mid-message or lost bytes: a start line at the beginning of a line is taken first; failing
/// that, one that begins mid-line after a body with no final line end.
pub fn find_start_line(buf: &[u8]) -> Option<usize> {
    let mut offset = 0;
    // Only complete lines count: a line still missing its end may yet become a start line.
    while let Some((len, term)) = buf.get(offset..).and_then(line_end) {
        let line = buf.get(offset..offset + len).unwrap_or(&[]);
        // The search inside the line (fifteen substring searches) only when the line itself
        // is no known start line: a stream nearly always resumes at one.
        if let Some(start) = parse_start(line) {
            // "xxxxMESSAGE sip:..." is a valid request line with method "xxxxMESSAGE", but
            // when resynchronising, a known method glued to the tail of a body is likelier.
            let known = match start {
                StartLine::Request { method, .. } => KNOWN_METHODS.contains(&method),
                StartLine::Response { .. } => true,
            };
            let within = if known {
                0
            } else {
                start_within_line(line).unwrap_or(0)
            };
            return Some(offset + within);
        }
        if let Some(p) = start_within_line(line) {
            return Some(offset + p);
        }
        offset += len + term;
    }
    None
}

impl<'a> Message<'a> {
    /// Parses one message at the start of `buf`. Returns the message and the number of bytes
    /// it used. Without Content-Length the body runs to the end of `buf` (RFC 3261 §18.3 for
    /// datagrams; stream framers hand over exactly one message). With Content-Length, bytes
    /// after the body are left for the caller (several messages in one datagram).
    pub fn parse(buf: &'a [u8]) -> Result<(Message<'a>, usize), ParseError> {
        if buf.is_empty() {
            return Err(ParseError::Empty);
        }
        let (first, mut rest, first_lf) = next_line(buf).ok_or(ParseError::Empty)?;
        let start = parse_start(first).ok_or(ParseError::NotSip)?;
        let mut lf_only = first_lf;
        // Built first and filled in place: the header table is most of the value's size, and
        // moving it into the value afterwards was a copy per message.
        let mut msg = Message {
            raw: buf,
            start,
            headers: smallvec::SmallVec::new(),
            body: &[],
            issues: Vec::new(),
        };
        let mut ended = false;
        let mut line_no = 1;
        // Mandatory headers seen (Call-ID, CSeq, From, To, Via) and the first Content-Length,
        // noted as the headers go by rather than looked up again afterwards.
        let mut seen = [false; 5];
        let mut content_length: Option<usize> = None;
        while let Some((line, after, lf)) = next_line(rest) {
            line_no += 1;
            lf_only |= lf;
            if line.is_empty() {
                rest = after;
                ended = true;
                break;
            }
            if matches!(line.first(), Some(b' ') | Some(b'\t')) {
                // Folded continuation (RFC 3261 §7.3.1): extend the previous value's span.
                match msg.headers.last_mut() {
                    Some(last) => {
                        let value_start = last.value.as_ptr() as usize - buf.as_ptr() as usize;
                        let line_end = line.as_ptr() as usize - buf.as_ptr() as usize + line.len();
                        if let Some(v) = buf.get(value_start..line_end) {
                            last.value = v;
                        }
                    }
                    None => msg
                        .issues
                        .push(Issue::ContinuationWithoutHeader { line: line_no }),
                }
                rest = after;
                continue;
            }
            match header::find_any(line, [b':']) {
                Some(colon) => {
                    let name = trim(line.get(..colon).unwrap_or(&[]));
                    let value = line.get(colon + 1..).unwrap_or(&[]);
                    let kind = HeaderKind::of(name);
                    match kind {
                        HeaderKind::CallId => seen[0] = true,
                        HeaderKind::CSeq => seen[1] = true,
                        HeaderKind::From => seen[2] = true,
                        HeaderKind::To => seen[3] = true,
                        HeaderKind::Via => seen[4] = true,
                        HeaderKind::ContentLength if content_length.is_none() => {
                            content_length = Some(msg.headers.len())
                        }
                        _ => {}
                    }
                    msg.headers.push(Header { kind, value });
                }
                None => msg.issues.push(Issue::HeaderWithoutColon { line: line_no }),
            }
            rest = after;
        }
        if lf_only {
            msg.issues.push(Issue::LfLineEndings);
        }
        let header_len = buf.len() - rest.len();
        if !ended {
            msg.issues.push(Issue::NoEndOfHeaders);
        }
        // The value is read after the loop: a folded continuation may still have extended it.
        let declared = match content_length
            .and_then(|i| msg.headers.get(i))
            .map(|h| h.value)
        {
            Some(v) => match trim(v) {
                d if !d.is_empty() && d.iter().all(u8::is_ascii_digit) => {
                    // Saturate absurd values: they are a mismatch, not an overflow.
                    Some(
                        d.iter()
                            .try_fold(0u64, |n, b| {
                                n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
                            })
                            .unwrap_or(u64::MAX),
                    )
                }
                _ => {
                    msg.issues.push(Issue::BadContentLength);
                    None
                }
            },
            None => None,
        };
        let available = rest.len();
        let body_len = match declared {
            Some(d) => {
                if d > available as u64 {
                    msg.issues.push(Issue::ContentLengthMismatch {
                        declared: d,
                        actual: available,
                    });
                    available
                } else {
                    let d = d as usize;
                    let trailing = rest.get(d..).unwrap_or(&[]);
                    let next = trailing.iter().position(|b| !matches!(b, b'\r' | b'\n'));
                    if let Some(n) = next {
                        let after = trailing.get(n..).unwrap_or(&[]);
                        let is_next_message =
                            next_line(after).is_some_and(|(l, _, _)| looks_like_start(l));
                        if !is_next_message {
                            msg.issues.push(Issue::ContentLengthMismatch {
                                declared: d as u64,
                                actual: available,
                            });
                        }
                    }
                    d
                }
            }
            None => available,
        };
        let used = header_len + body_len;
        for (present, name) in seen
            .into_iter()
            .zip(["Call-ID", "CSeq", "From", "To", "Via"])
        {
            if !present {
                msg.issues.push(Issue::MissingHeader { name });
            }
        }
        msg.raw = buf.get(..used).unwrap_or(buf);
        msg.body = rest.get(..body_len).unwrap_or(rest);
        Ok((msg, used))
    }

    /// The first header of that kind.
    pub fn header(&self, kind: HeaderKind) -> Option<&'a [u8]> {
        self.headers
            .iter()
            .find(|h| h.kind == kind)
            .map(|h| h.value)
    }

    /// Every value of headers of that kind, in order, split on top-level commas.
    pub fn values(&self, kind: HeaderKind) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.headers
            .iter()
            .filter(move |h| h.kind == kind)
            .flat_map(|h| header::split_commas(h.value))
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    pub fn method(&self) -> Option<&'a [u8]> {
        match self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    pub fn call_id(&self) -> Option<&'a [u8]> {
        self.header(HeaderKind::CallId)
            .map(trim)
            .filter(|v| !v.is_empty())
    }

    pub fn cseq(&self) -> Option<CSeq<'a>> {
        self.header(HeaderKind::CSeq).and_then(CSeq::parse)
    }

    pub fn from(&self) -> Option<NameAddr<'a>> {
        self.header(HeaderKind::From).map(NameAddr::parse)
    }

    pub fn to(&self) -> Option<NameAddr<'a>> {
        self.header(HeaderKind::To).map(NameAddr::parse)
    }

    /// The top (first) Via value.
    pub fn top_via(&self) -> Option<Via<'a>> {
        self.values(HeaderKind::Via).next().and_then(Via::parse)
    }

    /// Number of Via values (hops the request has crossed).
    pub fn via_count(&self) -> usize {
        self.values(HeaderKind::Via).count()
    }

    /// Contact values (name-addr or addr-spec), in order.
    pub fn contacts(&self) -> impl Iterator<Item = NameAddr<'a>> + '_ {
        self.values(HeaderKind::Contact).map(NameAddr::parse)
    }

    /// Record-Route values, in order (the first is the proxy nearest the receiver).
    pub fn record_route(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.values(HeaderKind::RecordRoute)
    }

    /// Route values, in order.
    pub fn route(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.values(HeaderKind::Route)
    }

    pub fn max_forwards(&self) -> Option<u32> {
        self.header(HeaderKind::MaxForwards)
            .and_then(|v| header::parse_u32(trim(v)))
    }

    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.header(HeaderKind::ContentType).map(trim)
    }

    /// True if the body is SDP (by Content-Type, or by its first line when untyped).
    pub fn has_sdp(&self) -> bool {
        if self.body.is_empty() {
            return false;
        }
        match self.content_type() {
            Some(ct) => ct
                .get(..15)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"application/sdp")),
            None => self.body.starts_with(b"v=0"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &[u8] = b"INVITE sip:bob@biloxi.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.com>\r\n\
From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.com>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 4\r\n\
\r\n\
v=0\n";

    #[test]
    fn parses_rfc3261_invite() {
        let (m, used) = Message::parse(INVITE).unwrap();
        assert_eq!(used, INVITE.len());
        assert_eq!(m.method(), Some(&b"INVITE"[..]));
        assert_eq!(m.call_id(), Some(&b"a84b4c76e66710@pc33.atlanta.com"[..]));
        assert_eq!(m.cseq().unwrap().seq, 314159);
        assert_eq!(m.from().unwrap().tag, Some(&b"1928301774"[..]));
        assert_eq!(m.to().unwrap().tag, None);
        assert_eq!(m.top_via().unwrap().branch, Some(&b"z9hG4bK776asdhds"[..]));
        assert_eq!(m.max_forwards(), Some(70));
        assert_eq!(m.body, b"v=0\n");
        assert!(m.has_sdp());
        assert!(m.issues.is_empty(), "{:?}", m.issues);
    }

    #[test]
    fn lf_only_folded_and_compact() {
        let raw = b"SIP/2.0 180 Ringing\nv: SIP/2.0/UDP a;branch=z9hG4bK1,\n SIP/2.0/UDP b;branch=z9hG4bK2\n\
f: <sip:a@x>;tag=1\nt: <sip:b@y>;tag=2\ni: abc\nSubject: hello\n\tworld\nCSeq: 1 INVITE\nl: 0\n\n";
        let (m, _) = Message::parse(raw).unwrap();
        assert_eq!(m.status(), Some(180));
        assert_eq!(m.via_count(), 2);
        assert_eq!(m.call_id(), Some(&b"abc"[..]));
        assert_eq!(m.to().unwrap().tag, Some(&b"2"[..]));
        let subject = m
            .headers
            .iter()
            .find(|h| h.kind == HeaderKind::Other)
            .unwrap();
        assert_eq!(trim(subject.value), b"hello\n\tworld");
        assert_eq!(m.issues, vec![Issue::LfLineEndings]);
    }

    #[test]
    fn two_messages_in_one_datagram() {
        let one = b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:a@b>\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nContent-Length: 0\r\n\r\n";
        let mut both = one.to_vec();
        both.extend_from_slice(one);
        let (m, used) = Message::parse(&both).unwrap();
        assert_eq!(used, one.len());
        assert!(m.issues.is_empty(), "{:?}", m.issues);
        let (m2, used2) = Message::parse(&both[used..]).unwrap();
        assert_eq!(used2, one.len());
        assert_eq!(m2.call_id(), Some(&b"1"[..]));
    }

    #[test]
    fn content_length_problems_are_issues_not_errors() {
        let raw = b"SIP/2.0 200 OK\r\nContent-Length: xyz\r\n\r\n";
        let (m, _) = Message::parse(raw).unwrap();
        assert!(m.issues.contains(&Issue::BadContentLength));
        let raw = b"SIP/2.0 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nabc";
        let (m, used) = Message::parse(raw).unwrap();
        assert_eq!(used, raw.len());
        assert_eq!(
            m.issues[0],
            Issue::ContentLengthMismatch {
                declared: u64::MAX,
                actual: 3
            }
        );
        // Read exactly up to the largest value, saturated past it; leading zeros are digits.
        let declared = |value: &str| {
            let raw = format!("SIP/2.0 200 OK\r\nContent-Length: {value}\r\n\r\nabc");
            let (m, used) = Message::parse(raw.as_bytes()).unwrap();
            assert_eq!((m.body, used), (&b"abc"[..], raw.len()));
            m.issues.iter().find_map(|i| match i {
                Issue::ContentLengthMismatch { declared, .. } => Some(*declared),
                _ => None,
            })
        };
        assert_eq!(declared("018446744073709551614"), Some(u64::MAX - 1));
        assert_eq!(declared("18446744073709551616"), Some(u64::MAX));
        assert_eq!(declared("0003"), None);
    }

    #[test]
    fn continuation_without_header_is_an_issue() {
        // Regression: a 487 whose Via line lost its name (" SIP/2.0/UDP ...") was read without
        // any issue being reported.
        let raw = b"SIP/2.0 487 Request Terminated\r\n SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK1\r\nCall-ID: x\r\n\r\n";
        let (m, _) = Message::parse(raw).unwrap();
        assert!(
            m.issues
                .contains(&Issue::ContinuationWithoutHeader { line: 2 })
        );
        assert!(m.issues.contains(&Issue::MissingHeader { name: "Via" }));
    }

    #[test]
    fn contact_and_route_sets() {
        let raw = b"SIP/2.0 200 OK\r\nRecord-Route: <sip:p1;lr>, <sip:p2;lr>\r\nRecord-Route: <sip:p3;lr>\r\n\
Route: <sip:r1;lr>\r\nm: \"Bob, Jr\" <sip:bob@10.0.0.2:5060;transport=tcp>;expires=60, sip:b2@h\r\n\r\n";
        let (m, _) = Message::parse(raw).unwrap();
        let rr: Vec<&[u8]> = m.record_route().collect();
        assert_eq!(
            rr,
            vec![&b"<sip:p1;lr>"[..], b"<sip:p2;lr>", b"<sip:p3;lr>"]
        );
        assert_eq!(m.route().count(), 1);
        let contacts: Vec<NameAddr<'_>> = m.contacts().collect();
        assert_eq!(contacts.len(), 2);
        assert_eq!(contacts[0].display, Some(&b"Bob, Jr"[..]));
        assert_eq!(contacts[0].uri, b"sip:bob@10.0.0.2:5060;transport=tcp");
        assert_eq!(contacts[1].uri, b"sip:b2@h");
    }

    #[test]
    fn rejects_non_sip() {
        assert_eq!(
            Message::parse(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap_err(),
            ParseError::NotSip
        );
        assert_eq!(
            Message::parse(b"SIP/2.0 999 Nope\r\n\r\n").unwrap_err(),
            ParseError::NotSip
        );
        assert_eq!(
            Message::parse(b"\x16\x03\x01\x02\x00").unwrap_err(),
            ParseError::NotSip
        );
        assert_eq!(Message::parse(b"").unwrap_err(), ParseError::Empty);
    }

    #[test]
    fn finds_start_line_glued_to_a_body() {
        // Regression: joining a stream mid-message, the previous body has no final CRLF.
        let buf = b"Length: 4\r\n\r\nxxxxMESSAGE sip:bob@example.com SIP/2.0\r\nCall-ID: 1\r\n";
        assert_eq!(find_start_line(buf), Some(17));
        let buf = b"v=0 tailSIP/2.0 200 OK\r\n";
        assert_eq!(find_start_line(buf), Some(8));
    }

    /// The request-line reading (the line's end checked for " SIP/2.0", eight-byte scans)
    /// against the plain one (last space, then the version), on random lines made of the
    /// pieces that matter.
    #[test]
    fn request_lines_match_the_plain_definition() {
        fn plain(line: &[u8]) -> Option<(&[u8], &[u8])> {
            let sp1 = line.iter().position(|b| *b == b' ')?;
            let method = line.get(..sp1)?;
            if method.is_empty() || method.len() > 32 || !method.iter().all(|b| is_token_char(*b)) {
                return None;
            }
            let rest = line.get(sp1 + 1..)?;
            let sp2 = rest.iter().rposition(|b| *b == b' ')?;
            let (uri, version) = (rest.get(..sp2)?, rest.get(sp2 + 1..)?);
            (version.eq_ignore_ascii_case(b"SIP/2.0")
                && !uri.is_empty()
                && !uri.contains(&b' ')
                && uri.contains(&b':'))
            .then_some((method, uri))
        }
        let methods: [&[u8]; 4] = [b"INVITE", b"", b"IN\tVITE", b"BYE "];
        let uri_parts: [&[u8]; 5] = [b"sip:", b"a@b", b":", b" ", b"x"];
        let versions: [&[u8]; 6] = [
            b"SIP/2.0",
            b"sip/2.0",
            b"SIP/2.0 ",
            b"SIP/2.",
            b"",
            b" SIP/2.0",
        ];
        let mut rng = crate::synth::Rng::new(5);
        let pick = |rng: &mut crate::synth::Rng, from: &[&'static [u8]]| {
            from[rng.below(from.len() as u64) as usize]
        };
        let mut accepted = 0;
        for _ in 0..100_000 {
            let mut line = pick(&mut rng, &methods).to_vec();
            line.push(b' ');
            for _ in 0..rng.below(4) {
                line.extend(pick(&mut rng, &uri_parts));
            }
            line.push(b' ');
            line.extend(pick(&mut rng, &versions));
            let got = match parse_start(&line) {
                Some(StartLine::Request { method, uri }) => Some((method, uri)),
                _ => None,
            };
            assert_eq!(got, plain(&line), "{:?}", String::from_utf8_lossy(&line));
            accepted += usize::from(got.is_some());
        }
        assert!(accepted > 1_000, "{accepted} request lines");
    }

    #[test]
    fn finds_start_line_after_junk() {
        let buf = b"ody tail\r\n\r\nBYE sip:x@y SIP/2.0\r\nCall-ID: 1\r\n";
        assert_eq!(find_start_line(buf), Some(12));
        assert_eq!(find_start_line(b"BYE sip:x@y SIP/2.0"), None);
    }
}
