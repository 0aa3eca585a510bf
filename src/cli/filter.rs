//! Filters shared by every command: which calls to show.

use crate::flow::Call;
use crate::time::Timestamp;
use anyhow::{Result, bail};
use clap::Args;

#[derive(Args, Debug, Clone, Default)]
pub struct Filters {
    /// Only the call with this Call-ID.
    #[arg(long = "call", value_name = "CALL_ID")]
    call: Option<String>,
    /// Only calls whose first request has this method (INVITE, REGISTER...).
    #[arg(long, value_name = "METHOD")]
    method: Option<String>,
    /// Only calls with this final status: a code (486), a class (4xx) or `none`.
    #[arg(long, value_name = "CODE")]
    status: Option<String>,
    /// Only calls whose From URI or display name contains this text (case-insensitive).
    #[arg(long = "from", value_name = "TEXT")]
    from: Option<String>,
    /// Only calls whose To URI or display name contains this text (case-insensitive).
    #[arg(long = "to", value_name = "TEXT")]
    to: Option<String>,
    /// Only calls starting at or after this time (RFC 3339, or seconds since the epoch).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only calls starting before this time (RFC 3339, or seconds since the epoch).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
}

impl Filters {
    /// The same filters written in the terminal UI's filter language (time windows have no
    /// equivalent there and are reported as not applied).
    #[cfg(feature = "tui")]
    /// The Call-ID asked for with `--call`, if any.
    pub fn call_id(&self) -> Option<&str> {
        self.call.as_deref()
    }

    pub fn ui_filter(&self) -> (String, bool) {
        let mut terms = Vec::new();
        let word = |v: &str| v.split_whitespace().next().unwrap_or("").to_string();
        if let Some(v) = &self.call {
            terms.push(word(v));
        }
        if let Some(v) = &self.method {
            terms.push(format!("method:{}", word(v)));
        }
        if let Some(v) = &self.status {
            terms.push(format!("status:{}", word(v)));
        }
        if let Some(v) = &self.from {
            terms.push(format!("from:{}", word(v)));
        }
        if let Some(v) = &self.to {
            terms.push(format!("to:{}", word(v)));
        }
        (
            terms.join(" "),
            self.since.is_some() || self.until.is_some(),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum StatusFilter {
    Code(u16),
    Class(u16),
    None,
}

/// Filters checked and ready to apply.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    call: Option<String>,
    method: Option<String>,
    status: Option<StatusFilter>,
    from: Option<String>,
    to: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
}

fn parse_time(flag: &str, v: &str) -> Result<Timestamp> {
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(v) {
        let nanos = dt.timestamp_nanos_opt().unwrap_or(i64::MAX);
        return Ok(Timestamp(nanos));
    }
    if let Ok(secs) = v.parse::<f64>()
        && secs.is_finite()
        && secs.abs() < 9.0e9
    {
        return Ok(Timestamp((secs * 1e9) as i64));
    }
    bail!(
        "--{flag} {v:?}: expected RFC 3339 time (2026-11-22T04:21:51Z) or seconds since the epoch"
    )
}

fn parse_status(v: &str) -> Result<StatusFilter> {
    let lower = v.to_ascii_lowercase();
    if lower == "none" {
        return Ok(StatusFilter::None);
    }
    if let Some(class) = lower.strip_suffix("xx")
        && let Ok(c @ 1..=6) = class.parse::<u16>()
    {
        return Ok(StatusFilter::Class(c));
    }
    if let Ok(code @ 100..=699) = v.parse::<u16>() {
        return Ok(StatusFilter::Code(code));
    }
    bail!("--status {v:?}: expected a code (486), a class (4xx) or none")
}

fn contains_ci(hay: &str, needle: &str) -> bool {
    hay.to_lowercase().contains(needle)
}

impl Filters {
    pub fn compile(&self) -> Result<Matcher> {
        Ok(Matcher {
            call: self.call.clone(),
            method: self.method.clone(),
            status: self.status.as_deref().map(parse_status).transpose()?,
            from: self.from.as_ref().map(|s| s.to_lowercase()),
            to: self.to.as_ref().map(|s| s.to_lowercase()),
            since: self
                .since
                .as_deref()
                .map(|v| parse_time("since", v))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|v| parse_time("until", v))
                .transpose()?,
        })
    }
}

impl Matcher {
    pub fn matches(&self, call: &Call, now: Timestamp) -> bool {
        if self.call.as_ref().is_some_and(|id| **id != *call.call_id) {
            return false;
        }
        if self
            .method
            .as_ref()
            .is_some_and(|m| !m.eq_ignore_ascii_case(call.first_method()))
        {
            return false;
        }
        let party_matches = |needle: &Option<String>, p: &crate::flow::Party| {
            needle.as_ref().is_none_or(|n| {
                contains_ci(&p.uri, n) || p.display.as_deref().is_some_and(|d| contains_ci(d, n))
            })
        };
        if !party_matches(&self.from, &call.from) || !party_matches(&self.to, &call.to) {
            return false;
        }
        let start = call.start();
        if self.since.is_some_and(|t| start < t) || self.until.is_some_and(|t| start >= t) {
            return false;
        }
        if let Some(sf) = &self.status {
            let status = call.summary(now).final_status;
            let ok = match (sf, status) {
                (StatusFilter::None, s) => s.is_none(),
                (StatusFilter::Code(c), Some(s)) => *c == s,
                (StatusFilter::Class(c), Some(s)) => s / 100 == *c,
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_and_time_parsing() {
        assert_eq!(parse_status("4xx").unwrap(), StatusFilter::Class(4));
        assert_eq!(parse_status("486").unwrap(), StatusFilter::Code(486));
        assert_eq!(parse_status("None").unwrap(), StatusFilter::None);
        assert!(parse_status("99").is_err());
        assert!(parse_status("7xx").is_err());
        assert_eq!(
            parse_time("since", "1700000000").unwrap(),
            Timestamp(1_700_000_000_000_000_000)
        );
        assert_eq!(
            parse_time("since", "2023-11-14T22:13:20Z").unwrap(),
            Timestamp(1_700_000_000_000_000_000)
        );
        assert!(parse_time("since", "yesterday").is_err());
    }
}
