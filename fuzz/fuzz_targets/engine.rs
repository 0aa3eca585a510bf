//! The whole engine on a byte stream read as a capture file: reading, decoding, parsing,
//! correlation, the diagnosis rules and the JSON export of every call.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::capture::FileSource;
use sipscope::engine::{Engine, EngineConfig};

fuzz_target!(|data: &[u8]| {
    let reader = Box::new(std::io::Cursor::new(data.to_vec()));
    let Ok(mut src) = FileSource::from_reader(reader, "fuzz", 0, None) else {
        return;
    };
    let mut engine = Engine::new({
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    });
    engine.run(&mut src);
    let now = engine.now();
    let rules = sipscope::diagnose::DiagnoseConfig::default();
    for call in engine.calls() {
        let d = sipscope::diagnose::diagnose(call, now, &rules);
        let _ = d.is_clean();
    }
    let sources = vec![engine.source_stats(0, "fuzz", Default::default())];
    let calls = engine.calls();
    let opts = sipscope::export::json::JsonOptions {
        raw: true,
        raw_source: None,
        diagnose: rules,
        grouping: None,
    };
    let doc = sipscope::export::json::Document::of(&engine, &sources, &calls, opts);
    let _ = serde_json::to_vec(&doc);
});
