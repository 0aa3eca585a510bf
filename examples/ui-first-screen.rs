//! How long a person waits for the terminal UI: runs the real binary in a pseudo-terminal on a
//! capture and measures, from the start of the process, when the first call row is on the
//! screen, when loading has finished (the title's gauge is gone) and the peak resident memory
//! then. The screen is read back
//! through a terminal emulator (vt100), as in tests/pty.rs.
//!
//!     cargo build --release
//!     cargo run --release --example ui-first-screen -- /tmp/calls-1g.pcap --runs 5
//!
//! Options: --runs N (default 5), --bin PATH (default target/release/sipscope).
// Test, benchmark and example code: a failed unwrap is a failed run, not hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use portable_pty::{CommandBuilder, PtySize, native_pty_system};
use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

struct Run {
    first_row: Duration,
    loaded: Duration,
    /// The process's peak resident set once loaded (VmHWM), in MiB.
    peak_mb: Option<f64>,
}

/// Peak resident set of a process, from /proc (Linux only).
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn run_once(bin: &str, file: &str) -> Result<Run, String> {
    let pty = native_pty_system()
        .openpty(PtySize {
            rows: 50,
            cols: 200,
            pixel_width: 0,
            pixel_height: 0,
        })
        .map_err(|e| e.to_string())?;
    let mut cmd = CommandBuilder::new(bin);
    cmd.arg(file);
    cmd.env("TERM", "xterm-256color");
    let start = Instant::now();
    let mut child = pty.slave.spawn_command(cmd).map_err(|e| e.to_string())?;
    drop(pty.slave);
    let size = |n: u16| std::num::NonZeroU16::new(n).ok_or("zero size");
    let screen = Arc::new(Mutex::new(vt100::Parser::new(size(50)?, size(200)?, 0)));
    let mut reader = pty.master.try_clone_reader().map_err(|e| e.to_string())?;
    let feed = Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1 << 16];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut p) = feed.lock() {
                p.process(&buf[..n]);
            }
        }
    });
    let mut writer = pty.master.take_writer().map_err(|e| e.to_string())?;
    let mut first_row = None;
    let deadline = start + Duration::from_secs(600);
    let loaded = loop {
        let (row, title) = {
            let p = screen.lock().map_err(|_| "poisoned")?;
            let s = p.screen();
            (
                s.contents_between(2, 0, 2, 200).trim().to_string(),
                s.contents_between(0, 0, 0, 200),
            )
        };
        if first_row.is_none() && !row.is_empty() {
            first_row = Some(start.elapsed());
        }
        if first_row.is_some() && !title.contains("loading") && title.contains("calls") {
            break start.elapsed();
        }
        if Instant::now() > deadline {
            return Err("timed out".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let peak_mb = child.process_id().and_then(peak_rss_mb);
    let _ = writer.write_all(b"q");
    let _ = writer.flush();
    let _ = child.wait();
    Ok(Run {
        first_row: first_row.unwrap_or(loaded),
        loaded,
        peak_mb,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut file = None;
    let mut runs = 5usize;
    let mut bin = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/sipscope").to_string();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--runs" => {
                runs = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(5);
                i += 1;
            }
            "--bin" => {
                bin = args.get(i + 1).cloned().unwrap_or(bin);
                i += 1;
            }
            f => file = Some(f.to_string()),
        }
        i += 1;
    }
    let Some(file) = file else {
        eprintln!("usage: ui-first-screen FILE [--runs N] [--bin PATH]");
        std::process::exit(2);
    };
    let mut results = Vec::new();
    for _ in 0..runs.max(1) {
        match run_once(&bin, &file) {
            Ok(r) => {
                println!(
                    "first call row {:7.1} ms   loaded {:8.1} ms   peak RSS {}",
                    r.first_row.as_secs_f64() * 1e3,
                    r.loaded.as_secs_f64() * 1e3,
                    r.peak_mb.map_or("?".to_string(), |m| format!("{m:.0} MiB"))
                );
                results.push(r);
            }
            Err(e) => {
                eprintln!("ui-first-screen: {e}");
                std::process::exit(1);
            }
        }
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "median of {}: first call row {:.1} ms, loaded {:.1} ms",
        results.len(),
        median(
            results
                .iter()
                .map(|r| r.first_row.as_secs_f64() * 1e3)
                .collect()
        ),
        median(
            results
                .iter()
                .map(|r| r.loaded.as_secs_f64() * 1e3)
                .collect()
        )
    );
}
