//! The integration tests, in one binary (one link instead of one per file, as ripgrep does).
//! Each module is a behaviour or a peer it is checked against, named after it: run one with
//! `cargo test --test integration -- MODULE::`.
// Test code: a failed unwrap is a failed run, not hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

mod audio;
mod capture_points;
mod cli;
mod consistency;
mod diagnose;
mod export_pcap;
mod groups;
mod hep;
mod hostile;
mod known_cases;
mod ladder;
mod layering;
mod live;
mod live_peers;
mod media;
mod mutation;
mod pty;
mod readback;
mod reassembly_props;
mod record_samples;
mod robustness;
mod samples;
mod scanners;
mod synthetic;
mod tls;
mod tshark_oracle;
mod tunnels;
mod ui;
mod websocket;
