//! The media screen: every RTP stream of a call with its figures, and for the selected stream
//! its jitter, loss and packet gaps over time (from [`crate::media::Timeline`]) drawn with
//! ratatui's `Chart`, the RTCP-reported figures beside the measured ones.

use super::*;
use crate::media::Stream;
use ratatui::symbols::Marker;
use ratatui::widgets::{Axis, Chart, Dataset, GraphType};

/// The figures of a stream as lines of text (the media screen and the ladder's pane).
pub(super) fn stream_lines(s: &Stream) -> Vec<String> {
    let mut lines = vec![
        format!(
            "{} → {}  ssrc 0x{:08x}  {}",
            s.src,
            s.dst,
            s.ssrc,
            s.direction.as_str()
        ),
        format!(
            "codec {} (pt {}, {} Hz)  {} packets, {} expected, {} lost ({:.2}%)",
            terminal(s.codec.as_deref().unwrap_or("?")),
            s.payload_type,
            s.clock_rate,
            s.packets,
            s.expected,
            s.lost,
            s.loss_percent()
        ),
        format!(
            "jitter mean {:.2} ms, max {:.2} ms  gap mean {:.2} ms, max {:.2} ms",
            s.jitter_mean_ms, s.jitter_max_ms, s.mean_delta_ms, s.max_delta_ms
        ),
        format!(
            "{:.2} s from {}  duplicates {}  out of order {}{}",
            s.end.seconds_since(s.start).max(0.0),
            time_of_day(s.start),
            s.duplicates,
            s.out_of_order,
            match (s.r_factor, s.mos) {
                (Some(r), Some(m)) => format!("  R {r:.1}  MOS {m:.2}"),
                _ => String::new(),
            }
        ),
    ];
    if let Some(a) = s.advertised.filter(|a| *a != s.dst) {
        lines.push(format!("SDP advertised {a} (sent to {})", s.dst));
    }
    if s.after_bye > 0 {
        lines.push(format!("{} packets after the BYE", s.after_bye));
    }
    if !s.rtcp.is_empty() {
        let fractions: Vec<f64> = s.rtcp.iter().filter_map(|r| r.fraction_lost).collect();
        let rtts: Vec<f64> = s.rtcp.iter().filter_map(|r| r.round_trip_ms).collect();
        let max = |v: &[f64]| {
            v.iter()
                .copied()
                .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))))
        };
        lines.push(format!(
            "RTCP: {} reports, reported loss max {}, jitter max {}, RTT max {}",
            s.rtcp.len(),
            max(&fractions).map_or("-".into(), |f| format!("{:.1}%", f * 100.0)),
            max(&s
                .rtcp
                .iter()
                .filter_map(|r| r.jitter_ms)
                .collect::<Vec<_>>())
            .map_or("-".into(), |j| format!("{j:.1} ms")),
            max(&rtts).map_or("-".into(), |r| format!("{r:.1} ms")),
        ));
    }
    if !s.dtmf.is_empty() {
        let digits: String = s.dtmf.iter().map(|d| d.digit.as_str()).collect();
        lines.push(format!("DTMF {}", terminal(&clip(&digits, 64))));
    }
    lines
}

fn time_of_day(t: crate::time::Timestamp) -> String {
    let s = t.to_rfc3339();
    s.get(11..23).map(str::to_string).unwrap_or(s)
}

