//! The call list: one row per call, as an aligned text table, CSV or JSON. Every wire string is
//! sanitized for the terminal (text) or against formula injection (CSV).

use crate::flow::Call;
use crate::sanitize;
use crate::time::Timestamp;
use compact_str::CompactString;
use serde::Serialize;
use std::io::{self, Write};
use std::sync::Arc;

/// One call as a row. Rows of a whole capture are kept until the table is written, so they
/// hold little: the time as a number, the Call-ID shared with the call, short strings inline.
#[derive(Debug, Clone, Serialize)]
pub struct CallRow {
    pub index: usize,
    #[serde(serialize_with = "rfc3339")]
    pub start: Timestamp,
    #[serde(serialize_with = "text")]
    pub call_id: Arc<str>,
    pub from: CompactString,
    pub to: CompactString,
    pub first_method: CompactString,
    pub messages: usize,
    pub outcome: &'static str,
    pub final_status: Option<u16>,
    pub final_reason: Option<CompactString>,
    pub setup_time: Option<f64>,
    pub duration: Option<f64>,
    /// Begun by a source found scanning ([`crate::flow::scanner`]); set by
    /// [`CallRow::mark_scanners`] once every call has been seen.
    pub scanner: bool,
    /// Who sent the call's first request, for [`CallRow::mark_scanners`].
    #[serde(skip)]
    pub originator: Option<std::net::IpAddr>,
    /// The call's RTP at a glance ([`media_cell`]); empty without streams.
    pub media: CompactString,
    /// With `--by-group`: the call's group among the document's `groups` (left out for a
    /// call of one leg).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<usize>,
}

/// A call's streams in a few characters: `2↔ 0.3%` (streams, both directions, the worst
/// loss), `1→ one-way` (one direction only), `1?` (direction unknown).
pub fn media_cell(call: &Call) -> CompactString {
    use crate::media::Direction;
    let streams = call.media.iter().filter(|s| s.packets > 0);
    let n = streams.clone().count();
    if n == 0 {
        return CompactString::default();
    }
    let has = |d: Direction| streams.clone().any(|s| s.direction == d);
    let worst = streams
        .clone()
        .map(crate::media::Stream::loss_percent)
        .fold(0.0, f64::max);
    match (
        has(Direction::CallerToCallee),
        has(Direction::CalleeToCaller),
    ) {
        (true, true) => compact_str::format_compact!("{n}↔ {worst:.1}%"),
        (true, false) | (false, true) => compact_str::format_compact!("{n}→ one-way"),
        (false, false) => compact_str::format_compact!("{n}?"),
    }
}

fn rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&t.to_rfc3339())
}

fn text<S: serde::Serializer>(v: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(v)
}

/// Who, as a person would read it: the user part, else the URI.
fn who(p: &crate::flow::Party) -> CompactString {
    p.user.as_ref().unwrap_or(&p.uri).clone()
}

impl CallRow {
    pub fn new(index: usize, call: &Call, now: Timestamp) -> CallRow {
        let s = call.summary(now);
        CallRow {
            index,
            start: call.start(),
            call_id: Arc::clone(&call.call_id),
            from: who(&call.from),
            to: who(&call.to),
            first_method: CompactString::from(call.first_method()),
            messages: call.messages.len(),
            outcome: s.outcome.as_str(),
            final_status: s.final_status,
            final_reason: s.final_reason,
            setup_time: s.setup_time,
            duration: s.duration,
            scanner: false,
            originator: call.originator(),
            media: media_cell(call),
            group: None,
        }
    }

    /// Marks the rows of calls begun by a scanning source.
    pub fn mark_scanners(rows: &mut [CallRow], table: &crate::flow::scanner::ScannerTable) {
        for r in rows {
            r.scanner = r.originator.is_some_and(|ip| table.is_scanner(ip));
        }
    }
}

/// Rows gathered as calls end, numbered and put in the order the calls began. They come
/// nearly in that order but not quite, and a row is 200 bytes. So they are kept in chunks of a
/// fixed size and moved once, into place, by their sorted keys: a growing vector copied every
/// row at each doubling, into fresh memory, and sorting the rows themselves moved each one
/// a dozen times, all of it at the end of the run when nothing else is left to do. (Handing
/// them out by reference in key order instead made every later pass over them a jump through
/// memory.)
#[derive(Default)]
pub struct CallRows {
    chunks: Vec<Vec<Option<CallRow>>>,
    /// (key, position in `chunks`) per row.
    keys: Vec<(u64, usize)>,
}

