//! An estimated MOS for a stream from the ITU-T G.107 E-model, simplified as ITU-T G.113
//! Appendix I and Cole and Rosenbluth (2001) do for VoIP: defaults for everything the capture
//! cannot see (room noise, echo, terminal loudness), so that R depends on the codec, the
//! packet loss and the delay only.
//!
//! - `R = 93.2 − Id − Ie_eff`
//! - `Ie_eff = Ie + (95 − Ie) · Ppl / (Ppl + Bpl)`: `Ppl` the loss in percent (random loss,
//!   BurstR = 1), `Ie` and `Bpl` per codec (G.113: G.711 0 and 25.1 with packet-loss
//!   concealment, G.729(A) 11 and 19.0, G.722 0 and 25.1 as G.711, GSM-FR 20 and 10, G.723.1
//!   15 and 16.1, other codecs as G.711).
//! - `Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)`, `d` the one-way delay estimate in ms:
//!   half the RTCP round trip when a report gives it, plus a de-jitter buffer of twice the
//!   stream's maximum jitter (at least 20 ms) and 20 ms of packetisation.
//! - `MOS = 1 + 0.035·R + 7·10⁻⁶·R·(R − 60)·(100 − R)`, 1 for R ≤ 0 and 4.5 for R ≥ 100.
//!
//! A perfect G.711 stream scores R 92.2, MOS 4.39. The estimate is a listening-quality
//! indicator for comparing streams and spotting bad ones, not a measurement: it assumes the
//! de-jitter buffer absorbs the jitter (packets it would have discarded are not counted as
//! lost), knows nothing of the audio, and is not a PESQ/POLQA score.

/// `Ie` and `Bpl` for a codec name.
fn impairment(codec: &str) -> (f64, f64) {
    let c = codec.to_ascii_uppercase();
    if c.starts_with("G729") {
        (11.0, 19.0)
    } else if c == "GSM" {
        (20.0, 10.0)
    } else if c.starts_with("G723") {
        (15.0, 16.1)
    } else if c == "ILBC" {
        (11.0, 32.0)
    } else if c == "OPUS" {
        (0.0, 30.0)
    } else {
        (0.0, 25.1)
    }
}

/// The R factor: codec, loss in percent, one-way delay in ms.
pub fn r_factor(codec: &str, loss_percent: f64, delay_ms: f64) -> f64 {
    let (ie, bpl) = impairment(codec);
    let ppl = loss_percent.clamp(0.0, 100.0);
    let ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl);
    let d = delay_ms.max(0.0);
    let id = 0.024 * d + if d > 177.3 { 0.11 * (d - 177.3) } else { 0.0 };
    93.2 - id - ie_eff
}

/// R to MOS (G.107 Annex B).
pub fn mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + 7e-6 * r * (r - 60.0) * (100.0 - r)
    }
}

/// The one-way delay the estimate assumes: see the module documentation.
pub fn delay_ms(max_jitter_ms: f64, round_trip_ms: Option<f64>) -> f64 {
    round_trip_ms.unwrap_or(0.0) / 2.0 + (2.0 * max_jitter_ms).max(20.0) + 20.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_points() {
        // A clean G.711 call: 40 ms assumed delay.
        let r = r_factor("PCMA", 0.0, 40.0);
        assert!((r - 92.24).abs() < 0.01, "{r}");
        assert!((mos(r) - 4.39).abs() < 0.01, "{}", mos(r));
        // 5% random loss on G.711 with PLC: Ie_eff = 95·5/30.1 = 15.8.
        let r = r_factor("PCMU", 5.0, 40.0);
        assert!((r - (92.24 - 15.78)).abs() < 0.05, "{r}");
        // G.729 starts lower.
        assert!(r_factor("G729", 0.0, 40.0) < 82.0);
        // Long delay costs more past 177.3 ms.
        assert!(r_factor("PCMU", 0.0, 300.0) < 80.0);
        assert_eq!(mos(-5.0), 1.0);
        assert_eq!(mos(120.0), 4.5);
        assert!((mos(50.0) - 2.58).abs() < 0.01);
    }
}
