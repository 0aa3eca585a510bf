//! The HEP decoder (v1, v2, v3, compressed payloads), and encoding what it decoded.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::hep::{SenderIdentity, decode, encode};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = decode(data) {
        let _ = encode(
            p.src,
            p.dst,
            p.ip_protocol,
            p.time_ns.unwrap_or(0),
            &p.payload,
            p.correlation_id,
            &SenderIdentity::default(),
        );
    }
});
