//! Writes a synthetic multi-call capture for benchmarks and tests.
//!
//!     cargo run --release --example gen-capture -- --calls 20000 -o /tmp/calls-20k.pcap
//!
//! Options: --calls N, --seed N, --cps N (calls per second), --tcp SHARE, --fragments SHARE,
//! --retransmissions SHARE, --hold SECONDS, --scanners N (scanner requests mixed in),
//! --scan-rate N (scanner requests per second), --rtp SHARE (RTP for answered calls, SHARE of
//! them with a media fault), -o PATH (default: standard output).
//!
//! The media benchmark of docs/performance.md: 260 calls, 1,000,000 RTP packets:
//!
//!     cargo run --release --example gen-capture -- --calls 260 --cps 2 --hold 70 \
//!         --tcp 0 --fragments 0 --rtp 0.1 -o /tmp/media-1m.pcap
//!
//! The flood of docs/performance.md: 300,000 scanner requests at 5,000 a second with 200 calls
//! among them:
//!
//!     cargo run --release --example gen-capture -- --calls 200 --cps 4 --hold 20 \
//!         --scanners 300000 --scan-rate 5000 -o /tmp/scan-300k.pcap
// Test, benchmark and example code: a failed unwrap is a failed run, not hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use sipscope::synth::{SynthConfig, write_pcap};
use std::io::Write;

fn main() {
    let mut cfg = SynthConfig::default();
    let mut out: Option<String> = None;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let value = |i: usize| -> String {
        args.get(i + 1).cloned().unwrap_or_else(|| {
            eprintln!("gen-capture: {} needs a value", args[i]);
            std::process::exit(2)
        })
    };
    let num = |s: String| -> f64 {
        s.parse().unwrap_or_else(|_| {
            eprintln!("gen-capture: not a number: {s}");
            std::process::exit(2)
        })
    };
    while i < args.len() {
        match args[i].as_str() {
            "--calls" => cfg.calls = num(value(i)) as usize,
            "--seed" => cfg.seed = num(value(i)) as u64,
            "--cps" => cfg.calls_per_second = num(value(i)),
            "--tcp" => cfg.tcp_share = num(value(i)),
            "--fragments" => cfg.fragment_share = num(value(i)),
            "--retransmissions" => cfg.retransmit_share = num(value(i)),
            "--hold" => cfg.max_hold_secs = num(value(i)),
            "--scanners" => cfg.scanner_requests = num(value(i)) as usize,
            "--scan-rate" => cfg.scanner_rate = num(value(i)),
            // RTP for answered calls, and the share of them given a media fault.
            "--rtp" => {
                cfg.rtp = true;
                cfg.media_fault_share = num(value(i));
            }
            "-o" => out = Some(value(i)),
            other => {
                eprintln!("gen-capture: unknown option {other}");
                std::process::exit(2)
            }
        }
        i += 2;
    }
    let result = match &out {
        Some(path) => std::fs::File::create(path)
            .and_then(|f| write_pcap(&cfg, &mut std::io::BufWriter::new(f))),
        None => write_pcap(&cfg, &mut std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match result {
        Ok(s) => {
            let _ = writeln!(
                std::io::stderr(),
                "{} calls, {} SIP messages, {} frames, {} bytes (answered {}, busy {}, cancelled {}, rejected {}, server error {}, timeout {}), {} scanner requests ({} answered)",
                s.calls,
                s.sip_messages,
                s.frames,
                s.bytes,
                s.answered,
                s.busy,
                s.cancelled,
                s.rejected,
                s.server_error,
                s.timeout,
                s.scanner_requests,
                s.scanner_answered
            );
        }
        Err(e) => {
            eprintln!("gen-capture: {e}");
            std::process::exit(1);
        }
    }
}
