//! SIP statistics over many calls, for `sipscope stats`: counts by method, status class and
//! code, outcomes, retransmissions, anomalies by kind, answer-seizure ratio, and the
//! distribution of post-dial delay and setup time. Fed one call at a time (streaming); memory
//! is bounded by [`MAX_SAMPLES`] per distribution.

use super::{AnomalyKind, Diagnosis};
use crate::flow::{Call, Outcome};
use serde::Serialize;
use std::collections::BTreeMap;

/// Samples kept per distribution; beyond it every other sample is dropped and the stride
/// doubles (a deterministic decimation, reported as `sampled`).
pub const MAX_SAMPLES: usize = 1 << 20;

#[derive(Debug, Clone, Default)]
struct Samples {
    values: Vec<f64>,
    stride: u64,
    seen: u64,
}

impl Samples {
    fn add(&mut self, v: f64) {
        self.seen += 1;
        let stride = self.stride.max(1);
        if !(self.seen - 1).is_multiple_of(stride) {
            return;
        }
        if self.values.len() >= MAX_SAMPLES {
            let mut i = 0;
            self.values.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.stride = stride * 2;
        }
        self.values.push(v);
    }

    fn summary(&self) -> Option<Distribution> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let i = ((v.len() as f64 - 1.0) * q).round() as usize;
            v.get(i).copied().unwrap_or_default()
        };
        (!v.is_empty()).then(|| Distribution {
            count: self.seen,
            min: at(0.0),
            median: at(0.5),
            p95: at(0.95),
            max: at(1.0),
            sampled: self.stride > 1,
        })
    }
}

/// Seconds (for the media figures, the unit their name says).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Distribution {
    pub count: u64,
    pub min: f64,
    pub median: f64,
    pub p95: f64,
    pub max: f64,
    /// True when more values were seen than kept (see [`MAX_SAMPLES`]).
    pub sampled: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub calls: u64,
    pub messages: u64,
    pub retransmissions: u64,
    pub requests: BTreeMap<String, u64>,
    pub status_classes: BTreeMap<String, u64>,
    pub statuses: BTreeMap<u16, u64>,
    pub outcomes: BTreeMap<Outcome, u64>,
    pub anomalies: BTreeMap<AnomalyKind, u64>,
    pub invite_calls: u64,
    pub answered: u64,
    pdd: Samples,
    setup: Samples,
    media: MediaTotals,
}

/// The media side of [`Stats`].
#[derive(Debug, Clone, Default)]
struct MediaTotals {
    streams: u64,
    packets: u64,
    lost: u64,
    /// Answered INVITE calls whose media was analysed (RTP in the capture).
    answered_with_analysis: u64,
    one_way_calls: u64,
    no_media_calls: u64,
    loss: Samples,
    jitter: Samples,
    mos: Samples,
}

impl MediaTotals {
    fn add_stream(&mut self, st: &crate::media::Stream) {
        self.streams += 1;
        self.packets += st.packets;
        self.lost += st.lost.max(0) as u64;
        if !st.events_only() {
            self.loss.add(st.loss_percent());
            self.jitter.add(st.jitter_mean_ms);
        }
        if let Some(mos) = st.mos {
            self.mos.add(mos);
        }
    }
}

/// The JSON shape of the media statistics.
#[derive(Debug, Clone, Serialize)]
pub struct MediaReport {
    pub streams: u64,
    pub packets: u64,
    pub lost: u64,
    /// Answered calls with one-way audio / answered calls whose media was analysed.
    pub one_way_share: Option<f64>,
    pub no_media_share: Option<f64>,
    /// Per stream: loss in percent, mean jitter in ms, estimated MOS.
    pub loss_percent: Option<Distribution>,
    pub jitter_mean_ms: Option<Distribution>,
    pub mos: Option<Distribution>,
}

/// The JSON shape of [`Stats`].
#[derive(Debug, Clone, Serialize)]
pub struct StatsReport<'a> {
    pub calls: u64,
    pub messages: u64,
    pub retransmissions: u64,
    pub requests: &'a BTreeMap<String, u64>,
    pub status_classes: &'a BTreeMap<String, u64>,
    pub statuses: &'a BTreeMap<u16, u64>,
    pub outcomes: &'a BTreeMap<Outcome, u64>,
    pub anomalies: &'a BTreeMap<AnomalyKind, u64>,
    /// Answered INVITE calls / INVITE calls (ITU-T E.411 answer-seizure ratio).
    pub answer_seizure_ratio: Option<f64>,
    pub post_dial_delay: Option<Distribution>,
    pub setup_time: Option<Distribution>,
    /// RTP streams (left out when the capture had none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaReport>,
}

