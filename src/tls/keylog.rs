//! NSS key log files (`SSLKEYLOGFILE`), as OpenSSL's keylog callback, BoringSSL, NSS, Go,
//! rustls and Python's `ssl` write them: one secret per line, `LABEL <client random> <secret>`
//! in hex, `#` for comments. Lines that are not that are counted, never fatal. The secrets stay
//! in memory only; nothing here prints them.
//!
//! A key log may still be growing (an SBC writing it while it is captured live): the front end
//! hangs a [`Refresh`] on it, asked for the lines appended whenever a connection's secrets are
//! not found, at most once per [`REFRESH_EVERY`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Gives the lines appended to the key log files since its last call (empty when none).
pub type Refresh = Box<dyn FnMut() -> String + Send>;

/// A miss asks the [`Refresh`] at most this often, so connections without keys do not turn
/// every record into a file read.
pub const REFRESH_EVERY: Duration = Duration::from_millis(20);

/// The secrets a key log holds for one connection (found by its ClientHello's random).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// TLS 1.2 and earlier: `CLIENT_RANDOM`, the 48-byte master secret.
    pub master: Option<Vec<u8>>,
    /// TLS 1.3: `CLIENT_HANDSHAKE_TRAFFIC_SECRET`, `SERVER_HANDSHAKE_TRAFFIC_SECRET`,
    /// `CLIENT_TRAFFIC_SECRET_0`, `SERVER_TRAFFIC_SECRET_0`.
    pub client_handshake: Option<Vec<u8>>,
    pub server_handshake: Option<Vec<u8>>,
    pub client_traffic: Option<Vec<u8>>,
    pub server_traffic: Option<Vec<u8>>,
}

impl Secrets {
    /// Whether every secret of the connection is there: the master secret (TLS 1.2), or the
    /// four traffic secrets (TLS 1.3). Writers log a connection's lines one by one as its
    /// handshake goes, so a key log read while it grows may hold some of them only.
    fn complete(&self) -> bool {
        self.master.is_some()
            || (self.client_handshake.is_some()
                && self.server_handshake.is_some()
                && self.client_traffic.is_some()
                && self.server_traffic.is_some())
    }
}

// Secrets are never shown, not even in debug output.
impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let has = |s: &Option<Vec<u8>>| s.is_some();
        f.debug_struct("Secrets")
            .field("master", &has(&self.master))
            .field("client_handshake", &has(&self.client_handshake))
            .field("server_handshake", &has(&self.server_handshake))
            .field("client_traffic", &has(&self.client_traffic))
            .field("server_traffic", &has(&self.server_traffic))
            .finish()
    }
}

/// Key logs read so far, by client random. Shared by the threads that decrypt; lines may be
/// added while they do.
#[derive(Default)]
pub struct KeyLog {
    secrets: RwLock<HashMap<[u8; 32], Secrets>>,
    /// Lines that were neither a comment, blank, nor a secret sipscope reads.
    junk_lines: AtomicU64,
    /// Lines with a label sipscope does not use (`EXPORTER_SECRET`, early data, `RSA`).
    unused_lines: AtomicU64,
    follow: Mutex<Option<Follow>>,
}

struct Follow {
    refresh: Refresh,
    last: Option<Instant>,
}

impl std::fmt::Debug for KeyLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLog")
            .field("connections", &self.len())
            .field("junk_lines", &self.junk_lines())
            .field("unused_lines", &self.unused_lines())
            .finish()
    }
}

