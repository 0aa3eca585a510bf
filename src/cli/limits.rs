//! The resource-limit flags shared by every command that reads traffic: one flag per limit of
//! docs/security.md, with the engine's defaults. Owns only the parsing of sizes and durations
//! and the mapping onto [`EngineConfig`]; the limits themselves are enforced (and their
//! breaches counted) where the data is held.

use crate::engine::EngineConfig;
use clap::Args;

const LIMITS: &str = "Limits (each breach is counted and reported)";

/// Limits that keep memory bounded on hostile or huge inputs (docs/security.md). Each breach is
/// counted in the JSON `sources`/`limits`, on stderr and in the terminal UI.
#[derive(Args, Debug, Clone)]
pub(super) struct LimitArgs {
    /// Largest SIP message accepted over a stream (TCP, WebSocket, SCTP); larger ones are
    /// skipped (`oversized_message`). Sizes take K, M or G (powers of 1024).
    #[arg(long, help_heading = LIMITS, value_name = "BYTES", default_value = "1M", value_parser = parse_size)]
    max_message_size: usize,
    /// Calls kept in memory; beyond this the oldest are evicted (`calls_evicted`).
    #[arg(long, help_heading = LIMITS, value_name = "N", default_value_t = 1_000_000)]
    max_calls: usize,
    /// Messages kept per call; later ones are dropped (`messages_dropped`).
    #[arg(long, help_heading = LIMITS, value_name = "N", default_value_t = 100_000)]
    max_messages_per_call: usize,
    /// Messages without a Call-ID kept as evidence (`orphans_dropped`).
    #[arg(long, help_heading = LIMITS, value_name = "N", default_value_t = 10_000)]
    max_orphans: usize,
    /// Bytes held for IP fragments of unfinished datagrams (`fragments_evicted`).
    #[arg(long, help_heading = LIMITS, value_name = "BYTES", default_value = "64M", value_parser = parse_size)]
    max_fragment_memory: usize,
    /// How long fragments wait for the rest of their datagram, seconds (`fragments_expired`).
    #[arg(long, help_heading = LIMITS, value_name = "SECONDS", default_value_t = 30.0, value_parser = parse_seconds)]
    fragment_timeout: f64,
    /// TCP streams tracked at once; the least recently active tenth is evicted beyond this
    /// (`tcp_stream_evicted`).
    #[arg(long, help_heading = LIMITS, value_name = "N", default_value_t = 65_536)]
    max_tcp_streams: usize,
    /// Out-of-order bytes held per TCP stream before the hole in front of them is given up
    /// (`tcp_gap_bytes`).
    #[arg(long, help_heading = LIMITS, value_name = "BYTES", default_value = "1M", value_parser = parse_size)]
    max_tcp_stream_buffer: usize,
    /// Bytes held over all TCP streams (out-of-order segments, unfinished messages); beyond
    /// this the streams holding the most are dropped (`tcp_buffer_evicted`).
    #[arg(long, help_heading = LIMITS, value_name = "BYTES", default_value = "256M", value_parser = parse_size)]
    max_tcp_buffer: usize,
    /// Bytes the call table may cost (by accounting: what its calls hold, and a quarter more
    /// for the allocator's rounding); over it, calls are evicted least
    /// valuable first: a scanner's unanswered or refused probes, then other single requests
    /// without an answer or with a 4xx, then the oldest calls (`calls_shed`). Default: 1G for
    /// live capture and the terminal UI, none for other commands on files (they hand out calls
    /// as they end).
    #[arg(long, help_heading = LIMITS, value_name = "BYTES", value_parser = parse_size)]
    max_memory: Option<usize>,
    /// How long a hole in a TCP stream waits for its segment, seconds (`tcp_gap_bytes`).
    #[arg(long, help_heading = LIMITS, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    tcp_gap_timeout: f64,
}

impl LimitArgs {
    /// Writes the limits into an engine configuration.
    pub(super) fn apply(&self, c: &mut EngineConfig) {
        c.max_calls = self.max_calls.max(1);
        c.max_messages_per_call = self.max_messages_per_call.max(1);
        c.max_orphans = self.max_orphans;
        c.max_memory = self.max_memory.map(|m| m.max(1 << 20));
        // Below a kilobyte no SIP message fits: a typo, not a wish.
        c.net.tcp.max_message = self.max_message_size.max(1024);
        c.net.tcp.max_streams = self.max_tcp_streams.max(1);
        c.net.tcp.max_pending_per_stream = self.max_tcp_stream_buffer;
        c.net.tcp.max_buffered_total = self.max_tcp_buffer.max(1024);
        c.net.tcp.gap_timeout = millis(self.tcp_gap_timeout);
        c.net.defrag.max_bytes = self.max_fragment_memory;
        c.net.defrag.timeout = millis(self.fragment_timeout);
    }
}

/// `--max-memory` for live capture and the terminal UI when none is given: a long run on a
/// busy or flooded network stays within it.
pub(super) const DEFAULT_LIVE_MEMORY: usize = 1 << 30;

/// Seconds as the user wrote them, to the millisecond.
fn millis(seconds: f64) -> crate::time::Interval {
    crate::time::Interval::from_millis((seconds * 1000.0) as i64)
}

/// `1048576`, `512K`, `64M`, `1G` (powers of 1024; a trailing `B` or `iB` is allowed).
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (t.get(..i), 10),
        Some((i, 'm' | 'M')) => (t.get(..i), 20),
        Some((i, 'g' | 'G')) => (t.get(..i), 30),
        _ => (Some(t), 0),
    };
    let n: usize = digits
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a size (a number, optionally with K, M or G)"))?;
    n.checked_mul(1usize << shift)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// A non-negative, finite number of seconds.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.0..=31_536_000.0).contains(&v) => Ok(v),
        _ => Err(format!("'{s}' is not a number of seconds (0 to a year)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_suffixes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert!(parse_size("").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("-1").is_err());
        assert!(parse_size("12X").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn seconds_are_finite_and_not_negative() {
        assert_eq!(parse_seconds("2.5"), Ok(2.5));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("inf").is_err());
        assert!(parse_seconds("NaN").is_err());
    }
}
