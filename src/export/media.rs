//! Media streams for output: the JSON object of a stream (`calls[].media[]` and the
//! top-level `media[]`, docs/json-schema.md) and the rows of `sipscope media` (table, CSV).

use crate::media::{Direction, Stream};
use serde_json::{Value, json};

/// Rounds to microseconds of a millisecond figure (three decimals), for stable, readable JSON.
fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// A stream as JSON.
pub fn stream_json(s: &Stream) -> Value {
    let dtmf: Vec<Value> = s
        .dtmf
        .iter()
        .map(|d| {
            json!({
                "digit": d.digit.as_str(),
                "time": d.time.to_rfc3339(),
                "duration_ms": r3(d.duration_ms),
                "ended": d.ended,
                "volume": d.volume,
            })
        })
        .collect();
    let rtcp: Vec<Value> = s
        .rtcp
        .iter()
        .map(|r| {
            json!({
                "time": r.time.to_rfc3339(),
                "kind": r.kind,
                "reporter": r.reporter,
                "src": r.from.to_string(),
                "dst": r.to.to_string(),
                "fraction_lost": r.fraction_lost.map(r3),
                "cumulative_lost": r.cumulative_lost,
                "jitter_ms": r.jitter_ms.map(r3),
                "round_trip_ms": r.round_trip_ms.map(r3),
                "packets": r.packets,
                "mos": r.mos,
            })
        })
        .collect();
    json!({
        "src": s.src.to_string(),
        "dst": s.dst.to_string(),
        "ssrc": s.ssrc,
        "direction": s.direction.as_str(),
        "tied_by": s.tie.as_str(),
        "advertised": s.advertised.map(|a| a.to_string()),
        "payload_type": s.payload_type,
        "codec": s.codec.as_ref().map(|c| crate::sanitize::terminal(c).into_owned()),
        "srtp": s.srtp.as_ref().map(|x| json!({
            "keying": x.keying,
            "suite": x.suite.as_ref().map(|c| crate::sanitize::terminal(c).into_owned()),
        })),
        "clock_rate": s.clock_rate,
        "payload_types": s.payload_types.as_slice(),
        "packets": s.packets,
        "bytes": s.bytes,
        "expected": s.expected,
        "lost": s.lost,
        "lost_percent": r3(s.loss_percent()),
        "duplicates": s.duplicates,
        "out_of_order": s.out_of_order,
        "sequence_wraps": s.wraps,
        "markers": s.markers,
        "comfort_noise": s.comfort_noise,
        "jitter_mean_ms": r3(s.jitter_mean_ms),
        "jitter_max_ms": r3(s.jitter_max_ms),
        "max_delta_ms": r3(s.max_delta_ms),
        "mean_delta_ms": r3(s.mean_delta_ms),
        "start": s.start.to_rfc3339(),
        "end": s.end.to_rfc3339(),
        "after_bye": s.after_bye,
        "r_factor": s.r_factor,
        "mos": s.mos,
        "dtmf": dtmf,
        "rtcp": rtcp,
        "dropped_events": s.dropped_events,
    })
}

/// One row of `sipscope media`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamRow {
    pub call_id: Option<String>,
    pub direction: &'static str,
    pub src: String,
    pub dst: String,
    pub ssrc: String,
    pub codec: String,
    pub packets: u64,
    pub lost: i64,
    pub lost_percent: f64,
    pub jitter_mean_ms: f64,
    pub jitter_max_ms: f64,
    pub max_delta_ms: f64,
    pub mos: Option<f64>,
    pub dtmf: String,
    pub problems: String,
}

