//! Draws the [`App`] with ratatui: title bar with the loading gauge, the call list (only the
//! visible rows are built, so a million calls draw as fast as ten), the ladder with anomalies
//! flagged in place, the message pane (raw with SIP highlighting, SDP, diff), the diagnosis
//! pane, statistics and the help overlay. Every wire string goes through [`sanitize`] here.
//! Reads the app and the calls; changes only scroll offsets and the areas kept for the mouse.

use super::app::{App, FlowState, KEYS, LadderRow, Pane, Prompt, Screen, arrow_leg, arrow_message};
use crate::diagnose::{AnomalyKind, Severity};
use crate::export::ladder;
use crate::flow::message::RawSource;
use crate::flow::{Call, Outcome};
use crate::sanitize::{clip, terminal};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Table, Wrap};

impl App {
    fn style(&self, color: Color) -> Style {
        if self.color {
            Style::default().fg(color)
        } else {
            Style::default()
        }
    }

    fn outcome_style(&self, o: Outcome) -> Style {
        self.style(match o {
            Outcome::Answered | Outcome::Completed => Color::Green,
            Outcome::Busy | Outcome::Cancelled | Outcome::Redirected => Color::Yellow,
            Outcome::InProgress => Color::Cyan,
            _ => Color::Red,
        })
    }

    fn severity_style(&self, s: Option<Severity>) -> Style {
        self.style(match s {
            Some(Severity::Error) => Color::Red,
            Some(Severity::Warning) => Color::Yellow,
            _ => Color::Blue,
        })
    }

    /// Draws the whole screen.
    pub fn draw(&mut self, f: &mut Frame<'_>, calls: &[&Call]) {
        let area = f.area();
        if area.width < 20 || area.height < 4 {
            f.render_widget(Paragraph::new("sipscope: terminal too small"), area);
            return;
        }
        let [top, body, bottom] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(area);
        self.draw_title(f, top);
        match self.screen {
            Screen::List => self.draw_list(f, body),
            Screen::Flow => self.draw_flow(f, body, calls),
            Screen::Stats => self.draw_stats(f, body),
        }
        self.draw_bottom(f, bottom);
        if self.help {
            self.draw_help(f, area);
        }
    }

