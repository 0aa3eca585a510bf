//! One TLS connection followed from the side: both directions' records in order, the hellos
//! read (randoms, version, suite, SNI, encrypt-then-MAC), keys taken from the key log where
//! each side switched to them (TLS 1.2: after its ChangeCipherSpec; TLS 1.3: handshake keys
//! after the ServerHello, application keys after each side's Finished, and KeyUpdate), and the
//! application data handed on, decrypted, per direction. Every buffer is bounded.

use super::cipher::{self, RecordCipher, Side};
use super::keylog::KeyLog;

/// Which way bytes flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    ClientToServer,
    ServerToClient,
}

impl Dir {
    fn index(self) -> usize {
        match self {
            Dir::ClientToServer => 0,
            Dir::ServerToClient => 1,
        }
    }

    fn side(self) -> Side {
        match self {
            Dir::ClientToServer => Side::Client,
            Dir::ServerToClient => Side::Server,
        }
    }
}

/// The largest record: 2^14 bytes of plaintext plus 2048 of expansion (RFC 5246 §6.2.3).
pub const MAX_RECORD: usize = (1 << 14) + 2048;
/// The largest handshake message kept for reassembly (a certificate chain fits).
const MAX_HANDSHAKE: usize = 1 << 16;
/// Encrypted records kept per direction while waiting for keys from a growing key log.
const MAX_HELD: usize = 64;

/// What a connection's records came to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsCounters {
    pub records: u64,
    /// Records decrypted (handshake and application data).
    pub decrypted: u64,
    /// Encrypted records that could not be read: no keys for the connection (yet), or a
    /// suite or version sipscope does not decrypt.
    pub undecrypted: u64,
    /// Records whose AEAD tag or HMAC failed: the first of a direction failing means the key
    /// log's keys are not this connection's; later ones, damaged bytes.
    pub auth_failures: u64,
    /// Records that do not parse (a lying length, an unknown type): the rest of that direction
    /// is given up.
    pub damaged: u64,
    pub alerts: u64,
    /// TLS 1.2 renegotiations: a ChangeCipherSpec after keys were in use. The new keys come
    /// from a handshake under the old ones; that direction is read up to it.
    pub renegotiations: u64,
    /// TLS 1.3 KeyUpdate messages followed (each side's next traffic secret).
    pub key_updates: u64,
    /// Bytes of application data handed on.
    pub plaintext_bytes: u64,
}

/// Why a connection is not (or not fully) decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// No encrypted record yet.
    Pending,
    Decrypting,
    /// The key log has no secret for this ClientHello's random.
    NoKeys,
    /// The keys did not authenticate the first record they were tried on.
    WrongKeys,
    /// A suite or version not decrypted (named in [`Connection::suite_id`], `version`).
    Unsupported,
    /// The capture began after the hellos: there is no random to look keys up by.
    NoHandshake,
}

#[derive(Default)]
struct Direction {
    /// Bytes of a record not yet complete.
    pending: Vec<u8>,
    /// Records from here on are encrypted.
    encrypted: bool,
    cipher: Option<RecordCipher>,
    /// The traffic secret in use (TLS 1.3), for KeyUpdate.
    secret: Option<Vec<u8>>,
    /// TLS 1.3: past this side's Finished (application keys).
    application: bool,
    handshake: Vec<u8>,
    /// Records decrypted so far in this direction (to tell wrong keys from damage).
    opened: u64,
    /// Encrypted records of the current keys that went by before the key log had them: the
    /// sequence number keys found later start from.
    missed: u64,
    /// Encrypted records kept while a key log that is still being written may yet bring their
    /// keys (a live capture sees a handshake about when the end writes its key log), decrypted
    /// in order once it does; at most [`MAX_HELD`] records.
    held: std::collections::VecDeque<Vec<u8>>,
    dead: bool,
}

