//! Making wire strings safe to show. Everything that came off the wire passes through here
//! before it reaches a terminal: control characters and escape sequences (which could move the
//! cursor, retitle the window or hide text), bidirectional overrides (which could reorder what
//! the reader sees), and overlong values.

use std::borrow::Cow;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Marker appended to a value cut to its display width.
pub const ELLIPSIS: char = '…';

fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{200B}'..='\u{200F}' // zero-width and directional marks
            | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
            | '\u{2066}'..='\u{2069}' // bidi isolates
            | '\u{FEFF}')
}

/// Printable ASCII only, as most SIP values are: nothing to escape and one column a byte, so
/// the character-by-character checks below can be skipped.
fn plain(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

/// Replaces unsafe characters with visible escapes (`\x1b`, `\u{202e}`); tabs become spaces.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if plain(s) || !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(escaped(s))
}

fn escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push(' '),
            c if is_unsafe(c) && (c as u32) < 0x100 => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// [`terminal`], then cut to at most `width` terminal columns with an ellipsis marker. Width is
/// display width, not characters: a wide (East Asian) character takes two columns, so a value
/// of them cannot push a table or a ladder out of line.
pub fn clip(s: &str, width: usize) -> String {
    let mut out = String::new();
    clip_into(&mut out, s, width);
    out
}

/// [`clip`], appended to `out`. Returns the display width of what it appended.
pub fn clip_into(out: &mut String, s: &str, width: usize) -> usize {
    if plain(s) && s.len() <= width {
        out.push_str(s); // nearly always: one pass over the value
        return s.len();
    }
    let safe = terminal(s);
    let full = self::width(&safe);
    if full <= width {
        out.push_str(&safe);
        return full;
    }
    let mut used = 0;
    for c in safe.chars() {
        let w = c.width().unwrap_or(0);
        // One column stays free for the marker.
        if used + w + 1 > width {
            break;
        }
        out.push(c);
        used += w;
    }
    if width > 0 {
        out.push(ELLIPSIS);
        used += 1;
    }
    used
}

/// The width [`clip_into`] would append, without appending it.
pub fn clip_width(s: &str, width: usize) -> usize {
    if plain(s) && s.len() <= width {
        return s.len();
    }
    clip_into(&mut String::new(), s, width)
}

/// Display width of a string in terminal columns.
pub fn width(s: &str) -> usize {
    if plain(s) { s.len() } else { s.width() }
}

/// A CSV cell: quoted when needed, and never read as a formula by a spreadsheet (OWASP CSV
/// injection: a leading `=`, `+`, `-`, `@`, tab or CR gets a leading apostrophe).
pub fn csv_cell(s: &str) -> String {
    let s = terminal(s);
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.into_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_into_returns_the_width_it_appended() {
        for (value, width) in [
            ("plain", 10),
            ("plain but long", 5),
            ("wide 日本語 text", 9),
            ("wide 日本語 text", 40),
            ("esc \x1b[2J", 20),
            ("esc \x1b[2J", 6),
            ("", 3),
            ("anything", 0),
        ] {
            let mut out = String::from("before|");
            let got = clip_into(&mut out, value, width);
            let appended = out.strip_prefix("before|").unwrap_or_default();
            assert_eq!(got, self::width(appended), "{value:?} in {width}");
            assert_eq!(appended, clip(value, width));
            assert!(got <= width, "{value:?} in {width}: {got}");
            assert_eq!(clip_width(value, width), got, "{value:?} in {width}");
        }
    }

    #[test]
    fn escapes_control_and_bidi() {
        assert_eq!(terminal("ok"), "ok");
        assert_eq!(terminal("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(terminal("x\u{202e}y"), "x\\u{202e}y");
        assert_eq!(terminal("a\0b\r\n"), "a\\x00b\\x0d\\x0a");
    }

    #[test]
    fn clips_with_marker() {
        assert_eq!(clip("abcdef", 4), "abc…");
        assert_eq!(clip("abc", 4), "abc");
        assert_eq!(clip("abc", 0), "");
    }

    /// Regression: wide characters were counted as one column each, so a display name in
    /// Chinese or Japanese overflowed its column and pushed the ladder out of line.
    #[test]
    fn clips_by_display_width() {
        let name = "山田太郎さん";
        assert_eq!(width(name), 12);
        let c = clip(name, 7);
        assert_eq!(c, "山田太…");
        assert!(width(&c) <= 7);
        assert_eq!(clip("山田", 4), "山田");
    }

    #[test]
    fn csv_guards_formulas() {
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }

    /// The printable-ASCII shortcut gives what the character-by-character path gives.
    #[test]
    fn the_ascii_shortcut_agrees_with_the_general_path() {
        let mut rng = crate::synth::Rng::new(11);
        let mut plain_seen = 0;
        for n in 0..20_000 {
            let s: String = (0..n % 12)
                .map(|_| char::from(rng.below(0x80) as u8))
                .collect();
            if plain(&s) {
                plain_seen += 1;
                assert_eq!(escaped(&s), s);
                assert_eq!(width(&s), s.width(), "{s:?}");
            } else {
                assert!(s.chars().any(|c| !(' '..='~').contains(&c)), "{s:?}");
            }
        }
        assert!(plain_seen > 1_000);
    }
}
