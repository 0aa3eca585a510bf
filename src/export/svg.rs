//! The ladder as a standalone SVG file that a person can open in a browser and attach to a
//! ticket. It paints a [`Ladder`] (the layout and annotations shared with the text ladder and
//! the terminal UI) and decides nothing about the call.
//!
//! Safety: every string that came off the wire is first made visible by
//! [`sanitize::terminal`] (control characters, which XML 1.0 forbids even escaped, become
//! `\x..`), then XML-escaped, so the file is always well-formed and a hostile header cannot
//! inject markup or script. The file has no script and loads nothing.

use super::ladder::{Arrow, ArrowKind, Ladder, Missing, Quality, Row};
use crate::diagnose::Severity;
use crate::flow::Call;
use crate::sanitize;
use std::fmt::Write as _;
use std::io::{self, Write};

/// Horizontal space per endpoint, pixels.
const LANE: f64 = 210.0;
/// The time column at the left.
const TIME_W: f64 = 190.0;
/// Room at the right for the anomaly kinds beside an arrow.
const NOTES_W: f64 = 380.0;
const MARGIN: f64 = 16.0;
const ROW: f64 = 30.0;
const TITLE: f64 = 28.0;
const HEADER: f64 = 40.0;
/// Monospace character width at the font size used, for clipping labels to their arrow.
const CHAR_W: f64 = 7.3;
/// Space between two calls in one file.
const GAP: f64 = 24.0;

