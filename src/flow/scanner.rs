//! Scanners: sources that sweep a SIP service with probes (sipvicious and its successors), each
//! request with a fresh Call-ID, most never answered or refused with 401, 403, 404 or 407.
//!
//! Owns the per-source tally of the calls a source began and the decision that a source is
//! scanning. A call is a *probe* when it is a single out-of-dialog request (with its
//! retransmissions) that got no final response or only a refusal. A source is a scanner when it
//! sent at least [`MIN_PROBES`] probes, they are at least four in five of the calls it began,
//! and they sweep: ten or more distinct target users (an extension sweep), or ten or more
//! target hosts probed about once each (a host sweep). A User-Agent that names a scanning tool
//! (on at least half the probes) stands in for the sweep and halves the probes needed — never
//! for the probes themselves: a source is not a scanner by its name alone. What this does not flag, on
//! purpose: a registrar client (its REGISTER is challenged and sent again in the same call, two
//! requests), a proxy's OPTIONS pings to a dead gateway (one target, probed again and again).
//!
//! Reads finished calls only ([`ScannerTable::add`]); never touches packets or the call table.

use crate::flow::{Call, Kind};
use crate::time::Timestamp;
use compact_str::CompactString;
use std::net::IpAddr;

/// Fewest probes that make a scanner (half as many from a tool that names itself).
pub const MIN_PROBES: u64 = 20;
/// Distinct target users or hosts that make a sweep.
const SWEEP: usize = 10;
/// Distinct targets remembered per source: enough to tell a sweep.
const TRACKED: usize = 16;
/// Sources tallied at once; past it, sources that are not scanners are forgotten (counted).
pub const MAX_SOURCES: usize = 65_536;

/// What one call says about the source that began it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub source: IpAddr,
    pub method: CompactString,
    /// A single request that failed: unanswered, or refused with 401/403/404/407.
    pub failed: bool,
    pub answered: bool,
    /// The User-Agent names a scanning tool.
    pub agent_hint: bool,
    target_user: u64,
    target_host: IpAddr,
    time: Timestamp,
}

/// Refusals a scanner gets for a guessed extension or a missing password (RFC 3261 §21.4).
fn refusal(code: u16) -> bool {
    matches!(code, 401 | 403 | 404 | 407)
}

/// What `call` says about its originator, when it was begun by an out-of-dialog request.
pub fn probe_of(call: &Call) -> Option<Probe> {
    let first = call.messages.first()?;
    let Kind::Request { method, .. } = &first.kind else {
        return None;
    };
    if first.to_tag.is_some() {
        return None;
    }
    let mut requests = call
        .transactions
        .iter()
        .filter(|t| t.request_seen && t.method != "ACK" && t.method != "CANCEL");
    let only = requests.next();
    let single = only.is_some() && requests.next().is_none();
    let final_status = only.and_then(|t| t.final_status());
    let failed = single && final_status.is_none_or(refusal);
    let target = call.to.user.as_deref().unwrap_or(&call.to.uri);
    Some(Probe {
        source: first.src.ip(),
        method: method.clone(),
        failed,
        answered: final_status.is_some(),
        agent_hint: first.scanner_agent,
        target_user: hash(target.as_bytes()),
        target_host: first.dst.ip(),
        time: first.time,
    })
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    static KEY: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    let mut h = KEY.get_or_init(Default::default).build_hasher();
    h.write(bytes);
    h.finish()
}

/// The probes' methods, counted (the common ones by name, the rest together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MethodCounts {
    pub options: u64,
    pub register: u64,
    pub invite: u64,
    pub other: u64,
}

impl MethodCounts {
    fn add(&mut self, method: &str) {
        let n = match method {
            "OPTIONS" => &mut self.options,
            "REGISTER" => &mut self.register,
            "INVITE" => &mut self.invite,
            _ => &mut self.other,
        };
        *n += 1;
    }

    /// Non-zero counts by name, most first.
    pub fn named(&self) -> Vec<(&'static str, u64)> {
        let mut v: Vec<_> = [
            ("INVITE", self.invite),
            ("OPTIONS", self.options),
            ("REGISTER", self.register),
            ("other", self.other),
        ]
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
        v.sort_by_key(|m| std::cmp::Reverse(m.1));
        v
    }
}