impl App {
    pub(super) fn draw_media(&mut self, f: &mut Frame<'_>, area: Rect, calls: &[&Call]) {
        let Some(state) = &self.media else {
            return;
        };
        let Some(call) = calls.get(state.call).copied() else {
            return;
        };
        let n = call.media.len();
        let table_h = (n.min(8) as u16 + 3).min(area.height / 3).max(3);
        let [top, rest] =
            Layout::vertical([Constraint::Length(table_h), Constraint::Min(1)]).areas(area);
        self.draw_stream_table(f, top, call, state.selected);
        let Some(s) = call.media.get(state.selected) else {
            return;
        };
        let figures = stream_lines(s);
        let fig_h = (figures.len() as u16 + 2).min(rest.height / 3);
        let [text, graphs] =
            Layout::vertical([Constraint::Length(fig_h), Constraint::Min(1)]).areas(rest);
        f.render_widget(
            Paragraph::new(figures.into_iter().map(Line::from).collect::<Vec<_>>()).block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" stream (measured; RTCP as the endpoints reported it) "),
            ),
            text,
        );
        if graphs.height < 6 {
            return;
        }
        let [jitter, loss, gaps] = Layout::vertical([
            Constraint::Percentage(36),
            Constraint::Percentage(32),
            Constraint::Percentage(32),
        ])
        .areas(graphs);
        self.draw_graphs(f, s, jitter, loss, gaps);
    }

    fn draw_stream_table(&self, f: &mut Frame<'_>, area: Rect, call: &Call, selected: usize) {
        let rows = call.media.iter().enumerate().map(|(i, s)| {
            let quality = crate::export::ladder::Quality::of(s);
            let style = self.style(match quality {
                crate::export::ladder::Quality::Good => Color::Green,
                crate::export::ladder::Quality::Fair => Color::Yellow,
                crate::export::ladder::Quality::Poor => Color::Red,
            });
            let row = Row::new(vec![
                Cell::from(match s.direction {
                    crate::media::Direction::CallerToCallee => "caller→",
                    crate::media::Direction::CalleeToCaller => "←callee",
                    crate::media::Direction::Unknown => "?",
                }),
                Cell::from(format!("{} → {}", s.src, s.dst)),
                Cell::from(clip(s.codec.as_deref().unwrap_or("?"), 10)),
                Cell::from(s.packets.to_string()),
                Cell::from(format!("{} ({:.1}%)", s.lost, s.loss_percent())),
                Cell::from(format!("{:.1}/{:.1}", s.jitter_mean_ms, s.jitter_max_ms)),
                Cell::from(format!("{:.0}", s.max_delta_ms)),
                Cell::from(Span::styled(
                    s.mos.map_or_else(|| "-".into(), |m| format!("{m:.2}")),
                    style,
                )),
                Cell::from(s.rtcp.len().to_string()),
            ]);
            if i == selected {
                row.style(Style::default().add_modifier(Modifier::REVERSED))
            } else {
                row
            }
        });
        let table = Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Min(30),
                Constraint::Length(10),
                Constraint::Length(7),
                Constraint::Length(12),
                Constraint::Length(11),
                Constraint::Length(7),
                Constraint::Length(5),
                Constraint::Length(5),
            ],
        )
        .header(
            Row::new(vec![
                "dir",
                "stream",
                "codec",
                "pkts",
                "lost",
                "jitter ms",
                "gap ms",
                "MOS",
                "RTCP",
            ])
            .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(Block::default().borders(Borders::ALL).title(format!(
            " media · {} · {} stream{} ",
            clip(&call.call_id, 50),
            call.media.len(),
            if call.media.len() == 1 { "" } else { "s" }
        )));
        f.render_widget(table, area);
    }

    fn draw_graphs(&self, f: &mut Frame<'_>, s: &Stream, jitter: Rect, loss: Rect, gaps: Rect) {
        let t = &s.timeline;
        let width = f64::from(t.width_s);
        let span = (t.buckets.len() as f64 * width).max(width);
        let since = |time: crate::time::Timestamp| time.seconds_since(s.start).max(0.0);
        let measured_jitter: Vec<(f64, f64)> = t
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (i as f64 * width, f64::from(b.jitter_max_ms)))
            .collect();
        let reported_jitter: Vec<(f64, f64)> = s
            .rtcp
            .iter()
            .filter_map(|r| Some((since(r.time), r.jitter_ms?)))
            .collect();
        let loss_pct: Vec<(f64, f64)> = t
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let pct = if b.expected == 0 {
                    0.0
                } else {
                    f64::from(b.lost()) * 100.0 / f64::from(b.expected)
                };
                (i as f64 * width, pct)
            })
            // A bar of zero would still draw a block: slices without loss are left out.
            .filter(|p| p.1 > 0.0)
            .collect();
        let reported_loss: Vec<(f64, f64)> = s
            .rtcp
            .iter()
            .filter_map(|r| Some((since(r.time), r.fraction_lost? * 100.0)))
            .collect();
        let top = |v: &[(f64, f64)], w: &[(f64, f64)], floor: f64| {
            v.iter().chain(w).map(|p| p.1).fold(floor, f64::max).ceil()
        };
        let x_axis = || {
            Axis::default().bounds([0.0, span]).labels(vec![
                Span::raw("0 s"),
                Span::raw(format!("{:.0} s", span / 2.0)),
                Span::raw(format!("{span:.0} s")),
            ])
        };
        let jmax = top(&measured_jitter, &reported_jitter, 1.0);
        let chart = Chart::new(vec![
            Dataset::default()
                .name("measured")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(self.style(Color::Cyan))
                .data(&measured_jitter),
            Dataset::default()
                .name("RTCP")
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(self.style(Color::Magenta))
                .data(&reported_jitter),
        ])
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" jitter, ms (max per {} s) ", t.width_s)),
        )
        .x_axis(x_axis())
        .y_axis(
            Axis::default()
                .bounds([0.0, jmax])
                .labels(vec![Span::raw("0"), Span::raw(format!("{jmax:.0}"))]),
        );
        f.render_widget(chart, jitter);
        let lmax = top(&loss_pct, &reported_loss, 1.0).min(100.0);
        let chart = Chart::new(vec![
            Dataset::default()
                .name("measured")
                .marker(Marker::HalfBlock)
                .graph_type(GraphType::Bar)
                .style(self.style(Color::Red))
                .data(&loss_pct),
            Dataset::default()
                .name("RTCP")
                .marker(Marker::Dot)
                .graph_type(GraphType::Scatter)
                .style(self.style(Color::Magenta))
                .data(&reported_loss),
        ])
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" loss, % (per {} s) ", t.width_s)),
        )
        .x_axis(x_axis())
        .y_axis(
            Axis::default()
                .bounds([0.0, lmax])
                .labels(vec![Span::raw("0"), Span::raw(format!("{lmax:.0}"))]),
        );
        f.render_widget(chart, loss);
        let gap_values: Vec<(f64, f64)> = t
            .buckets
            .iter()
            .enumerate()
            .map(|(i, b)| (i as f64 * width, f64::from(b.gap_max_ms.max(0.0))))
            .collect();
        let gmax = top(&gap_values, &[], 1.0);
        let chart = Chart::new(vec![
            Dataset::default()
                .marker(Marker::HalfBlock)
                .graph_type(GraphType::Bar)
                .style(self.style(Color::Yellow))
                .data(&gap_values),
        ])
        .block(Block::default().borders(Borders::ALL).title(format!(
            " longest gap between packets, ms (per {} s) ",
            t.width_s
        )))
        .x_axis(x_axis())
        .y_axis(
            Axis::default()
                .bounds([0.0, gmax])
                .labels(vec![Span::raw("0"), Span::raw(format!("{gmax:.0}"))]),
        );
        f.render_widget(chart, gaps);
    }
}
