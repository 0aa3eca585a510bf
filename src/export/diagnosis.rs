//! `sipscope diagnose` and `sipscope stats` output: per call the verdict, then each anomaly
//! with its evidence lines (time, hop, message) and RFC reference; statistics as a text
//! report. Every string from the wire is sanitized before it is written as text.

use crate::diagnose::stats::StatsReport;
use crate::diagnose::{Anomaly, Diagnosis, Verdict};
use crate::flow::{Call, Outcome};
use crate::sanitize::{clip, terminal};
use serde::Serialize;
use std::io::{self, Write};

/// One evidence message as shown under an anomaly.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub index: usize,
    pub time: String,
    /// Seconds since the call's first message.
    pub offset: f64,
    pub src: String,
    pub dst: String,
    pub message: String,
    /// For a response, the method it answers (its CSeq method): it tells a 200 to the CANCEL
    /// from a 200 to the INVITE. None for requests.
    pub answers: Option<String>,
    pub retransmission: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnomalyReport {
    #[serde(flatten)]
    pub anomaly: Anomaly,
    pub evidence: Vec<Evidence>,
    /// The evidence streams, one line each for the text form (the JSON has their indexes in
    /// `streams`, and the streams in the call's `media`).
    #[serde(skip)]
    pub stream_lines: Vec<String>,
}

/// A stream as a line of evidence: when it began, its addresses and what it carried.
fn stream_line(call: &Call, s: &crate::media::Stream) -> String {
    format!(
        "{:>+10.3} s  {:>21} → {:<21}  RTP {}, {} packets, {} lost, jitter {:.1}/{:.1} ms, until {:+.3} s",
        s.start.seconds_since(call.start()),
        s.src.to_string(),
        s.dst.to_string(),
        s.codec.as_deref().map_or_else(
            || format!("pt {}", s.payload_type),
            |c| terminal(c).into_owned()
        ),
        s.packets,
        s.lost,
        s.jitter_mean_ms,
        s.jitter_max_ms,
        s.end.seconds_since(call.start()),
    )
}

/// What `diagnose` says about one call.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub call_id: String,
    pub start: String,
    pub first_method: String,
    pub from: String,
    pub to: String,
    pub outcome: Outcome,
    pub final_status: Option<u16>,
    pub verdict: Verdict,
    pub anomalies: Vec<AnomalyReport>,
    /// Begun by a source found scanning ([`crate::flow::scanner`]), set once every call has
    /// been seen.
    pub scanner: bool,
    /// Who sent the call's first request.
    #[serde(skip)]
    pub originator: Option<std::net::IpAddr>,
}

fn evidence(call: &Call, indexes: &[usize]) -> Vec<Evidence> {
    let start = call.start();
    indexes
        .iter()
        .filter_map(|&i| call.messages.get(i))
        .map(|m| Evidence {
            index: m.index,
            time: m.time.to_rfc3339(),
            offset: m.time.seconds_since(start),
            src: m.src.to_string(),
            dst: m.dst.to_string(),
            message: m.label(),
            answers: m.status().and_then(|_| m.cseq_method()).map(str::to_string),
            retransmission: m.retransmission,
        })
        .collect()
}

impl Report {
    pub fn new(call: &Call, d: Diagnosis) -> Report {
        let anomalies = d
            .anomalies
            .into_iter()
            .map(|a| AnomalyReport {
                evidence: evidence(call, &a.messages),
                stream_lines: a
                    .streams
                    .iter()
                    .filter_map(|&i| call.media.get(i))
                    .map(|s| stream_line(call, s))
                    .collect(),
                anomaly: a,
            })
            .collect();
        Report {
            call_id: call.call_id.to_string(),
            start: call.start().to_rfc3339(),
            first_method: call.first_method().to_string(),
            from: call.from.uri.to_string(),
            to: call.to.uri.to_string(),
            outcome: d.summary.outcome,
            final_status: d.summary.final_status,
            verdict: d.verdict,
            anomalies,
            scanner: false,
            originator: call.originator(),
        }
    }

