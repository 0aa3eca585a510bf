//! sipscope as a library: read a capture, correlate its messages into calls and print each
//! call's outcome and verdict as it ends. With `default-features = false` the library is the
//! engine, the diagnosis and the exporters, without the command line or the terminal UI.
//!
//!     cargo run --example embed -- samples/busy-486.pcap

use sipscope::capture::{FileSource, FrameSource};
use sipscope::diagnose::{DiagnoseConfig, diagnose};
use sipscope::engine::{Engine, EngineConfig};
use sipscope::flow::Call;
use sipscope::time::Timestamp;

fn print(calls: impl IntoIterator<Item = Box<Call>>, now: Timestamp) {
    for call in calls {
        let d = diagnose(&call, now, &DiagnoseConfig::default());
        let outcome = d.summary.outcome.as_str();
        println!("{} {outcome}: {}", call.call_id, d.verdict.summary);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: embed CAPTURE")?;
    let mut source = FileSource::open(&path, 0)?;
    // Streaming: calls are handed out as they end, so memory stays bounded. (Configurations
    // are non-exhaustive: start from the default and set what differs.)
    let mut config = EngineConfig::default();
    config.streaming = true;
    let mut engine = Engine::new(config);
    while let Some(frame) = source.next_frame() {
        engine.feed(&frame);
        print(engine.take_finished(), engine.now());
    }
    engine.finish();
    print(engine.take_finished(), engine.now());
    Ok(())
}
