//! The call list as the terminal UI shows it: one [`Row`] per call, computed once per change of
//! the call (summary, diagnosis, the text a filter searches), and a view of row positions,
//! filtered and sorted. Rows are plain data so that moving through a million of them costs
//! nothing; only the visible slice is drawn. Owns no terminal and no engine.

use crate::diagnose::{AnomalyKind, DiagnoseConfig, Severity, diagnose};
use crate::flow::{Call, Outcome};
use crate::time::Timestamp;

/// One call, ready to draw. Strings are as they came off the wire: the view sanitizes them.
#[derive(Debug, Clone)]
pub struct Row {
    /// The call's creation order in the engine (stable identity while loading).
    pub seq: u64,
    pub call_id: String,
    pub start: Timestamp,
    pub from: String,
    pub to: String,
    pub src: String,
    pub dst: String,
    pub method: String,
    pub transport: &'static str,
    pub messages: usize,
    /// The engine had closed the call when the row was made: it will not change again.
    pub closed: bool,
    pub outcome: Outcome,
    pub status: Option<u16>,
    pub setup: Option<f64>,
    pub duration: Option<f64>,
    /// Anomaly kinds, each once, in catalogue order.
    pub anomalies: Vec<AnomalyKind>,
    /// The worst severity among the anomalies.
    pub severity: Option<Severity>,
    pub failed: bool,
    /// Who sent the call's first request.
    pub originator: Option<std::net::IpAddr>,
    /// Begun by a source found scanning ([`CallList::set_scanners`]).
    pub scanner: bool,
    /// The call's RTP at a glance, as the `calls` table's MEDIA column.
    pub media: String,
    /// Streams, and the lowest MOS among them.
    pub streams: usize,
    pub worst_mos: Option<f64>,
    /// Lower-cased text that the free-text filter searches.
    haystack: String,
}

fn who(p: &crate::flow::Party) -> String {
    p.user.as_ref().unwrap_or(&p.uri).to_string()
}

impl Row {
    pub fn new(call: &Call, now: Timestamp, config: &DiagnoseConfig) -> Row {
        let d = diagnose(call, now, config);
        let s = &d.summary;
        let first = call.messages.first();
        let mut anomalies: Vec<AnomalyKind> = d.anomalies.iter().map(|a| a.kind).collect();
        anomalies.sort_unstable();
        anomalies.dedup();
        let severity = d.anomalies.iter().map(|a| a.severity).max();
        let mut row = Row {
            seq: call.seq,
            call_id: call.call_id.to_string(),
            start: call.start(),
            from: who(&call.from),
            to: who(&call.to),
            src: first.map(|m| m.src.to_string()).unwrap_or_default(),
            dst: first.map(|m| m.dst.to_string()).unwrap_or_default(),
            method: call.first_method().to_string(),
            transport: first.map_or("", |m| m.transport.as_str()),
            messages: call.messages.len(),
            closed: call.closed_at.is_some(),
            outcome: s.outcome,
            status: s.final_status,
            setup: s.setup_time,
            duration: s.duration,
            anomalies,
            severity,
            failed: d.verdict.failed,
            originator: call.originator(),
            scanner: false,
            media: crate::export::table::media_cell(call).to_string(),
            streams: call.media.len(),
            worst_mos: call
                .media
                .iter()
                .filter_map(|s| s.mos)
                .fold(None, |a: Option<f64>, m| Some(a.map_or(m, |a| a.min(m)))),
            haystack: String::new(),
        };
        let mut hay = format!(
            "{} {} {} {} {} {} {} {} {}",
            row.call_id,
            row.from,
            row.to,
            call.from.uri,
            call.to.uri,
            row.src,
            row.dst,
            row.method,
            row.outcome.as_str()
        );
        if let Some(st) = row.status {
            hay.push_str(&format!(" {st}"));
        }
        for k in &row.anomalies {
            hay.push(' ');
            hay.push_str(k.as_str());
        }
        row.haystack = hay.to_lowercase();
        row
    }
}

/// A column the list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Index,
    Start,
    From,
    To,
    Source,
    Destination,
    CallId,
    Method,
    Messages,
    Outcome,
    Status,
    Setup,
    Duration,
    Anomalies,
}

