//! The terminal UI's state and what each key does. Pure: keys and mouse events in, state and
//! [`Action`]s out; no terminal, no threads, no files (the runner in `term` performs
//! actions). The key table [`KEYS`] drives both the handlers' documentation and the help
//! overlay, so the help can never disagree with the code.

use super::model::{CallList, Filter, SortKey};
use crate::diagnose::{DiagnoseConfig, Diagnosis, diagnose};
use crate::export::ladder::{self, Layout};
use crate::flow::Call;
use crate::time::Timestamp;
use ratatui::crossterm::event::{
    KeyCode, KeyEvent, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use ratatui::layout::Rect;
use std::collections::BTreeSet;

/// One line of the help overlay: where the key works, the keys, what it does.
pub struct KeyHelp {
    pub screen: &'static str,
    pub keys: &'static str,
    pub does: &'static str,
}

/// Every key binding. sngrep's keys where sngrep has one; vim-style and arrows everywhere.
pub const KEYS: &[KeyHelp] = &[
    KeyHelp {
        screen: "everywhere",
        keys: "?",
        does: "this help",
    },
    KeyHelp {
        screen: "everywhere",
        keys: "q Esc",
        does: "back, or quit from the call list",
    },
    KeyHelp {
        screen: "everywhere",
        keys: "Ctrl-C",
        does: "quit",
    },
    KeyHelp {
        screen: "call list",
        keys: "↑ ↓ j k",
        does: "move",
    },
    KeyHelp {
        screen: "call list",
        keys: "PgUp PgDn g G Home End",
        does: "move by a page, to the top or the end",
    },
    KeyHelp {
        screen: "call list",
        keys: "Enter",
        does: "open the call's ladder",
    },
    KeyHelp {
        screen: "call list",
        keys: "Space",
        does: "select or unselect the call",
    },
    KeyHelp {
        screen: "call list",
        keys: "/ F3",
        does: "filter: words, or method: status: outcome: anomaly: from: to: addr: media: scanner; -term negates",
    },
    KeyHelp {
        screen: "call list",
        keys: "F5",
        does: "clear the filter and the selection",
    },
    KeyHelp {
        screen: "call list",
        keys: "< >",
        does: "sort by the previous or next column",
    },
    KeyHelp {
        screen: "call list",
        keys: "z",
        does: "reverse the sort order",
    },
    KeyHelp {
        screen: "call list",
        keys: "i",
        does: "statistics",
    },
    KeyHelp {
        screen: "call list",
        keys: "m",
        does: "the call's media: streams, figures and graphs",
    },
    KeyHelp {
        screen: "call list",
        keys: "s F2",
        does: "save the selected (else the shown) calls: .json .pcap .svg .mmd .md .wav, else text",
    },
    KeyHelp {
        screen: "ladder",
        keys: "↑ ↓ j k PgUp PgDn g G",
        does: "select a message",
    },
    KeyHelp {
        screen: "ladder",
        keys: "Enter F6",
        does: "show or hide the message pane",
    },
    KeyHelp {
        screen: "ladder",
        keys: "d",
        does: "SDP summary of the message, or its raw text again",
    },
    KeyHelp {
        screen: "ladder",
        keys: "Space",
        does: "mark a message; Space on a second one compares the two",
    },
    KeyHelp {
        screen: "ladder",
        keys: "s",
        does: "one column per host, or per address:port",
    },
    KeyHelp {
        screen: "ladder",
        keys: "n N",
        does: "next or previous message flagged by an anomaly",
    },
    KeyHelp {
        screen: "ladder",
        keys: "Tab D",
        does: "focus the diagnosis pane; Enter there jumps to the evidence",
    },
    KeyHelp {
        screen: "ladder",
        keys: "x",
        does: "extended flow: add the call's other legs (B2BUA, transfer)",
    },
    KeyHelp {
        screen: "ladder",
        keys: "m",
        does: "media screen, at the selected stream",
    },
    KeyHelp {
        screen: "media",
        keys: "↑ ↓ j k",
        does: "select a stream: its jitter, loss and gaps over time, RTCP beside",
    },
    KeyHelp {
        screen: "media",
        keys: "q Esc m",
        does: "back to where it was opened",
    },
    KeyHelp {
        screen: "ladder",
        keys: "s F2 (list)",
        does: "save from the call list",
    },
    KeyHelp {
        screen: "mouse",
        keys: "click, wheel",
        does: "select a row or a message, scroll",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    List,
    Flow,
    Stats,
    Media,
}

/// The media screen of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaState {
    /// Position of the call among the engine's calls, and its creation number.
    pub call: usize,
    pub seq: u64,
    /// The selected stream (index in the call's media).
    pub selected: usize,
    /// Opened from the ladder (back goes there), else from the list.
    pub from_flow: bool,
}

/// What the message pane of the ladder shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Raw,
    Sdp,
    /// The marked message compared with the selected one.
    Diff,
    Hidden,
}