/// One source's calls, as far as telling a scanner needs.
#[derive(Debug, Clone, Default)]
pub struct SourceTally {
    /// Out-of-dialog calls the source began.
    pub calls: u64,
    /// Of which probes that failed.
    pub probes: u64,
    /// Failed probes that got a refusal (the rest got nothing).
    pub refused: u64,
    pub methods: MethodCounts,
    /// Probes whose User-Agent names a scanning tool.
    pub agent_hints: u64,
    users: Vec<u64>,
    /// Target hosts and the probes each got.
    hosts: Vec<(IpAddr, u32)>,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

impl SourceTally {
    fn add(&mut self, p: &Probe) {
        self.calls += 1;
        if !p.failed {
            return;
        }
        self.probes += 1;
        self.refused += u64::from(p.answered);
        self.methods.add(&p.method);
        self.agent_hints += u64::from(p.agent_hint);
        if self.users.len() < TRACKED && !self.users.contains(&p.target_user) {
            self.users.push(p.target_user);
        }
        if let Some((_, n)) = self.hosts.iter_mut().find(|(h, _)| *h == p.target_host) {
            *n = n.saturating_add(1);
        } else if self.hosts.len() < TRACKED {
            self.hosts.push((p.target_host, 1));
        }
        self.first = Some(self.first.map_or(p.time, |t| t.min(p.time)));
        self.last = Some(self.last.map_or(p.time, |t| t.max(p.time)));
    }

    /// Whether the source is scanning (the module doc says when).
    pub fn is_scanner(&self) -> bool {
        let named = self.agent_hints * 2 >= self.probes;
        let enough = if named { MIN_PROBES / 2 } else { MIN_PROBES };
        if self.probes < enough || self.probes * 5 < self.calls * 4 {
            return false;
        }
        let user_sweep = self.users.len() >= SWEEP;
        let host_sweep = self.hosts.len() >= SWEEP && {
            let to_tracked: u64 = self.hosts.iter().map(|(_, n)| u64::from(*n)).sum();
            to_tracked <= 2 * self.hosts.len() as u64
        };
        user_sweep || host_sweep || named
    }

    /// Distinct target users seen, up to the number remembered (16: "16 or more").
    pub fn target_users(&self) -> usize {
        self.users.len()
    }

