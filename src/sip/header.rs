//! Header names (long and compact forms) and the typed values sipscope reads: Via, From/To
//! name-addr, CSeq. Parsing is lenient: a value that cannot be understood gives `None`, never
//! an error that would cost the rest of the message.

/// Headers the analyzer reads by name. Everything else is `Other` and kept verbatim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    CallId,
    From,
    To,
    Via,
    CSeq,
    MaxForwards,
    Contact,
    ContentLength,
    ContentType,
    RecordRoute,
    Route,
    Reason,
    Warning,
    Authorization,
    ProxyAuthorization,
    /// The challenges of a 401 and a 407 (RFC 3261 §22.1, §22.3).
    WwwAuthenticate,
    ProxyAuthenticate,
    XCallId,
    /// RFC 3327: the proxies a registration passed, which will route requests to the binding.
    Path,
    /// RFC 3262: `Require: 100rel` with `RSeq` makes a provisional response reliable; PRACK
    /// answers it with `RAck`.
    Require,
    RSeq,
    RAck,
    /// RFC 4028 session timers.
    SessionExpires,
    MinSe,
    RetryAfter,
    /// Read only to recognise the tools of SIP scanners ([`scanner_agent`]).
    UserAgent,
    /// What ties the legs of one call across B2BUAs: RFC 7989 Session-ID, the 3GPP charging
    /// vector (RFC 7315), transfers (RFC 3891 Replaces, RFC 3515 Refer-To, RFC 3892
    /// Referred-By), the asserted caller (RFC 3325) and the diverting party (RFC 5806).
    SessionId,
    ChargingVector,
    Replaces,
    ReferTo,
    ReferredBy,
    AssertedIdentity,
    Diversion,
    Other,
}

impl HeaderKind {
    /// Classifies a header name, long or compact form (RFC 3261 §7.3.3 and the IANA registry),
    /// case-insensitively.
    pub fn of(name: &[u8]) -> HeaderKind {
        use HeaderKind::*;
        // `| 0x20` lower-cases ASCII letters; other bytes map to values no name starts with.
        let first = name.first().map_or(0, |b| b | 0x20);
        if name.len() == 1 {
            return match first {
                b'i' => CallId,
                b'f' => From,
                b't' => To,
                b'v' => Via,
                b'm' => Contact,
                b'l' => ContentLength,
                b'c' => ContentType,
                b'x' => SessionExpires,
                b'r' => ReferTo,
                b'b' => ReferredBy,
                // k Supported, s Subject, e Content-Encoding, o Event,
                // u Allow-Events, y Identity,
                // a Accept-Contact, j Reject-Contact, d Request-Disposition.
                _ => Other,
            };
        }
        // This runs for every header of every message, and most are not ones we read: a
        // switch on the length, then a comparison or two of the whole name at once.
        match name.len() {
            2 if is(name, b"to") => To,
            3 if is(name, b"via") => Via,
            4 if is(name, b"from") => From,
            4 if is(name, b"cseq") => CSeq,
            4 if is(name, b"rseq") => RSeq,
            4 if is(name, b"rack") => RAck,
            4 if is(name, b"path") => Path,
            5 if is(name, b"route") => Route,
            5 if is(name, b"x-cid") => XCallId,
            6 if is(name, b"reason") => Reason,
            6 if is(name, b"min-se") => MinSe,
            7 if is(name, b"call-id") => CallId,
            7 if is(name, b"contact") => Contact,
            7 if is(name, b"warning") => Warning,
            7 if is(name, b"require") => Require,
            8 if is(name, b"replaces") => Replaces,
            8 if is(name, b"refer-to") => ReferTo,
            9 if is(name, b"diversion") => Diversion,
            9 if is(name, b"x-call-id") => XCallId,
            10 if is(name, b"user-agent") => UserAgent,
            10 if is(name, b"session-id") => SessionId,
            11 if is(name, b"retry-after") => RetryAfter,
            11 if is(name, b"referred-by") => ReferredBy,
            12 if is(name, b"max-forwards") => MaxForwards,
            12 if is(name, b"record-route") => RecordRoute,
            12 if is(name, b"content-type") => ContentType,
            13 if is(name, b"authorization") => Authorization,
            14 if is(name, b"content-length") => ContentLength,
            15 if is(name, b"session-expires") => SessionExpires,
            16 if is(name, b"www-authenticate") => WwwAuthenticate,
            18 if is(name, b"proxy-authenticate") => ProxyAuthenticate,
            19 if is(name, b"proxy-authorization") => ProxyAuthorization,
            17 if is(name, b"p-charging-vector") => ChargingVector,
            19 if is(name, b"p-asserted-identity") => AssertedIdentity,
            _ => Other,
        }
    }
}

