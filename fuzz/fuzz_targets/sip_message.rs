//! The SIP parser: every message in the buffer (as a datagram would be split), and every
//! accessor the model uses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::sip::header::Digest;
use sipscope::sip::{HeaderKind, Message, Via};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    for _ in 0..64 {
        let Ok((m, used)) = Message::parse(rest) else {
            return;
        };
        let _ = (m.is_request(), m.issues.len());
        for kind in [
            HeaderKind::Via,
            HeaderKind::From,
            HeaderKind::To,
            HeaderKind::CallId,
            HeaderKind::CSeq,
            HeaderKind::Contact,
        ] {
            let _ = m.header(kind);
            let _ = m.values(kind).count();
        }
        // What the model reads of the top Via and of digest challenges and credentials.
        if let Some(via) = m.header(HeaderKind::Via).and_then(Via::parse) {
            let _ = (via.sent_by_key(), via.sent_by_without_default_port());
        }
        for kind in [
            HeaderKind::WwwAuthenticate,
            HeaderKind::ProxyAuthenticate,
            HeaderKind::Authorization,
            HeaderKind::ProxyAuthorization,
        ] {
            if let Some(v) = m.header(kind) {
                let _ = Digest::parse(v);
            }
        }
        rest = match rest.get(used.max(1)..) {
            Some(r) if !r.is_empty() => r,
            _ => return,
        };
    }
});
