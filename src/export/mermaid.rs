//! The ladder as a Mermaid `sequenceDiagram`, for Markdown tickets and wikis that render
//! Mermaid (GitHub, GitLab, Confluence plug-ins). It paints a [`Ladder`], like the text and
//! SVG ladders, and decides nothing about the call.
//!
//! Safety: wire strings are made visible by [`sanitize::terminal`] (so no line break can end a
//! statement), then the characters Mermaid reads as syntax inside a message (`;` separates
//! statements, `#` starts an entity, `<` `>` are HTML) are written as Mermaid entity codes.

use super::ladder::{ArrowKind, Ladder, Row};
use crate::flow::Call;
use crate::sanitize;
use std::io::{self, Write};

/// Message text safe inside a Mermaid statement.
pub fn text(s: &str) -> String {
    let safe = sanitize::clip(s, 200);
    let mut out = String::with_capacity(safe.len());
    for c in safe.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '%' => out.push_str("#37;"),
            c => out.push(c),
        }
    }
    out
}

/// Writes one diagram per call, each beginning with `sequenceDiagram`, separated by a blank
/// line (select a single call with `--call` to paste it into a Mermaid editor).
pub fn write_mermaid(calls: &[(&Call, Ladder)], out: &mut dyn Write) -> io::Result<()> {
    for (n, (call, ladder)) in calls.iter().enumerate() {
        if n > 0 {
            writeln!(out)?;
        }
        let l = &ladder.layout;
        writeln!(out, "sequenceDiagram")?;
        writeln!(out, "    %% Call-ID: {}", text(&call.call_id))?;
        for leg in &ladder.legs {
            writeln!(out, "    %% Linked leg: {}", text(leg))?;
        }
        if let Some(v) = &ladder.group_verdict {
            writeln!(out, "    %% Group verdict: {}", text(v))?;
        }
        if let Some(note) = l.folded_note() {
            writeln!(out, "    %% {note}")?;
        }
        for i in 0..l.columns.len() {
            writeln!(out, "    participant P{i} as {}", text(&l.column_label(i)))?;
        }
        let mut noted = std::collections::HashSet::new();
        for row in &ladder.notes.rows {
            match *row {
                Row::Arrow(i) => {
                    let Some(a) = l.arrows.get(i) else { continue };
                    // Dotted for retransmissions, as the other ladders draw them differently;
                    // media with open arrowheads (`-)`), its RTCP and DTMF marks dotted.
                    let line = match a.kind {
                        ArrowKind::Stream { .. } => "-)",
                        ArrowKind::Rtcp | ArrowKind::Dtmf => "--)",
                        ArrowKind::Message if a.retransmission => "-->>",
                        ArrowKind::Message => "->>",
                    };
                    let again = if a.retransmission {
                        " (retransmission)"
                    } else {
                        ""
                    };
                    writeln!(
                        out,
                        "    P{}{line}P{}: {}{again} +{:.3}s",
                        a.from,
                        a.to,
                        text(&a.label),
                        a.delta
                    )?;
                    // A note where each anomaly's evidence begins (one per arrow would bury
                    // the diagram under notes for a run of retransmissions).
                    let kinds: Vec<&str> = ladder
                        .notes
                        .flags_of(i)
                        .iter()
                        .filter(|f| noted.insert(f.0))
                        .map(|f| f.0.as_str())
                        .collect();
                    if !kinds.is_empty() {
                        writeln!(out, "    Note right of P{}: ⚠ {}", a.to, kinds.join(", "))?;
                    }
                }
                Row::Missing { marker, .. } => {
                    let Some(m) = ladder.notes.missing.get(marker) else {
                        continue;
                    };
                    let Some(a) = m.arrow(l) else { continue };
                    // `--x`: a dotted line ending in a cross, the message that never came.
                    writeln!(
                        out,
                        "    P{}--xP{}: {} ({})",
                        a.from,
                        a.to,
                        text(m.label),
                        text(&m.note())
                    )?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_end_a_statement() {
        assert_eq!(text("a;b#c<d>%%"), "a#59;b#35;c#lt;d#gt;#37;#37;");
        // A line break would start a new Mermaid statement; it is shown, not kept.
        assert_eq!(text("x\ny"), "x\\x0ay");
    }
}