/// Connections a key log may hold at most; further lines are counted as junk.
pub const MAX_CONNECTIONS: usize = 1_000_000;

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 256 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl KeyLog {
    /// Reads key log text (a whole file, or the lines appended since the last read).
    pub fn add_text(&self, text: &str) {
        let Ok(mut secrets) = self.secrets.write() else {
            return;
        };
        for line in text.lines() {
            match add_line(&mut secrets, line) {
                Line::Read => {}
                Line::Junk => {
                    self.junk_lines.fetch_add(1, Ordering::Relaxed);
                }
                Line::Unused => {
                    self.unused_lines.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Lines that were neither a comment, blank, nor a secret sipscope reads.
    pub fn junk_lines(&self) -> u64 {
        self.junk_lines.load(Ordering::Relaxed)
    }

    /// Lines with a label sipscope does not use (`EXPORTER_SECRET`, early data, `RSA`).
    pub fn unused_lines(&self) -> u64 {
        self.unused_lines.load(Ordering::Relaxed)
    }

    /// Follows key log files that are still being written: `refresh` gives what they gained.
    pub fn follow(&self, refresh: Refresh) {
        if let Ok(mut f) = self.follow.lock() {
            *f = Some(Follow {
                refresh,
                last: None,
            });
        }
    }

    /// Whether secrets may still be added (files followed as they grow).
    pub fn can_grow(&self) -> bool {
        self.follow.lock().is_ok_and(|f| f.is_some())
    }

    /// Reads what the followed files gained, unless that was done within [`REFRESH_EVERY`].
    fn refresh(&self) -> bool {
        let text = {
            let Ok(mut guard) = self.follow.lock() else {
                return false;
            };
            let Some(f) = guard.as_mut() else {
                return false;
            };
            let now = Instant::now();
            if f.last
                .is_some_and(|t| now.duration_since(t) < REFRESH_EVERY)
            {
                return false;
            }
            f.last = Some(now);
            (f.refresh)()
        };
        if text.is_empty() {
            return false;
        }
        self.add_text(&text);
        true
    }
}

enum Line {
    Read,
    Junk,
    Unused,
}

fn add_line(secrets: &mut HashMap<[u8; 32], Secrets>, line: &str) -> Line {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Line::Read;
    }
    let mut words = line.split_ascii_whitespace();
    let (Some(label), Some(random), Some(secret), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Line::Junk;
    };
    let (Some(random), Some(secret)) = (hex(random), hex(secret)) else {
        return Line::Junk;
    };
    let Ok(random) = <[u8; 32]>::try_from(random.as_slice()) else {
        return Line::Junk;
    };
    if !secrets.contains_key(&random) && secrets.len() >= MAX_CONNECTIONS {
        return Line::Junk;
    }
    let known = matches!(
        label,
        "CLIENT_RANDOM"
            | "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
            | "SERVER_HANDSHAKE_TRAFFIC_SECRET"
            | "CLIENT_TRAFFIC_SECRET_0"
            | "SERVER_TRAFFIC_SECRET_0"
    );
    if !known {
        return Line::Unused;
    }
    if label == "CLIENT_RANDOM" && secret.len() != 48 {
        return Line::Junk;
    }
    let entry = secrets.entry(random).or_default();
    let slot = match label {
        "CLIENT_RANDOM" => &mut entry.master,
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => &mut entry.client_handshake,
        "SERVER_HANDSHAKE_TRAFFIC_SECRET" => &mut entry.server_handshake,
        "CLIENT_TRAFFIC_SECRET_0" => &mut entry.client_traffic,
        _ => &mut entry.server_traffic,
    };
    *slot = Some(secret);
    Line::Read
}

impl KeyLog {
    /// The secrets of the connection whose ClientHello carried `client_random`; a key log
    /// still being written is read again first if they are not all there yet.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<Secrets> {
        let found = |k: &KeyLog| {
            k.secrets
                .read()
                .ok()
                .and_then(|s| s.get(client_random).cloned())
        };
        match found(self) {
            Some(secrets) if secrets.complete() => Some(secrets),
            partial => {
                if self.refresh() {
                    found(self)
                } else {
                    partial
                }
            }
        }
    }

    /// Connections with at least one secret.
    pub fn len(&self) -> usize {
        self.secrets.read().map_or(0, |s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_every_kind() {
        let r = "ab".repeat(32);
        let k = KeyLog::default();
        k.add_text(&format!(
            "# comment\n\nCLIENT_RANDOM {r} {}\nSERVER_TRAFFIC_SECRET_0 {r} {}\n\
             EXPORTER_SECRET {r} 00\nCLIENT_RANDOM {r}\nCLIENT_RANDOM zz {}\n\
             CLIENT_RANDOM {r} 0011\nrandom junk line here\n",
            "11".repeat(48),
            "22".repeat(32),
            "11".repeat(48)
        ));
        let s = k.get(&[0xab; 32]).unwrap();
        assert_eq!(s.master.as_deref(), Some(&[0x11; 48][..]));
        assert_eq!(s.server_traffic.as_deref(), Some(&[0x22; 32][..]));
        assert!(s.client_handshake.is_none());
        assert_eq!((k.junk_lines(), k.unused_lines()), (4, 1));
        // The secrets never reach debug output.
        assert!(!format!("{k:?}").contains("11"));
    }

    /// A key log still being written: a miss reads what it gained, at most once per
    /// [`REFRESH_EVERY`].
    #[test]
    fn a_growing_key_log_is_read_again_on_a_miss() {
        let k = KeyLog::default();
        let lines = std::sync::Arc::new(Mutex::new(Vec::<String>::new()));
        let feed = std::sync::Arc::clone(&lines);
        let calls = std::sync::Arc::new(AtomicU64::new(0));
        let counted = std::sync::Arc::clone(&calls);
        k.follow(Box::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            feed.lock().unwrap().drain(..).collect()
        }));
        assert!(k.get(&[1; 32]).is_none());
        lines.lock().unwrap().push(format!(
            "CLIENT_RANDOM {} {}\n",
            "01".repeat(32),
            "11".repeat(48)
        ));
        // Within REFRESH_EVERY of the first miss the file is not read again.
        assert!(k.get(&[1; 32]).is_none());
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        std::thread::sleep(REFRESH_EVERY);
        assert!(k.get(&[1; 32]).is_some_and(|s| s.master.is_some()));
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        // A hit reads nothing.
        assert!(k.get(&[1; 32]).is_some());
        assert_eq!(calls.load(Ordering::Relaxed), 2);
    }

    /// Regression: a TLS 1.3 client logs its own application secret after its Finished, so a
    /// live read may find the connection with three secrets of four; the missing one is
    /// looked for again (it was not, and the client's direction stayed unread).
    #[test]
    fn a_connection_with_some_of_its_secrets_is_read_again() {
        let k = KeyLog::default();
        let r = "02".repeat(32);
        let lines = std::sync::Arc::new(Mutex::new(vec![format!(
            "SERVER_HANDSHAKE_TRAFFIC_SECRET {r} {0}\nSERVER_TRAFFIC_SECRET_0 {r} {0}\n\
             CLIENT_HANDSHAKE_TRAFFIC_SECRET {r} {0}\n",
            "33".repeat(32)
        )]));
        let feed = std::sync::Arc::clone(&lines);
        k.follow(Box::new(move || feed.lock().unwrap().drain(..).collect()));
        let partial = k.get(&[2; 32]).unwrap();
        assert!(partial.client_handshake.is_some() && partial.client_traffic.is_none());
        lines
            .lock()
            .unwrap()
            .push(format!("CLIENT_TRAFFIC_SECRET_0 {r} {}\n", "44".repeat(32)));
        std::thread::sleep(REFRESH_EVERY);
        let whole = k.get(&[2; 32]).unwrap();
        assert_eq!(whole.client_traffic.as_deref(), Some(&[0x44; 32][..]));
    }
}