/// One connection.
#[derive(Default)]
pub struct Connection {
    pub client_random: Option<[u8; 32]>,
    pub server_random: Option<[u8; 32]>,
    /// The negotiated version, 0x0303 for TLS 1.2, 0x0304 for TLS 1.3.
    pub version: Option<u16>,
    pub suite_id: Option<u16>,
    /// The ClientHello's server name, as sent (not sanitized).
    pub sni: Option<String>,
    encrypt_then_mac: bool,
    pub counters: TlsCounters,
    pub keys: Option<KeyState>,
    /// The server's address (where the ClientHello went), when the capture showed it.
    pub server: Option<std::net::SocketAddr>,
    /// The capture source the connection was first seen in.
    pub source: usize,
    dirs: [Direction; 2],
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("version", &self.version)
            .field("suite_id", &self.suite_id)
            .field("sni", &self.sni)
            .field("keys", &self.keys)
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// The extensions of a hello: (type, data).
fn extensions(mut ext: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while let (Some(kind), Some(len)) = (be16(ext, 0), be16(ext, 2)) {
        let Some(data) = ext.get(4..4 + usize::from(len)) else {
            break;
        };
        out.push((kind, data));
        ext = ext.get(4 + usize::from(len)..).unwrap_or(&[]);
    }
    out
}

impl Connection {
    pub fn new() -> Connection {
        Connection::default()
    }

    /// The stream of `dir` is gone (closed, evicted): its buffers and keys are let go, so that
    /// a connection kept for the summary holds only its figures.
    pub fn release(&mut self, dir: Dir) {
        if let Some(state) = self.dirs.get_mut(dir.index()) {
            *state = Direction {
                dead: true,
                opened: state.opened,
                ..Direction::default()
            };
        }
    }

    /// Bytes of `dir` were lost in the capture: its record boundaries and sequence numbers
    /// are gone, so it is not read further.
    pub fn give_up(&mut self, dir: Dir) {
        if let Some(state) = self.dirs.get_mut(dir.index())
            && !state.dead
        {
            state.dead = true;
            state.pending = Vec::new();
            self.counters.damaged += 1;
        }
    }

    /// Whether the connection is TLS 1.3.
    fn tls13(&self) -> bool {
        self.version == Some(0x0304)
    }

    /// Feeds bytes of one direction, in order; application data decrypted is handed to `out`.
    pub fn feed(&mut self, dir: Dir, bytes: &[u8], keys: &KeyLog, out: &mut dyn FnMut(Dir, &[u8])) {
        let d = dir.index();
        let Some(state) = self.dirs.get_mut(d) else {
            return;
        };
        if state.dead {
            return;
        }
        state.pending.extend_from_slice(bytes);
        loop {
            let Some(state) = self.dirs.get_mut(d) else {
                return;
            };
            let Some(&[kind, major, _, hi, lo]) = state.pending.get(..5) else {
                return;
            };
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            if !(20..=24).contains(&kind) || major != 3 || len > MAX_RECORD || len == 0 {
                // A lying header: the record boundaries are lost for this direction.
                self.counters.damaged += 1;
                state.dead = true;
                state.pending = Vec::new();
                return;
            }
            if state.pending.len() < 5 + len {
                return;
            }
            let record: Vec<u8> = state.pending.drain(..5 + len).collect();
            self.record(dir, &record, keys, out);
        }
    }

