//! The call list: one row per call, as an aligned text table, CSV or JSON. Every wire string is
//! sanitized for the terminal (text) or against formula injection (CSV).

use crate::capture::Timestamp;
use crate::flow::Call;
use crate::sanitize;
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
        }
    }
}

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.3}")).unwrap_or_default()
}

/// `2026-11-22T04:21:51.123456Z` shown as `2026-11-22 04:21:51.123`.
fn short_time(rfc3339: &str) -> String {
    let t = rfc3339.replace('T', " ");
    t.get(..23).map(str::to_string).unwrap_or(t)
}

const HEADERS: [&str; 11] = [
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

/// Widest a wire value may be in the text table; longer ones are cut with a marker.
const MAX_CALL_ID: usize = 44;
const MAX_PARTY: usize = 24;

pub fn write_text(rows: &[CallRow], out: &mut dyn Write) -> io::Result<()> {
    let cells: Vec<[String; 11]> = rows
        .iter()
        .map(|r| {
            [
                r.index.to_string(),
                short_time(&r.start.to_rfc3339()),
                sanitize::clip(&r.call_id, MAX_CALL_ID),
                sanitize::clip(&r.from, MAX_PARTY),
                sanitize::clip(&r.to, MAX_PARTY),
                sanitize::clip(&r.first_method, 12),
                r.messages.to_string(),
                r.outcome.to_string(),
                r.final_status.map(|s| s.to_string()).unwrap_or_default(),
                secs(r.setup_time),
                secs(r.duration),
            ]
        })
        .collect();
    let mut widths: [usize; 11] = HEADERS.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let numeric = [0, 6, 8, 9, 10];
    let line = |cols: &[String]| -> String {
        let mut s = String::new();
        for (i, (c, w)) in cols.iter().zip(widths.iter()).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = w.saturating_sub(c.chars().count());
            if numeric.contains(&i) {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < cols.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.trim_end().to_string()
    };
    writeln!(out, "{}", line(&HEADERS.map(str::to_string)))?;
    for row in &cells {
        writeln!(out, "{}", line(row))?;
    }
    Ok(())
}

pub fn write_csv(rows: &[CallRow], out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "index,start,call_id,from,to,first_method,messages,outcome,final_status,final_reason,setup_time,duration"
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
        ];
        writeln!(out, "{}", fields.join(","))?;
    }
    Ok(())
}