/// Whether `name` is `lower` (a lower-case header name) in any case. A letter of `lower`
/// matches a byte whose 0x20 bit, set, gives the letter, which only its two cases do; any other
/// byte must match exactly. With `lower` a constant of known length this folds into a few
/// word-wide operations, where lower-casing the name byte by byte first cost a loop.
#[inline(always)]
fn is<const N: usize>(name: &[u8], lower: &[u8; N]) -> bool {
    let Ok(name) = <&[u8; N]>::try_from(name) else {
        return false;
    };
    let mut differ = 0u8;
    for (b, l) in name.iter().zip(lower) {
        let fold = if l.is_ascii_lowercase() { 0x20 } else { 0 };
        differ |= (b | fold) ^ l;
    }
    differ == 0
}

/// Whether a User-Agent names a known SIP scanning tool (sipvicious and its forks, sipcli,
/// pplsip, VaxSIPUserAgent, iWar, sundayddr, SiVuS, smap). A hint only: scanners also pretend to
/// be phones, and any tool can be named by anyone (`flow::scanner` never judges by it alone).
pub fn scanner_agent(value: &[u8]) -> bool {
    const TOOLS: [&[u8]; 11] = [
        b"friendly-scanner",
        b"sipvicious",
        b"sipcli",
        b"sip-scan",
        b"sipscan",
        b"pplsip",
        b"vaxsipuseragent",
        b"iwar",
        b"sundayddr",
        b"sivus",
        b"smap",
    ];
    let v = trim(value);
    TOOLS
        .iter()
        .any(|tool| v.windows(tool.len()).any(|w| w.eq_ignore_ascii_case(tool)))
}

/// True for the whitespace that may appear inside a (possibly folded) header value.
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Trims linear whitespace (including folding CR/LF) from both ends.
pub fn trim(v: &[u8]) -> &[u8] {
    // Nearly every value is trimmed already: two byte tests instead of two scans.
    if let (Some(first), Some(last)) = (v.first(), v.last())
        && !is_lws(*first)
        && !is_lws(*last)
    {
        return v;
    }
    let start = v.iter().position(|b| !is_lws(*b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !is_lws(*b)).map_or(start, |e| e + 1);
    v.get(start..end).unwrap_or(&[])
}

/// Splits a header value on top-level commas: not inside quotes or angle brackets. Used for
/// headers that may carry several values in one line (Via, Contact, Route, Record-Route).
pub fn split_commas(v: &[u8]) -> Split<'_> {
    Split {
        rest: Some(v),
        delim: b',',
        brackets: true,
    }
}

/// Iterates `;name=value` parameters (value optional, both trimmed).
pub fn params(v: &[u8]) -> Params<'_> {
    Params {
        rest: Some(v),
        quoted: None,
    }
}

/// The parameters of a list, as [`params`] gives them. Parameter lists are short
/// (`;tag=1928301774`, `;branch=z9hG4bK776;rport`) and almost never quoted: pieces are cut at
/// each `;` by [`find_any`] (a memchr call's set-up costs more than such a scan), which finds
/// the piece's `=` on the way, and only when a quote turns up does the rest go to the
/// quote-aware [`Split`]. At a piece
/// boundary outside quotes that split has no state but the bytes left, so taking over there
/// gives what it would have given from the start; and no list is scanned twice (looking for a
/// quote first was a third of the cost of reading a tag).
pub struct Params<'a> {
    rest: Option<&'a [u8]>,
    quoted: Option<Split<'a>>,
}

impl<'a> Iterator for Params<'a> {
    type Item = (&'a [u8], Option<&'a [u8]>);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(split) = &mut self.quoted {
                return split.next().map(name_value);
            }
            let v = self.rest?;
            // One scan finds the end of the piece and its first `=` on the way.
            let first = find_any(v, [b';', b'"', b'=']);
            let eq = first.filter(|&at| v.get(at) == Some(&b'='));
            let stop = match eq {
                Some(at) => {
                    find_any(v.get(at + 1..).unwrap_or(&[]), [b';', b'"']).map(|p| at + 1 + p)
                }
                None => first,
            };
            let piece = match stop {
                Some(at) if v.get(at) == Some(&b';') => {
                    self.rest = v.get(at + 1..);
                    v.get(..at).unwrap_or(&[])
                }
                Some(_) => {
                    // A quote: the quote-aware split takes the rest from this piece on.
                    self.quoted = Some(Split {
                        rest: Some(v),
                        delim: b';',
                        brackets: false,
                    });
                    continue;
                }
                None => {
                    self.rest = None;
                    v
                }
            };
            // (Trimming the piece first would move the `=` but not change the name or value,
            // which are trimmed themselves; an all-blank piece has no `=`.)
            match eq {
                Some(eq) => {
                    return Some((
                        trim(piece.get(..eq).unwrap_or(&[])),
                        Some(trim(piece.get(eq + 1..).unwrap_or(&[]))),
                    ));
                }
                None => {
                    let piece = trim(piece);
                    if !piece.is_empty() {
                        return Some((piece, None));
                    }
                }
            }
        }
    }
}

