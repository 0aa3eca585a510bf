//! The SIP parser: every message in the buffer (as a datagram would be split), and every
//! accessor the model uses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::sip::{HeaderKind, Message};

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
        rest = match rest.get(used.max(1)..) {
            Some(r) if !r.is_empty() => r,
            _ => return,
        };
    }
});