/// XML text: wire strings made visible, then `& < > " '` escaped. U+FFFE and U+FFFF, which
/// XML does not allow either, become visible escapes too.
pub fn xml(s: &str) -> String {
    let safe = sanitize::terminal(s);
    let mut out = String::with_capacity(safe.len());
    for c in safe.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\u{FFFE}' | '\u{FFFF}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn height_of(l: &Ladder) -> f64 {
    TITLE + HEADER + ROW * (l.notes.rows.len() as f64 + 1.0)
}

fn time_of_day(a: &Arrow) -> String {
    let t = a.time.to_rfc3339();
    t.get(11..26).map(str::to_string).unwrap_or(t)
}

/// Writes one SVG document with the ladder of every call, one under the other.
pub fn write_svg(calls: &[(&Call, Ladder)], out: &mut dyn Write) -> io::Result<()> {
    let cols = calls
        .iter()
        .map(|(_, l)| l.layout.columns.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let width = MARGIN * 2.0 + TIME_W + LANE * cols as f64 + NOTES_W;
    let height = MARGIN * 2.0
        + calls.iter().map(|(_, l)| height_of(l)).sum::<f64>()
        + GAP * calls.len().saturating_sub(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}">
<title>SIP call flow (sipscope)</title>
<style>
  text {{ font-family: ui-monospace, Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12px; fill: #222; }}
  .call-id {{ font-weight: bold; font-size: 13px; }}
  .endpoint rect {{ fill: #eef3fb; stroke: #4a6fa5; }}
  .endpoint text {{ text-anchor: middle; font-weight: bold; }}
  .lifeline {{ stroke: #9aa; stroke-dasharray: 2 3; }}
  .message line, .message path {{ stroke: #222; stroke-width: 1.4; fill: none; }}
  .message.grey line, .message.grey path {{ stroke: #888; }}
  .message.retransmission line, .message.retransmission path {{ stroke-dasharray: 6 2 1 2; }}
  .message.warning line, .message.warning path {{ stroke: #c77800; stroke-width: 2; }}
  .message.error line, .message.error path {{ stroke: #c0261c; stroke-width: 2; }}
  .message.loop line, .message.loop path {{ stroke: #8b24a8; stroke-width: 2; }}
  .label {{ text-anchor: middle; }}
  .time {{ fill: #666; }}
  .flags {{ fill: #c0261c; }}
  .missing line, .missing path {{ stroke: #c0261c; stroke-width: 2; stroke-dasharray: 5 4; fill: none; }}
  .missing text {{ fill: #c0261c; font-weight: bold; }}
  .legend {{ fill: #666; }}
  .media line, .media path {{ stroke-width: 3; fill: none; }}
  .media.good line {{ stroke: #2e8b3a; }}
  .media.fair line {{ stroke: #c77800; }}
  .media.poor line {{ stroke: #c0261c; }}
  .media.mark line, .media.mark path {{ stroke: #777; stroke-width: 1; stroke-dasharray: 2 2; }}
  .band.good {{ fill: #2e8b3a; fill-opacity: 0.08; }}
  .band.fair {{ fill: #c77800; fill-opacity: 0.10; }}
  .band.poor {{ fill: #c0261c; fill-opacity: 0.10; }}
</style>
<defs>
  <marker id="head" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#222"/></marker>
  <marker id="head-grey" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#888"/></marker>
  <marker id="head-red" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#c0261c"/></marker>
  <marker id="head-orange" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#c77800"/></marker>
  <marker id="head-green" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#2e8b3a"/></marker>
  <marker id="head-purple" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8b24a8"/></marker>
</defs>
<rect x="0" y="0" width="{width:.0}" height="{height:.0}" fill="#ffffff"/>
"##
    );
    let mut y = MARGIN;
    for (call, ladder) in calls {
        draw_call(&mut s, call, ladder, y);
        y += height_of(ladder) + GAP;
    }
    s.push_str("</svg>\n");
    out.write_all(s.as_bytes())
}

fn center(i: usize) -> f64 {
    MARGIN + TIME_W + LANE * i as f64 + LANE / 2.0
}

/// `s` cut to what fits in `px` pixels, at least a few characters.
fn fit(s: &str, px: f64) -> String {
    let chars = ((px / CHAR_W) as usize).max(6);
    xml(&sanitize::clip(s, chars))
}

fn draw_call(s: &mut String, call: &Call, ladder: &Ladder, top: f64) {
    let l = &ladder.layout;
    let _ = writeln!(
        s,
        r#"<g class="call" data-call-id="{}">"#,
        xml(&sanitize::clip(&call.call_id, 512))
    );
    let _ = writeln!(
        s,
        r#"<text class="call-id" x="{MARGIN}" y="{:.1}">Call-ID: {}</text>"#,
        top + 16.0,
        fit(
            &if ladder.legs.is_empty() {
                call.call_id.to_string()
            } else {
                format!(
                    "{} with linked legs {}{}",
                    call.call_id,
                    ladder.legs.join(", "),
                    ladder
                        .group_verdict
                        .as_ref()
                        .map_or_else(String::new, |v| format!(" — {v}"))
                )
            },
            TIME_W + LANE * l.columns.len().max(1) as f64
        )
    );
    let header_y = top + TITLE;
    let bottom = top + height_of(ladder) - ROW / 2.0;
    for i in 0..l.columns.len() {
        let x = center(i);
        let _ = writeln!(
            s,
            r#"<g class="endpoint"><rect x="{:.1}" y="{header_y:.1}" width="{:.1}" height="26" rx="4"/><text x="{x:.1}" y="{:.1}">{}</text></g>"#,
            x - LANE / 2.0 + 8.0,
            LANE - 16.0,
            header_y + 17.0,
            fit(&l.column_label(i), LANE - 24.0)
        );
        let _ = writeln!(
            s,
            r#"<line class="lifeline" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{bottom:.1}"/>"#,
            header_y + 26.0
        );
    }
    let right = center(l.columns.len().max(1) - 1) + LANE / 2.0;
    let row_y = |k: usize| header_y + HEADER + ROW * (k as f64 + 1.0) - 8.0;
    // Each stream's band first, under the arrows: from its first packet's line to the line of
    // the last arrow before its end.
    for (k, row) in ladder.notes.rows.iter().enumerate() {
        let Row::Arrow(i) = *row else { continue };
        let Some(a) = l.arrows.get(i) else { continue };
        let ArrowKind::Stream { end, quality } = a.kind else {
            continue;
        };
        let last = ladder
            .notes
            .rows
            .iter()
            .enumerate()
            .skip(k)
            .take_while(|(_, r)| l.arrows.get(r.arrow()).is_some_and(|b| b.time <= end))
            .last()
            .map_or(k, |(j, _)| j);
        let (x1, x2) = (center(a.from.min(a.to)), center(a.from.max(a.to)));
        let _ = writeln!(
            s,
            r#"<rect class="band {}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/>"#,
            quality.as_str(),
            x1 - 6.0,
            row_y(k) - 4.0,
            (x2 - x1) + 12.0,
            row_y(last) - row_y(k) + 12.0
        );
    }
    for (k, row) in ladder.notes.rows.iter().enumerate() {
        let y = header_y + HEADER + ROW * (k as f64 + 1.0) - 8.0;
        match *row {
            Row::Arrow(i) => {
                let Some(a) = l.arrows.get(i) else { continue };
                draw_arrow(s, ladder, i, a, y, right);
            }
            Row::Missing { marker, .. } => {
                if let Some(m) = ladder.notes.missing.get(marker) {
                    draw_missing(s, l, m, y, right);
                }
            }
        }
    }
    let mut legend = Vec::new();
    if l.arrows.iter().any(|a| a.retransmission) {
        legend.push("dashed: retransmission");
    }
    if l.arrows.iter().any(|a| !a.is_message()) {
        legend.push("thick: RTP stream, its band until its last packet (green good, orange fair, red poor MOS); dotted: RTCP report or DTMF digit");
    }
    if !legend.is_empty() {
        let _ = writeln!(
            s,
            r#"<text class="legend" x="{MARGIN}" y="{:.1}">{}</text>"#,
            bottom + 4.0,
            xml(&legend.join(" · "))
        );
    }
    s.push_str("</g>\n");
}

/// The line (or loop, when both ends are one endpoint) and its label, from `from` to `to`.
fn draw_line(s: &mut String, from: usize, to: usize, label: &str, y: f64, head: &str) {
    let (x1, x2) = (center(from), center(to));
    if from == to {
        let _ = writeln!(
            s,
            r#"<path d="M{x1:.1},{:.1} h40 v12 h-40" marker-end="url(#{head})"/><text class="label" x="{:.1}" y="{:.1}" style="text-anchor: start">{}</text>"#,
            y - 6.0,
            x1 + 46.0,
            y + 4.0,
            fit(label, LANE - 60.0)
        );
    } else {
        let _ = writeln!(
            s,
            r#"<line x1="{x1:.1}" y1="{y:.1}" x2="{x2:.1}" y2="{y:.1}" marker-end="url(#{head})"/><text class="label" x="{:.1}" y="{:.1}">{}</text>"#,
            (x1 + x2) / 2.0,
            y - 5.0,
            fit(label, (x2 - x1).abs() - 16.0)
        );
    }
}

fn draw_arrow(s: &mut String, ladder: &Ladder, i: usize, a: &Arrow, y: f64, right: f64) {
    let flags = ladder.notes.flags_of(i);
    let looped = flags.iter().any(|f| {
        matches!(
            f.0,
            crate::diagnose::AnomalyKind::ForwardingLoop
                | crate::diagnose::AnomalyKind::TooManyHops
        )
    });
    // The colour says how bad; a retransmission is dashed whatever its colour.
    let (colour, head) = match flags.iter().map(|f| f.1).max() {
        _ if looped => (" loop", "head-purple"),
        Some(Severity::Error) => (" error", "head-red"),
        Some(Severity::Warning) => (" warning", "head-orange"),
        _ if a.retransmission => (" grey", "head-grey"),
        _ => ("", "head"),
    };
    // Media: a stream coloured by how it sounds (an anomaly's colour first), its marks thin.
    let (colour, head) = match a.kind {
        ArrowKind::Message => (colour, head),
        ArrowKind::Stream { quality, .. } if colour.is_empty() => match quality {
            Quality::Good => (" media good", "head-green"),
            Quality::Fair => (" media fair", "head-orange"),
            Quality::Poor => (" media poor", "head-red"),
        },
        ArrowKind::Stream { .. } => (colour, head),
        ArrowKind::Rtcp | ArrowKind::Dtmf => (" media mark", "head-grey"),
    };
    let class = format!(
        "{colour}{}",
        if a.retransmission {
            " retransmission"
        } else {
            ""
        }
    );
    let kinds: Vec<&str> = flags.iter().map(|f| f.0.as_str()).collect();
    let _ = writeln!(
        s,
        r#"<g class="{}{class}" data-index="{}"><title>{} {} +{:.6} s via {}{}{}</title>"#,
        match a.kind {
            ArrowKind::Message => "message",
            ArrowKind::Stream { .. } => "stream",
            ArrowKind::Rtcp => "rtcp",
            ArrowKind::Dtmf => "dtmf",
        },
        a.message,
        xml(&sanitize::clip(&a.label, 200)),
        xml(&a.time.to_rfc3339()),
        a.delta,
        a.transport,
        if a.retransmission {
            " (retransmission)"
        } else {
            ""
        },
        if kinds.is_empty() {
            String::new()
        } else {
            format!("; evidence of {}", kinds.join(", "))
        }
    );
    let _ = writeln!(
        s,
        r#"<text class="time" x="{MARGIN}" y="{:.1}">{} +{:.3}</text>"#,
        y + 4.0,
        xml(&time_of_day(a)),
        a.delta
    );
    draw_line(s, a.from, a.to, &a.label, y, head);
    if !kinds.is_empty() {
        let _ = writeln!(
            s,
            r#"<text class="flags" x="{:.1}" y="{:.1}">{}</text>"#,
            right + 8.0,
            y + 4.0,
            xml(&kinds.join(", "))
        );
    }
    s.push_str("</g>\n");
}

fn draw_missing(s: &mut String, l: &super::ladder::Layout, m: &Missing, y: f64, right: f64) {
    let Some(a) = m.arrow(l) else { return };
    let _ = writeln!(
        s,
        r#"<g class="missing" data-kind="{}"><title>{}</title>"#,
        m.kind.as_str(),
        xml(&m.note())
    );
    draw_line(s, a.from, a.to, m.label, y, "head-red");
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
        right + 8.0,
        y + 4.0,
        xml(&m.note())
    );
    s.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escapes_markup_and_controls() {
        assert_eq!(
            xml("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &apos;b&apos;&lt;/script&gt;"
        );
        // Control characters are not allowed in XML 1.0, even as character references.
        assert_eq!(xml("a\u{1b}[2Jb\u{0}"), "a\\x1b[2Jb\\x00");
        assert_eq!(xml("\u{FFFF}\u{202e}"), "\\u{ffff}\\u{202e}");
    }

    #[test]
    fn fit_clips_to_the_space() {
        assert_eq!(fit("INVITE", 200.0), "INVITE");
        let long = "x".repeat(500);
        let f = fit(&long, 73.0);
        assert_eq!(f.chars().count(), 10);
        assert!(f.ends_with(sanitize::ELLIPSIS));
    }
}