/// Where the first byte of `v` that is one of `needles` is, eight bytes at a time (SWAR): for
/// the short scans of every message (parameter lists, header names, URIs), a few dozen bytes,
/// too short for memchr's set-up to pay, where a byte loop testing three values takes five
/// instructions a byte. Longer or rarer scans keep memchr, which measured faster there.
pub fn find_any<const N: usize>(v: &[u8], needles: [u8; N]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut chunks = v.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break; // cannot happen: the chunks are exact
        };
        let x = u64::from_le_bytes(bytes);
        // A zero byte in x ^ needle is a match. The lowest bit this sets is exact (a false
        // one only ever sits above a true one), so the lowest over all needles is the first.
        let mut found = 0;
        for n in needles {
            let y = x ^ (ONES * u64::from(n));
            found |= y.wrapping_sub(ONES) & !y & HIGH;
        }
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|b| needles.contains(b))
        .map(|p| at + p)
}

/// `name=value` (both trimmed) or a bare `name` of one trimmed, non-empty parameter.
fn name_value(p: &[u8]) -> (&[u8], Option<&[u8]>) {
    match p.iter().position(|b| *b == b'=') {
        Some(eq) => (
            trim(p.get(..eq).unwrap_or(&[])),
            Some(trim(p.get(eq + 1..).unwrap_or(&[]))),
        ),
        None => (p, None),
    }
}

/// The pieces of a header value between top-level `delim` bytes: not inside quotes (with `\`
/// escapes) nor, with `brackets`, inside `<...>`. Trimmed; empty pieces are skipped.
/// Allocation-free: it runs for every Via and every parameter list of every message.
pub struct Split<'a> {
    rest: Option<&'a [u8]>,
    delim: u8,
    brackets: bool,
}

impl<'a> Split<'a> {
    /// Where the next top-level delimiter is, scanning from `from` (a quote or a bracket
    /// before which there is no delimiter).
    fn next_delim(&self, v: &[u8], from: usize) -> Option<usize> {
        // Jump between the bytes that matter rather than walking every byte through the
        // state machine: a Contact's `<sip:...;transport=tcp>` is one short scan.
        let (mut in_quote, mut in_angle) = (false, false);
        let mut i = from;
        while let Some(rest) = v.get(i..) {
            let off = if in_quote {
                rest.iter().position(|&b| b == b'"' || b == b'\\')?
            } else {
                rest.iter().position(|&b| {
                    b == self.delim || b == b'"' || (self.brackets && (b == b'<' || b == b'>'))
                })?
            };
            let at = i + off;
            i = at + 1;
            match v.get(at)? {
                // Only looked for inside quotes: it escapes the next byte.
                b'\\' => i += 1,
                b'"' => in_quote = !in_quote,
                b'<' => in_angle = true,
                b'>' => in_angle = false,
                _ if !in_angle => return Some(at),
                _ => {}
            }
        }
        None
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            let v = self.rest?;
            // Fast path: jump to the first delimiter, quote or bracket; only a quote or a
            // bracket before the delimiter needs the byte-by-byte scan.
            let first = if self.brackets {
                memchr::memchr3(self.delim, b'"', b'<', v)
            } else {
                memchr::memchr2(self.delim, b'"', v)
            };
            let cut = match first {
                Some(i) if v.get(i) == Some(&self.delim) => Some(i),
                Some(i) => self.next_delim(v, i),
                None => None,
            };
            let piece = match cut {
                Some(i) => {
                    self.rest = v.get(i + 1..);
                    v.get(..i).unwrap_or(&[])
                }
                None => {
                    self.rest = None;
                    v
                }
            };
            let piece = trim(piece);
            if !piece.is_empty() {
                return Some(piece);
            }
        }
    }
}

fn param<'a>(v: &'a [u8], name: &str) -> Option<&'a [u8]> {
    params(v)
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .and_then(|(_, val)| val)
}

/// What tells one digest authentication attempt from another, in a challenge
/// (`WWW-Authenticate`, `Proxy-Authenticate`) or in credentials (`Authorization`,
/// `Proxy-Authorization`): `Digest realm="atlanta.com", nonce="84a4cc6f", stale=FALSE, ...`
/// (RFC 3261 §22.4, RFC 2617 §3.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Digest<'a> {
    pub realm: Option<&'a [u8]>,
    pub nonce: Option<&'a [u8]>,
    pub username: Option<&'a [u8]>,
    /// `stale=true` in a challenge: the nonce had expired and the credentials were right, so
    /// the client is to retry with the new nonce (RFC 2617 §3.2.1).
    pub stale: bool,
}