    fn record(&mut self, dir: Dir, record: &[u8], keys: &KeyLog, out: &mut dyn FnMut(Dir, &[u8])) {
        self.counters.records += 1;
        let d = dir.index();
        let (Some(header), Some(fragment)) = (record.get(..5), record.get(5..)) else {
            return;
        };
        let Ok(header) = <[u8; 5]>::try_from(header) else {
            return;
        };
        let kind = header[0];
        if kind == 20 {
            // ChangeCipherSpec: in TLS 1.2 this side's next records are encrypted; in TLS 1.3
            // it is only for middleboxes.
            if !self.tls13()
                && let Some(state) = self.dirs.get_mut(d)
            {
                if state.cipher.is_some() {
                    // A renegotiation: not followed; its records are not damage.
                    self.counters.renegotiations += 1;
                    state.dead = true;
                    state.pending = Vec::new();
                    return;
                }
                state.encrypted = true;
            }
            return;
        }
        let encrypted = self.dirs.get(d).is_some_and(|s| s.encrypted);
        let (kind, plain) = if encrypted {
            if self.dirs.get(d).is_some_and(|s| s.cipher.is_none()) {
                self.install(dir, keys);
                // Keys have come: the records kept for them first, in order.
                if self.dirs.get(d).is_some_and(|s| s.cipher.is_some()) {
                    let held = self
                        .dirs
                        .get_mut(d)
                        .map(|s| std::mem::take(&mut s.held))
                        .unwrap_or_default();
                    for earlier in held {
                        if self.dirs.get(d).is_none_or(|s| s.dead) {
                            break;
                        }
                        // Counted when it came.
                        self.counters.records = self.counters.records.saturating_sub(1);
                        self.record(dir, &earlier, keys, out);
                    }
                }
            }
            let mut opened = self.open(d, header, fragment);
            if matches!(opened, Some(Err(_)))
                && self.tls13()
                && let Some(state) = self.dirs.get_mut(d)
                && state.opened == 0
                && !state.application
            {
                // The handshake's records went by before the key log had this connection (a
                // key log read as it grows): this may be application data already.
                state.application = true;
                state.cipher = None;
                state.missed = 0;
                self.install(dir, keys);
                opened = self.open(d, header, fragment);
            }
            let Some(state) = self.dirs.get_mut(d) else {
                return;
            };
            match opened {
                // Kept whatever the other direction came to: its keys may be in the file
                // already while this one's are still being written.
                None if keys.can_grow()
                    && !matches!(
                        self.keys,
                        Some(KeyState::Unsupported | KeyState::NoHandshake | KeyState::WrongKeys)
                    )
                    && state.held.len() < MAX_HELD
                    && state.missed == 0 =>
                {
                    state.held.push_back(record.to_vec());
                    return;
                }
                None => {
                    // Records kept are given up once they are too many: not read.
                    self.counters.undecrypted += 1 + state.held.len() as u64;
                    state.missed += 1 + state.held.len() as u64;
                    state.held.clear();
                    // Keys that can never come (no key log that may still grow, a suite not
                    // decrypted, no hellos): the rest of this direction is not kept at all.
                    let hopeless = match self.keys {
                        Some(KeyState::NoKeys) => !keys.can_grow(),
                        Some(KeyState::Unsupported | KeyState::NoHandshake) => true,
                        _ => false,
                    };
                    if hopeless {
                        state.dead = true;
                        state.pending = Vec::new();
                    }
                    return;
                }
                Some(Ok(opened)) => {
                    state.opened += 1;
                    self.counters.decrypted += 1;
                    if matches!(self.keys, None | Some(KeyState::Pending | KeyState::NoKeys)) {
                        self.keys = Some(KeyState::Decrypting);
                    }
                    opened
                }
                Some(Err(_)) => {
                    self.counters.auth_failures += 1;
                    if state.opened == 0 {
                        self.keys = Some(KeyState::WrongKeys);
                        state.dead = true;
                    }
                    return;
                }
            }
        } else {
            (kind, fragment.to_vec())
        };
        match kind {
            21 => self.counters.alerts += 1,
            22 => self.handshake(dir, &plain, keys),
            23 => {
                self.counters.plaintext_bytes += plain.len() as u64;
                out(dir, &plain);
            }
            _ => {}
        }
    }

