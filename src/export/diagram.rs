//! Calls drawn as ladders in the format asked for: text ([`super::ladder`]), SVG
//! ([`super::svg`]) or Mermaid ([`super::mermaid`]), each call with its diagnosis. The one place
//! that knows every rendering; the layout ([`super::ladder::Ladder`]) knows none of them.

use super::ladder::Ladder;
use crate::flow::Call;
use crate::time::Timestamp;
use std::io::{self, Write};

/// How [`write()`] draws ladders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Svg,
    Mermaid,
}

impl Format {
    /// The format a file name asks for (`.svg`, `.mmd` or `.mermaid`; text otherwise).
    pub fn for_path(path: &str) -> Format {
        if path.ends_with(".svg") {
            Format::Svg
        } else if path.ends_with(".mmd") || path.ends_with(".mermaid") {
            Format::Mermaid
        } else {
            Format::Text
        }
    }
}

/// Draws calls as ladders with their diagnosis; `nows` is the capture time reached for each
/// call (what its timers are measured against).
pub fn write(
    calls: &[&Call],
    nows: &[Timestamp],
    config: &crate::diagnose::DiagnoseConfig,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    let groups: Vec<Vec<&Call>> = calls.iter().map(|&c| vec![c]).collect();
    write_legs(&groups, nows, config, format, out)
}

/// [`write()`] for calls drawn with their linked legs: each group is a call and the legs to
/// merge into its ladder ([`super::ladder::merge_legs`]), the call first.
pub fn write_legs(
    groups: &[Vec<&Call>],
    nows: &[Timestamp],
    config: &crate::diagnose::DiagnoseConfig,
    format: Format,
    out: &mut dyn Write,
) -> io::Result<()> {
    let ladders: Vec<(&Call, Ladder)> = groups
        .iter()
        .zip(nows)
        .filter_map(|(legs, &now)| {
            let call = *legs.first()?;
            let d = crate::diagnose::diagnose(call, now, config);
            Some((call, Ladder::with_legs(legs, Some(&d), now)))
        })
        .collect();
    match format {
        Format::Text => {
            for (i, (call, l)) in ladders.iter().enumerate() {
                if i > 0 {
                    writeln!(out)?;
                }
                super::ladder::write_text(call, l, out)?;
            }
            Ok(())
        }
        Format::Svg => super::svg::write_svg(&ladders, out),
        Format::Mermaid => super::mermaid::write_mermaid(&ladders, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_file_name() {
        assert_eq!(Format::for_path("call.svg"), Format::Svg);
        assert_eq!(Format::for_path("call.mmd"), Format::Mermaid);
        assert_eq!(Format::for_path("call.txt"), Format::Text);
    }
}
