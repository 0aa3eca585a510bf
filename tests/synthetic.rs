//! Large generated captures: every SIP message the generator wrote is found once (UDP, TCP split
//! and reordered and retransmitted at random, IP fragments), and the outcomes match.

use crate::common;

use sipscope::capture::{FileSource, FrameSource};
use sipscope::engine::{Engine, EngineConfig};
use sipscope::flow::Outcome;
use sipscope::synth::{SynthConfig, write_pcap};
use std::collections::HashMap;

fn generate(cfg: &SynthConfig) -> (tempfile::NamedTempFile, sipscope::synth::SynthStats) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    let stats = write_pcap(cfg, file.as_file_mut()).unwrap();
    (file, stats)
}

fn outcomes(engine: &Engine) -> HashMap<Outcome, usize> {
    let now = engine.now();
    let mut m = HashMap::new();
    for c in engine.calls() {
        *m.entry(c.summary(now).outcome).or_insert(0) += 1;
    }
    m
}

#[test]
fn every_generated_message_is_found_once() {
    let cfg = {
        let mut built = SynthConfig::default();
        built.calls = 600;
        built.seed = 7;
        built.tcp_share = 0.4;
        built.fragment_share = 0.3;
        built
    };
    let (file, stats) = generate(&cfg);
    let (engine, _) = common::analyse(file.path());
    let s = engine.source_stats(0, "synthetic", Default::default());
    assert_eq!(s.sip_messages, stats.sip_messages);
    assert_eq!(s.malformed, 0);
    assert_eq!(engine.calls().len(), cfg.calls);
    let o = outcomes(&engine);
    assert_eq!(
        o.get(&Outcome::Answered).copied().unwrap_or(0),
        stats.answered
    );
    assert_eq!(o.get(&Outcome::Busy).copied().unwrap_or(0), stats.busy);
    assert_eq!(
        o.get(&Outcome::Cancelled).copied().unwrap_or(0),
        stats.cancelled
    );
    assert_eq!(
        o.get(&Outcome::Rejected).copied().unwrap_or(0),
        stats.rejected
    );
    assert_eq!(
        o.get(&Outcome::ServerError).copied().unwrap_or(0),
        stats.server_error
    );
    assert_eq!(
        o.get(&Outcome::Timeout).copied().unwrap_or(0),
        stats.timeout
    );
    // Timer A retransmissions of unanswered INVITEs are marked; TCP segment retransmissions
    // never become SIP messages.
    let retrans: usize = engine
        .calls()
        .iter()
        .flat_map(|c| c.messages())
        .filter(|m| m.retransmission)
        .count();
    assert!(retrans >= stats.timeout * 6);
    assert!(s.skipped.named("tcp_retransmission").copied().unwrap_or(0) > 0);
}

#[test]
fn streaming_hands_out_every_call_once() {
    // 6000 calls over 300 s of capture time, each over within ~40 s (plus 32 s lingering),
    // some never answered (not over until the idle limit).
    let cfg = {
        let mut built = SynthConfig::default();
        built.calls = 6000;
        built.seed = 11;
        built.calls_per_second = 20.0;
        built.max_hold_secs = 5.0;
        built
    };
    let (file, stats) = generate(&cfg);
    let mut src = FileSource::open(file.path().to_str().unwrap(), 0).unwrap();
    let mut engine = Engine::new({
        let mut built = EngineConfig::default();
        built.streaming = true;
        built
    });
    let mut seen = Vec::new();
    let mut max_live = 0;
    while let Some(f) = src.next_frame() {
        engine.feed(&f);
        seen.extend(
            engine
                .take_finished()
                .into_iter()
                .map(|c| (c.call_id.clone(), c.messages().len())),
        );
        max_live = max_live.max(engine.calls().len());
    }
    engine.finish();
    seen.extend(
        engine
            .take_finished()
            .into_iter()
            .map(|c| (c.call_id.clone(), c.messages().len())),
    );
    let ids: std::collections::HashSet<_> = seen.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(ids.len(), cfg.calls, "each call handed out exactly once");
    assert_eq!(seen.len(), cfg.calls);
    assert_eq!(
        seen.iter().map(|(_, n)| *n as u64).sum::<u64>(),
        stats.sip_messages
    );
    // Regression: a call re-queued for its idle deadline blocked every later expiry, so the
    // table kept nearly every call. At 20 calls a second, a call that is over stays at most
    // ~75 s; only the unanswered ones (about 3%) wait for the idle limit.
    let bound = 20 * 80 + cfg.calls / 20;
    assert!(
        max_live < bound,
        "calls kept at once: {max_live}, expected under {bound}"
    );
}

#[test]
fn call_limit_evicts_and_counts() {
    let cfg = {
        let mut built = SynthConfig::default();
        built.calls = 200;
        built.seed = 3;
        built
    };
    let (file, _) = generate(&cfg);
    let config = {
        let mut built = EngineConfig::default();
        built.max_calls = 50;
        built
    };
    let (engine, _) = common::analyse_with(file.path(), config);
    assert!(engine.calls().len() <= 50);
    // Nothing vanishes silently: every call was kept or counted as evicted (a call evicted
    // while still active comes back as a new entry when its next message arrives).
    assert!(engine.counters().calls_evicted as usize + engine.calls().len() >= cfg.calls);
    assert!(engine.counters().calls_evicted as usize >= cfg.calls - 50);
}

#[test]
fn the_ladder_marks_retransmissions() {
    let cfg = {
        let mut built = SynthConfig::default();
        built.calls = 200;
        built.seed = 5;
        built
    };
    let (file, _) = generate(&cfg);
    let (engine, _) = common::analyse(file.path());
    let now = engine.now();
    let calls = engine.calls();
    let timeout = calls
        .iter()
        .find(|c| c.summary(now).outcome == Outcome::Timeout)
        .expect("a call that was never answered");
    let mut out = Vec::new();
    let ladder = sipscope::export::ladder::Ladder::new(timeout, None, now);
    sipscope::export::ladder::write_text(timeout, &ladder, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    // Timer A resent the INVITE six times on the proxy → callee hop.
    let resent = text
        .lines()
        .filter(|l| l.contains('═') && l.contains("INVITE"))
        .count();
    assert_eq!(resent, 6, "{text}");
    assert!(text.contains("═ retransmission"));
    assert!(text.contains("408 Request Timeout"));
}