    /// The text form: a header line, the verdict, and each anomaly with its evidence.
    pub fn write_text(&self, out: &mut dyn Write) -> io::Result<()> {
        let status = self
            .final_status
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        writeln!(
            out,
            "{} {}  {} {} → {}  {}{status}",
            self.start,
            terminal(&clip(&self.call_id, 64)),
            terminal(&self.first_method),
            terminal(&clip(&self.from, 48)),
            terminal(&clip(&self.to, 48)),
            self.outcome.as_str(),
        )?;
        writeln!(out, "  verdict: {}", terminal(&self.verdict.summary))?;
        if let Some(c) = &self.verdict.cause {
            if let Some(r) = &c.reason {
                writeln!(out, "  reason:  {}", terminal(&clip(r, 200)))?;
            }
            if let Some(w) = &c.warning {
                writeln!(out, "  warning: {}", terminal(&clip(w, 200)))?;
            }
        }
        for a in &self.anomalies {
            let x = &a.anomaly;
            writeln!(
                out,
                "  [{}] {}: {}",
                x.severity.as_str(),
                x.kind.as_str(),
                terminal(&x.summary)
            )?;
            for e in &a.evidence {
                writeln!(
                    out,
                    "      {:>+10.3} s  {:>21} → {:<21}  {}{}{}",
                    e.offset,
                    e.src,
                    e.dst,
                    terminal(&clip(&e.message, 60)),
                    e.answers
                        .as_deref()
                        .map(|m| format!(" (to {})", terminal(&clip(m, 30))))
                        .unwrap_or_default(),
                    if e.retransmission {
                        "  (retransmission)"
                    } else {
                        ""
                    }
                )?;
            }
            for line in &a.stream_lines {
                writeln!(out, "      {line}")?;
            }
            writeln!(out, "      see {}", x.reference)?;
        }
        Ok(())
    }
}

fn dist(d: &Option<crate::diagnose::stats::Distribution>) -> String {
    match d {
        Some(d) => format!(
            "min {:.3} s, median {:.3} s, p95 {:.3} s, max {:.3} s ({} calls{})",
            d.min,
            d.median,
            d.p95,
            d.max,
            d.count,
            if d.sampled { ", sampled" } else { "" }
        ),
        None => "-".to_string(),
    }
}

/// `sipscope stats` as text.
/// The call groups' figures (`stats --by-group`).
pub fn write_group_stats(
    g: &crate::diagnose::group::GroupStats,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "call groups           {} ({} of two legs or more, holding {} calls)",
        g.groups, g.multi_leg_groups, g.grouped_calls
    )?;
    let statuses: Vec<String> = g
        .first_failure_status
        .iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect();
    writeln!(
        out,
        "failed groups         {}{}",
        g.failed,
        if statuses.is_empty() {
            String::new()
        } else {
            format!(" (first failure {})", statuses.join(", "))
        }
    )?;
    if !g.links.is_empty() {
        let links: Vec<String> = g.links.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        writeln!(out, "links by evidence     {}", links.join(", "))?;
    }
    if g.ambiguous > 0 || g.crowded > 0 {
        writeln!(
            out,
            "not linked            {} ambiguous, {} crowded",
            g.ambiguous, g.crowded
        )?;
    }
    Ok(())
}