/// A prompt at the bottom line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    Filter(String),
    Save(String),
}

/// The ladder of one call, with what is cached about it.
#[derive(Debug)]
pub struct FlowState {
    /// Position of the call among the engine's calls, and its creation number.
    pub call: usize,
    pub seq: u64,
    /// Linked legs (X-Call-ID / X-CID) merged into the ladder (`x`).
    pub extended: bool,
    pub selected: usize,
    pub offset: usize,
    pub pane: Pane,
    pub mark: Option<usize>,
    pub compressed: bool,
    pub diagnosis_focus: bool,
    pub diagnosis_selected: usize,
    /// Cached: rebuilt when the call grows.
    pub layout: Layout,
    pub diagnosis: Option<Diagnosis>,
    /// Extended with other legs: the verdict of the call group they make.
    pub group_verdict: Option<String>,
    pub messages: usize,
    /// Calls drawn in this ladder (the call, then linked legs when extended), by position.
    pub members: Vec<usize>,
    /// The diagnosis placed on the layout: flagged arrows, missing-message markers, and the
    /// ladder's lines in order (scrolling, `offset`, counts these lines).
    pub notes: ladder::Annotations,
}

/// One line of a ladder: an arrow, or a marker for a missing message.
pub use crate::export::ladder::Row as LadderRow;

impl FlowState {
    /// The line that draws an arrow.
    pub fn row_of(&self, arrow: usize) -> usize {
        self.notes.row_of(arrow)
    }
}

/// The file name the save prompt proposes.
pub const DEFAULT_SAVE: &str = "sipscope-calls.json";

/// Something the runner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    None,
    Quit,
    /// Save these calls (positions among the engine's calls) to a file.
    Save {
        path: String,
        calls: Vec<usize>,
    },
}

/// Loading progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
    pub finished: bool,
    /// Live capture counters, summed over the live inputs.
    pub live: Option<LiveCounts>,
}

/// What live inputs received and what was dropped (shown in the status bar).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveCounts {
    pub received: u64,
    pub dropped_kernel: u64,
    pub dropped_internal: u64,
    /// Calls forgotten after they were over, and evicted at the call limit.
    pub forgotten: u64,
    pub evicted: u64,
}

pub struct App {
    pub list: CallList,
    pub screen: Screen,
    pub selected: usize,
    pub offset: usize,
    /// Creation numbers of the calls selected with Space.
    pub marked: BTreeSet<u64>,
    pub flow: Option<FlowState>,
    pub media: Option<MediaState>,
    pub help: bool,
    /// The statistics screen's text, computed when it is opened (every call is diagnosed).
    pub stats: Option<String>,
    /// The limits reached so far ([`crate::engine::Engine::limits_line`]): in the title bar
    /// and on the statistics screen, never silent.
    pub limits: Option<String>,
    /// TLS connections not read ([`crate::engine::Engine::tls_line`]): in the title bar.
    pub tls: Option<String>,
    /// The TLS lines of the statistics screen ([`crate::export::diagnosis::write_tls`]).
    pub tls_report: String,
    pub prompt: Option<Prompt>,
    pub status: Option<String>,
    pub progress: Progress,
    pub title: String,
    pub config: DiagnoseConfig,
    pub now: Timestamp,
    pub color: bool,
    /// Where the list rows and the ladder were last drawn (for mouse clicks).
    pub(crate) list_area: Rect,
    pub(crate) ladder_area: Rect,
    /// Rows of the last drawn list or ladder page (for PgUp/PgDn).
    pub(crate) page: usize,
    /// Where raw messages are read back when the engine does not keep them (a capture file:
    /// [`crate::readback::RawReader`]).
    pub raw_source: Option<std::sync::Arc<dyn crate::flow::message::RawSource>>,
}

