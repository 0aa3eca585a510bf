//! The message pane: the raw text with SIP highlighting (kept, or read back from the file),
//! the SDP summary, and two messages compared line by line.

use super::*;

/// SIP text with highlighting: the start line bold, header names coloured, the body dimmed.
pub(super) fn sip_lines(text: &str, color: bool) -> Vec<Line<'static>> {
    let mut out = Vec::new();
    let mut in_body = false;
    for (i, raw) in text.split('\n').enumerate().take(2000) {
        let line = terminal(raw.trim_end_matches('\r')).into_owned();
        let line = clip(&line, 400);
        if i == 0 {
            out.push(Line::from(Span::styled(
                line,
                Style::default().add_modifier(Modifier::BOLD),
            )));
        } else if in_body {
            out.push(Line::from(Span::styled(
                line,
                if color {
                    Style::default().fg(Color::Green)
                } else {
                    Style::default()
                },
            )));
        } else if line.is_empty() {
            in_body = true;
            out.push(Line::from(""));
        } else if let Some((name, value)) = line.split_once(':') {
            out.push(Line::from(vec![
                Span::styled(
                    format!("{name}:"),
                    if color {
                        Style::default().fg(Color::Cyan)
                    } else {
                        Style::default().add_modifier(Modifier::BOLD)
                    },
                ),
                Span::raw(value.to_string()),
            ]));
        } else {
            out.push(Line::from(line));
        }
    }
    out
}

pub(super) fn message_of<'a>(
    flow: &FlowState,
    calls: &'a [&'a Call],
    arrow: usize,
) -> Option<&'a crate::flow::SipMessage> {
    let a = flow.layout.arrows.get(arrow)?.clone();
    let call = calls.get(*flow.members.get(a.leg)?)?;
    if !a.is_message() {
        return None;
    }
    call.messages.get(a.message)
}

/// The pane beside a stream, RTCP or DTMF arrow: the stream's figures (`m` opens the media
/// screen with its graphs).
fn draw_stream_pane(f: &mut Frame<'_>, area: Rect, flow: &FlowState, calls: &[&Call]) {
    let Some(a) = flow.layout.arrows.get(flow.selected) else {
        return;
    };
    let stream = flow
        .members
        .get(a.leg)
        .and_then(|&c| calls.get(c))
        .and_then(|c| a.stream().and_then(|s| c.media.get(s)));
    let Some(s) = stream else {
        return;
    };
    let lines: Vec<Line> = super::media_screen::stream_lines(s)
        .into_iter()
        .map(Line::from)
        .collect();
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" RTP {} → {} · m: graphs ", s.src, s.dst));
    f.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
}

/// The message's text: kept in its record, else read back from the capture file.
pub(super) fn raw_text(m: &crate::flow::SipMessage, raw: Option<&dyn RawSource>) -> String {
    match m.raw_or_read(raw) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(why) => format!("{}\n({why})", m.label()),
    }
}

pub(super) fn draw_pane(
    f: &mut Frame<'_>,
    area: Rect,
    flow: &FlowState,
    calls: &[&Call],
    color: bool,
    raw: Option<&dyn RawSource>,
) {
    let Some(m) = message_of(flow, calls, flow.selected) else {
        draw_stream_pane(f, area, flow, calls);
        return;
    };
    let head = format!(
        " {} {} → {} {} ",
        m.label(),
        m.src,
        m.dst,
        m.transport.as_str()
    );
    match flow.pane {
        Pane::Sdp => {
            let mut lines: Vec<Line> = Vec::new();
            match m.sdp() {
                None => lines.push(Line::from("no SDP body")),
                Some(s) => {
                    lines.push(Line::from(format!(
                        "connection  {}",
                        terminal(s.connection.as_deref().unwrap_or("-"))
                    )));
                    for md in &s.media {
                        lines.push(Line::from(format!(
                            "{} port {} {} {}{}",
                            terminal(&md.kind),
                            md.port,
                            terminal(&md.protocol),
                            md.direction,
                            md.connection
                                .as_deref()
                                .map(|c| format!(" c={}", terminal(c)))
                                .unwrap_or_default()
                        )));
                        for r in &md.rtpmap {
                            lines.push(Line::from(format!("    {}", clip(r, 60))));
                        }
                        if md.rtpmap.is_empty() {
                            lines.push(Line::from(format!(
                                "    formats {}",
                                clip(&md.formats.join(" "), 60)
                            )));
                        }
                    }
                }
            }
            let block = Block::default()
                .borders(Borders::ALL)
                .title(format!(" SDP{}", clip(&head, 60)));
            f.render_widget(Paragraph::new(lines).block(block), area);
        }
        Pane::Diff => {
            let Some(other) = flow.mark.and_then(|a| message_of(flow, calls, a)) else {
                return;
            };
            let (a, b) = (raw_text(other, raw), raw_text(m, raw));
            let la: Vec<&str> = a.split('\n').map(|l| l.trim_end_matches('\r')).collect();
            let lb: Vec<&str> = b.split('\n').map(|l| l.trim_end_matches('\r')).collect();
            let [left, right] =
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .areas(area);
            let diff = |mine: &[&str], theirs: &[&str]| -> Vec<Line<'static>> {
                let theirs: std::collections::HashSet<&str> = theirs.iter().copied().collect();
                mine.iter()
                    .take(2000)
                    .map(|l| {
                        let text = clip(l, 400);
                        if theirs.contains(l) {
                            Line::from(text)
                        } else {
                            Line::from(Span::styled(
                                text,
                                if color {
                                    Style::default().fg(Color::Yellow)
                                } else {
                                    Style::default().add_modifier(Modifier::BOLD)
                                },
                            ))
                        }
                    })
                    .collect()
            };
            let title_a = format!(" marked: {} ", clip(&other.label(), 30));
            let title_b = format!(" selected: {} ", clip(&m.label(), 30));
            f.render_widget(
                Paragraph::new(diff(&la, &lb))
                    .block(Block::default().borders(Borders::ALL).title(title_a)),
                left,
            );
            f.render_widget(
                Paragraph::new(diff(&lb, &la))
                    .block(Block::default().borders(Borders::ALL).title(title_b)),
                right,
            );
        }
        Pane::Raw | Pane::Hidden => {
            let block = Block::default()
                .borders(Borders::ALL)
                .title(clip(&head, usize::from(area.width.saturating_sub(2))));
            f.render_widget(
                Paragraph::new(sip_lines(&raw_text(m, raw), color))
                    .block(block)
                    .wrap(Wrap { trim: false }),
                area,
            );
        }
    }
}
