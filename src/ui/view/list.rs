//! The call list: only the rows on screen are built.

use super::*;

impl App {
    pub(super) fn draw_list(&mut self, f: &mut Frame<'_>, area: Rect) {
        // (title, width, keep priority: lower is kept first on narrow terminals)
        let cols: [(&str, u16, u8); 16] = [
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
            ("Media", 11, 8),
            ("Anomalies", 28, 6),
        ];
        let mut order: Vec<usize> = (0..cols.len()).collect();
        order.sort_by_key(|&i| cols.get(i).map(|c| c.2));
        let mut used = 0u16;
        let mut keep = [false; 16];
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
                let cells: [Cell; 16] = [
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
                    Cell::from(clip(&r.media, 11)),
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
}