    /// Opens a record with direction `d`'s keys (`None` without keys).
    fn open(
        &mut self,
        d: usize,
        header: [u8; 5],
        fragment: &[u8],
    ) -> Option<Result<(u8, Vec<u8>), cipher::DecryptError>> {
        let cipher = self.dirs.get_mut(d)?.cipher.as_mut()?;
        Some(cipher.open(header, fragment))
    }

    /// Handshake bytes of one direction: whole messages are read as they complete.
    fn handshake(&mut self, dir: Dir, bytes: &[u8], keys: &KeyLog) {
        let d = dir.index();
        let Some(state) = self.dirs.get_mut(d) else {
            return;
        };
        state.handshake.extend_from_slice(bytes);
        loop {
            let Some(state) = self.dirs.get_mut(d) else {
                return;
            };
            let hs = &state.handshake;
            let Some(&[kind, a, b, c]) = hs.get(..4) else {
                return;
            };
            let len = (usize::from(a) << 16) | (usize::from(b) << 8) | usize::from(c);
            if len > MAX_HANDSHAKE {
                self.counters.damaged += 1;
                state.handshake = Vec::new();
                return;
            }
            if hs.len() < 4 + len {
                return;
            }
            let message: Vec<u8> = state.handshake.drain(..4 + len).collect();
            self.handshake_message(dir, kind, &message, keys);
        }
    }

