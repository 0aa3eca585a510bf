//! NSS key log files (`SSLKEYLOGFILE`), as OpenSSL's keylog callback, BoringSSL, NSS, Go,
//! rustls and Python's `ssl` write them: one secret per line, `LABEL <client random> <secret>`
//! in hex, `#` for comments. Lines that are not that are counted, never fatal. The secrets stay
//! in memory only; nothing here prints them.

use std::collections::HashMap;

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

/// Key logs read so far, by client random.
#[derive(Debug, Default, Clone)]
pub struct KeyLog {
    secrets: HashMap<[u8; 32], Secrets>,
    /// Lines that were neither a comment, blank, nor a secret sipscope reads.
    pub junk_lines: u64,
    /// Lines with a label sipscope does not use (`EXPORTER_SECRET`, early data, `RSA`).
    pub unused_lines: u64,
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
    pub fn add_text(&mut self, text: &str) {
        for line in text.lines() {
            self.add_line(line);
        }
    }

    fn add_line(&mut self, line: &str) {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            return;
        }
        let mut words = line.split_ascii_whitespace();
        let (Some(label), Some(random), Some(secret), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            self.junk_lines += 1;
            return;
        };
        let (Some(random), Some(secret)) = (hex(random), hex(secret)) else {
            self.junk_lines += 1;
            return;
        };
        let Ok(random) = <[u8; 32]>::try_from(random.as_slice()) else {
            self.junk_lines += 1;
            return;
        };
        if !self.secrets.contains_key(&random) && self.secrets.len() >= MAX_CONNECTIONS {
            self.junk_lines += 1;
            return;
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
            self.unused_lines += 1;
            return;
        }
        if label == "CLIENT_RANDOM" && secret.len() != 48 {
            self.junk_lines += 1;
            return;
        }
        let entry = self.secrets.entry(random).or_default();
        let slot = match label {
            "CLIENT_RANDOM" => &mut entry.master,
            "CLIENT_HANDSHAKE_TRAFFIC_SECRET" => &mut entry.client_handshake,
            "SERVER_HANDSHAKE_TRAFFIC_SECRET" => &mut entry.server_handshake,
            "CLIENT_TRAFFIC_SECRET_0" => &mut entry.client_traffic,
            _ => &mut entry.server_traffic,
        };
        *slot = Some(secret);
    }

    /// The secrets of the connection whose ClientHello carried `client_random`.
    pub fn get(&self, client_random: &[u8; 32]) -> Option<&Secrets> {
        self.secrets.get(client_random)
    }

    /// Connections with at least one secret.
    pub fn len(&self) -> usize {
        self.secrets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// Adds what another key log holds (pcapng Decryption Secrets Blocks, several files).
    pub fn merge(&mut self, other: &KeyLog) {
        for (random, s) in &other.secrets {
            let e = self.secrets.entry(*random).or_default();
            for (mine, theirs) in [
                (&mut e.master, &s.master),
                (&mut e.client_handshake, &s.client_handshake),
                (&mut e.server_handshake, &s.server_handshake),
                (&mut e.client_traffic, &s.client_traffic),
                (&mut e.server_traffic, &s.server_traffic),
            ] {
                if mine.is_none() {
                    mine.clone_from(theirs);
                }
            }
        }
        self.junk_lines += other.junk_lines;
        self.unused_lines += other.unused_lines;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_every_kind() {
        let r = "ab".repeat(32);
        let mut k = KeyLog::default();
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
        assert_eq!((k.junk_lines, k.unused_lines), (4, 1));
        // The secrets never reach debug output.
        assert!(!format!("{k:?}").contains("11"));
    }
}
