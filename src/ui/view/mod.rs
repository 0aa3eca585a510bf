//! Draws the [`App`] with ratatui: title bar with the loading gauge, the call list (only the
//! visible rows are built, so a million calls draw as fast as ten), the ladder with anomalies
//! flagged in place, the message pane (raw with SIP highlighting, SDP, diff), the diagnosis
//! pane, statistics and the help overlay. Every wire string goes through [`sanitize`] here.
//! Reads the app and the calls; changes only scroll offsets and the areas kept for the mouse.
//! This file holds the frame (title, bottom line), statistics and help; one file per screen
//! besides: the list (`list`), the ladder (`flow_screen`) and its message pane (`pane`).

mod flow_screen;
mod list;
mod media_screen;
mod pane;

use crate::diagnose::{AnomalyKind, Severity};
use crate::export::ladder;
use crate::flow::message::RawSource;
use crate::flow::{Call, Outcome};
use crate::sanitize::{clip, terminal};
use crate::ui::app::{App, FlowState, KEYS, LadderRow, Pane, Prompt, Screen};
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
            Screen::Media => self.draw_media(f, body, calls),
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
        if let Some(tls) = &self.tls {
            spans.push(Span::styled(
                format!("  {}", clip(tls, 60)),
                self.style(Color::Yellow),
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
                    "   Enter apply · Esc cancel · method: status: outcome: anomaly: from: to: addr: media:one_way scanner -term",
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
                    "▏   .json .pcap .svg .mmd · .md: report · .wav: audio of the first call · other: text · Enter save · Esc cancel",
                ),
            ]),
            (None, Some(s)) => Line::from(Span::styled(
                terminal(s).into_owned(),
                self.style(Color::Yellow),
            )),
            (None, None) => Line::from(match self.screen {
                Screen::List => {
                    "Enter ladder · m media · Space select · / filter · < > sort · i stats · s save · ? help · q quit"
                }
                Screen::Flow => {
                    "↑↓ message · Enter pane · d SDP · Space compare · s hosts · n next anomaly · Tab diagnosis · x legs · m media · q back"
                }
                Screen::Media => "↑↓ stream · q back",
                Screen::Stats => "q back",
            }),
        };
        f.render_widget(
            Paragraph::new(line).style(Style::default().add_modifier(Modifier::DIM)),
            area,
        );
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