    fn handshake_message(&mut self, dir: Dir, kind: u8, message: &[u8], keys: &KeyLog) {
        use tls_parser::{TlsMessage, TlsMessageHandshake, parse_tls_message_handshake};
        match (kind, dir) {
            (1, Dir::ClientToServer) => {
                if let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ClientHello(h)))) =
                    parse_tls_message_handshake(message)
                {
                    self.client_random = h.random.try_into().ok();
                    for (kind, data) in extensions(h.ext.unwrap_or(&[])) {
                        // server_name: list length, type 0 (host name), name length, name.
                        if kind == 0
                            && data.get(2) == Some(&0)
                            && let Some(n) = be16(data, 3)
                            && let Some(name) = data.get(5..5 + usize::from(n))
                        {
                            self.sni = Some(String::from_utf8_lossy(name).into_owned());
                        }
                    }
                }
            }
            (2, Dir::ServerToClient) => {
                if let Ok((_, TlsMessage::Handshake(TlsMessageHandshake::ServerHello(h)))) =
                    parse_tls_message_handshake(message)
                {
                    self.server_random = h.random.try_into().ok();
                    self.suite_id = Some(h.cipher.0);
                    self.version = Some(h.version.0);
                    for (kind, data) in extensions(h.ext.unwrap_or(&[])) {
                        match kind {
                            43 => self.version = be16(data, 0),
                            22 => self.encrypt_then_mac = true,
                            _ => {}
                        }
                    }
                    if self.tls13() {
                        // Everything after the ServerHello is encrypted, both ways.
                        for state in &mut self.dirs {
                            state.encrypted = true;
                        }
                    }
                    let supported = self
                        .suite_id
                        .and_then(cipher::suite)
                        .is_some_and(|s| s.tls13 == self.tls13())
                        && matches!(self.version, Some(0x0303 | 0x0304));
                    if !supported {
                        self.keys = Some(KeyState::Unsupported);
                    }
                }
            }
            // TLS 1.3: after its Finished a side uses its application traffic secret.
            (20, _) if self.tls13() => {
                let Some(secrets) = self.client_random.and_then(|r| keys.get(&r)) else {
                    return;
                };
                let secret = match dir {
                    Dir::ClientToServer => secrets.client_traffic.clone(),
                    Dir::ServerToClient => secrets.server_traffic.clone(),
                };
                let suite = self.suite_id.and_then(cipher::suite);
                if let (Some(state), Some(suite)) = (self.dirs.get_mut(dir.index()), suite) {
                    state.application = true;
                    state.missed = 0;
                    state.cipher = secret
                        .as_deref()
                        .and_then(|s| RecordCipher::tls13(suite, s));
                    state.secret = secret;
                }
            }
            // KeyUpdate: the next secret, sequence numbers from zero.
            (24, _) if self.tls13() => {
                let suite = self.suite_id.and_then(cipher::suite);
                if let (Some(state), Some(suite)) = (self.dirs.get_mut(dir.index()), suite)
                    && let Some(next) = state
                        .secret
                        .as_deref()
                        .and_then(|s| RecordCipher::next_secret(suite, s))
                {
                    state.cipher = RecordCipher::tls13(suite, &next);
                    state.secret = Some(next);
                    self.counters.key_updates += 1;
                }
            }
            _ => {}
        }
    }

    /// Takes this direction's keys from the key log, if it has them.
    fn install(&mut self, dir: Dir, keys: &KeyLog) {
        if self.keys == Some(KeyState::Unsupported) {
            return;
        }
        let Some(random) = self.client_random else {
            self.keys = Some(KeyState::NoHandshake);
            return;
        };
        let Some(suite) = self.suite_id.and_then(cipher::suite) else {
            self.keys = Some(KeyState::Unsupported);
            return;
        };
        let Some(secrets) = keys.get(&random) else {
            self.keys = Some(KeyState::NoKeys);
            return;
        };
        let tls13 = self.tls13();
        let etm = self.encrypt_then_mac;
        let server_random = self.server_random;
        let Some(state) = self.dirs.get_mut(dir.index()) else {
            return;
        };
        if tls13 {
            let secret = match (dir, state.application) {
                (Dir::ClientToServer, false) => &secrets.client_handshake,
                (Dir::ServerToClient, false) => &secrets.server_handshake,
                (Dir::ClientToServer, true) => &secrets.client_traffic,
                (Dir::ServerToClient, true) => &secrets.server_traffic,
            };
            state.cipher = secret
                .as_deref()
                .and_then(|s| RecordCipher::tls13(suite, s));
            state.secret = secret.clone();
            if secret.is_some() && state.cipher.is_none() {
                // A secret of the wrong size for the suite's hash: not this connection's.
                self.keys = Some(KeyState::WrongKeys);
                return;
            }
        } else if let (Some(master), Some(server_random)) = (&secrets.master, server_random) {
            state.cipher = Some(RecordCipher::tls12(
                suite,
                master,
                &random,
                &server_random,
                dir.side(),
                etm,
            ));
        }
        match state.cipher.as_mut() {
            Some(cipher) => cipher.seq = state.missed,
            None => self.keys = Some(KeyState::NoKeys),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connections recorded from OpenSSL (`scripts/tls-vectors.py`): TLS 1.3 with each of its
    /// suites, TLS 1.2 with AES-GCM, ChaCha20-Poly1305 and AES-CBC (with and without
    /// encrypt-then-MAC). Each decrypts to what the ends sent, with no tag failing; without
    /// the key log nothing is decrypted and the connection says why; with another
    /// connection's keys the first record fails and is told as wrong keys.
    #[test]
    fn openssl_connections_decrypt_to_what_was_sent() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/tls-vectors.json"
        ))
        .unwrap();
        let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
        let vectors = vectors.as_array().unwrap();
        assert_eq!(vectors.len(), 8);
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let run = |v: &serde_json::Value, keys: &KeyLog, chop: usize| {
            let mut c = Connection::new();
            let mut got = [Vec::new(), Vec::new()];
            for f in v["flights"].as_array().unwrap() {
                let dir = if f[0] == "c" {
                    Dir::ClientToServer
                } else {
                    Dir::ServerToClient
                };
                // Fed in pieces of `chop` bytes, as TCP may cut them.
                for piece in hex(f[1].as_str().unwrap()).chunks(chop) {
                    c.feed(dir, piece, keys, &mut |d, b| {
                        got[d.index()].extend_from_slice(b)
                    });
                }
            }
            (c, got)
        };
        for v in vectors {
            let name = v["name"].as_str().unwrap();
            let keys = KeyLog::default();
            keys.add_text(v["keylog"].as_str().unwrap());
            for chop in [1, 7, 100_000] {
                let (c, got) = run(v, &keys, chop);
                assert_eq!(
                    String::from_utf8_lossy(&got[0]),
                    v["client_plaintext"].as_str().unwrap(),
                    "{name} {c:?}"
                );
                assert_eq!(
                    String::from_utf8_lossy(&got[1]),
                    v["server_plaintext"].as_str().unwrap(),
                    "{name}"
                );
                assert_eq!(c.counters.auth_failures, 0, "{name}");
                assert_eq!(c.keys, Some(KeyState::Decrypting), "{name}");
                assert_eq!(c.sni.as_deref(), Some("sip.example.net"));
                let expected = if v["version"] == "TLSv1.3" {
                    0x0304
                } else {
                    0x0303
                };
                assert_eq!(c.version, Some(expected), "{name}");
            }
            let (c, got) = run(v, &KeyLog::default(), 100_000);
            assert!(got.iter().all(Vec::is_empty));
            assert_eq!(c.keys, Some(KeyState::NoKeys), "{name}");
            // No key log that could grow: nothing more of the connection is kept.
            assert!(
                c.dirs.iter().all(|d| d.dead && d.pending.is_empty()),
                "{name}"
            );
            assert!(c.counters.undecrypted > 0 && c.counters.decrypted == 0);
        }
        // Another connection's key log: its keys fail the first record.
        let other = KeyLog::default();
        let first = vectors[3]["keylog"].as_str().unwrap();
        let second = &vectors[4];
        // The second connection's randoms with the first one's secrets.
        let secrets = |log: &str| -> Vec<String> {
            log.lines()
                .filter(|l| !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        let random = secrets(second["keylog"].as_str().unwrap())[0]
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string();
        let swapped: String = secrets(first)
            .iter()
            .map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                format!("{} {random} {}\n", w[0], w[2])
            })
            .collect();
        other.add_text(&swapped);
        let (c, _) = run(second, &other, 100_000);
        assert_eq!(c.keys, Some(KeyState::WrongKeys), "{c:?}");
        assert!(c.counters.auth_failures > 0);
    }

    /// A key log still being written: the secrets arrive after the handshake went by (live
    /// capture). The records that came before were kept and are read once the keys come, in
    /// order, so the whole connection reads as with the keys from the start.
    #[test]
    fn keys_that_arrive_late_open_what_follows() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/tls-vectors.json"
        ))
        .unwrap();
        let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        for v in vectors.as_array().unwrap() {
            let name = v["name"].as_str().unwrap();
            let keys = KeyLog::default();
            // A key log that may grow (files followed): a miss is not the end.
            keys.follow(Box::new(String::new));
            let mut c = Connection::new();
            let mut got = [Vec::new(), Vec::new()];
            for (i, f) in v["flights"].as_array().unwrap().iter().enumerate() {
                if i == 3 {
                    keys.add_text(v["keylog"].as_str().unwrap());
                }
                let dir = if f[0] == "c" {
                    Dir::ClientToServer
                } else {
                    Dir::ServerToClient
                };
                c.feed(dir, &hex(f[1].as_str().unwrap()), &keys, &mut |d, b| {
                    got[d.index()].extend_from_slice(b)
                });
            }
            // The records that came before the keys were kept and read once they came:
            // everything is read, as with the keys from the start.
            let client = String::from_utf8_lossy(&got[0]);
            assert_eq!(
                client,
                v["client_plaintext"].as_str().unwrap(),
                "{name} {c:?}"
            );
            assert_eq!(
                String::from_utf8_lossy(&got[1]),
                v["server_plaintext"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(c.keys, Some(KeyState::Decrypting), "{name}");
            assert_eq!(c.counters.auth_failures, 0, "{name}");
        }
        // TLS 1.3, the server's secrets written before the client's: the server's records
        // read at once, the client's kept until its secrets come.
        for v in vectors.as_array().unwrap().iter().take(3) {
            let name = v["name"].as_str().unwrap();
            let log = v["keylog"].as_str().unwrap();
            let side = |prefix: &str| -> String {
                log.lines()
                    .filter(|l| l.starts_with(prefix))
                    .map(|l| format!("{l}\n"))
                    .collect()
            };
            let keys = KeyLog::default();
            keys.follow(Box::new(String::new));
            keys.add_text(&side("SERVER_"));
            let mut c = Connection::new();
            let mut got = [Vec::new(), Vec::new()];
            for (i, f) in v["flights"].as_array().unwrap().iter().enumerate() {
                if i == 4 {
                    keys.add_text(&side("CLIENT_"));
                }
                let dir = if f[0] == "c" {
                    Dir::ClientToServer
                } else {
                    Dir::ServerToClient
                };
                c.feed(dir, &hex(f[1].as_str().unwrap()), &keys, &mut |d, b| {
                    got[d.index()].extend_from_slice(b)
                });
            }
            assert_eq!(
                String::from_utf8_lossy(&got[0]),
                v["client_plaintext"].as_str().unwrap(),
                "{name} {c:?}"
            );
            assert_eq!(c.counters.auth_failures, 0, "{name}");
        }
    }

    /// A TLS 1.2 renegotiation (a ChangeCipherSpec once keys are in use) is told as such:
    /// the direction is read up to it, and the records under keys it cannot know are not
    /// counted as damage.
    #[test]
    fn a_renegotiation_is_not_damage() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/tls-vectors.json"
        ))
        .unwrap();
        let vectors: serde_json::Value = serde_json::from_str(&text).unwrap();
        let v = &vectors[3];
        assert!(v["name"].as_str().unwrap().starts_with("ECDHE"));
        let hex = |s: &str| -> Vec<u8> {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let keys = KeyLog::default();
        keys.add_text(v["keylog"].as_str().unwrap());
        let mut c = Connection::new();
        for f in v["flights"].as_array().unwrap() {
            let dir = if f[0] == "c" {
                Dir::ClientToServer
            } else {
                Dir::ServerToClient
            };
            c.feed(dir, &hex(f[1].as_str().unwrap()), &keys, &mut |_, _| {});
        }
        assert_eq!(c.keys, Some(KeyState::Decrypting));
        let mut after = vec![20, 3, 3, 0, 1, 1];
        after.extend_from_slice(&[23, 3, 3, 0, 40]);
        after.extend_from_slice(&[0xab; 40]);
        let mut out = 0;
        c.feed(Dir::ClientToServer, &after, &keys, &mut |_, b| {
            out += b.len()
        });
        assert_eq!(out, 0);
        assert_eq!(c.counters.renegotiations, 1);
        assert_eq!(c.counters.auth_failures, 0);
        assert_eq!(c.keys, Some(KeyState::Decrypting));
    }

    /// Damage: a lying record length ends that direction, never a panic; garbage is counted.
    #[test]
    fn lying_records_are_counted() {
        let mut c = Connection::new();
        let keys = KeyLog::default();
        c.feed(
            Dir::ClientToServer,
            &[22, 3, 3, 0xff, 0xff, 1, 2],
            &keys,
            &mut |_, _| {},
        );
        assert_eq!(c.counters.damaged, 1);
        c.feed(
            Dir::ClientToServer,
            &[23, 3, 3, 0, 1, 0],
            &keys,
            &mut |_, _| {},
        );
        assert_eq!(c.counters.records, 0, "the direction was given up");
        c.feed(
            Dir::ServerToClient,
            &[99, 3, 3, 0, 1, 0],
            &keys,
            &mut |_, _| {},
        );
        assert_eq!(c.counters.damaged, 2);
    }
}