    fn draw_title(&self, f: &mut Frame<'_>, area: Rect) {
        let shown = self.list.view.len();
        let total = self.list.rows.len();
        let mut spans = vec![
            Span::styled(
                " sipscope ",
                Style::default().add_modifier(Modifier::REVERSED),
            ),
            Span::raw(format!(" {} ", clip(&self.title, 40))),
            Span::raw(match (shown == total, total) {
                (true, 1) => " 1 call".to_string(),
                (true, _) => format!(" {total} calls"),
                (false, _) => format!(" {shown} of {total} calls"),
            }),
        ];
        if !self.list.filter.is_empty() {
            spans.push(Span::styled(
                format!("  filter: {}", clip(&self.list.filter.text, 30)),
                self.style(Color::Cyan),
            ));
        }
        if !self.marked.is_empty() {
            spans.push(Span::raw(format!("  {} selected", self.marked.len())));
        }
        if let Some(limits) = &self.limits {
            spans.push(Span::styled(
                format!("  limits: {}", clip(limits, 60)),
                self.style(Color::Red),
            ));
        }
        if let Some(live) = self.progress.live.filter(|_| !self.progress.finished) {
            let drops = live.dropped_kernel + live.dropped_internal;
            spans.push(Span::styled(
                format!(
                    "  ● live {} packets · dropped {} kernel, {} sipscope",
                    live.received, live.dropped_kernel, live.dropped_internal
                ),
                self.style(if drops > 0 { Color::Red } else { Color::Green }),
            ));
            if live.forgotten + live.evicted > 0 {
                spans.push(Span::raw(format!(
                    " · {} ended calls forgotten, {} evicted",
                    live.forgotten, live.evicted
                )));
            }
        } else if !self.progress.finished {
            let pct = match self.progress.total {
                Some(t) if t > 0 => (self.progress.done.min(t) * 100 / t) as usize,
                _ => 0,
            };
            let bar = 20usize;
            let full = pct * bar / 100;
            spans.push(Span::styled(
                format!(
                    "  loading [{}{}] {pct:>3}%",
                    "█".repeat(full),
                    "░".repeat(bar - full)
                ),
                self.style(Color::Yellow),
            ));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), area);
    }

    fn draw_bottom(&self, f: &mut Frame<'_>, area: Rect) {
        let line = match (&self.prompt, &self.status) {
            (Some(Prompt::Filter(t)), _) => Line::from(vec![
                Span::styled("Filter: ", self.style(Color::Cyan)),
                Span::raw(terminal(t).into_owned()),
                Span::styled("▏", Style::default().add_modifier(Modifier::SLOW_BLINK)),
                Span::raw(
                    "   Enter apply · Esc cancel · method: status: outcome: anomaly: from: to: addr: scanner -term",
                ),
            ]),
            (Some(Prompt::Save(t)), _) => Line::from(vec![
                Span::styled("Save to: ", self.style(Color::Cyan)),
                if t.is_empty() {
                    Span::styled(
                        super::app::DEFAULT_SAVE,
                        Style::default().add_modifier(Modifier::DIM),
                    )
                } else {
                    Span::raw(terminal(t).into_owned())
                },
                Span::raw(
                    "▏   .json: JSON · .pcap: frames · .svg: SVG ladder · .mmd: Mermaid · other: text · Enter save · Esc cancel",
                ),
            ]),
            (None, Some(s)) => Line::from(Span::styled(
                terminal(s).into_owned(),
                self.style(Color::Yellow),
            )),
            (None, None) => Line::from(match self.screen {
                Screen::List => {
                    "Enter ladder · Space select · / filter · < > sort · i stats · s save · ? help · q quit"
                }
                Screen::Flow => {
                    "↑↓ message · Enter pane · d SDP · Space compare · s hosts · n next anomaly · Tab diagnosis · x linked legs · q back"
                }
                Screen::Stats => "q back",
            }),
        };
        f.render_widget(
            Paragraph::new(line).style(Style::default().add_modifier(Modifier::DIM)),
            area,
        );
    }

    fn draw_list(&mut self, f: &mut Frame<'_>, area: Rect) {
        // (title, width, keep priority: lower is kept first on narrow terminals)
        let cols: [(&str, u16, u8); 15] = [
            ("#", 6, 0),
            ("Start", 12, 7),
            ("From", 14, 1),
            ("To", 14, 2),
            ("Source", 21, 9),
            ("Destination", 21, 10),
            ("Call-ID", 24, 13),
            ("Method", 9, 3),
            ("Tr", 4, 14),
            ("Msgs", 5, 8),
            ("Outcome", 12, 4),
            ("Status", 6, 5),
            ("Setup", 7, 11),
            ("Duration", 8, 12),
            ("Anomalies", 28, 6),
        ];
        let mut order: Vec<usize> = (0..cols.len()).collect();
        order.sort_by_key(|&i| cols.get(i).map(|c| c.2));
        let mut used = 0u16;
        let mut keep = [false; 15];
        for i in order {
            let (Some(&(_, width, priority)), Some(k)) = (cols.get(i), keep.get_mut(i)) else {
                continue;
            };
            let w = width + 1;
            if used + w <= area.width || priority == 0 {
                *k = true;
                used += w;
            }
        }
        let height = usize::from(area.height.saturating_sub(1));
        self.page = height.max(1);
        if self.selected < self.offset {
            self.offset = self.selected;
        } else if height > 0 && self.selected >= self.offset + height {
            self.offset = self.selected + 1 - height;
        }
        self.list_area = Rect {
            y: area.y + 1,
            height: area.height.saturating_sub(1),
            ..area
        };
        let secs = |x: Option<f64>| x.map(|v| format!("{v:.1}s")).unwrap_or_default();
        let rows =
            (self.offset..(self.offset + height).min(self.list.view.len())).filter_map(|pos| {
                let r = self.list.row_at(pos)?;
                let start = r.start.to_rfc3339();
                let cells: [Cell; 15] = [
                    Cell::from(format!(
                        "{}{}",
                        if self.marked.contains(&r.seq) {
                            "*"
                        } else {
                            " "
                        },
                        r.seq + 1
                    )),
                    Cell::from(start.get(11..23).unwrap_or(&start).to_string()),
                    Cell::from(clip(&r.from, 14)),
                    Cell::from(clip(&r.to, 14)),
                    Cell::from(r.src.clone()),
                    Cell::from(r.dst.clone()),
                    Cell::from(clip(&r.call_id, 24)),
                    Cell::from(clip(&r.method, 9)),
                    Cell::from(r.transport),
                    Cell::from(r.messages.to_string()),
                    Cell::from(Span::styled(
                        r.outcome.as_str(),
                        self.outcome_style(r.outcome),
                    )),
                    Cell::from(r.status.map(|s| s.to_string()).unwrap_or_default()),
                    Cell::from(secs(r.setup)),
                    Cell::from(secs(r.duration)),
                    Cell::from(Span::styled(
                        clip(
                            &r.anomalies
                                .iter()
                                .map(|k| k.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                            28,
                        ),
                        self.severity_style(r.severity),
                    )),
                ];
                let cells: Vec<Cell> = cells
                    .into_iter()
                    .zip(keep)
                    .filter(|(_, k)| *k)
                    .map(|(c, _)| c)
                    .collect();
                let mut row = Row::new(cells);
                if pos == self.selected {
                    row = row.style(Style::default().add_modifier(Modifier::REVERSED));
                }
                Some(row)
            });
        let header: Vec<Cell> = cols
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(c, _)| {
                let sorted = self.list.sort.is_some_and(|s| {
                    s.name().eq_ignore_ascii_case(c.0)
                        || (c.0 == "#" && s.name() == "index")
                        || (c.0 == "Msgs" && s.name() == "messages")
                });
                let arrow = if sorted {
                    if self.list.reverse { "▼" } else { "▲" }
                } else {
                    ""
                };
                Cell::from(format!("{}{arrow}", c.0))
            })
            .collect();
        let widths: Vec<Constraint> = cols
            .iter()
            .zip(keep)
            .filter(|(_, k)| *k)
            .map(|(c, _)| Constraint::Length(c.1))
            .collect();
        let table = Table::new(rows, widths)
            .header(
                Row::new(header)
                    .style(Style::default().add_modifier(Modifier::BOLD | Modifier::UNDERLINED)),
            )
            .column_spacing(1);
        f.render_widget(table, area);
        if self.list.view.is_empty() {
            let msg = if self.progress.finished {
                "no call matches"
            } else {
                "reading…"
            };
            let r = Rect {
                y: area.y + 1,
                height: 1,
                ..area
            };
            f.render_widget(Paragraph::new(msg), r);
        }
    }

    fn draw_flow(&mut self, f: &mut Frame<'_>, area: Rect, calls: &[&Call]) {
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

    fn draw_stats(&self, f: &mut Frame<'_>, area: Rect) {
        let block = Block::default()
            .borders(Borders::ALL)
            .title(" statistics (as `sipscope stats`, when opened) ");
        // Sanitized line by line: the text's own line breaks are layout, not wire data (the
        // whole text at once showed them escaped, all on one line).
        let lines: Vec<Line<'_>> = self
            .stats
            .as_deref()
            .unwrap_or("")
            .lines()
            .map(|l| Line::raw(terminal(l).into_owned()))
            .collect();
        f.render_widget(Paragraph::new(lines).block(block), area);
    }

    fn draw_help(&self, f: &mut Frame<'_>, area: Rect) {
        let w = area.width.saturating_sub(4).min(100);
        let h = area.height.saturating_sub(2).min(KEYS.len() as u16 + 3);
        let r = Rect {
            x: area.x + (area.width - w) / 2,
            y: area.y + (area.height - h) / 2,
            width: w,
            height: h,
        };
        f.render_widget(Clear, r);
        let rows = KEYS.iter().map(|k| {
            Row::new(vec![
                Cell::from(k.screen),
                Cell::from(k.keys),
                Cell::from(k.does),
            ])
        });
        let table = Table::new(
            rows,
            [
                Constraint::Length(11),
                Constraint::Length(22),
                Constraint::Min(10),
            ],
        )
        .header(
            Row::new(vec!["screen", "keys", "does"])
                .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys (any key closes) "),
        );
        f.render_widget(table, r);
    }
}

