//! The ladder screen: arrows with anomalies flagged in place, the message pane beside it and
//! the diagnosis pane under it.

use super::pane::draw_pane;
use super::*;

impl App {
    pub(super) fn draw_flow(&mut self, f: &mut Frame<'_>, area: Rect, calls: &[&Call]) {
        let color = self.color;
        let Some(flow) = self.flow.as_mut() else {
            return;
        };
        let Some(call) = calls.get(flow.call).copied() else {
            return;
        };
        // Diagnosis strip at the bottom when there is something to say.
        let diag_lines = flow.diagnosis.as_ref().map_or(0, |d| {
            if d.anomalies.is_empty() && !d.verdict.failed {
                1
            } else {
                (2 + d.anomalies.len()).min(8)
            }
        }) as u16;
        // On a short terminal the ladder comes first: the strip gets at most a third.
        let diag_height = if area.height < 12 {
            0
        } else {
            (diag_lines + 2).min(area.height / 3)
        };
        let [main, diag] =
            Layout::vertical([Constraint::Min(3), Constraint::Length(diag_height)]).areas(area);
        let wide = main.width >= 110;
        let (ladder_area, pane_area) = match flow.pane {
            Pane::Hidden => (main, None),
            _ if wide => {
                let [a, b] =
                    Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                        .areas(main);
                (a, Some(b))
            }
            _ if main.height >= 16 => {
                let [a, b] =
                    Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)])
                        .areas(main);
                (a, Some(b))
            }
            _ => (main, None),
        };
        let title = format!(
            " {} · {} messages ",
            clip(&call.call_id, 50),
            call.messages.len()
        );
        let block = Block::default().borders(Borders::ALL).title(title);
        let inner = block.inner(ladder_area);
        f.render_widget(block, ladder_area);
        let height = usize::from(inner.height.saturating_sub(1));
        self.page = height.max(1);
        // Keep the selected arrow visible; only the visible lines are built.
        let sel_line = flow.row_of(flow.selected);
        if sel_line < flow.offset {
            flow.offset = sel_line;
        } else if height > 0 && sel_line >= flow.offset + height {
            flow.offset = sel_line + 1 - height;
        }
        self.ladder_area = Rect {
            y: inner.y + 1,
            height: inner.height.saturating_sub(1),
            ..inner
        };
        let lane = lane_width(&flow.layout, inner.width);
        let time_w = time_width(inner.width);
        let header = ladder::header_line(&flow.layout, lane, time_w + 1, |c| {
            if flow.compressed {
                c.ip().to_string()
            } else {
                c.to_string()
            }
        });
        let mut text: Vec<Line> = vec![Line::from(Span::styled(
            header,
            Style::default().add_modifier(Modifier::BOLD),
        ))];
        text.extend(
            flow.notes
                .rows
                .iter()
                .skip(flow.offset)
                .take(height)
                .map(|&row| ladder_line(flow, row, lane, time_w, color)),
        );
        f.render_widget(Paragraph::new(text), inner);
        if let Some(p) = pane_area {
            draw_pane(f, p, flow, calls, color, self.raw_source.as_deref());
        }
        if diag.height > 0 {
            draw_diagnosis(f, diag, flow, color);
        }
    }
}

pub(super) const TIME_W: usize = 24;

/// The time column, dropped on narrow terminals so that the lanes fit.
pub(super) fn time_width(width: u16) -> usize {
    if width >= 70 { TIME_W } else { 0 }
}

pub(super) fn lane_width(l: &ladder::Layout, width: u16) -> usize {
    let n = l.columns.len().max(1);
    (usize::from(width).saturating_sub(time_width(width) + 2) / n).clamp(8, 30)
}