impl<'a> Digest<'a> {
    /// Reads the parameters after the scheme; unknown ones and junk are passed over.
    pub fn parse(v: &'a [u8]) -> Digest<'a> {
        let v = trim(v);
        // The scheme (`Digest`), then comma-separated auth-params.
        let params = match v.iter().position(|b| is_lws(*b)) {
            Some(end) => v.get(end..).unwrap_or(&[]),
            None => &[],
        };
        let mut out = Digest::default();
        for param in split_commas(params) {
            let param = trim(param);
            let Some(eq) = memchr::memchr(b'=', param) else {
                continue;
            };
            let name = trim(param.get(..eq).unwrap_or(&[]));
            let mut value = trim(param.get(eq + 1..).unwrap_or(&[]));
            if let Some(inner) = value
                .strip_prefix(b"\"")
                .and_then(|x| x.strip_suffix(b"\""))
            {
                value = inner;
            }
            if name.eq_ignore_ascii_case(b"realm") {
                out.realm = out.realm.or(Some(value));
            } else if name.eq_ignore_ascii_case(b"nonce") {
                out.nonce = out.nonce.or(Some(value));
            } else if name.eq_ignore_ascii_case(b"username") {
                out.username = out.username.or(Some(value));
            } else if name.eq_ignore_ascii_case(b"stale") {
                out.stale = value.eq_ignore_ascii_case(b"true");
            }
        }
        out
    }
}

/// One Via value: `SIP/2.0/UDP host:port;branch=...;received=...;rport=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// Transport token (UDP, TCP, TLS, SCTP, WS, WSS), as written.
    pub transport: &'a [u8],
    /// host\[:port\], as written (IPv6 references keep their brackets).
    pub sent_by: &'a [u8],
    pub branch: Option<&'a [u8]>,
    pub received: Option<&'a [u8]>,
    /// `Some(None)` for a bare `rport` (request asking for it), `Some(Some(port))` when filled.
    pub rport: Option<Option<&'a [u8]>>,
}

impl<'a> Via<'a> {
    pub fn parse(v: &'a [u8]) -> Option<Via<'a>> {
        let v = trim(v);
        // sent-protocol = "SIP" / "2.0" / transport, with optional LWS around the slashes.
        // Nearly every Via starts exactly `SIP/2.0/`: read that directly, the rest field by
        // field.
        let mut rest = v;
        let mut fields: [&[u8]; 3] = [&[]; 3];
        if let Some(after) = v
            .strip_prefix(b"SIP/2.0/")
            .filter(|a| a.first().is_some_and(|b| !is_lws(*b)))
        {
            let end = after.iter().position(|b| is_lws(*b)).unwrap_or(after.len());
            fields[2] = after.get(..end)?;
            rest = after.get(end..)?;
        } else {
            for (i, slot) in fields.iter_mut().enumerate() {
                rest = trim_start(rest);
                let end = if i < 2 {
                    memchr::memchr(b'/', rest)?
                } else {
                    rest.iter().position(|b| is_lws(*b)).unwrap_or(rest.len())
                };
                *slot = trim(rest.get(..end)?);
                rest = rest.get(if i < 2 { end + 1 } else { end }..)?;
            }
            if !fields[0].eq_ignore_ascii_case(b"SIP") {
                return None;
            }
        }
        let rest = trim_start(rest);
        let semi = find_any(rest, [b';']).unwrap_or(rest.len());
        let sent_by = trim(rest.get(..semi)?);
        if sent_by.is_empty() {
            return None;
        }
        // One pass over the parameters: this runs for every message.
        let (mut branch, mut received, mut rport) = (None, None, None);
        for (name, value) in params(rest.get(semi..).unwrap_or(&[])) {
            if name.eq_ignore_ascii_case(b"branch") {
                branch = branch.or(value);
            } else if name.eq_ignore_ascii_case(b"received") {
                received = received.or(value);
            } else if name.eq_ignore_ascii_case(b"rport") {
                rport = rport.or(Some(value));
            }
        }
        Some(Via {
            transport: fields[2],
            sent_by,
            branch,
            received,
            rport,
        })
    }

    /// The sent-by as transactions compare it: the host lower-cased (host names compare
    /// case-insensitively, RFC 3261 §19.1.4) and the transport's default port left out, so that
    /// `Host:5060` and `host` are one sent-by (§18.2.2 sends a response to port 5060, or 5061
    /// for TLS, when the sent-by has none; §19.1.2).
    pub fn sent_by_key(&self) -> compact_str::CompactString {
        let mut key =
            compact_str::CompactString::from_utf8_lossy(self.sent_by_without_default_port());
        key.make_ascii_lowercase();
        key
    }

    /// The sent-by without the transport's default port ([`Via::sent_by_key`] before it is
    /// lower-cased).
    pub fn sent_by_without_default_port(&self) -> &'a [u8] {
        let default: &[u8] = if self.transport.eq_ignore_ascii_case(b"TLS") {
            b":5061"
        } else if [&b"UDP"[..], b"TCP", b"SCTP"]
            .iter()
            .any(|t| self.transport.eq_ignore_ascii_case(t))
        {
            b":5060"
        } else {
            return self.sent_by;
        };
        match self.sent_by.strip_suffix(default) {
            // `[::1]:5060` loses its port; a bare IPv6 address `::5060` is not a port.
            Some(host) if !host.contains(&b':') || host.ends_with(b"]") => host,
            _ => self.sent_by,
        }
    }

    /// RFC 3261 §8.1.1.7: branches starting with the magic cookie are unique per transaction.
    pub fn has_magic_cookie(&self) -> bool {
        self.branch.is_some_and(|b| b.starts_with(b"z9hG4bK"))
    }
}

fn trim_start(v: &[u8]) -> &[u8] {
    let start = v.iter().position(|b| !is_lws(*b)).unwrap_or(v.len());
    v.get(start..).unwrap_or(&[])
}