impl App {
    /// The title bar's and statistics screen's word on the TLS connections the engine
    /// followed (those not read, and why).
    pub fn set_tls(&mut self, engine: &crate::engine::Engine) {
        // One summary for both: it walks every connection followed.
        let summary = engine.tls_summary();
        self.tls = summary.title_line();
        let mut report = Vec::new();
        let _ = crate::export::diagnosis::write_tls(&summary, &mut report);
        self.tls_report = String::from_utf8_lossy(&report).into_owned();
    }

    pub fn new(title: String, config: DiagnoseConfig) -> App {
        App {
            list: CallList::default(),
            screen: Screen::List,
            selected: 0,
            offset: 0,
            marked: BTreeSet::new(),
            flow: None,
            media: None,
            help: false,
            stats: None,
            limits: None,
            tls: None,
            tls_report: String::new(),
            prompt: None,
            status: None,
            progress: Progress::default(),
            title,
            config,
            now: Timestamp::default(),
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            list_area: Rect::default(),
            ladder_area: Rect::default(),
            page: 10,
            raw_source: None,
        }
    }

    /// Brings the list and the open ladder up to date with the engine's calls.
    pub fn sync(&mut self, calls: &[&Call], now: Timestamp, progress: Progress) {
        self.now = now;
        // The first sync after the input ended judges the calls still open at its end.
        let ended = progress.finished && !self.progress.finished;
        self.progress = progress;
        if self.list.refresh(calls, now, &self.config, ended) {
            self.clamp_list();
        }
        if let Some(f) = &mut self.flow {
            // The call may have moved (eviction) or grown.
            let pos = match calls.get(f.call) {
                Some(c) if c.seq == f.seq => Some(f.call),
                _ => calls.iter().position(|c| c.seq == f.seq),
            };
            match pos {
                Some(p) => {
                    f.call = p;
                    let total: usize = f
                        .members
                        .iter()
                        .filter_map(|&i| calls.get(i))
                        .map(|c| c.messages.len())
                        .sum();
                    if total != f.messages {
                        rebuild_flow(f, calls, now, &self.config);
                    }
                }
                None => {
                    self.flow = None;
                    self.screen = Screen::List;
                    self.status = Some("the call was evicted (--max-calls)".into());
                }
            }
        }
        if let Some(m) = &mut self.media {
            match calls.get(m.call) {
                Some(c) if c.seq == m.seq => {}
                _ => match calls.iter().position(|c| c.seq == m.seq) {
                    Some(p) => m.call = p,
                    None => {
                        self.media = None;
                        if self.screen == Screen::Media {
                            self.screen = Screen::List;
                            self.status = Some("the call was evicted (--max-calls)".into());
                        }
                    }
                },
            }
        }
    }

    fn clamp_list(&mut self) {
        let n = self.list.view.len();
        self.selected = self.selected.min(n.saturating_sub(1));
    }

    pub fn handle_mouse(&mut self, ev: MouseEvent) {
        let inside = |r: Rect| {
            ev.column >= r.x
                && ev.column < r.x + r.width
                && ev.row >= r.y
                && ev.row < r.y + r.height
        };
        match (self.screen, ev.kind) {
            (Screen::List, MouseEventKind::ScrollDown) => self.move_list(3),
            (Screen::List, MouseEventKind::ScrollUp) => self.move_list(-3),
            (Screen::Flow, MouseEventKind::ScrollDown) => self.move_flow(3),
            (Screen::Flow, MouseEventKind::ScrollUp) => self.move_flow(-3),
            (Screen::List, MouseEventKind::Down(MouseButton::Left)) if inside(self.list_area) => {
                let row = self.offset + usize::from(ev.row - self.list_area.y);
                if row < self.list.view.len() {
                    self.selected = row;
                }
            }
            (Screen::Flow, MouseEventKind::Down(MouseButton::Left)) if inside(self.ladder_area) => {
                // The click is on a line; marker lines select nothing.
                if let Some(f) = &mut self.flow
                    && let Some(LadderRow::Arrow(a)) = f
                        .notes
                        .rows
                        .get(f.offset + usize::from(ev.row - self.ladder_area.y))
                {
                    f.selected = *a;
                }
            }
            _ => {}
        }
    }