const TIME_W: usize = 24;

/// The time column, dropped on narrow terminals so that the lanes fit.
fn time_width(width: u16) -> usize {
    if width >= 70 { TIME_W } else { 0 }
}

fn lane_width(l: &ladder::Layout, width: u16) -> usize {
    let n = l.columns.len().max(1);
    (usize::from(width).saturating_sub(time_width(width) + 2) / n).clamp(8, 30)
}

/// One line of the ladder: an arrow (marked `!` for an error, `~` for a lesser anomaly, `●`
/// when marked for comparison, and followed by the anomaly kinds), or a red marker line where
/// something expected was not seen.
fn ladder_line(
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
    let arrow_style = match worst {
        _ if loop_kind => st(Color::Magenta),
        Some(Severity::Error) => st(Color::Red),
        Some(Severity::Warning) => st(Color::Yellow),
        Some(_) => st(Color::Blue),
        None if a.retransmission => st(Color::DarkGray),
        None if arrow_leg(a) != 0 => st(Color::Cyan),
        None => Style::default(),
    };
    let drawn = ladder::lane_line(&flow.layout, a, lane);
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

/// SIP text with highlighting: the start line bold, header names coloured, the body dimmed.
fn sip_lines(text: &str, color: bool) -> Vec<Line<'static>> {
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

fn message_of<'a>(
    flow: &FlowState,
    calls: &'a [&'a Call],
    arrow: usize,
) -> Option<&'a crate::flow::SipMessage> {
    let a = flow.layout.arrows.get(arrow)?;
    let call = calls.get(*flow.members.get(arrow_leg(a))?)?;
    call.messages.get(arrow_message(a))
}

/// The message's text: kept in its record, else read back from the capture file.
fn raw_text(m: &crate::flow::SipMessage, raw: Option<&dyn RawSource>) -> String {
    match m.raw_or_read(raw) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(why) => format!("{}\n({why})", m.label()),
    }
}

fn draw_pane(
    f: &mut Frame<'_>,
    area: Rect,
    flow: &FlowState,
    calls: &[&Call],
    color: bool,
    raw: Option<&dyn RawSource>,
) {
    let Some(m) = message_of(flow, calls, flow.selected) else {
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

fn draw_diagnosis(f: &mut Frame<'_>, area: Rect, flow: &FlowState, color: bool) {
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
    let mut lines = vec![Line::from(Span::styled(
        terminal(&d.verdict.summary).into_owned(),
        if d.verdict.failed {
            st(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            st(Color::Green)
        },
    ))];
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
