//! A TCP stream that carries TLS: its bytes go through the connection's
//! [`crate::tls::session::Connection`] (shared with the other direction, which holds the other
//! hello), and the application data that comes out goes to a SIP framer, or a WebSocket
//! deframer for secure WebSocket. Messages are placed in the stream by the wire bytes of the
//! records their plaintext came from, so the frames that carried them are still known.

use super::stream::Framer;
use super::*;
use crate::tls::KeyLog;
use crate::tls::session::{Connection, Dir};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The TLS connections being followed, by their two addresses in order: each direction's
/// stream holds the connection; this table lets the second direction find it.
#[derive(Default)]
pub struct TlsTable {
    pub keys: Arc<KeyLog>,
    conns: WireMap<FlowKey, std::sync::Weak<Mutex<Connection>>>,
    /// Every connection followed, for the summary (at most [`MAX_REPORTED`]).
    seen: Vec<Arc<Mutex<Connection>>>,
    /// Connections past [`MAX_REPORTED`], counted only.
    unreported: u64,
}

/// Connections kept for the summary at most.
pub const MAX_REPORTED: usize = 65_536;
/// Rows of [`TlsSummary::servers`] at most.
pub const MAX_SERVERS: usize = 32;

/// What became of the TLS connections followed ([`TlsTable::summary`]): in the JSON
/// `sources[].tls`, the `stats` report, the summary on standard error and the UI's title.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsSummary {
    pub connections: u64,
    pub decrypted: u64,
    /// The key log had no secret for them (or no key log was given).
    pub without_keys: u64,
    /// Their keys did not authenticate the first record: another connection's key log.
    pub wrong_keys: u64,
    /// A version or suite sipscope does not decrypt.
    pub unsupported: u64,
    /// The capture began after their hellos.
    pub no_handshake: u64,
    /// Records that failed authentication after others had passed (damaged bytes).
    pub damaged_records: u64,
    /// Decrypted connections that renegotiated (TLS 1.2): read up to the renegotiation.
    #[serde(skip_serializing_if = "super::super::is_zero")]
    pub renegotiated: u64,
    /// TLS 1.3 KeyUpdates followed in decrypted connections.
    #[serde(skip_serializing_if = "super::super::is_zero")]
    pub key_updates: u64,
    /// The connections by server, name asked for, version, suite and outcome (those not
    /// read first), at most [`MAX_SERVERS`] rows.
    pub servers: Vec<TlsServer>,
    /// Connections not in `servers` (past its rows).
    #[serde(skip_serializing_if = "super::super::is_zero")]
    pub servers_unlisted: u64,
    /// Connections past [`MAX_REPORTED`], counted nowhere else.
    #[serde(skip_serializing_if = "super::super::is_zero")]
    pub unreported: u64,
}

impl TlsSummary {
    /// The title bar's word on TLS: connections not read (`None` when every one was, or
    /// there was none).
    pub fn title_line(&self) -> Option<String> {
        let not_read = self.not_read();
        (not_read > 0).then(|| {
            let plural = if self.connections == 1 { "" } else { "s" };
            match self.without_keys {
                n if n == not_read => format!(
                    "TLS: {n} of {} connection{plural} without keys (--tls-keylog)",
                    self.connections
                ),
                _ => format!(
                    "TLS: {not_read} of {} connection{plural} not read",
                    self.connections
                ),
            }
        })
    }

    /// Connections not decrypted, for whatever reason.
    pub fn not_read(&self) -> u64 {
        self.without_keys + self.wrong_keys + self.unsupported + self.no_handshake
    }
}

/// Connections to one server with one name, version, suite and outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsServer {
    /// Where the ClientHello went (`null` when the capture showed neither hello).
    pub address: Option<std::net::SocketAddr>,
    /// The server name the client asked for (SNI), as sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    /// `TLS 1.2`, `TLS 1.3`, or the version number in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The cipher suite's IANA name, or its number in hex.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    pub keys: TlsKeys,
    pub connections: u64,
}

/// What became of a connection's decryption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsKeys {
    WithoutKeys,
    WrongKeys,
    Unsupported,
    NoHandshake,
    /// No encrypted record was seen (a connection that ended in its handshake).
    Pending,
    Decrypted,
}

impl TlsKeys {
    fn of(state: Option<crate::tls::session::KeyState>) -> TlsKeys {
        use crate::tls::session::KeyState;
        match state {
            Some(KeyState::Decrypting) => TlsKeys::Decrypted,
            Some(KeyState::NoKeys) => TlsKeys::WithoutKeys,
            Some(KeyState::WrongKeys) => TlsKeys::WrongKeys,
            Some(KeyState::Unsupported) => TlsKeys::Unsupported,
            Some(KeyState::NoHandshake) => TlsKeys::NoHandshake,
            Some(KeyState::Pending) | None => TlsKeys::Pending,
        }
    }