impl SortKey {
    pub const ALL: [SortKey; 14] = [
        SortKey::Index,
        SortKey::Start,
        SortKey::From,
        SortKey::To,
        SortKey::Source,
        SortKey::Destination,
        SortKey::CallId,
        SortKey::Method,
        SortKey::Messages,
        SortKey::Outcome,
        SortKey::Status,
        SortKey::Setup,
        SortKey::Duration,
        SortKey::Anomalies,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SortKey::Index => "index",
            SortKey::Start => "start",
            SortKey::From => "from",
            SortKey::To => "to",
            SortKey::Source => "source",
            SortKey::Destination => "destination",
            SortKey::CallId => "call-id",
            SortKey::Method => "method",
            SortKey::Messages => "messages",
            SortKey::Outcome => "outcome",
            SortKey::Status => "status",
            SortKey::Setup => "setup",
            SortKey::Duration => "duration",
            SortKey::Anomalies => "anomalies",
        }
    }

    /// What a row is sorted by, then its creation number. Taken once per row before sorting
    /// (`sort_by_cached_key`): comparing rows directly read two scattered rows per comparison,
    /// about 0.65 s for a million rows.
    fn key(self, r: &Row) -> (SortValue<'_>, u64) {
        use SortValue::{Int, Text};
        // f64 in an order-preserving integer (the transform behind `f64::total_cmp`).
        let f = |x: Option<f64>| {
            let bits = x.unwrap_or(f64::NEG_INFINITY).to_bits() as i64;
            Int(bits ^ (((bits >> 63) as u64) >> 1) as i64)
        };
        let v = match self {
            SortKey::Index => Int(0),
            SortKey::Start => Int(r.start.0),
            SortKey::From => Text(&r.from),
            SortKey::To => Text(&r.to),
            SortKey::Source => Text(&r.src),
            SortKey::Destination => Text(&r.dst),
            SortKey::CallId => Text(&r.call_id),
            SortKey::Method => Text(&r.method),
            SortKey::Messages => Int(r.messages as i64),
            SortKey::Outcome => Text(r.outcome.as_str()),
            SortKey::Status => Int(r.status.map_or(-1, i64::from)),
            SortKey::Setup => f(r.setup),
            SortKey::Duration => f(r.duration),
            SortKey::Anomalies => {
                Int(r.severity.map_or(-1, |s| s as i64) * 1_000_000 + r.anomalies.len() as i64)
            }
        };
        (v, r.seq)
    }
}

/// A sort key's value: a number or a text.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum SortValue<'a> {
    Int(i64),
    Text(&'a str),
}

/// A display filter: free text (every word must appear somewhere in the call) and field
/// filters written `field:value` (`method:`, `status:`, `outcome:`, `anomaly:`, `from:`, `to:`,
/// `addr:`, `media:`), all of which must match. The word `scanner` matches calls begun by a
/// source found scanning. `media:` takes `rtp` (the call has streams), `none`, `poor` (a
/// stream's MOS under 3.6), `bad` (any media anomaly), or part of a media anomaly's name
/// (`one_way`, `loss`, `jitter`, `timeout`, `no_media`, `codec`, `after_bye`, `address`). A term with a leading `-` matches the calls the term does not (`-scanner` hides
/// the scanners' probes, `-method:options` the OPTIONS).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub text: String,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.text.trim().is_empty()
    }

    pub fn matches(&self, row: &Row) -> bool {
        self.text.split_whitespace().all(|term| {
            let term = term.to_lowercase();
            match term.strip_prefix('-') {
                Some(rest) if !rest.is_empty() => !term_matches(rest, row),
                _ => term_matches(&term, row),
            }
        })
    }
}

fn term_matches(term: &str, row: &Row) -> bool {
    if term == "scanner" {
        return row.scanner;
    }
    match term.split_once(':') {
        Some(("method", v)) => row.method.eq_ignore_ascii_case(v),
        Some(("status", v)) => status_matches(row.status, v),
        Some(("outcome", v)) => row.outcome.as_str() == v,
        Some(("anomaly", v)) => row
            .anomalies
            .iter()
            .any(|k| k.as_str() == v || (v == "any")),
        Some(("from", v)) => row.from.to_lowercase().contains(v),
        Some(("to", v)) => row.to.to_lowercase().contains(v),
        Some(("addr", v)) => row.src.contains(v) || row.dst.contains(v),
        Some(("media", v)) => media_matches(row, v),
        _ => row.haystack.contains(term),
    }
}