    /// Handles one key. `calls` are the engine's calls, to open a ladder.
    pub fn handle_key(&mut self, key: KeyEvent, calls: &[&Call]) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        self.status = None;
        if self.help {
            self.help = false;
            return Action::None;
        }
        if let Some(p) = self.prompt.take() {
            return self.handle_prompt(p, key);
        }
        if key.code == KeyCode::Char('?') {
            self.help = true;
            return Action::None;
        }
        match self.screen {
            Screen::List => self.list_key(key, calls),
            Screen::Flow => {
                self.flow_key(key, calls);
                Action::None
            }
            Screen::Media => {
                self.media_key(key, calls);
                Action::None
            }
            Screen::Stats => {
                if matches!(
                    key.code,
                    KeyCode::Char('q') | KeyCode::Esc | KeyCode::Char('i')
                ) {
                    self.screen = Screen::List;
                }
                Action::None
            }
        }
    }

    fn handle_prompt(&mut self, p: Prompt, key: KeyEvent) -> Action {
        let (mut text, is_filter) = match p {
            Prompt::Filter(t) => (t, true),
            Prompt::Save(t) => (t, false),
        };
        match key.code {
            KeyCode::Esc => return Action::None,
            KeyCode::Enter if is_filter => {
                self.list.filter = Filter { text };
                self.list.rebuild_view();
                self.selected = 0;
                self.offset = 0;
                return Action::None;
            }
            KeyCode::Enter => {
                let path = match text.trim() {
                    "" => DEFAULT_SAVE.to_string(),
                    t => t.to_string(),
                };
                let mut calls = self.save_set();
                // Audio is one call's: the first selected one, else the one under the cursor.
                if path.to_ascii_lowercase().ends_with(".wav") && self.marked.is_empty() {
                    calls = self
                        .list
                        .view
                        .get(self.selected)
                        .copied()
                        .into_iter()
                        .collect();
                }
                return Action::Save { path, calls };
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) if !c.is_control() && text.chars().count() < 512 => text.push(c),
            _ => {}
        }
        self.prompt = Some(if is_filter {
            Prompt::Filter(text)
        } else {
            Prompt::Save(text)
        });
        Action::None
    }

    /// The selected calls, or every shown call when none is selected (positions).
    fn save_set(&self) -> Vec<usize> {
        let rows = &self.list.rows;
        let chosen: Vec<usize> = self
            .list
            .view
            .iter()
            .copied()
            .filter(|&i| rows.get(i).is_some_and(|r| self.marked.contains(&r.seq)))
            .collect();
        if chosen.is_empty() {
            self.list.view.clone()
        } else {
            chosen
        }
    }

    fn move_list(&mut self, by: isize) {
        let n = self.list.view.len();
        if n == 0 {
            return;
        }
        self.selected = self.selected.saturating_add_signed(by).min(n - 1);
    }

    fn list_key(&mut self, key: KeyEvent, calls: &[&Call]) -> Action {
        let page = self.page.max(1) as isize;
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Down | KeyCode::Char('j') => self.move_list(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_list(-1),
            KeyCode::PageDown => self.move_list(page),
            KeyCode::PageUp => self.move_list(-page),
            KeyCode::Home | KeyCode::Char('g') => self.selected = 0,
            KeyCode::End | KeyCode::Char('G') => {
                self.selected = self.list.view.len().saturating_sub(1)
            }
            KeyCode::Enter => self.open_flow(calls),
            KeyCode::Char('m') => {
                if let Some(&pos) = self.list.view.get(self.selected) {
                    self.open_media(calls, pos, 0, false);
                }
            }
            KeyCode::Char(' ') => {
                if let Some(r) = self.list.row_at(self.selected) {
                    let seq = r.seq;
                    if !self.marked.remove(&seq) {
                        self.marked.insert(seq);
                    }
                    self.move_list(1);
                }
            }
            KeyCode::Char('/') | KeyCode::F(3) => {
                self.prompt = Some(Prompt::Filter(self.list.filter.text.clone()));
            }
            KeyCode::F(5) => {
                self.list.filter = Filter::default();
                self.marked.clear();
                self.list.rebuild_view();
            }
            KeyCode::Char('<') | KeyCode::Char('>') => {
                let all = SortKey::ALL;
                let cur = self
                    .list
                    .sort
                    .and_then(|k| all.iter().position(|x| *x == k));
                let next = match (cur, key.code == KeyCode::Char('>')) {
                    (None, true) => 1,
                    (None, false) => all.len() - 1,
                    (Some(i), true) => (i + 1) % all.len(),
                    (Some(i), false) => (i + all.len() - 1) % all.len(),
                };
                self.list.sort = all.get(next).copied();
                self.list.rebuild_view();
                self.status = self.list.sort.map(|k| format!("sorted by {}", k.name()));
            }
            KeyCode::Char('z') => {
                self.list.reverse = !self.list.reverse;
                self.list.rebuild_view();
            }
            KeyCode::Char('i') => {
                let mut text = stats_text(calls, self.now, &self.config);
                text.push_str(&self.tls_report);
                if let Some(limits) = &self.limits {
                    text.push_str(&format!(
                        "\nLimits reached (see the Limits flags in --help): {limits}\n"
                    ));
                }
                self.stats = Some(text);
                self.screen = Screen::Stats;
            }
            KeyCode::Char('s') | KeyCode::F(2) => {
                // Empty, with the default shown as a placeholder: what is typed is the name
                // (a pre-filled name would have the typed one appended to it).
                self.prompt = Some(Prompt::Save(String::new()));
            }
            _ => {}
        }
        Action::None
    }

    fn open_flow(&mut self, calls: &[&Call]) {
        let Some(&pos) = self.list.view.get(self.selected) else {
            return;
        };
        let Some(call) = calls.get(pos) else {
            return;
        };
        let mut f = FlowState {
            call: pos,
            seq: call.seq,
            extended: false,
            selected: 0,
            offset: 0,
            pane: Pane::Raw,
            mark: None,
            compressed: false,
            diagnosis_focus: false,
            diagnosis_selected: 0,
            layout: Layout::default(),
            diagnosis: None,
            group_verdict: None,
            messages: 0,
            members: vec![pos],
            notes: ladder::Annotations::default(),
        };
        rebuild_flow(&mut f, calls, self.now, &self.config);
        self.flow = Some(f);
        self.screen = Screen::Flow;
    }

    /// Opens the media screen of the call at `pos`, stream `stream` selected.
    fn open_media(&mut self, calls: &[&Call], pos: usize, stream: usize, from_flow: bool) {
        let Some(call) = calls.get(pos) else {
            return;
        };
        if call.media.is_empty() {
            // Streams join their call when it is over (live, or still loading); until then
            // its media analysis has not reported (`MediaCapture::Off`).
            self.status = Some(match call.media_capture {
                _ if call.closed_at.is_none() && !self.progress.finished => {
                    "the call is in progress: its streams are shown once it is over".into()
                }
                crate::media::MediaCapture::Off => "media analysis is off (--no-media)".into(),
                _ => "no RTP of this call in the capture".into(),
            });
            return;
        }
        self.media = Some(MediaState {
            call: pos,
            seq: call.seq,
            selected: stream.min(call.media.len() - 1),
            from_flow,
        });
        self.screen = Screen::Media;
    }

    fn media_key(&mut self, key: KeyEvent, calls: &[&Call]) {
        let Some(m) = &mut self.media else {
            self.screen = Screen::List;
            return;
        };
        let n = calls.get(m.call).map_or(0, |c| c.media.len());
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc | KeyCode::Char('m') => {
                self.screen = if m.from_flow && self.flow.is_some() {
                    Screen::Flow
                } else {
                    Screen::List
                };
                self.media = None;
            }
            KeyCode::Down | KeyCode::Char('j') => {
                m.selected = (m.selected + 1).min(n.saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => m.selected = m.selected.saturating_sub(1),
            KeyCode::Home | KeyCode::Char('g') => m.selected = 0,
            KeyCode::End | KeyCode::Char('G') => m.selected = n.saturating_sub(1),
            _ => {}
        }
    }

    fn move_flow(&mut self, by: isize) {
        if let Some(f) = &mut self.flow {
            let n = f.layout.arrows.len();
            if n > 0 {
                f.selected = f.selected.saturating_add_signed(by).min(n - 1);
            }
        }
    }

    fn flow_key(&mut self, key: KeyEvent, calls: &[&Call]) {
        let page = self.page.max(1) as isize;
        let (now, config) = (self.now, self.config);
        let Some(f) = &mut self.flow else {
            self.screen = Screen::List;
            return;
        };
        if f.diagnosis_focus {
            let n = f.diagnosis.as_ref().map_or(0, |d| d.anomalies.len());
            match key.code {
                KeyCode::Tab | KeyCode::Char('D') | KeyCode::Esc | KeyCode::Char('q') => {
                    f.diagnosis_focus = false
                }
                KeyCode::Down | KeyCode::Char('j') => {
                    f.diagnosis_selected = (f.diagnosis_selected + 1).min(n.saturating_sub(1))
                }
                KeyCode::Up | KeyCode::Char('k') => {
                    f.diagnosis_selected = f.diagnosis_selected.saturating_sub(1)
                }
                KeyCode::Enter => {
                    // The first message of the evidence, else its first stream.
                    let anomaly = f
                        .diagnosis
                        .as_ref()
                        .and_then(|d| d.anomalies.get(f.diagnosis_selected));
                    let target = anomaly.and_then(|a| {
                        a.messages
                            .first()
                            .and_then(|&m| arrow_of(f, f.call, m))
                            .or_else(|| a.streams.first().and_then(|&s| stream_arrow(f, s)))
                    });
                    if let Some(m) = target {
                        f.selected = m;
                        f.diagnosis_focus = false;
                    }
                }
                _ => {}
            }
            return;
        }
        match key.code {
            KeyCode::Char('q') | KeyCode::Esc => {
                self.flow = None;
                self.screen = Screen::List;
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_flow(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_flow(-1),
            KeyCode::PageDown => self.move_flow(page),
            KeyCode::PageUp => self.move_flow(-page),
            KeyCode::Home | KeyCode::Char('g') => f.selected = 0,
            KeyCode::End | KeyCode::Char('G') => {
                f.selected = f.layout.arrows.len().saturating_sub(1)
            }
            KeyCode::Enter | KeyCode::F(6) => {
                f.pane = if f.pane == Pane::Hidden {
                    Pane::Raw
                } else {
                    Pane::Hidden
                };
            }
            KeyCode::Char('d') => {
                f.pane = if f.pane == Pane::Sdp {
                    Pane::Raw
                } else {
                    Pane::Sdp
                }
            }
            KeyCode::Char(' ')
                if !f
                    .layout
                    .arrows
                    .get(f.selected)
                    .is_some_and(ladder::Arrow::is_message) =>
            {
                self.status = Some("only SIP messages are compared; m shows the media".into());
            }
            KeyCode::Char(' ') => match f.mark {
                Some(m) if m != f.selected => {
                    f.pane = Pane::Diff;
                    f.mark = Some(m);
                }
                Some(_) => {
                    f.mark = None;
                    f.pane = Pane::Raw;
                }
                None => {
                    f.mark = Some(f.selected);
                    self.status = Some("marked; press Space on another message to compare".into());
                }
            },
            KeyCode::Char('s') => {
                f.compressed = !f.compressed;
                rebuild_flow(f, calls, now, &config);
            }
            KeyCode::Char('m') => {
                let stream = f
                    .layout
                    .arrows
                    .get(f.selected)
                    .filter(|a| a.leg == 0)
                    .and_then(ladder::Arrow::stream)
                    .unwrap_or(0);
                let call = f.call;
                self.open_media(calls, call, stream, true);
            }
            KeyCode::Char('x') => {
                f.extended = !f.extended;
                rebuild_flow(f, calls, now, &config);
                if f.extended && f.members.len() == 1 {
                    self.status =
                        Some("no other leg of this call found (see docs/grouping.md)".into());
                }
            }
            KeyCode::Tab | KeyCode::Char('D') => {
                if f.diagnosis
                    .as_ref()
                    .is_some_and(|d| !d.anomalies.is_empty())
                {
                    f.diagnosis_focus = true;
                } else {
                    self.status = Some("no anomaly in this call".into());
                }
            }
            KeyCode::Char('n') | KeyCode::Char('N') => {
                let flagged = flagged_arrows(f);
                let next = if key.code == KeyCode::Char('n') {
                    flagged
                        .iter()
                        .find(|&&a| a > f.selected)
                        .or(flagged.first())
                } else {
                    flagged
                        .iter()
                        .rev()
                        .find(|&&a| a < f.selected)
                        .or(flagged.last())
                };
                match next {
                    Some(&a) => f.selected = a,
                    None => self.status = Some("no message flagged by an anomaly".into()),
                }
            }
            _ => {}
        }
    }
}

/// What `sipscope stats` prints for these calls.
fn stats_text(calls: &[&Call], now: Timestamp, config: &DiagnoseConfig) -> String {
    let mut stats = crate::diagnose::stats::Stats::default();
    for c in calls {
        stats.add(c, &diagnose(c, now, config));
    }
    let mut out = Vec::new();
    // Writing to a Vec cannot fail.
    let _ = crate::export::diagnosis::write_stats(&stats.report(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The arrow that draws message `index` of the call at `call` (the ladder's own call).
pub(crate) fn arrow_of(f: &FlowState, call: usize, index: usize) -> Option<usize> {
    let leg = f.members.iter().position(|&m| m == call)?;
    f.layout
        .arrows
        .iter()
        .position(|a| a.is_message() && a.message == index && a.leg == leg)
}

/// The arrow that draws stream `index` of the ladder's own call.
pub(crate) fn stream_arrow(f: &FlowState, index: usize) -> Option<usize> {
    f.layout.arrows.iter().position(|a| {
        a.leg == 0 && matches!(a.kind, ladder::ArrowKind::Stream { .. }) && a.message == index
    })
}

/// Arrows whose message is evidence of an anomaly of the ladder's own call.
pub(crate) fn flagged_arrows(f: &FlowState) -> Vec<usize> {
    (0..f.notes.flags.len())
        .filter(|&i| !f.notes.flags_of(i).is_empty())
        .collect()
}

/// Recomputes the ladder of a flow: its members (the call, and linked legs when extended), the
/// layout (merged in time order when there are several legs; per host when compressed) and
/// the diagnosis of the call.
pub(crate) fn rebuild_flow(
    f: &mut FlowState,
    calls: &[&Call],
    now: Timestamp,
    config: &DiagnoseConfig,
) {
    let Some(call) = calls.get(f.call) else {
        return;
    };
    f.members = vec![f.call];
    if f.extended {
        f.members.extend(ladder::linked_legs(calls, f.call, now));
    }
    let legs: Vec<&Call> = f
        .members
        .iter()
        .filter_map(|&i| calls.get(i).copied())
        .collect();
    f.group_verdict = ladder::group_verdict(&legs, now);
    let mut layout = ladder::merge_legs(&legs);
    if f.compressed {
        ladder::per_host(&mut layout);
    }
    f.messages = f
        .members
        .iter()
        .filter_map(|&i| calls.get(i))
        .map(|c| c.messages.len())
        .sum();
    f.layout = layout;
    f.diagnosis = Some(diagnose(call, now, config));
    f.selected = f.selected.min(f.layout.arrows.len().saturating_sub(1));
    // Built once per rebuild: drawing a frame only reads it.
    let anomalies = f
        .diagnosis
        .as_ref()
        .map_or(&[][..], |d| d.anomalies.as_slice());
    f.notes = ladder::annotate(&f.layout, anomalies, now, |a| {
        (a.leg == 0).then_some(a.message)
    });
}
