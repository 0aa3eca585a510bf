//! The anomaly rules, one module per kind. Each rule reads the call through [`Ctx`] and adds
//! what it finds; rules do not see each other's results (the verdict combines them).

use super::{Anomaly, Ctx};

pub mod auth_failed;
pub mod auth_loop;
pub mod cancel_race;
pub mod codec_mismatch;
pub mod forwarding_loop;
pub mod glare;
pub mod high_jitter;
pub mod malformed;
pub mod media_address_mismatch;
pub mod media_timeout;
pub mod missing_ack;
pub mod no_final_response;
pub mod no_media;
pub mod one_way_media;
pub mod packet_loss;
pub mod prack_missing;
pub mod private_address;
pub mod registration_failed;
pub mod retransmission;
pub mod rtp_after_bye;
pub mod sdp_mismatch;
pub mod session_timer_expired;
pub mod slow_setup;
pub mod too_many_hops;
pub mod transaction_does_not_exist;

pub type Rule = fn(&Ctx<'_>, &mut Vec<Anomaly>);

/// Every rule, in the order their findings are listed for equal severity.
pub const ALL: [Rule; 25] = [
    missing_ack::check,
    no_final_response::check,
    forwarding_loop::check,
    too_many_hops::check,
    transaction_does_not_exist::check,
    auth_loop::check,
    auth_failed::check,
    registration_failed::check,
    sdp_mismatch::check,
    cancel_race::check,
    prack_missing::check,
    session_timer_expired::check,
    glare::check,
    private_address::check,
    slow_setup::check,
    malformed::check,
    retransmission::check,
    no_media::check,
    one_way_media::check,
    media_timeout::check,
    media_address_mismatch::check,
    codec_mismatch::check,
    packet_loss::check,
    high_jitter::check,
    rtp_after_bye::check,
];

#[cfg(test)]
pub(crate) mod testkit {
    //! Builds calls from scripted exchanges for the rule tests.
    use crate::engine::{Engine, EngineConfig};
    use crate::flow::Call;
    use crate::synth::script::Script;
    use crate::time::Timestamp;

    pub const CALLER: &str = "10.0.0.1:5060";
    pub const PROXY: &str = "10.0.0.2:5060";
    pub const CALLEE: &str = "10.0.0.3:5060";

    /// Runs a script through the engine: the calls, and the capture time reached.
    pub fn run(script: &Script) -> (Vec<Call>, Timestamp) {
        let mut engine = Engine::new(EngineConfig::default());
        for f in script.frames() {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        let now = engine.now();
        (engine.into_calls(), now)
    }

    /// A request or response of call `cid` with the usual headers. `via` is the top Via
    /// sent-by and branch (responses copy their request's); `vias` is the number of Via
    /// headers (a proxy adds one).
    pub struct M<'a> {
        pub start: &'a str,
        pub cid: &'a str,
        pub via: (&'a str, &'a str),
        pub vias: usize,
        pub from_tag: &'a str,
        pub to_tag: Option<&'a str>,
        pub cseq: &'a str,
        pub extra: &'a [(&'a str, &'a str)],
        pub body: &'a str,
        pub max_forwards: u32,
    }

    impl Default for M<'_> {
        fn default() -> Self {
            M {
                start: "INVITE sip:bob@example.com SIP/2.0",
                cid: "call-1",
                via: ("10.0.0.1:5060", "z9hG4bK-1"),
                vias: 1,
                from_tag: "a1",
                to_tag: None,
                cseq: "1 INVITE",
                extra: &[],
                body: "",
                max_forwards: 70,
            }
        }
    }

    impl M<'_> {
        pub fn text(&self) -> String {
            let top = format!("SIP/2.0/UDP {};branch={}", self.via.0, self.via.1);
            let mut headers: Vec<(String, String)> = vec![("Via".into(), top)];
            for i in 1..self.vias {
                headers.push((
                    "Via".into(),
                    format!("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-lower{i}"),
                ));
            }
            headers.push((
                "From".into(),
                format!("<sip:alice@example.com>;tag={}", self.from_tag),
            ));
            let to = match self.to_tag {
                Some(t) => format!("<sip:bob@example.com>;tag={t}"),
                None => "<sip:bob@example.com>".into(),
            };
            headers.push(("To".into(), to));
            headers.push(("Call-ID".into(), self.cid.into()));
            headers.push(("CSeq".into(), self.cseq.into()));
            headers.push(("Max-Forwards".into(), self.max_forwards.to_string()));
            for (n, v) in self.extra {
                headers.push(((*n).into(), (*v).into()));
            }
            if !self.body.is_empty() {
                headers.push(("Content-Type".into(), "application/sdp".into()));
            }
            let refs: Vec<(&str, &str)> = headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            crate::synth::script::sip(self.start, &refs, self.body)
        }
    }

    pub fn kinds(anomalies: &[crate::diagnose::Anomaly]) -> Vec<&'static str> {
        anomalies.iter().map(|a| a.kind.as_str()).collect()
    }
}

#[cfg(test)]
mod tests;