fn media_matches(row: &Row, v: &str) -> bool {
    let mut media = row.anomalies.iter().filter(|k| k.is_media());
    match v {
        "rtp" => row.streams > 0,
        "none" => row.streams == 0,
        "poor" => row.worst_mos.is_some_and(|m| m < 3.6),
        "bad" | "any" => media.next().is_some(),
        "" => false,
        v => media.any(|k| k.as_str().contains(v)),
    }
}

fn is_scanner(sorted: &[std::net::IpAddr], ip: Option<std::net::IpAddr>) -> bool {
    ip.is_some_and(|ip| sorted.binary_search(&ip).is_ok())
}

fn status_matches(status: Option<u16>, v: &str) -> bool {
    match (status, v.as_bytes()) {
        (None, _) => v == "none",
        (Some(s), [c, b'x', b'x']) => s / 100 == u16::from(c.wrapping_sub(b'0')),
        (Some(s), _) => v.parse::<u16>().is_ok_and(|x| x == s),
    }
}

/// Every row, and the positions of those shown, in display order.
#[derive(Debug, Default)]
pub struct CallList {
    pub rows: Vec<Row>,
    /// Positions into `rows`, filtered and sorted.
    pub view: Vec<usize>,
    pub sort: Option<SortKey>,
    pub reverse: bool,
    pub filter: Filter,
    /// The sources found scanning, sorted.
    scanners: Vec<std::net::IpAddr>,
}

impl CallList {
    /// Brings the rows up to date with the engine's calls (in creation order). Only calls that
    /// changed since the last refresh are diagnosed again: a new message, or closed by the
    /// engine since (its outcome is then final); with `open_too`, every call still open as
    /// well (at the end of a file, when capture time has reached its end). Returns whether
    /// anything changed.
    pub fn refresh(
        &mut self,
        calls: &[&Call],
        now: Timestamp,
        config: &DiagnoseConfig,
        open_too: bool,
    ) -> bool {
        let mut changed = calls.len() != self.rows.len();
        self.rows.truncate(calls.len());
        for (i, call) in calls.iter().enumerate() {
            let closed = call.closed_at.is_some();
            match self.rows.get_mut(i) {
                Some(r)
                    if r.seq == call.seq
                        && r.messages == call.messages.len()
                        && r.streams == call.media.len()
                        && r.closed == closed
                        && (closed || !open_too) => {}
                Some(r) => {
                    *r = Row::new(call, now, config);
                    r.scanner = is_scanner(&self.scanners, r.originator);
                    changed = true;
                }
                None => {
                    let mut r = Row::new(call, now, config);
                    r.scanner = is_scanner(&self.scanners, r.originator);
                    self.rows.push(r);
                    changed = true;
                }
            }
        }
        if changed {
            self.rebuild_view();
        }
        changed
    }

    /// The sources found scanning so far ([`crate::engine::Engine::scanning_sources`]): marks
    /// their calls' rows. Returns whether any row changed.
    pub fn set_scanners(&mut self, mut sources: Vec<std::net::IpAddr>) -> bool {
        sources.sort_unstable();
        if sources == self.scanners {
            return false;
        }
        self.scanners = sources;
        for r in &mut self.rows {
            r.scanner = is_scanner(&self.scanners, r.originator);
        }
        self.rebuild_view();
        true
    }

    /// Applies the filter and the sort order again.
    pub fn rebuild_view(&mut self) {
        let rows = &self.rows;
        self.view = rows
            .iter()
            .enumerate()
            .filter(|(_, r)| self.filter.matches(r))
            .map(|(i, _)| i)
            .collect();
        if let Some(key) = self.sort {
            self.view
                .sort_by_cached_key(|&i| rows.get(i).map(|r| key.key(r)));
        }
        if self.reverse {
            self.view.reverse();
        }
    }