    /// As the summary and the stats report say it.
    pub fn describe(self) -> &'static str {
        match self {
            TlsKeys::WithoutKeys => "without keys",
            TlsKeys::WrongKeys => "keys did not authenticate",
            TlsKeys::Unsupported => "not decrypted (version or suite)",
            TlsKeys::NoHandshake => "begun before the capture",
            TlsKeys::Pending => "no encrypted record",
            TlsKeys::Decrypted => "decrypted",
        }
    }
}

fn version_name(v: u16) -> String {
    match v {
        0x0301 => "TLS 1.0".to_string(),
        0x0302 => "TLS 1.1".to_string(),
        0x0303 => "TLS 1.2".to_string(),
        0x0304 => "TLS 1.3".to_string(),
        _ => format!("0x{v:04x}"),
    }
}

impl TlsTable {
    pub fn new(keys: Arc<KeyLog>) -> TlsTable {
        TlsTable {
            keys,
            ..TlsTable::default()
        }
    }

    /// The connection between these two addresses, new if none is followed (seen first in
    /// capture source `source`).
    pub(super) fn connection(
        &mut self,
        a: SocketAddr,
        b: SocketAddr,
        source: usize,
    ) -> Arc<Mutex<Connection>> {
        let key = if a <= b { FlowKey(a, b) } else { FlowKey(b, a) };
        if let Some(c) = self.conns.get(&key).and_then(std::sync::Weak::upgrade) {
            return c;
        }
        // Entries whose streams are gone are dropped now and then.
        if self.conns.len() >= 4096 && self.conns.len().is_power_of_two() {
            self.conns.retain(|_, w| w.strong_count() > 0);
        }
        let mut conn = Connection::new();
        conn.source = source;
        let c = Arc::new(Mutex::new(conn));
        self.conns.insert(key, Arc::downgrade(&c));
        if self.seen.len() < MAX_REPORTED {
            self.seen.push(Arc::clone(&c));
        } else {
            self.unreported += 1;
        }
        c
    }

    /// What became of the connections followed so far: of all, or of those first seen in
    /// capture source `source`.
    pub fn summary(&self, source: Option<usize>) -> TlsSummary {
        let mut s = TlsSummary {
            unreported: if source.is_none() { self.unreported } else { 0 },
            ..TlsSummary::default()
        };
        let mut rows: BTreeMap<TlsKeys, Vec<TlsServer>> = BTreeMap::new();
        for c in &self.seen {
            let Ok(c) = c.lock() else { continue };
            if source.is_some_and(|src| src != c.source) {
                continue;
            }
            s.connections += 1;
            let keys = TlsKeys::of(c.keys);
            match keys {
                TlsKeys::Decrypted => {
                    s.decrypted += 1;
                    s.damaged_records += c.counters.auth_failures;
                    s.renegotiated += u64::from(c.counters.renegotiations > 0);
                    s.key_updates += c.counters.key_updates;
                }
                TlsKeys::WithoutKeys => s.without_keys += 1,
                TlsKeys::WrongKeys => s.wrong_keys += 1,
                TlsKeys::Unsupported => s.unsupported += 1,
                TlsKeys::NoHandshake => s.no_handshake += 1,
                TlsKeys::Pending => {}
            }
            let row = TlsServer {
                address: c.server,
                sni: c.sni.clone(),
                version: c.version.map(version_name),
                suite: c.suite_id.map(|id| {
                    crate::tls::suite_name(id).map_or_else(|| format!("0x{id:04x}"), str::to_string)
                }),
                keys,
                connections: 1,
            };
            let same = rows.entry(keys).or_default();
            let listed: usize = same.len();
            match same.iter_mut().find(|r| {
                (&r.address, &r.sni, &r.version, &r.suite)
                    == (&row.address, &row.sni, &row.version, &row.suite)
            }) {
                Some(r) => r.connections += 1,
                // Rows are bounded per outcome; the summary takes those not read first.
                None if listed < MAX_SERVERS => same.push(row),
                None => s.servers_unlisted += 1,
            }
        }
        for (_, same) in rows {
            for row in same {
                if s.servers.len() < MAX_SERVERS {
                    s.servers.push(row);
                } else {
                    s.servers_unlisted += row.connections;
                }
            }
        }
        s
    }
}

/// Whether stream bytes begin with a TLS ClientHello (1) or ServerHello (2) record.
pub(super) fn hello(data: &[u8]) -> Option<Dir> {
    match data {
        [22, 3, 0..=4, _, _, 1, ..] => Some(Dir::ClientToServer),
        [22, 3, 0..=4, _, _, 2, ..] => Some(Dir::ServerToClient),
        _ => None,
    }
}