const CHUNK: usize = 4096;

impl CallRows {
    /// A row for the call created `seq`-th ([`Call::seq`]).
    pub fn push(&mut self, seq: u64, row: CallRow) {
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        if let Some(chunk) = self.chunks.last_mut() {
            self.keys.push((seq, self.keys.len()));
            chunk.push(Some(row));
        }
    }

    /// The rows in order of `seq`, numbered from 1.
    pub fn into_rows(mut self) -> Vec<CallRow> {
        // Keys are distinct (one row per call), so an unstable sort gives the one order.
        self.keys.sort_unstable();
        let mut rows = Vec::with_capacity(self.keys.len());
        for (_, at) in self.keys {
            let slot = self
                .chunks
                .get_mut(at / CHUNK)
                .and_then(|c| c.get_mut(at % CHUNK));
            if let Some(mut row) = slot.and_then(Option::take) {
                row.index = rows.len() + 1;
                rows.push(row);
            }
        }
        rows
    }
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.3}")).unwrap_or_default()
}

/// `2026-11-22T04:21:51.123456Z` shown as `2026-11-22 04:21:51.123`.
/// A short time's width: [`Timestamp::push_rfc3339`] always writes four-digit years.
const SHORT_TIME_WIDTH: usize = 23;

fn push_short_time(out: &mut String, t: Timestamp) {
    let at = out.len();
    t.push_rfc3339(out);
    out.truncate(at + SHORT_TIME_WIDTH);
    out.replace_range(at + 10..at + 11, " "); // the `T`; the text is ASCII
}

const HEADERS: [&str; COLUMNS] = [
    "#",
    "START (UTC)",
    "CALL-ID",
    "FROM",
    "TO",
    "METHOD",
    "MSGS",
    "OUTCOME",
    "STATUS",
    "SETUP",
    "DURATION",
];
const COLUMNS: usize = 11;
/// Right-aligned columns.
const NUMERIC: [usize; 5] = [0, 6, 8, 9, 10];

/// Widest a wire value may be in the text table; longer ones are cut with a marker.
const MAX_METHOD: usize = 12;
const MAX_CALL_ID: usize = 44;
const MAX_PARTY: usize = 24;