/// A From, To or Contact value: `"Display" <uri>;tag=...` or `uri;tag=...`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NameAddr<'a> {
    pub display: Option<&'a [u8]>,
    pub uri: &'a [u8],
    pub tag: Option<&'a [u8]>,
}

impl<'a> NameAddr<'a> {
    pub fn parse(v: &'a [u8]) -> NameAddr<'a> {
        let v = trim(v);
        if let Some(lt) = find_unquoted(v, b'<') {
            let after = v.get(lt + 1..).unwrap_or(&[]);
            let gt = find_any(after, [b'>']).unwrap_or(after.len());
            let uri = trim(after.get(..gt).unwrap_or(&[]));
            let params = after.get(gt + 1..).unwrap_or(&[]);
            let display = trim(v.get(..lt).unwrap_or(&[]));
            let display = strip_quotes(display);
            NameAddr {
                display: (!display.is_empty()).then_some(display),
                uri,
                tag: param(params, "tag"),
            }
        } else {
            // addr-spec form: parameters after the URI belong to the header (§20.10).
            let semi = v.iter().position(|b| *b == b';').unwrap_or(v.len());
            NameAddr {
                display: None,
                uri: trim(v.get(..semi).unwrap_or(&[])),
                tag: param(v.get(semi..).unwrap_or(&[]), "tag"),
            }
        }
    }

    /// The host of a sip:/sips: URI (IPv6 references without their brackets).
    pub fn host(&self) -> Option<&'a [u8]> {
        let uri = self.uri;
        let colon = find_any(uri, [b':'])?;
        let scheme = uri.get(..colon)?;
        if !scheme.eq_ignore_ascii_case(b"sip") && !scheme.eq_ignore_ascii_case(b"sips") {
            return None;
        }
        let rest = uri.get(colon + 1..)?;
        let rest = match find_any(rest, [b'@']) {
            Some(at) => rest.get(at + 1..)?,
            None => rest,
        };
        Some(host_of(rest))
    }

    /// The user part of a sip:/sips:/tel: URI, for compact displays.
    pub fn user(&self) -> Option<&'a [u8]> {
        let uri = self.uri;
        let colon = memchr::memchr(b':', uri)?;
        let rest = uri.get(colon + 1..)?;
        let at = rest.iter().position(|b| *b == b'@');
        match at {
            Some(at) => {
                let userinfo = rest.get(..at)?;
                let end = userinfo
                    .iter()
                    .position(|b| *b == b':' || *b == b';')
                    .unwrap_or(userinfo.len());
                userinfo.get(..end)
            }
            None if uri
                .get(..4)
                .is_some_and(|s| s.eq_ignore_ascii_case(b"tel:")) =>
            {
                let end = rest.iter().position(|b| *b == b';').unwrap_or(rest.len());
                rest.get(..end)
            }
            None => None,
        }
    }
}

/// The host of `host[:port][;params]` (a Via sent-by or the rest of a URI), without the
/// brackets of an IPv6 reference.
pub fn host_of(v: &[u8]) -> &[u8] {
    if let Some(inner) = v.strip_prefix(b"[") {
        let end = memchr::memchr(b']', inner).unwrap_or(inner.len());
        return inner.get(..end).unwrap_or(inner);
    }
    let end = v
        .iter()
        .position(|b| matches!(b, b':' | b';' | b'>' | b'?' | b'/') || is_lws(*b))
        .unwrap_or(v.len());
    v.get(..end).unwrap_or(v)
}

/// Private address space: RFC 1918, shared address space (100.64.0.0/10, RFC 6598),
/// link-local, IPv6 unique-local and link-local. A packet from the Internet that names one
/// names an address the other side cannot reach.
pub fn is_private(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private() || v4.is_link_local() || (o[0] == 100 && (o[1] & 0xc0) == 64)
        }
        std::net::IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// An IP address literal (a host name gives `None`).
pub fn ip_of(host: &[u8]) -> Option<std::net::IpAddr> {
    std::str::from_utf8(host).ok()?.parse().ok()
}

fn find_unquoted(v: &[u8], needle: u8) -> Option<usize> {
    // Jump from quote to quote: a display name (`"Alice" <sip:...>`) costs two short scans,
    // not a byte-by-byte walk of the whole value. Outside quotes a backslash is not special;
    // inside, it escapes the next byte. An unterminated quote hides the rest.
    let mut from = 0;
    loop {
        let at = from + find_any(v.get(from..)?, [needle, b'"'])?;
        if v.get(at) == Some(&needle) {
            return Some(at);
        }
        let mut j = at + 1;
        loop {
            j += find_any(v.get(j..)?, [b'\\', b'"'])?;
            match v.get(j)? {
                b'\\' => j += 2,
                _ => break,
            }
        }
        from = j + 1;
    }
}

fn strip_quotes(v: &[u8]) -> &[u8] {
    if v.len() >= 2 && v.first() == Some(&b'"') && v.last() == Some(&b'"') {
        v.get(1..v.len() - 1).unwrap_or(v)
    } else {
        v
    }
}