impl Stats {
    pub fn add(&mut self, call: &Call, diagnosis: &Diagnosis) {
        let summary = &diagnosis.summary;
        self.calls += 1;
        for m in &call.messages {
            self.messages += 1;
            self.retransmissions += u64::from(m.retransmission);
            match (m.method(), m.status()) {
                // Counted in place when the key is there (nearly always): a key string made
                // for every message was an allocation each.
                (Some(method), _) => match self.requests.get_mut(method) {
                    Some(n) => *n += 1,
                    None => {
                        // Wire data as a map key: bounded so that a hostile capture cannot
                        // make the table huge with invented methods.
                        let key = if self.requests.len() < 64 {
                            method
                        } else {
                            "(other)"
                        };
                        *self.requests.entry(key.to_string()).or_default() += 1;
                    }
                },
                (None, Some(code)) => {
                    *self.statuses.entry(code).or_default() += 1;
                    const CLASSES: [&str; 7] = ["0xx", "1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
                    let class = CLASSES.get(usize::from(code / 100));
                    match class.and_then(|c| self.status_classes.get_mut(*c)) {
                        Some(n) => *n += 1,
                        None => {
                            let key = match class {
                                Some(c) => c.to_string(),
                                None => format!("{}xx", code / 100),
                            };
                            *self.status_classes.entry(key).or_default() += 1;
                        }
                    }
                }
                _ => {}
            }
        }
        *self.outcomes.entry(summary.outcome).or_default() += 1;
        for a in &diagnosis.anomalies {
            *self.anomalies.entry(a.kind).or_default() += 1;
        }
        let m = &mut self.media;
        for st in &call.media {
            m.add_stream(st);
        }
        if call.first_method() == "INVITE" {
            self.invite_calls += 1;
            if summary.outcome == Outcome::Answered {
                self.answered += 1;
                if matches!(
                    call.media_capture,
                    crate::media::MediaCapture::Rtp | crate::media::MediaCapture::Shared
                ) {
                    m.answered_with_analysis += 1;
                    let has = |k| diagnosis.anomalies.iter().any(|a| a.kind == k);
                    m.one_way_calls += u64::from(has(AnomalyKind::OneWayMedia));
                    m.no_media_calls += u64::from(has(AnomalyKind::NoMedia));
                }
            }
            if let Some(v) = summary.post_dial_delay {
                self.pdd.add(v);
            }
            if let Some(v) = summary.setup_time {
                self.setup.add(v);
            }
        }
    }

    /// Counts RTP streams tied to no call (no SDP named them) into the media figures.
    pub fn add_untied(&mut self, streams: &[crate::media::Stream]) {
        for st in streams {
            self.media.add_stream(st);
        }
    }

    pub fn report(&self) -> StatsReport<'_> {
        StatsReport {
            calls: self.calls,
            messages: self.messages,
            retransmissions: self.retransmissions,
            requests: &self.requests,
            status_classes: &self.status_classes,
            statuses: &self.statuses,
            outcomes: &self.outcomes,
            anomalies: &self.anomalies,
            answer_seizure_ratio: (self.invite_calls > 0)
                .then(|| self.answered as f64 / self.invite_calls as f64),
            post_dial_delay: self.pdd.summary(),
            setup_time: self.setup.summary(),
            media: (self.media.streams > 0 || self.media.answered_with_analysis > 0).then(|| {
                let m = &self.media;
                let share = |n: u64| {
                    (m.answered_with_analysis > 0)
                        .then(|| n as f64 / m.answered_with_analysis as f64)
                };
                MediaReport {
                    streams: m.streams,
                    packets: m.packets,
                    lost: m.lost,
                    one_way_share: share(m.one_way_calls),
                    no_media_share: share(m.no_media_calls),
                    loss_percent: m.loss.summary(),
                    jitter_mean_ms: m.jitter.summary(),
                    mos: m.mos.summary(),
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts by method stay bounded: after 64 distinct methods the rest go to "(other)"; the
    /// methods already counted go on being counted, and responses count by code and class.
    #[test]
    fn method_counts_are_bounded_and_classes_counted() {
        use crate::engine::{Engine, EngineConfig};
        use crate::synth::script::{Script, sip};
        let mut s = Script::new();
        let mut t = 0;
        let mut send = |s: &mut Script, start: &str| {
            let h = [
                ("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb"),
                ("From", "<sip:a@x>;tag=1"),
                ("To", "<sip:b@x>"),
                ("Call-ID", "many"),
                ("CSeq", "1 X"),
            ];
            t += 1;
            s.udp(t, "10.0.0.1:5060", "10.0.0.2:5060", &sip(start, &h, ""));
        };
        for i in 0..70 {
            send(&mut s, &format!("M{i} sip:b@x SIP/2.0"));
        }
        send(&mut s, "M3 sip:b@x SIP/2.0");
        send(&mut s, "SIP/2.0 486 Busy Here");
        send(&mut s, "SIP/2.0 404 Not Found");
        let mut engine = Engine::new(EngineConfig::default());
        for f in s.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let calls = engine.calls();
        let mut stats = Stats::default();
        let end = engine.now();
        stats.add(
            calls[0],
            &crate::diagnose::diagnose(calls[0], end, &Default::default()),
        );
        assert_eq!(stats.requests.len(), 65);
        assert_eq!(stats.requests.get("(other)"), Some(&6));
        assert_eq!(stats.requests.get("M3"), Some(&2));
        assert_eq!(stats.status_classes.get("4xx"), Some(&2));
        assert_eq!(stats.statuses.get(&486), Some(&1));
    }

    #[test]
    fn distribution_quantiles_and_bounded_samples() {
        let mut s = Samples::default();
        for i in 0..=100 {
            s.add(i as f64);
        }
        let d = s.summary().unwrap();
        assert_eq!((d.min, d.median, d.p95, d.max), (0.0, 50.0, 95.0, 100.0));
        assert!(!d.sampled);
        let mut big = Samples::default();
        for i in 0..(MAX_SAMPLES as u64 * 3) {
            big.add(i as f64);
        }
        assert!(big.values.len() <= MAX_SAMPLES);
        let d = big.summary().unwrap();
        assert!(d.sampled);
        assert_eq!(d.count, MAX_SAMPLES as u64 * 3);
    }
}