/// The text table, columns as wide as their widest cell in terminal columns: one pass over
/// the rows for the widths, one that writes the lines. This runs after the last packet, on one
/// thread, so all of it is wall time: no cell is kept between the passes (the buffers for them
/// were ten megabytes of fresh pages, faulted in at the end of the run), numbers are written
/// without `fmt` (a fifth of the table's instructions went to formatting floats), and a cell's
/// width comes from whoever wrote it, not from a second look at it.
///
/// When some calls were begun by scanners, a last column, NOTE, says `scanner` on their rows.
pub fn write_text(rows: &[CallRow], out: &mut dyn Write) -> io::Result<()> {
    let notes = rows.iter().any(|r| r.scanner);
    // The MEDIA column only when some call has streams: a capture of signalling alone keeps
    // the table it always had.
    let media = rows.iter().any(|r| !r.media.is_empty()).then(|| {
        rows.iter()
            .map(|r| sanitize::width(&r.media))
            .max()
            .unwrap_or(0)
            .max("MEDIA".len())
    });
    let mut widths: [usize; COLUMNS] = HEADERS.map(str::len);
    let mut scratch = String::new();
    for r in rows {
        for (w, width) in widths.iter_mut().zip(row_widths(r, &mut scratch)) {
            *w = (*w).max(width);
        }
    }
    let mut line = String::new();
    let mut cells_text = String::new();
    let mut write_line = |cells: [(usize, usize); COLUMNS],
                          text: &str,
                          media_cell: Option<(usize, &str)>,
                          note: &str| {
        line.clear();
        let mut start = 0;
        for (i, ((end, width), w)) in cells.into_iter().zip(widths).enumerate() {
            let cell = text.get(start..end).unwrap_or("");
            start = end;
            if i > 0 {
                line.push_str("  ");
            }
            let pad = w.saturating_sub(width);
            if NUMERIC.contains(&i) {
                push_spaces(&mut line, pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i + 1 < COLUMNS || notes {
                    push_spaces(&mut line, pad);
                }
            }
        }
        if let Some((w, cell)) = media_cell {
            line.push_str("  ");
            line.push_str(cell);
            if notes {
                push_spaces(&mut line, w.saturating_sub(sanitize::width(cell)));
            }
        }
        if notes {
            line.push_str("  ");
            line.push_str(note);
        }
        out.write_all(line.trim_end().as_bytes())?;
        out.write_all(b"\n")
    };
    let mut header = String::new();
    let mut cells = [(0, 0); COLUMNS];
    for (cell, h) in cells.iter_mut().zip(HEADERS) {
        header.push_str(h);
        *cell = (header.len(), h.len());
    }
    write_line(cells, &header, media.map(|w| (w, "MEDIA")), "NOTE")?;
    for r in rows {
        cells_text.clear();
        let cells = row_cells(r, &mut cells_text);
        write_line(
            cells,
            &cells_text,
            media.map(|w| (w, r.media.as_str())),
            if r.scanner { "scanner" } else { "" },
        )?;
    }
    Ok(())
}

/// The widths of the cells [`row_cells`] writes, mostly without writing them: the first pass
/// of [`write_text`] over every row.
fn row_widths(r: &CallRow, scratch: &mut String) -> [usize; COLUMNS] {
    let mut number = itoa::Buffer::new();
    let mut millis = |v: Option<f64>| {
        scratch.clear();
        if let Some(v) = v {
            push_millis(scratch, v);
        }
        scratch.len()
    };
    [
        number.format(r.index).len(),
        SHORT_TIME_WIDTH,
        sanitize::clip_width(&r.call_id, MAX_CALL_ID),
        sanitize::clip_width(&r.from, MAX_PARTY),
        sanitize::clip_width(&r.to, MAX_PARTY),
        sanitize::clip_width(&r.first_method, MAX_METHOD),
        number.format(r.messages).len(),
        r.outcome.len(),
        r.final_status.map_or(0, |s| number.format(s).len()),
        millis(r.setup_time),
        millis(r.duration),
    ]
}

/// Writes a row's cells one after another into `text`; returns where each ends and its width
/// in terminal columns.
fn row_cells(r: &CallRow, text: &mut String) -> [(usize, usize); COLUMNS] {
    let mut cells = [(0, 0); COLUMNS];
    let mut n: usize = 0;
    // An ASCII cell we wrote ourselves: as wide as it is long.
    let mut end_cell = |text: &String, width: Option<usize>| {
        let start = n
            .checked_sub(1)
            .and_then(|p| cells.get(p))
            .map_or(0, |c| c.0);
        if let Some(cell) = cells.get_mut(n) {
            *cell = (text.len(), width.unwrap_or(text.len() - start));
        }
        n += 1;
    };
    let mut number = itoa::Buffer::new();
    text.push_str(number.format(r.index));
    end_cell(text, None);
    push_short_time(text, r.start);
    end_cell(text, None);
    for (value, width) in [
        (&*r.call_id, MAX_CALL_ID),
        (&r.from, MAX_PARTY),
        (&r.to, MAX_PARTY),
        (&r.first_method, MAX_METHOD),
    ] {
        let width = sanitize::clip_into(text, value, width);
        end_cell(text, Some(width));
    }
    text.push_str(number.format(r.messages));
    end_cell(text, None);
    text.push_str(r.outcome);
    end_cell(text, None);
    if let Some(s) = r.final_status {
        text.push_str(number.format(s));
    }
    end_cell(text, None);
    for v in [r.setup_time, r.duration] {
        if let Some(v) = v {
            push_millis(text, v);
        }
        end_cell(text, None);
    }
    cells
}

fn push_spaces(out: &mut String, mut n: usize) {
    const SPACES: &str = "                                                                ";
    while n > 0 {
        let step = n.min(SPACES.len());
        out.push_str(SPACES.get(..step).unwrap_or(""));
        n -= step;
    }
}

/// Seconds with three decimals, exactly as `format!("{v:.3}")` writes them. The fast way
/// rounds `v * 1000` to an integer: the product is off the exact one by at most half a unit in
/// its last place (under 10⁻⁷ below 10⁶ s), so away from a half it rounds the same way as the
/// exact decimal value; anything near a half, negative, huge or not a number goes to `fmt`.
fn push_millis(out: &mut String, v: f64) {
    let ms = v * 1000.0;
    if v.is_sign_positive() && v < 1e6 && (ms - ms.floor() - 0.5).abs() > 1e-6 {
        let ms = ms.round() as u64; // below 10⁹: exact in u64
        let mut number = itoa::Buffer::new();
        out.push_str(number.format(ms / 1000));
        out.push('.');
        let frac = ms % 1000;
        if frac < 100 {
            out.push('0');
        }
        if frac < 10 {
            out.push('0');
        }
        out.push_str(number.format(frac));
    } else {
        use std::fmt::Write as _;
        let _ = write!(out, "{v:.3}"); // writing to a String cannot fail
    }
}

/// The groups of two legs or more under the call table (`calls --by-group`): the rows of
/// each, the links' scores and evidence, the group's verdict, then the legs left unlinked
/// because two candidates were as likely.
pub fn write_groups(
    rows: &[CallRow],
    legs: &[crate::group::Leg],
    grouping: &crate::group::Grouping,
    out: &mut dyn Write,
) -> io::Result<()> {
    let row = |i: usize| rows.get(i).map_or(i + 1, |r| r.index);
    writeln!(
        out,
        "\n{} call group{} of two legs or more ({} calls; link threshold {})",
        grouping.groups.len(),
        if grouping.groups.len() == 1 { "" } else { "s" },
        grouping.group_of.iter().filter(|g| g.is_some()).count(),
        grouping.threshold
    )?;
    for g in &grouping.groups {
        let members: Vec<String> = g.legs.iter().map(|&i| row(i).to_string()).collect();
        writeln!(out, "  group {}: calls {}", g.id + 1, members.join(", "))?;
        for l in &g.links {
            let kinds: Vec<&str> = l.evidence.iter().map(|e| e.kind.as_str()).collect();
            writeln!(
                out,
                "    {} – {}  score {}: {}",
                row(l.from),
                row(l.to),
                l.score,
                kinds.join(", ")
            )?;
        }
        let v = crate::diagnose::group::group_verdict(legs, g);
        writeln!(out, "    {}", sanitize::terminal(&v.summary))?;
    }
    for a in &grouping.ambiguous {
        let c: Vec<String> = a
            .candidates
            .iter()
            .map(|l| {
                let other = if l.from == a.leg { l.to } else { l.from };
                format!("{} (score {})", row(other), l.score)
            })
            .collect();
        writeln!(
            out,
            "  call {}: not linked, candidates as likely as each other: {}",
            row(a.leg),
            c.join(", ")
        )?;
    }
    if grouping.crowded > 0 {
        writeln!(
            out,
            "  {} calls not scored: more INVITEs around them than can be told apart",
            grouping.crowded
        )?;
    }
    Ok(())
}

/// The rows as CSV; `group_column` adds each call's group (1-based, empty for one leg), as
/// `calls --by-group` writes it.
pub fn write_csv(rows: &[CallRow], group_column: bool, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "index,start,call_id,from,to,first_method,messages,outcome,final_status,final_reason,setup_time,duration,scanner,media{}",
        if group_column { ",group" } else { "" }
    )?;
    for r in rows {
        let fields = [
            r.index.to_string(),
            r.start.to_rfc3339(),
            sanitize::csv_cell(&r.call_id),
            sanitize::csv_cell(&r.from),
            sanitize::csv_cell(&r.to),
            sanitize::csv_cell(&r.first_method),
            r.messages.to_string(),
            r.outcome.to_string(),
            r.final_status.map(|s| s.to_string()).unwrap_or_default(),
            sanitize::csv_cell(r.final_reason.as_deref().unwrap_or("")),
            secs(r.setup_time),
            secs(r.duration),
            r.scanner.to_string(),
            sanitize::csv_cell(&r.media),
        ];
        if group_column {
            let group = r.group.map(|g| (g + 1).to_string()).unwrap_or_default();
            writeln!(out, "{},{group}", fields.join(","))?;
        } else {
            writeln!(out, "{}", fields.join(","))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `push_millis` writes what `{:.3}` writes: on durations made as the engine makes them
    /// (nanoseconds over 10⁹), on exact halves and their neighbours, and on the odd values.
    #[test]
    fn millis_are_written_as_fmt_writes_them() {
        let check = |v: f64| {
            let mut got = String::from("x");
            push_millis(&mut got, v);
            assert_eq!(got, format!("x{v:.3}"), "{v:e}");
        };
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..300_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let ns = (seed % 2_000_000_000_000) as i64; // up to about 33 minutes
            check(ns as f64 / 1e9);
            check((ns % 10_000_000) as f64 / 1e9); // short: leading zeros
        }
        for ms in 0..20_000_u64 {
            // Exact halves of a millisecond, and a nanosecond either side.
            let half = ms * 1_000_000 + 500_000;
            for ns in [half - 1, half, half + 1, ms * 1_000_000] {
                check(ns as f64 / 1e9);
            }
        }
        for v in [
            0.0,
            -0.0,
            -1.5,
            -0.0004,
            0.0005,
            0.0015,
            2.675,
            999_999.999_5,
            1e6,
            1e300,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
        ] {
            check(v);
        }
    }

    /// The first pass's widths are those of the cells the second pass writes, whatever the
    /// values: wide characters, escapes, cut values, empty and absent fields, extreme times.
    #[test]
    fn row_widths_are_the_widths_of_the_cells() {
        let mut rows = vec![
            row(1, "alice"),
            row(22, "张伟张伟张伟张伟张伟张伟张伟张伟"),
            row(333, "a\x1bb"),
        ];
        rows[1].call_id = Arc::from("x".repeat(100).as_str());
        rows[1].first_method = "\u{202e}INVITE-AND-MORE".into();
        rows[2].final_status = None;
        rows[2].setup_time = None;
        rows[2].duration = Some(123_456.789_5);
        rows[2].messages = usize::MAX;
        rows[0].start = Timestamp(i64::MIN);
        rows[1].start = Timestamp(i64::MAX);
        rows[2].from = String::new().into();
        let mut scratch = String::new();
        for r in &rows {
            let mut text = String::new();
            let cells = row_cells(r, &mut text);
            let mut start = 0;
            let written: Vec<usize> = cells
                .iter()
                .map(|&(end, width)| {
                    assert_eq!(
                        width,
                        sanitize::width(&text[start..end]),
                        "{}",
                        &text[start..end]
                    );
                    start = end;
                    width
                })
                .collect();
            assert_eq!(row_widths(r, &mut scratch).to_vec(), written, "{text}");
        }
    }

    #[test]
    fn spaces_pad_any_width() {
        for n in [0, 1, 63, 64, 65, 200] {
            let mut s = String::from("a");
            push_spaces(&mut s, n);
            assert_eq!(s.len(), n + 1);
            assert!(s.bytes().skip(1).all(|b| b == b' '));
        }
    }

    fn row(index: usize, from: &str) -> CallRow {
        CallRow {
            index,
            start: Timestamp::from_millis(1_790_000_000_123),
            call_id: Arc::from("a84b4c76e66710@pc33.atlanta.com"),
            from: from.into(),
            to: "bob".into(),
            first_method: "INVITE".into(),
            messages: 7,
            outcome: "answered",
            final_status: Some(200),
            final_reason: Some("OK".into()),
            setup_time: Some(1.5),
            duration: None,
            scanner: false,
            originator: None,
            media: Default::default(),
            group: None,
        }
    }

    /// Rows pushed in any order, across several chunks, come out in key order, numbered.
    #[test]
    fn call_rows_come_out_in_call_order() {
        let n = 2 * CHUNK as u64 + 17;
        let mut rng = crate::synth::Rng::new(3);
        let mut keys: Vec<u64> = (0..n).map(|k| k * 3).collect();
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.below(i as u64 + 1) as usize);
        }
        let mut rows = CallRows::default();
        for &k in &keys {
            rows.push(k, row(0, &k.to_string()));
        }
        let rows = rows.into_rows();
        assert_eq!(rows.len() as u64, n);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.index, i + 1);
            assert_eq!(r.from, (i as u64 * 3).to_string());
        }
    }

    /// Regression: columns were padded by characters, so a display name of wide (East Asian)
    /// characters pushed the rest of its row out of line with the others.
    #[test]
    fn columns_line_up_by_display_width() {
        let rows = [row(1, "alice"), row(2, "张伟张伟"), row(10, "e\u{301}ve")];
        let mut out = Vec::new();
        write_text(&rows, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        // Where the TO column starts, in terminal columns, is the same on every line.
        let to_at = |l: &str| {
            let byte = l.find("bob").or_else(|| l.find("TO")).unwrap();
            sanitize::width(&l[..byte])
        };
        let at: Vec<usize> = lines.iter().map(|l| to_at(l)).collect();
        assert!(at.iter().all(|&a| a == at[0]), "{at:?}\n{text}");
        assert!(
            lines[1].starts_with(" 1  2026-09-21 14:13:20.123  a84b4c76e66710@pc33.atlanta.com")
        );
        assert!(lines[3].starts_with("10  "));
        // A missing duration leaves no trailing blanks.
        assert!(lines.iter().all(|l| !l.ends_with(' ')));
    }
}
