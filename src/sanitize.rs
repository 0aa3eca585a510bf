//! Making wire strings safe to show. Everything that came off the wire passes through here
//! before it reaches a terminal: control characters and escape sequences (which could move the
//! cursor, retitle the window or hide text), bidirectional overrides (which could reorder what
//! the reader sees), and overlong values.

use std::borrow::Cow;

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

/// Replaces unsafe characters with visible escapes (`\x1b`, `\u{202e}`); tabs become spaces.
pub fn terminal(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
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
    Cow::Owned(out)
}

/// [`terminal`], then cut to at most `width` characters with an ellipsis marker.
pub fn clip(s: &str, width: usize) -> String {
    let safe = terminal(s);
    if safe.chars().count() <= width {
        return safe.into_owned();
    }
    let mut out: String = safe.chars().take(width.saturating_sub(1)).collect();
    out.push(ELLIPSIS);
    out
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
    }

    #[test]
    fn csv_guards_formulas() {
        assert_eq!(csv_cell("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }
}
