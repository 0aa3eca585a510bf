//! Times the pipeline stage by stage on a capture (a development aid for performance work):
//!     cargo run --release --example stages -- FILE
// Test, benchmark and example code: a failed unwrap is a failed run, not hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
use sipscope::capture::{FileSource, FrameSource};
use sipscope::net::{Decoder, NetLimits};
use std::time::Instant;

fn main() {
    let path = std::env::args().nth(1).expect("usage: stages FILE");
    let t = Instant::now();
    let mut src = FileSource::open(&path, 0).expect("open");
    let mut frames = 0u64;
    while let Some(_f) = src.next_frame() {
        frames += 1;
    }
    println!(
        "read:   {:>8.3} s  {frames} frames",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut src = FileSource::open(&path, 0).expect("open");
    let mut dec = Decoder::new(NetLimits::default());
    let mut pdus = 0u64;
    while let Some(f) = src.next_frame() {
        dec.feed(&f, &mut |_p| pdus += 1);
    }
    println!(
        "decode: {:>8.3} s  {pdus} SIP messages",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut src = FileSource::open(&path, 0).expect("open");
    let mut dec = Decoder::new(NetLimits::default());
    let mut ok = 0u64;
    while let Some(f) = src.next_frame() {
        dec.feed(&f, &mut |p| {
            if let Ok((m, _)) = sipscope::sip::Message::parse(p.bytes) {
                ok += u64::from(m.call_id().is_some());
            }
        });
    }
    println!("parse:  {:>8.3} s  {ok} parsed", t.elapsed().as_secs_f64());

    let t = Instant::now();
    let mut src = FileSource::open(&path, 0).expect("open");
    let mut dec = Decoder::new(NetLimits::default());
    let mut built = 0usize;
    while let Some(f) = src.next_frame() {
        dec.feed(&f, &mut |p| {
            if let Ok((m, _)) = sipscope::sip::Message::parse(p.bytes) {
                let rec = sipscope::flow::SipMessage::from_parsed(
                    &p,
                    &m,
                    sipscope::flow::message::Keep::DETAIL,
                );
                built += std::hint::black_box(rec).size as usize;
            }
        });
    }
    println!(
        "build:  {:>8.3} s  {built} bytes of SIP",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let mut src = FileSource::open(&path, 0).expect("open");
    let mut engine = sipscope::engine::Engine::new(Default::default());
    engine.run(&mut src);
    println!(
        "engine: {:>8.3} s  {} calls",
        t.elapsed().as_secs_f64(),
        engine.calls().len()
    );

    // As `calls` runs it: streaming, finished calls handed out and dropped.
    let t = Instant::now();
    let mut src = FileSource::open(&path, 0).expect("open");
    let mut engine = sipscope::engine::Engine::new({
        let mut built = sipscope::engine::EngineConfig::default();
        built.streaming = true;
        built
    });
    let mut done = 0usize;
    while let Some(f) = src.next_frame() {
        engine.feed(&f);
        done += engine.take_finished().len();
    }
    engine.finish();
    done += engine.take_finished().len();
    println!("stream: {:>8.3} s  {done} calls", t.elapsed().as_secs_f64());
}