pub fn write_stats(r: &StatsReport<'_>, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "calls                 {}", r.calls)?;
    writeln!(
        out,
        "messages              {} ({} retransmissions)",
        r.messages, r.retransmissions
    )?;
    match r.answer_seizure_ratio {
        Some(asr) => writeln!(out, "answer-seizure ratio  {:.1}%", asr * 100.0)?,
        None => writeln!(out, "answer-seizure ratio  - (no INVITE calls)")?,
    }
    writeln!(out, "post-dial delay       {}", dist(&r.post_dial_delay))?;
    writeln!(out, "setup time            {}", dist(&r.setup_time))?;
    let line = |out: &mut dyn Write, title: &str, items: Vec<(String, u64)>| -> io::Result<()> {
        let body: Vec<String> = items
            .into_iter()
            .map(|(k, v)| format!("{} {v}", terminal(&clip(&k, 32))))
            .collect();
        writeln!(
            out,
            "{title:<22}{}",
            if body.is_empty() {
                "-".to_string()
            } else {
                body.join(", ")
            }
        )
    };
    line(
        out,
        "outcomes",
        r.outcomes
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect(),
    )?;
    line(
        out,
        "requests",
        r.requests.iter().map(|(k, v)| (k.clone(), *v)).collect(),
    )?;
    line(
        out,
        "responses",
        r.status_classes
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    )?;
    line(
        out,
        "status codes",
        r.statuses
            .iter()
            .map(|(k, v)| (k.to_string(), *v))
            .collect(),
    )?;
    line(
        out,
        "anomalies",
        r.anomalies
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), *v))
            .collect(),
    )?;
    if let Some(m) = &r.media {
        let pct =
            |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{:.1}%", v * 100.0));
        writeln!(
            out,
            "media                 {} RTP streams, {} packets, {} lost; one-way audio in {} of \
             answered calls, no audio in {}",
            crate::diagnose::thousands(m.streams),
            crate::diagnose::thousands(m.packets),
            crate::diagnose::thousands(m.lost),
            pct(m.one_way_share),
            pct(m.no_media_share),
        )?;
        let d = |d: &Option<crate::diagnose::stats::Distribution>, unit: &str, digits: usize| {
            d.as_ref().map_or_else(
                || "-".to_string(),
                |d| {
                    format!(
                        "min {:.digits$}{unit}, median {:.digits$}{unit}, p95 {:.digits$}{unit}, \
                         max {:.digits$}{unit} ({} streams)",
                        d.min, d.median, d.p95, d.max, d.count
                    )
                },
            )
        };
        writeln!(out, "stream loss           {}", d(&m.loss_percent, "%", 2))?;
        writeln!(
            out,
            "stream jitter (mean)  {}",
            d(&m.jitter_mean_ms, " ms", 2)
        )?;
        writeln!(out, "stream MOS (est.)     {}", d(&m.mos, "", 2))?;
    }
    Ok(())
}