/// Plaintext bytes from `plain` on came out of the wire bytes `wire_start..wire_end`.
struct Mark {
    plain: u64,
    wire_start: u64,
    wire_end: u64,
}

pub(super) struct TlsFramer {
    conn: Arc<Mutex<Connection>>,
    dir: Dir,
    keys: Arc<KeyLog>,
    /// What the plaintext is: SIP, or WebSocket (decided on its first bytes).
    inner: Box<Framer>,
    inner_chosen: bool,
    max_message: usize,
    wire: u64,
    plain: u64,
    marks: VecDeque<Mark>,
}

/// Marks kept at most: a message spanning more records than this is placed by its last ones.
const MAX_MARKS: usize = 4096;

impl TlsFramer {
    pub(super) fn new(
        conn: Arc<Mutex<Connection>>,
        dir: Dir,
        keys: Arc<KeyLog>,
        max_message: usize,
        start: u64,
    ) -> TlsFramer {
        TlsFramer {
            conn,
            dir,
            keys,
            inner: Box::new(Framer::Sip(StreamFramer::new(max_message, true))),
            inner_chosen: false,
            max_message,
            wire: start,
            plain: 0,
            marks: VecDeque::new(),
        }
    }

    pub(super) fn websocket(&self) -> bool {
        matches!(*self.inner, Framer::Ws(_))
    }

    pub(super) fn held(&self) -> usize {
        self.inner.held()
    }

    /// The wire offset of the first byte still held: the record the inner framer's oldest
    /// plaintext came from.
    pub(super) fn start(&self) -> u64 {
        let from = self.inner.start();
        self.wire_of(from).map_or(self.wire, |m| m.0)
    }

    /// The wire span of the record that plaintext offset `at` came from.
    fn wire_of(&self, at: u64) -> Option<(u64, u64)> {
        let i = self
            .marks
            .partition_point(|m| m.plain <= at)
            .checked_sub(1)?;
        self.marks.get(i).map(|m| (m.wire_start, m.wire_end))
    }

    /// Bytes were lost: the record boundaries and sequence numbers are gone, so this
    /// direction cannot be decrypted further.
    pub(super) fn gap(&mut self, missing: u64, stats: &mut FramerStats) {
        self.wire += missing;
        if let Ok(mut c) = self.conn.lock() {
            c.give_up(self.dir);
        }
        stats.skipped_bytes += missing;
    }

    pub(super) fn push(
        &mut self,
        data: &[u8],
        stats: &mut FramerStats,
        emit: &mut dyn FnMut(u64, u64, &[u8]),
    ) {
        let wire_start = self.wire;
        self.wire += data.len() as u64;
        let wire_end = self.wire;
        let mut chunks: Vec<Vec<u8>> = Vec::new();
        if let Ok(mut c) = self.conn.lock() {
            c.feed(self.dir, data, &self.keys, &mut |d, b| {
                if d == self.dir {
                    chunks.push(b.to_vec());
                }
            });
        }
        for chunk in chunks {
            if !self.inner_chosen {
                self.inner_chosen = true;
                if websocket::is_handshake(&chunk) {
                    *self.inner = Framer::Ws(WsDeframer::new(self.max_message));
                }
            }
            if self.marks.len() >= MAX_MARKS {
                self.marks.pop_front();
            }
            self.marks.push_back(Mark {
                plain: self.plain,
                wire_start,
                wire_end,
            });
            self.plain += chunk.len() as u64;
            let marks = &self.marks;
            let place = |at: u64| {
                let i = marks.partition_point(|m| m.plain <= at).checked_sub(1);
                i.and_then(|i| marks.get(i))
                    .map_or((wire_start, wire_end), |m| (m.wire_start, m.wire_end))
            };
            self.inner.push(&chunk, stats, &mut |at, end, m| {
                emit(place(at).0, place(end.saturating_sub(1)).1, m)
            });
        }
        // Marks before the inner framer's oldest byte are no longer needed (the last stays).
        let kept = self.inner.start();
        while self.marks.len() > 1 && self.marks.get(1).is_some_and(|m| m.plain <= kept) {
            self.marks.pop_front();
        }
    }

    pub(super) fn finish(
        &mut self,
        stats: &mut FramerStats,
        emit: &mut dyn FnMut(u64, u64, &[u8]),
    ) {
        let (ws, we) = (self.start(), self.wire);
        self.inner.finish(stats, &mut |_, _, m| emit(ws, we, m));
    }
}

// A stream that goes (closed, evicted, shed) lets its direction's buffers and keys go: the
// connection stays in the summary with its figures only.
impl Drop for TlsFramer {
    fn drop(&mut self) {
        if let Ok(mut c) = self.conn.lock() {
            c.release(self.dir);
        }
    }
}
