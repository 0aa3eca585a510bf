//! SRTP reading on arbitrary bytes: the input as an `a=crypto` value, and as SRTP packets of
//! a stream opened with a fixed SDES key (and the key the input may carry), every header
//! length and tag length tried.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::srtp::{Context, Crypto};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut keys: Vec<_> = Crypto::parse(&text)
        .and_then(|c| c.key)
        .into_iter()
        .collect();
    for suite in ["AES_CM_128_HMAC_SHA1_80", "AES_256_CM_HMAC_SHA1_32"] {
        let inline = if suite.contains("256") {
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKis="
        } else {
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd"
        };
        keys.extend(
            Crypto::parse(&format!("1 {suite} inline:{inline}|2^20|1:4")).and_then(|c| c.key),
        );
    }
    for key in &keys {
        let mut c = Context::new(key);
        // Each chunk: one byte of header length and packet length, then the packet.
        let mut rest = data;
        while let [head, tail @ ..] = rest {
            let n = usize::from(*head).min(tail.len());
            let (packet, more) = tail.split_at(n);
            let _ = c.unprotect(packet, 12 + usize::from(head & 0x1f));
            rest = more;
        }
    }
});