/// The scanning sources ([`crate::flow::scanner`]), one line each, after the statistics:
/// requests, their methods, how many were refused and how many went unanswered.
/// The `stats` report's TLS lines: the connections followed, what became of them, and per
/// server (name asked for, version, suite) how many; nothing when the capture had no TLS.
pub fn write_tls(s: &crate::net::tcp::tls::TlsSummary, out: &mut dyn Write) -> io::Result<()> {
    if s.connections == 0 {
        return Ok(());
    }
    let mut parts = vec![format!("{} decrypted", s.decrypted)];
    for (n, what) in [
        (s.without_keys, "without keys"),
        (s.wrong_keys, "with keys that did not authenticate"),
        (s.unsupported, "in a version or suite not decrypted"),
        (s.no_handshake, "begun before the capture"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    writeln!(
        out,
        "tls connections       {} ({})",
        crate::diagnose::thousands(s.connections),
        parts.join(", ")
    )?;
    for row in &s.servers {
        let addr = row
            .address
            .map_or_else(|| "?".to_string(), |a| a.to_string());
        let name = row
            .sni
            .as_deref()
            .map(|n| format!(" {}", terminal(&clip(n, 40))))
            .unwrap_or_default();
        let how: Vec<&str> = [row.version.as_deref(), row.suite.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        writeln!(
            out,
            "  {addr}{name}{}: {} {}",
            if how.is_empty() {
                String::new()
            } else {
                format!(" ({})", how.join(", "))
            },
            crate::diagnose::thousands(row.connections),
            row.keys.describe()
        )?;
    }
    if s.servers_unlisted > 0 {
        writeln!(
            out,
            "  and {} more connections",
            crate::diagnose::thousands(s.servers_unlisted)
        )?;
    }
    if s.without_keys > 0 {
        writeln!(
            out,
            "  connections without keys are read with --tls-keylog FILE (an SSLKEYLOGFILE of one of their ends)"
        )?;
    }
    Ok(())
}

pub fn write_scanners(
    scanners: &[crate::flow::scanner::Scanner],
    out: &mut dyn Write,
) -> io::Result<()> {
    if scanners.is_empty() {
        return writeln!(out, "scanners              -");
    }
    let total: u64 = scanners.iter().map(|s| s.requests).sum();
    writeln!(
        out,
        "scanners              {} sources, {} requests",
        scanners.len(),
        crate::diagnose::thousands(total)
    )?;
    for s in scanners {
        let methods: Vec<String> = s
            .methods
            .iter()
            .map(|(m, n)| format!("{m} {}", crate::diagnose::thousands(*n)))
            .collect();
        writeln!(
            out,
            "  {:<20}{} requests ({}), {} refused, {} unanswered{}",
            s.source.to_string(),
            crate::diagnose::thousands(s.requests),
            methods.join(", "),
            crate::diagnose::thousands(s.refused),
            crate::diagnose::thousands(s.unanswered),
            if s.agent_hints > 0 {
                ", User-Agent of a scanning tool"
            } else {
                ""
            }
        )?;
    }
    Ok(())
}

/// A fence for `text` in Markdown: more backticks than any run inside it (CommonMark), so that
/// wire text can never close the block early.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

/// A table cell in Markdown: controls escaped (as for a terminal), pipes and backticks
/// escaped, one line.
fn md_cell(s: &str) -> String {
    // Backslashes are escaped too: the escapes `terminal` writes (`\x1b`) then render as
    // written, and a backslash on the wire cannot undo the escape of a pipe.
    terminal(&s.replace(['\n', '\r'], " "))
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('`', "\\`")
}

/// [`write_markdown`] with the call's ladder drawn as Mermaid here (`now`: the capture time
/// its timers are measured against).
pub fn write_call_markdown(
    call: &Call,
    report: &Report,
    now: crate::time::Timestamp,
    config: &crate::diagnose::DiagnoseConfig,
    out: &mut dyn Write,
) -> io::Result<()> {
    let mut mermaid = Vec::new();
    super::diagram::write(
        &[call],
        &[now],
        config,
        super::diagram::Format::Mermaid,
        &mut mermaid,
    )?;
    write_markdown(call, report, &String::from_utf8_lossy(&mermaid), out)
}

/// One call as a self-contained Markdown report for a ticket or a chat: the verdict, the
/// diagnosis with its evidence (as `diagnose` prints it), the ladder as a Mermaid diagram, and
/// the media table.
pub fn write_markdown(
    call: &Call,
    report: &Report,
    mermaid: &str,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(
        out,
        "## Call `{}` — {}{}\n",
        // In a code span nothing is escaped: backticks become quotes.
        terminal(&clip(&report.call_id, 80).replace(['\n', '\r'], " ")).replace('`', "'"),
        report.outcome.as_str(),
        report
            .final_status
            .map(|s| format!(" {s}"))
            .unwrap_or_default()
    )?;
    writeln!(
        out,
        "**{}** {} → {}, {}\n",
        md_cell(&report.first_method),
        md_cell(&clip(&report.from, 64)),
        md_cell(&clip(&report.to, 64)),
        report.start
    )?;
    writeln!(out, "**Verdict:** {}\n", md_cell(&report.verdict.summary))?;
    let mut text = Vec::new();
    report.write_text(&mut text)?;
    let text = String::from_utf8_lossy(&text);
    let f = fence(&text);
    writeln!(out, "{f}text\n{}{f}\n", text)?;
    let f = fence(mermaid);
    writeln!(out, "{f}mermaid\n{}{f}\n", mermaid)?;
    if !call.media.is_empty() {
        writeln!(
            out,
            "| direction | source → destination | SSRC | codec | packets | lost | jitter mean/max (ms) | max gap (ms) | MOS | DTMF |"
        )?;
        writeln!(out, "|---|---|---|---|---:|---:|---:|---:|---:|---|")?;
        for s in &call.media {
            writeln!(
                out,
                "| {} | {} → {} | 0x{:08X} | {} | {} | {} ({:.1}%) | {:.2} / {:.2} | {:.1} | {} | {} |",
                s.direction.as_str(),
                s.src,
                s.dst,
                s.ssrc,
                md_cell(s.codec.as_deref().unwrap_or("?")),
                s.packets,
                s.lost,
                s.loss_percent(),
                s.jitter_mean_ms,
                s.jitter_max_ms,
                s.max_delta_ms,
                s.mos.map_or_else(|| "-".to_string(), |m| format!("{m:.2}")),
                md_cell(&s.dtmf.iter().map(|d| d.digit.as_str()).collect::<String>()),
            )?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wire text with backtick runs cannot close its block: the fence is longer.
    #[test]
    fn fences_outlast_the_text_and_cells_stay_cells() {
        assert_eq!(fence("plain"), "```");
        assert_eq!(fence("a ```` b"), "`````");
        assert_eq!(md_cell("a|b`c\nd\u{1b}[31m"), r"a\|b\`c d\\x1b[31m");
    }
}