/// `CSeq: 4711 INVITE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    pub seq: u32,
    pub method: &'a [u8],
}

impl<'a> CSeq<'a> {
    pub fn parse(v: &'a [u8]) -> Option<CSeq<'a>> {
        let v = trim(v);
        let sp = v.iter().position(|b| is_lws(*b))?;
        let seq = parse_u32(v.get(..sp)?)?;
        let method = trim(v.get(sp..)?);
        if method.is_empty() {
            return None;
        }
        Some(CSeq { seq, method })
    }
}

/// Parses a decimal u32 with no sign, no spaces, no overflow.
pub fn parse_u32(v: &[u8]) -> Option<u32> {
    if v.is_empty() || v.len() > 10 {
        return None;
    }
    // By hand: this runs for several numbers of every message, and going through `str`
    // validated the bytes twice.
    v.iter().try_fold(0u32, |n, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u32::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_and_long_names() {
        assert_eq!(HeaderKind::of(b"i"), HeaderKind::CallId);
        assert_eq!(HeaderKind::of(b"CALL-ID"), HeaderKind::CallId);
        assert_eq!(HeaderKind::of(b"v"), HeaderKind::Via);
        assert_eq!(HeaderKind::of(b"l"), HeaderKind::ContentLength);
        assert_eq!(HeaderKind::of(b"k"), HeaderKind::Other);
        assert_eq!(HeaderKind::of(b"X-CID"), HeaderKind::XCallId);
        assert_eq!(HeaderKind::of(b"x"), HeaderKind::SessionExpires);
        assert_eq!(HeaderKind::of(b"RSeq"), HeaderKind::RSeq);
        assert_eq!(HeaderKind::of(b"RAck"), HeaderKind::RAck);
        assert_eq!(HeaderKind::of(b"Min-SE"), HeaderKind::MinSe);
        assert_eq!(HeaderKind::of(b"Session-ID"), HeaderKind::SessionId);
        assert_eq!(
            HeaderKind::of(b"P-Charging-Vector"),
            HeaderKind::ChargingVector
        );
        assert_eq!(HeaderKind::of(b"replaces"), HeaderKind::Replaces);
        assert_eq!(HeaderKind::of(b"r"), HeaderKind::ReferTo);
        assert_eq!(HeaderKind::of(b"Refer-To"), HeaderKind::ReferTo);
        assert_eq!(HeaderKind::of(b"b"), HeaderKind::ReferredBy);
        assert_eq!(HeaderKind::of(b"Referred-By"), HeaderKind::ReferredBy);
        assert_eq!(
            HeaderKind::of(b"P-Asserted-Identity"),
            HeaderKind::AssertedIdentity
        );
        assert_eq!(HeaderKind::of(b"Diversion"), HeaderKind::Diversion);
    }

    /// Every long name in every case is found, and no name one byte away from it is: a byte
    /// that differs from a letter in more than the case bit, or from a dash at all (CR is a
    /// dash with the case bit cleared), makes a different name.
    #[test]
    fn names_match_in_any_case_and_only_those() {
        const LONG: [&[u8]; 23] = [
            b"to",
            b"via",
            b"from",
            b"cseq",
            b"rseq",
            b"rack",
            b"route",
            b"x-cid",
            b"reason",
            b"min-se",
            b"call-id",
            b"contact",
            b"warning",
            b"require",
            b"x-call-id",
            b"retry-after",
            b"max-forwards",
            b"record-route",
            b"content-type",
            b"authorization",
            b"content-length",
            b"session-expires",
            b"proxy-authorization",
        ];
        let mut rng = crate::synth::Rng::new(7);
        for name in LONG {
            let kind = HeaderKind::of(name);
            assert_ne!(kind, HeaderKind::Other, "{}", String::from_utf8_lossy(name));
            for _ in 0..50 {
                let cased: Vec<u8> = name
                    .iter()
                    .map(|b| {
                        if rng.below(2) == 0 {
                            b.to_ascii_uppercase()
                        } else {
                            *b
                        }
                    })
                    .collect();
                assert_eq!(HeaderKind::of(&cased), kind);
            }
            for at in 0..name.len() {
                for byte in 0..=255u8 {
                    let mut other = name.to_vec();
                    other[at] = byte;
                    let same = byte.to_ascii_lowercase() == name[at];
                    let got = HeaderKind::of(&other);
                    assert_eq!(got == kind, same, "{:?}", String::from_utf8_lossy(&other));
                }
            }
            assert_eq!(HeaderKind::of(&[name, b"x"].concat()), HeaderKind::Other);
            if name.len() > 2 {
                // (Shortened to one byte, `to` is the compact form of To.)
                assert_ne!(HeaderKind::of(&name[..name.len() - 1]), kind);
            }
        }
    }

    #[test]
    fn digest_parameters() {
        let d = Digest::parse(
            b"Digest realm=\"Atlanta, Inc\", nonce=\"84a4cc6f\",stale=TRUE , algorithm=MD5",
        );
        assert_eq!(d.realm, Some(&b"Atlanta, Inc"[..]));
        assert_eq!(d.nonce, Some(&b"84a4cc6f"[..]));
        assert!(d.stale);
        let c =
            Digest::parse(b"Digest username=\"bob\", realm=biloxi.com, nonce=\"\", uri=\"sip:x\"");
        assert_eq!(
            (c.username, c.realm, c.nonce, c.stale),
            (
                Some(&b"bob"[..]),
                Some(&b"biloxi.com"[..]),
                Some(&b""[..]),
                false
            )
        );
        assert_eq!(Digest::parse(b"Digest"), Digest::default());
        assert_eq!(Digest::parse(b"  ,=,\"\"=\""), Digest::default());
    }

    #[test]
    fn sent_by_keys_leave_out_the_default_port_and_case() {
        for (via, key) in [
            ("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1", "10.0.0.2"),
            (
                "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bK1;rport=5060",
                "10.0.0.2",
            ),
            (
                "SIP/2.0/tcp Phone.Example.COM:5060;branch=z9hG4bK1",
                "phone.example.com",
            ),
            ("SIP/2.0/UDP 10.0.0.2:5062;branch=z9hG4bK1", "10.0.0.2:5062"),
            ("SIP/2.0/TLS 10.0.0.2:5061;branch=z9hG4bK1", "10.0.0.2"),
            ("SIP/2.0/TLS 10.0.0.2:5060;branch=z9hG4bK1", "10.0.0.2:5060"),
            ("SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1", "[::1]"),
            ("SIP/2.0/UDP ::5060;branch=z9hG4bK1", "::5060"),
            (
                "SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK1",
                "df7jal23ls0d.invalid",
            ),
        ] {
            assert_eq!(
                Via::parse(via.as_bytes()).unwrap().sent_by_key(),
                key,
                "{via}"
            );
        }
    }

    #[test]
    fn hosts_of_uris_and_sent_by() {
        let host = |v: &[u8]| NameAddr::parse(v).host().map(|h| h.to_vec());
        assert_eq!(
            host(b"<sip:alice@10.0.0.5:5060;transport=tcp>"),
            Some(b"10.0.0.5".to_vec())
        );
        assert_eq!(
            host(b"sip:[2001:db8::1]:5070"),
            Some(b"2001:db8::1".to_vec())
        );
        assert_eq!(host(b"<tel:+4930123>"), None);
        assert_eq!(host_of(b"192.168.1.2:5060"), b"192.168.1.2");
        assert_eq!(ip_of(b"pbx.example.com"), None);
    }

    #[test]
    fn via_with_params_and_lws() {
        let v =
            Via::parse(b"SIP / 2.0 / UDP 10.0.0.1:5060;rport;branch=z9hG4bK776;received=1.2.3.4")
                .unwrap();
        assert_eq!(v.transport, b"UDP");
        assert_eq!(v.sent_by, b"10.0.0.1:5060");
        assert_eq!(v.branch, Some(&b"z9hG4bK776"[..]));
        assert_eq!(v.received, Some(&b"1.2.3.4"[..]));
        assert_eq!(v.rport, Some(None));
        assert!(v.has_magic_cookie());
        let v6 = Via::parse(b"SIP/2.0/TCP [::1]:5070;branch=1;rport=5070").unwrap();
        assert_eq!(v6.sent_by, b"[::1]:5070");
        assert_eq!(v6.rport, Some(Some(&b"5070"[..])));
        assert!(!v6.has_magic_cookie());
        assert!(Via::parse(b"garbage").is_none());
    }

    #[test]
    fn name_addr_forms() {
        let a =
            NameAddr::parse(br#""Alice \"A\" <x>" <sip:alice@atlanta.com;transport=tcp>;tag=1928"#);
        assert_eq!(a.uri, b"sip:alice@atlanta.com;transport=tcp");
        assert_eq!(a.tag, Some(&b"1928"[..]));
        assert_eq!(a.user(), Some(&b"alice"[..]));
        let b = NameAddr::parse(b"sip:bob@biloxi.com;tag=a6c85cf");
        assert_eq!(b.uri, b"sip:bob@biloxi.com");
        assert_eq!(b.tag, Some(&b"a6c85cf"[..]));
        let t = NameAddr::parse(b"<tel:+15551234;phone-context=x>");
        assert_eq!(t.user(), Some(&b"+15551234"[..]));
        assert_eq!(t.tag, None);
    }

    /// The quote-jumping search and the plain parameter split give what the byte-by-byte
    /// versions they replaced gave, on every string of a small alphabet that holds the
    /// characters that matter (quotes, escapes, brackets, separators, spaces).
    #[test]
    fn fast_paths_agree_with_the_byte_by_byte_scans() {
        fn params_slow(v: &[u8]) -> Vec<(&[u8], Option<&[u8]>)> {
            Split {
                rest: Some(v),
                delim: b';',
                brackets: false,
            }
            .map(|p| match memchr::memchr(b'=', p) {
                Some(eq) => (trim(&p[..eq]), Some(trim(&p[eq + 1..]))),
                None => (p, None),
            })
            .collect()
        }
        fn next_delim_slow(delim: u8, brackets: bool, v: &[u8], from: usize) -> Option<usize> {
            let (mut in_quote, mut in_angle, mut escaped) = (false, false, false);
            for (i, &b) in v.iter().enumerate().skip(from) {
                if escaped {
                    escaped = false;
                    continue;
                }
                match b {
                    b'\\' if in_quote => escaped = true,
                    b'"' => in_quote = !in_quote,
                    b'<' if brackets && !in_quote => in_angle = true,
                    b'>' if brackets && !in_quote => in_angle = false,
                    _ if b == delim && !in_quote && !in_angle => return Some(i),
                    _ => {}
                }
            }
            None
        }
        let alphabet = b"a\"\\<>;=, t";
        let mut rng = crate::synth::Rng::new(7);
        for _ in 0..200_000 {
            let len = rng.below(12) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            // Without brackets, the old delimiter scan is the old quote-aware search.
            assert_eq!(
                find_unquoted(&v, b'<'),
                next_delim_slow(b'<', false, &v, 0),
                "{v:?}"
            );
            assert_eq!(params(&v).collect::<Vec<_>>(), params_slow(&v), "{v:?}");
            for (delim, brackets) in [(b',', true), (b';', false)] {
                let s = Split {
                    rest: None,
                    delim,
                    brackets,
                };
                let from = rng.below(len as u64 + 1) as usize;
                assert_eq!(
                    s.next_delim(&v, from),
                    next_delim_slow(delim, brackets, &v, from),
                    "{v:?} from {from}"
                );
            }
        }
    }

    #[test]
    fn comma_split_respects_quotes_and_brackets() {
        let parts: Vec<&[u8]> =
            split_commas(br#""a, b" <sip:x@y;p=1,2>, <sip:z@w> , sip:q@r"#).collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], b"sip:q@r");
    }

    /// The eight-bytes-at-a-time search finds what a byte loop finds, at every length and
    /// alignment, with bytes that differ from a needle by one bit or by the high bit (where
    /// such tricks go wrong).
    #[test]
    fn find_any_is_the_first_position() {
        let alphabet = [
            b';',
            b'"',
            b'=',
            b':',
            b'<',
            0x3b ^ 0x80,
            0,
            0xff,
            b'a',
            b'\r',
        ];
        let mut rng = crate::synth::Rng::new(11);
        for _ in 0..100_000 {
            let len = rng.below(40) as usize;
            let v: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            let slow3 = v.iter().position(|b| [b';', b'"', b'='].contains(b));
            assert_eq!(find_any(&v, [b';', b'"', b'=']), slow3, "{v:?}");
            let slow1 = v.iter().position(|b| *b == b'\r');
            assert_eq!(find_any(&v, [b'\r']), slow1, "{v:?}");
        }
    }

    #[test]
    fn params_respect_quotes() {
        let p: Vec<(&[u8], Option<&[u8]>)> = params(br#";a=1 ; b="x;y" ;;lr; C = 2"#).collect();
        assert_eq!(
            p,
            vec![
                (&b"a"[..], Some(&b"1"[..])),
                (b"b", Some(br#""x;y""#)),
                (b"lr", None),
                (b"C", Some(b"2")),
            ]
        );
    }

    /// `SIP/2.0/UDP` read directly gives what the field-by-field reading gives, LWS around
    /// the slashes included.
    #[test]
    fn via_sent_protocol_forms() {
        for (v, transport, sent_by) in [
            ("SIP/2.0/UDP host:5060;branch=z9hG4bK1", "UDP", "host:5060"),
            ("SIP/2.0/ UDP host;branch=z9hG4bK1", "UDP", "host"),
            ("SIP / 2.0 / TCP  host", "TCP", "host"),
            ("sip/2.0/tls [::1]:5061;rport", "tls", "[::1]:5061"),
            ("SIP/2.0/WSS\thost", "WSS", "host"),
        ] {
            let via = Via::parse(v.as_bytes()).unwrap();
            assert_eq!(via.transport, transport.as_bytes(), "{v}");
            assert_eq!(via.sent_by, sent_by.as_bytes(), "{v}");
        }
        assert_eq!(Via::parse(b"SIP/2.0/"), None);
        assert_eq!(Via::parse(b"SIP/2.0/UDP"), None);
    }

    #[test]
    fn numbers_are_decimal_u32_only() {
        assert_eq!(parse_u32(b"0"), Some(0));
        assert_eq!(parse_u32(b"0012"), Some(12));
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        for bad in [
            &b""[..],
            b"4294967296",
            b"99999999999",
            b"+1",
            b"-1",
            b"1a",
            b" 1",
            b"\xd9\xa1",
        ] {
            assert_eq!(parse_u32(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn cseq_parse() {
        assert_eq!(
            CSeq::parse(b" 314159   INVITE "),
            Some(CSeq {
                seq: 314159,
                method: b"INVITE"
            })
        );
        assert_eq!(CSeq::parse(b"99999999999 INVITE"), None);
        assert_eq!(CSeq::parse(b"1"), None);
    }
}