    pub fn row_at(&self, view_pos: usize) -> Option<&Row> {
        self.view.get(view_pos).and_then(|&i| self.rows.get(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: &str, status: Option<u16>, outcome: Outcome) -> Row {
        let mut r = Row {
            seq: 0,
            call_id: "abc@host".into(),
            start: Timestamp(0),
            from: "alice".into(),
            to: "bob".into(),
            src: "10.0.0.1:5060".into(),
            dst: "10.0.0.2:5060".into(),
            method: method.into(),
            transport: "UDP",
            messages: 3,
            closed: false,
            outcome,
            status,
            setup: None,
            duration: None,
            anomalies: vec![AnomalyKind::MissingAck],
            severity: Some(Severity::Error),
            failed: true,
            originator: Some(std::net::IpAddr::from([10, 0, 0, 1])),
            scanner: false,
            media: String::new(),
            streams: 0,
            worst_mos: None,
            haystack: String::new(),
        };
        r.haystack = format!("{} {} {} missing_ack", r.call_id, r.from, r.to);
        r
    }

    /// `media:` words: streams present or not, a poor MOS, and media anomalies by part of
    /// their name; a signalling anomaly is not a media one.
    #[test]
    fn media_filters() {
        let f = |text: &str| Filter { text: text.into() };
        let mut r = row("INVITE", Some(200), Outcome::Answered);
        assert!(f("media:none").matches(&r) && !f("media:rtp").matches(&r));
        assert!(!f("media:bad").matches(&r), "missing_ack is not media");
        r.streams = 2;
        r.worst_mos = Some(3.2);
        r.anomalies.push(AnomalyKind::OneWayMedia);
        assert!(f("media:rtp").matches(&r) && f("media:poor").matches(&r));
        assert!(f("media:one_way").matches(&r) && f("media:bad").matches(&r));
        assert!(!f("media:loss").matches(&r) && f("-media:loss").matches(&r));
        assert!(!f("media:").matches(&r));
    }

    #[test]
    fn field_filters() {
        let r = row("INVITE", Some(486), Outcome::Busy);
        let f = |t: &str| Filter { text: t.into() }.matches(&r);
        assert!(f(""));
        assert!(f("method:invite status:4xx"));
        assert!(f("status:486 outcome:busy"));
        assert!(!f("status:5xx"));
        assert!(f("anomaly:missing_ack"));
        assert!(f("anomaly:any"));
        assert!(!f("anomaly:glare"));
        assert!(f("from:ali to:BOB addr:10.0.0.2"));
        assert!(f("ABC@"));
        assert!(!f("carol"));
        let none = row("INVITE", None, Outcome::InProgress);
        assert!(
            Filter {
                text: "status:none".into()
            }
            .matches(&none)
        );
    }

    #[test]
    fn scanners_are_marked_and_hidden_with_one_word() {
        let mut list = CallList::default();
        for (seq, ip) in [
            (0, [10, 0, 0, 1]),
            (1, [203, 0, 113, 7]),
            (2, [203, 0, 113, 7]),
        ] {
            let mut r = row("OPTIONS", Some(404), Outcome::Failed);
            r.seq = seq;
            r.originator = Some(std::net::IpAddr::from(ip));
            list.rows.push(r);
        }
        list.rebuild_view();
        assert!(list.set_scanners(vec![std::net::IpAddr::from([203, 0, 113, 7])]));
        assert!(!list.set_scanners(vec![std::net::IpAddr::from([203, 0, 113, 7])]));
        let shown = |list: &mut CallList, text: &str| {
            list.filter = Filter { text: text.into() };
            list.rebuild_view();
            list.view
                .iter()
                .map(|&i| list.rows[i].seq)
                .collect::<Vec<_>>()
        };
        assert_eq!(shown(&mut list, "-scanner"), [0]);
        assert_eq!(shown(&mut list, "scanner"), [1, 2]);
        assert_eq!(shown(&mut list, "-method:options"), Vec::<u64>::new());
        assert_eq!(shown(&mut list, "-carol"), [0, 1, 2]);
    }

    #[test]
    fn sorting_orders_numbers_missing_values_and_ties() {
        let mut rows = Vec::new();
        for (seq, status, setup) in [
            (0, Some(486), Some(2.5)),
            (1, None, None),
            (2, Some(200), Some(-1.0)),
            (3, Some(200), Some(0.25)),
        ] {
            let mut r = row("INVITE", status, Outcome::Busy);
            r.seq = seq;
            r.setup = setup;
            rows.push(r);
        }
        let mut list = CallList {
            rows,
            view: Vec::new(),
            sort: Some(SortKey::Status),
            reverse: false,
            filter: Filter::default(),
            scanners: Vec::new(),
        };
        list.rebuild_view();
        // No status first, then by status, ties by creation order.
        assert_eq!(list.view, vec![1, 2, 3, 0]);
        list.sort = Some(SortKey::Setup);
        list.rebuild_view();
        // Missing first, negative before positive (the bit transform keeps f64 order).
        assert_eq!(list.view, vec![1, 2, 3, 0]);
        list.reverse = true;
        list.rebuild_view();
        assert_eq!(list.view, vec![0, 3, 2, 1]);
    }
}