    /// Distinct target hosts seen, up to the number remembered.
    pub fn target_hosts(&self) -> usize {
        self.hosts.len()
    }
}

/// A scanning source, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanner {
    pub source: IpAddr,
    pub requests: u64,
    pub refused: u64,
    pub unanswered: u64,
    pub methods: Vec<(&'static str, u64)>,
    pub agent_hints: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// Every source's tally, bounded.
#[derive(Debug, Clone, Default)]
pub struct ScannerTable {
    sources: crate::WireMap<IpAddr, SourceTally>,
    /// Sources forgotten to stay within [`MAX_SOURCES`] (none of them scanners yet).
    pub forgotten: u64,
}

impl ScannerTable {
    /// Tallies a finished call.
    pub fn add(&mut self, call: &Call) {
        if let Some(p) = probe_of(call) {
            self.add_probe(&p);
        }
    }

    pub fn add_probe(&mut self, p: &Probe) {
        if self.sources.len() >= MAX_SOURCES && !self.sources.contains_key(&p.source) {
            // A flood of sources (spoofed, or a botnet): keep the scanners and those close to
            // it, forget the rest.
            let before = self.sources.len();
            self.sources.retain(|_, t| t.probes >= MIN_PROBES / 2);
            if self.sources.len() >= MAX_SOURCES * 3 / 4 {
                self.sources.retain(|_, t| t.is_scanner());
            }
            self.forgotten += (before - self.sources.len()) as u64;
        }
        self.sources.entry(p.source).or_default().add(p);
    }

    pub fn is_scanner(&self, source: IpAddr) -> bool {
        self.sources
            .get(&source)
            .is_some_and(SourceTally::is_scanner)
    }

    /// Whether `call` was begun by a scanning source.
    pub fn marks(&self, call: &Call) -> bool {
        call.originator().is_some_and(|ip| self.is_scanner(ip))
    }

    pub fn tally(&self, source: IpAddr) -> Option<&SourceTally> {
        self.sources.get(&source)
    }

    /// The scanning sources, most requests first.
    pub fn scanners(&self) -> Vec<Scanner> {
        let mut v: Vec<Scanner> = self
            .sources
            .iter()
            .filter(|(_, t)| t.is_scanner())
            .map(|(ip, t)| Scanner {
                source: *ip,
                requests: t.probes,
                refused: t.refused,
                unanswered: t.probes - t.refused,
                methods: t.methods.named(),
                agent_hints: t.agent_hints,
                first: t.first,
                last: t.last,
            })
            .collect();
        v.sort_by(|a, b| b.requests.cmp(&a.requests).then(a.source.cmp(&b.source)));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(source: [u8; 4], user: &str, host: [u8; 4], failed: bool, hint: bool) -> Probe {
        Probe {
            source: IpAddr::from(source),
            method: "OPTIONS".into(),
            failed,
            answered: false,
            agent_hint: hint,
            target_user: hash(user.as_bytes()),
            target_host: IpAddr::from(host),
            time: Timestamp(0),
        }
    }

    #[test]
    fn an_extension_sweep_is_a_scanner_and_one_probe_short_is_not() {
        let mut t = ScannerTable::default();
        for i in 0..MIN_PROBES - 1 {
            t.add_probe(&probe(
                [203, 0, 113, 7],
                &format!("{}", 100 + i),
                [10, 0, 0, 1],
                true,
                false,
            ));
        }
        assert!(!t.is_scanner(IpAddr::from([203, 0, 113, 7])));
        t.add_probe(&probe([203, 0, 113, 7], "999", [10, 0, 0, 1], true, false));
        assert!(t.is_scanner(IpAddr::from([203, 0, 113, 7])));
        assert_eq!(t.scanners().len(), 1);
    }

    #[test]
    fn pings_to_a_dead_gateway_and_mostly_good_traffic_are_not_scans() {
        let mut t = ScannerTable::default();
        // A proxy pings one dead gateway a hundred times.
        for _ in 0..100 {
            t.add_probe(&probe([10, 0, 0, 1], "ping", [10, 0, 0, 9], true, false));
        }
        // A PBX: forty failed calls to distinct numbers among two hundred good ones.
        for i in 0..240 {
            t.add_probe(&probe(
                [10, 0, 0, 2],
                &format!("{i}"),
                [10, 0, 0, 1],
                i < 40,
                false,
            ));
        }
        // Twelve gateways pinged every round, all dead: not a sweep, each is probed again.
        for _ in 0..10 {
            for g in 0..12 {
                t.add_probe(&probe([10, 0, 0, 3], "", [10, 0, 1, g], true, false));
            }
        }
        assert!(t.scanners().is_empty(), "{:?}", t.scanners());
    }

    #[test]
    fn a_host_sweep_and_a_named_tool_are_scanners() {
        let mut t = ScannerTable::default();
        for h in 0..40 {
            t.add_probe(&probe(
                [198, 51, 100, 1],
                "100",
                [192, 0, 2, h],
                true,
                false,
            ));
        }
        // One extension, again and again, by a tool that names itself (a password guesser).
        for _ in 0..30 {
            t.add_probe(&probe([198, 51, 100, 2], "100", [10, 0, 0, 1], true, true));
        }
        // The same without the name: a client that keeps failing.
        for _ in 0..30 {
            t.add_probe(&probe([198, 51, 100, 3], "100", [10, 0, 0, 1], true, false));
        }
        let found: Vec<IpAddr> = t.scanners().iter().map(|s| s.source).collect();
        assert_eq!(
            found,
            [
                IpAddr::from([198, 51, 100, 1]),
                IpAddr::from([198, 51, 100, 2])
            ]
        );
    }

    #[test]
    fn a_flood_of_sources_is_bounded_and_keeps_the_scanners() {
        let mut t = ScannerTable::default();
        for i in 0..MIN_PROBES {
            t.add_probe(&probe(
                [203, 0, 113, 7],
                &format!("{i}"),
                [10, 0, 0, 1],
                true,
                false,
            ));
        }
        for i in 0..(MAX_SOURCES as u32 + 10) {
            let b = i.to_be_bytes();
            t.add_probe(&probe(
                [100, b[1], b[2], b[3]],
                "1",
                [10, 0, 0, 1],
                true,
                false,
            ));
        }
        assert!(t.sources.len() <= MAX_SOURCES);
        assert!(t.forgotten > 0);
        assert!(t.is_scanner(IpAddr::from([203, 0, 113, 7])));
    }
}