impl StreamRow {
    /// `problems`: the anomaly kinds that name the stream as evidence.
    pub fn new(call_id: Option<&str>, s: &Stream, problems: Vec<&str>) -> StreamRow {
        let mut codec = match &s.codec {
            Some(c) => crate::sanitize::terminal(c).into_owned(),
            None => format!("pt {}", s.payload_type),
        };
        if s.srtp.is_some() {
            codec.push_str(" SRTP");
        }
        StreamRow {
            call_id: call_id.map(|c| crate::sanitize::terminal(c).into_owned()),
            direction: match s.direction {
                Direction::CallerToCallee => "caller→callee",
                Direction::CalleeToCaller => "callee→caller",
                Direction::Unknown => "-",
            },
            src: s.src.to_string(),
            dst: s.dst.to_string(),
            ssrc: format!("0x{:08X}", s.ssrc),
            codec,
            packets: s.packets,
            lost: s.lost,
            lost_percent: r3(s.loss_percent()),
            jitter_mean_ms: r3(s.jitter_mean_ms),
            jitter_max_ms: r3(s.jitter_max_ms),
            max_delta_ms: r3(s.max_delta_ms),
            mos: s.mos,
            dtmf: s.dtmf.iter().map(|d| d.digit.as_str()).collect(),
            problems: problems.join(","),
        }
    }
}

/// The rows as an aligned table.
pub fn write_table(rows: &[StreamRow], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let header = [
        "CALL-ID",
        "DIRECTION",
        "SOURCE",
        "DESTINATION",
        "SSRC",
        "CODEC",
        "PKTS",
        "LOST",
        "JITTER MEAN/MAX ms",
        "MAX GAP ms",
        "MOS",
        "DTMF",
        "PROBLEMS",
    ];
    let cells: Vec<[String; 13]> = rows
        .iter()
        .map(|r| {
            [
                r.call_id.clone().unwrap_or_else(|| "(no call)".into()),
                r.direction.to_string(),
                r.src.clone(),
                r.dst.clone(),
                r.ssrc.clone(),
                r.codec.clone(),
                r.packets.to_string(),
                format!("{} ({:.1}%)", r.lost, r.lost_percent),
                format!("{:.2}/{:.2}", r.jitter_mean_ms, r.jitter_max_ms),
                format!("{:.1}", r.max_delta_ms),
                r.mos.map_or_else(|| "-".into(), |m| format!("{m:.2}")),
                if r.dtmf.is_empty() {
                    "-".into()
                } else {
                    r.dtmf.clone()
                },
                if r.problems.is_empty() {
                    "-".into()
                } else {
                    r.problems.clone()
                },
            ]
        })
        .collect();
    let mut widths = header.map(crate::sanitize::width);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(crate::sanitize::width(c));
        }
    }
    let line = |cols: &[&str]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths).enumerate() {
            if i + 1 == cols.len() {
                s.push_str(c);
            } else {
                let pad = w.saturating_sub(crate::sanitize::width(c));
                s.push_str(c);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&header))?;
    for row in &cells {
        let cols: Vec<&str> = row.iter().map(String::as_str).collect();
        writeln!(out, "{}", line(&cols))?;
    }
    Ok(())
}

/// The rows as CSV (RFC 4180), fields sanitised against spreadsheet formulas.
pub fn write_csv(rows: &[StreamRow], out: &mut dyn std::io::Write) -> std::io::Result<()> {
    writeln!(
        out,
        "call_id,direction,src,dst,ssrc,codec,packets,lost,lost_percent,jitter_mean_ms,\
         jitter_max_ms,max_delta_ms,mos,dtmf,problems"
    )?;
    for r in rows {
        let text = |f: &str| crate::sanitize::csv_cell(f);
        let fields = [
            text(r.call_id.as_deref().unwrap_or("")),
            r.direction.to_string(),
            r.src.clone(),
            r.dst.clone(),
            r.ssrc.clone(),
            text(&r.codec),
            r.packets.to_string(),
            r.lost.to_string(),
            r.lost_percent.to_string(),
            r.jitter_mean_ms.to_string(),
            r.jitter_max_ms.to_string(),
            r.max_delta_ms.to_string(),
            r.mos.map(|m| m.to_string()).unwrap_or_default(),
            text(&r.dtmf),
            text(&r.problems),
        ];
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}
