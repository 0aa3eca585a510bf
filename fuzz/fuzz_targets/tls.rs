//! The TLS record and handshake reading on arbitrary bytes: both directions of a connection fed
//! chunks of the input (records with lying lengths, hellos cut anywhere, encrypted records
//! without keys and with a key log whose secrets fit the randoms the input may carry), and the
//! key log parser on the input as text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::tls::KeyLog;
use sipscope::tls::session::{Connection, Dir};

fuzz_target!(|data: &[u8]| {
    let keys = KeyLog::default();
    keys.add_text(&String::from_utf8_lossy(data));
    // Secrets for the client random of all zeros and of all 0x01: both versions.
    for r in ["00", "01"] {
        let random = r.repeat(32);
        keys.add_text(&format!(
            "CLIENT_RANDOM {random} {}\nCLIENT_HANDSHAKE_TRAFFIC_SECRET {random} {}\n\
             SERVER_HANDSHAKE_TRAFFIC_SECRET {random} {}\n",
            "11".repeat(48),
            "22".repeat(32),
            "33".repeat(48)
        ));
    }
    let mut c = Connection::new();
    // Each chunk: one byte of direction and length, then the bytes.
    let mut rest = data;
    while let [head, tail @ ..] = rest {
        let n = usize::from(head & 0x7f).min(tail.len());
        let dir = if head & 0x80 == 0 {
            Dir::ClientToServer
        } else {
            Dir::ServerToClient
        };
        let (chunk, next) = tail.split_at(n);
        rest = next;
        c.feed(dir, chunk, &keys, &mut |_, plain| {
            assert!(plain.len() <= 1 << 15);
        });
    }
    let _ = format!("{c:?}");
});
