//! Terminal UI frame time: one key press handled and one frame drawn (into ratatui's
//! `TestBackend`, which diffs the buffer as a real terminal backend does, without the I/O),
//! with 1,000,000 calls in the list and on a 10,000-message ladder; and the one-off costs of
//! sorting and filtering a million rows. Run with `cargo bench --bench ui`; figures in
//! docs/performance.md.
//!
//! The million rows are the rows of 2,000 real calls (a generated capture through the engine,
//! diagnosed as the UI does) repeated with fresh numbers and Call-IDs: a frame only reads the
//! rows it shows, so what matters is that the list holds a million of them.
// Test, benchmark and example code: a failed unwrap is a failed run, not hostile input.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use criterion::{Criterion, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use sipscope::capture::VecSource;
use sipscope::engine::{Engine, EngineConfig};
use sipscope::synth::script::Script;
use sipscope::synth::{SynthConfig, write_pcap};
use sipscope::ui::model::SortKey;
use sipscope::ui::{App, Progress};
use std::hint::black_box;

const CALLS: usize = 1_000_000;

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn loaded(engine: &Engine) -> App {
    let mut app = App::new("bench".into(), Default::default());
    let calls = engine.calls();
    app.sync(
        &calls,
        engine.now(),
        Progress {
            finished: true,
            ..Default::default()
        },
    );
    app
}

fn engine_over(frames: Vec<sipscope::capture::OwnedFrame>) -> Engine {
    let mut engine = Engine::new({
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    });
    engine.run(&mut VecSource::new(frames));
    engine
}

/// An app whose list holds a million rows.
fn million() -> App {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ui.pcap");
    let cfg = {
        let mut built = SynthConfig::default();
        built.calls = 2000;
        built
    };
    write_pcap(&cfg, &mut std::fs::File::create(&path).unwrap()).unwrap();
    let mut src = sipscope::capture::FileSource::open(path.to_str().unwrap(), 0).unwrap();
    let mut engine = Engine::new({
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    });
    engine.run(&mut src);
    let mut app = loaded(&engine);
    let real = app.list.rows.clone();
    app.list.rows = (0..CALLS)
        .map(|k| {
            let mut r = real[k % real.len()].clone();
            r.seq = k as u64;
            r.call_id = format!("{k}-{}", r.call_id);
            r
        })
        .collect();
    app.list.rebuild_view();
    app
}

/// One call of 10,000 messages: MESSAGE requests and their 200 OKs in one dialog.
fn long_call() -> Engine {
    let mut s = Script::new();
    let (a, b) = ("198.51.100.1:5060", "198.51.100.2:5060");
    for i in 0..5000 {
        let req = format!(
            "MESSAGE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK{i}\r\nFrom: <sip:alice@x>;tag=1\r\nTo: <sip:bob@x>;tag=2\r\nCall-ID: long@bench\r\nCSeq: {} MESSAGE\r\nContent-Length: 0\r\n\r\n",
            i + 1
        );
        let resp = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 198.51.100.1;branch=z9hG4bK{i}\r\nFrom: <sip:alice@x>;tag=1\r\nTo: <sip:bob@x>;tag=2\r\nCall-ID: long@bench\r\nCSeq: {} MESSAGE\r\nContent-Length: 0\r\n\r\n",
            i + 1
        );
        s.udp(i as i64 * 20, a, b, &req);
        s.udp(i as i64 * 20 + 5, b, a, &resp);
    }
    engine_over(s.frames().to_vec())
}

fn list(c: &mut Criterion) {
    let mut app = million();
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
    let mut g = c.benchmark_group("ui_list_1M_calls");
    g.bench_function("key_down_and_draw", |b| {
        b.iter(|| {
            app.handle_key(key(KeyCode::Down), &[]);
            term.draw(|f| app.draw(f, &[])).unwrap();
        })
    });
    g.bench_function("page_down_and_draw", |b| {
        b.iter(|| {
            // Wraps to the top at the end so that every page is a new one.
            if app.selected + 100 >= CALLS {
                app.handle_key(key(KeyCode::Home), &[]);
            }
            app.handle_key(key(KeyCode::PageDown), &[]);
            term.draw(|f| app.draw(f, &[])).unwrap();
        })
    });
    g.bench_function("end_home_and_draw", |b| {
        b.iter(|| {
            app.handle_key(key(KeyCode::End), &[]);
            term.draw(|f| app.draw(f, &[])).unwrap();
            app.handle_key(key(KeyCode::Home), &[]);
            term.draw(|f| app.draw(f, &[])).unwrap();
        })
    });
    g.sample_size(10);
    g.bench_function("sort_by_status", |b| {
        b.iter(|| {
            app.list.sort = Some(SortKey::Status);
            app.list.rebuild_view();
            black_box(app.list.view.len());
        })
    });
    g.bench_function("filter_text_and_field", |b| {
        b.iter(|| {
            app.list.sort = None;
            app.list.filter.text = "alice status:4xx".into();
            app.list.rebuild_view();
            black_box(app.list.view.len());
        })
    });
    g.finish();
}

fn ladder(c: &mut Criterion) {
    let engine = long_call();
    let calls = engine.calls();
    let mut app = loaded(&engine);
    app.handle_key(key(KeyCode::Enter), &calls);
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
    let mut g = c.benchmark_group("ui_ladder_10k_messages");
    g.bench_function("key_down_and_draw", |b| {
        b.iter(|| {
            if let Some(f) = &app.flow
                && f.selected + 1 >= f.layout.arrows.len()
            {
                app.handle_key(key(KeyCode::Home), &calls);
            }
            app.handle_key(key(KeyCode::Down), &calls);
            term.draw(|f| app.draw(f, &calls)).unwrap();
        })
    });
    g.sample_size(10);
    g.bench_function("open", |b| {
        b.iter(|| {
            app.handle_key(key(KeyCode::Char('q')), &calls);
            app.handle_key(key(KeyCode::Enter), &calls);
            black_box(app.flow.is_some());
        })
    });
    g.finish();
}

criterion_group!(benches, list, ladder);
criterion_main!(benches);