/// One line of the ladder: an arrow (marked `!` for an error, `~` for a lesser anomaly, `●`
/// when marked for comparison, and followed by the anomaly kinds), or a red marker line where
/// something expected was not seen.
pub(super) fn ladder_line(
    flow: &FlowState,
    row: LadderRow,
    lane: usize,
    time_w: usize,
    color: bool,
) -> Line<'static> {
    let st = |c: Color| {
        if color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    };
    let i = match row {
        LadderRow::Arrow(i) => i,
        LadderRow::Missing { marker, .. } => {
            // The same dashed arrow as the text ladder, in red.
            let Some(m) = flow.notes.missing.get(marker) else {
                return Line::from("");
            };
            let drawn = m
                .arrow(&flow.layout)
                .map(|a| ladder::dashed_line(&flow.layout, &a, lane))
                .unwrap_or_default();
            return Line::from(vec![
                Span::raw(" ".repeat(time_w + 1)),
                Span::styled(
                    format!("{}  {}", drawn.trim_end(), m.note()),
                    st(Color::Red).add_modifier(Modifier::BOLD),
                ),
            ]);
        }
    };
    let Some(a) = flow.layout.arrows.get(i) else {
        return Line::from("");
    };
    let kinds: &[(AnomalyKind, Severity)] = flow.notes.flags_of(i);
    let worst = kinds.iter().map(|k| k.1).max();
    let mark = match (worst, flow.mark == Some(i)) {
        (_, true) => "●",
        (Some(Severity::Error), _) => "!",
        (Some(_), _) => "~",
        (None, _) => " ",
    };
    let stamp = if time_w == 0 {
        String::new()
    } else {
        let t = a.time.to_rfc3339();
        format!("{} +{:.3}", t.get(11..23).unwrap_or(&t), a.delta)
    };
    let loop_kind = kinds
        .iter()
        .any(|k| matches!(k.0, AnomalyKind::ForwardingLoop | AnomalyKind::TooManyHops));
    let arrow_style = match (worst, a.kind) {
        _ if loop_kind => st(Color::Magenta),
        (Some(Severity::Error), _) => st(Color::Red),
        (Some(Severity::Warning), _) => st(Color::Yellow),
        (Some(_), _) => st(Color::Blue),
        // Streams coloured by how they sound; their marks dimmer.
        (None, ladder::ArrowKind::Stream { quality, .. }) => match quality {
            ladder::Quality::Good => st(Color::Green),
            ladder::Quality::Fair => st(Color::Yellow),
            ladder::Quality::Poor => st(Color::Red),
        },
        (None, ladder::ArrowKind::Rtcp | ladder::ArrowKind::Dtmf) => st(Color::DarkGray),
        (None, _) if a.retransmission => st(Color::DarkGray),
        (None, _) if a.leg != 0 => st(Color::Cyan),
        (None, _) => Style::default(),
    };
    let drawn = ladder::lane_line_at(&flow.layout, i, lane);
    let mut spans = vec![
        Span::styled(mark, st(Color::Red)),
        Span::raw(format!("{stamp:<time_w$}")),
        Span::styled(drawn.trim_end().to_string(), arrow_style),
    ];
    if !kinds.is_empty() {
        let tags: Vec<&str> = kinds.iter().map(|k| k.0.as_str()).collect();
        spans.push(Span::styled(
            format!("  {}", clip(&tags.join(","), 40)),
            arrow_style,
        ));
    }
    let line = Line::from(spans);
    if i == flow.selected {
        line.patch_style(Style::default().add_modifier(Modifier::REVERSED))
    } else {
        line
    }
}

pub(super) fn draw_diagnosis(f: &mut Frame<'_>, area: Rect, flow: &FlowState, color: bool) {
    let Some(d) = &flow.diagnosis else {
        return;
    };
    let st = |c: Color| {
        if color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    };
    let mut lines = Vec::new();
    if let Some(g) = &flow.group_verdict {
        lines.push(Line::from(Span::styled(
            format!("Group: {}", terminal(g)),
            st(Color::Cyan),
        )));
    }
    lines.push(Line::from(Span::styled(
        terminal(&d.verdict.summary).into_owned(),
        if d.verdict.failed {
            st(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            st(Color::Green)
        },
    )));
    if let Some(c) = &d.verdict.cause {
        let mut parts = Vec::new();
        if let Some(r) = &c.reason {
            parts.push(format!("Reason: {}", clip(r, 80)));
        }
        if let Some(w) = &c.warning {
            parts.push(format!("Warning: {}", clip(w, 80)));
        }
        if !parts.is_empty() {
            lines.push(Line::from(parts.join("  ")));
        }
    }
    for (i, a) in d.anomalies.iter().enumerate() {
        let selected = flow.diagnosis_focus && i == flow.diagnosis_selected;
        let sev = match a.severity {
            Severity::Error => st(Color::Red),
            Severity::Warning => st(Color::Yellow),
            Severity::Info => st(Color::Blue),
        };
        let mut line = Line::from(vec![
            Span::styled(
                format!("[{}] {}: ", a.severity.as_str(), a.kind.as_str()),
                sev,
            ),
            Span::raw(terminal(&a.summary).into_owned()),
            Span::styled(
                format!("  ({})", a.reference),
                Style::default().add_modifier(Modifier::DIM),
            ),
        ]);
        if selected {
            line = line.patch_style(Style::default().add_modifier(Modifier::REVERSED));
        }
        lines.push(line);
    }
    let title = if flow.diagnosis_focus {
        " diagnosis · ↑↓ choose · Enter go to evidence · Tab back "
    } else {
        " diagnosis (Tab) "
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::default().borders(Borders::ALL).title(title)),
        area,
    );
}
