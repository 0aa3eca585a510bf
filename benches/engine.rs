//! Throughput benchmarks: the SIP parser alone, and the whole engine (decode, reassemble,
//! parse, correlate) over a generated capture held in memory. Run with `cargo bench`;
//! whole-process figures against sngrep come from `scripts/compare-sngrep.sh`.
// Test, benchmark and example code: a failed unwrap is a failed run, not hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sipscope::capture::FileSource;
use sipscope::engine::{Engine, EngineConfig};
use sipscope::synth::{SynthConfig, write_pcap};
use std::hint::black_box;

const INVITE: &[u8] = b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKp1x2;rport\r\n\
Via: SIP/2.0/UDP 10.1.0.1:5060;received=10.1.0.1;branch=z9hG4bKa1x2;rport=5060\r\n\
Record-Route: <sip:10.0.0.1;lr;ftag=x1>\r\n\
Max-Forwards: 69\r\n\
From: \"Alice\" <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
To: <sip:bob@biloxi.example.com>\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@10.1.0.1:5060>\r\n\
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n\
Supported: replaces, timer\r\n\
User-Agent: bench\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 131\r\n\
\r\n\
v=0\r\no=- 1 1 IN IP4 10.1.0.1\r\ns=-\r\nc=IN IP4 10.1.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";

fn parser(c: &mut Criterion) {
    let mut g = c.benchmark_group("sip");
    g.throughput(Throughput::Bytes(INVITE.len() as u64));
    g.bench_function("parse_invite", |b| {
        b.iter(|| {
            let (m, _) = sipscope::sip::Message::parse(black_box(INVITE)).unwrap();
            black_box((m.call_id(), m.cseq(), m.top_via(), m.from(), m.to()));
        })
    });
    g.finish();
}

fn engine(c: &mut Criterion) {
    let cfg = {
        let mut built = SynthConfig::default();
        built.calls = 2000;
        built
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.pcap");
    let stats = write_pcap(&cfg, &mut std::fs::File::create(&path).unwrap()).unwrap();
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(stats.bytes));
    g.bench_function("calls_2000_synthetic", |b| {
        b.iter(|| {
            let mut src = FileSource::open(path.to_str().unwrap(), 0).unwrap();
            let mut engine = Engine::new(EngineConfig::default());
            engine.run(&mut src);
            black_box(engine.calls().len());
        })
    });
    g.bench_function("calls_2000_synthetic_pipelined", |b| {
        b.iter(|| {
            let mut src = FileSource::open(path.to_str().unwrap(), 0).unwrap();
            let engine =
                sipscope::engine::run_pipelined(&mut src, EngineConfig::default(), |_, _| {})
                    .unwrap();
            black_box(engine.calls().len());
        })
    });
    g.finish();
}

/// A scanner flood (docs/performance.md): 30,000 probes from four sources with 20 calls among
/// them, streamed as `calls` does (lean records, every call handed out as it ends), with and
/// without a memory budget that makes the engine shed.
fn flood(c: &mut Criterion) {
    let cfg = {
        let mut built = SynthConfig::default();
        built.calls = 20;
        built.calls_per_second = 2.0;
        built.max_hold_secs = 5.0;
        built.scanner_requests = 30_000;
        built.scanner_rate = 5_000.0;
        built
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flood.pcap");
    let stats = write_pcap(&cfg, &mut std::fs::File::create(&path).unwrap()).unwrap();
    let mut g = c.benchmark_group("flood");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(stats.bytes));
    for (name, budget) in [
        ("scanners_30000", None),
        ("scanners_30000_budget_8m", Some(8 << 20)),
    ] {
        let config = {
            let mut built = EngineConfig::default();
            built.streaming = true;
            built.keep_detail = false;
            built.max_memory = budget;
            built
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut src = FileSource::open(path.to_str().unwrap(), 0).unwrap();
                let mut handed_out = 0;
                let engine = sipscope::engine::run_pipelined(&mut src, config, |e, _| {
                    handed_out += e.take_finished().len();
                })
                .unwrap();
                black_box((handed_out, engine.counters()));
            })
        });
    }
    g.finish();
}

/// Media analysis (docs/performance.md): 40 calls with RTP both ways (about 100,000 RTP
/// packets), streamed as `sipscope media` runs it, against the same run with media analysis
/// off: the difference is the per-packet cost of the RTP path.
fn media(c: &mut Criterion) {
    let cfg = {
        let mut built = SynthConfig::default();
        built.calls = 40;
        built.calls_per_second = 2.0;
        built.max_hold_secs = 60.0;
        built.tcp_share = 0.0;
        built.fragment_share = 0.0;
        built.rtp = true;
        built.media_fault_share = 0.1;
        built
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("media.pcap");
    let stats = write_pcap(&cfg, &mut std::fs::File::create(&path).unwrap()).unwrap();
    let mut g = c.benchmark_group("media");
    g.sample_size(10);
    g.throughput(Throughput::Elements(stats.frames));
    for (name, media) in [("rtp_streams", true), ("no_media", false)] {
        let config = {
            let mut built = EngineConfig::default();
            built.streaming = true;
            built.keep_detail = false;
            built.media = media;
            built
        };
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut src = FileSource::open(path.to_str().unwrap(), 0).unwrap();
                let mut streams = 0;
                let engine = sipscope::engine::run_pipelined(&mut src, config, |e, _| {
                    streams += e
                        .take_finished()
                        .iter()
                        .map(|c| c.media.len())
                        .sum::<usize>();
                })
                .unwrap();
                black_box((streams, engine.media_counters()));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, parser, engine, flood, media);
criterion_main!(benches);
