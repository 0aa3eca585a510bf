//! Payload types to codecs: the static table of RFC 3551 §6 and the dynamic types an SDP
//! `a=rtpmap` defines, with their clock rates (what turns RTP timestamps into time).

use compact_str::CompactString;

/// One payload type as a session uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    /// The encoding name as written (`PCMU`, `telephone-event`, `opus`).
    pub name: CompactString,
    /// Timestamp units per second.
    pub clock_rate: u32,
}

impl Codec {
    pub fn is_telephone_event(&self) -> bool {
        self.name.eq_ignore_ascii_case("telephone-event")
    }

    pub fn is_comfort_noise(&self) -> bool {
        self.name.eq_ignore_ascii_case("CN")
    }
}

/// RFC 3551 Table 4 (audio) and 5 (video): the static payload types in use.
pub fn static_type(pt: u8) -> Option<(&'static str, u32)> {
    Some(match pt {
        0 => ("PCMU", 8_000),
        3 => ("GSM", 8_000),
        4 => ("G723", 8_000),
        5 => ("DVI4", 8_000),
        6 => ("DVI4", 16_000),
        7 => ("LPC", 8_000),
        8 => ("PCMA", 8_000),
        9 => ("G722", 8_000),
        10 | 11 => ("L16", 44_100),
        12 => ("QCELP", 8_000),
        13 => ("CN", 8_000),
        14 => ("MPA", 90_000),
        15 => ("G728", 8_000),
        16 => ("DVI4", 11_025),
        17 => ("DVI4", 22_050),
        18 => ("G729", 8_000),
        25 => ("CelB", 90_000),
        26 => ("JPEG", 90_000),
        28 => ("nv", 90_000),
        31 => ("H261", 90_000),
        32 => ("MPV", 90_000),
        33 => ("MP2T", 90_000),
        34 => ("H263", 90_000),
        _ => return None,
    })
}

/// Reads an `a=rtpmap` value as the SDP summary keeps it: `96 opus/48000/2`.
pub fn parse_rtpmap(value: &str) -> Option<Codec> {
    let (pt, rest) = value.trim().split_once(char::is_whitespace)?;
    let payload_type: u8 = pt.parse().ok().filter(|p| *p < 128)?;
    let mut parts = rest.trim().split('/');
    let name = CompactString::from(parts.next()?.trim());
    let clock_rate = parts.next()?.trim().parse().ok().filter(|r| *r > 0)?;
    Some(Codec {
        payload_type,
        name,
        clock_rate,
    })
}

/// The codecs an SDP media line offers or accepts: its formats, named by `a=rtpmap` or the
/// static table (formats that are neither are left out).
pub fn of_media(formats: &[CompactString], rtpmap: &[CompactString]) -> Vec<Codec> {
    let mapped: Vec<Codec> = rtpmap.iter().filter_map(|m| parse_rtpmap(m)).collect();
    formats
        .iter()
        .filter_map(|f| f.parse::<u8>().ok())
        .filter_map(|pt| lookup(&mapped, pt))
        .collect()
}

/// The codec of `pt` among `codecs`, else the static table's.
pub fn lookup(codecs: &[Codec], pt: u8) -> Option<Codec> {
    codecs
        .iter()
        .find(|c| c.payload_type == pt)
        .cloned()
        .or_else(|| {
            static_type(pt).map(|(name, clock_rate)| Codec {
                payload_type: pt,
                name: name.into(),
                clock_rate,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rtpmap_and_the_static_table() {
        let c = parse_rtpmap("101 telephone-event/8000").unwrap();
        assert!(c.is_telephone_event());
        assert_eq!((c.payload_type, c.clock_rate), (101, 8000));
        assert_eq!(parse_rtpmap("96 opus/48000/2").unwrap().clock_rate, 48_000);
        assert_eq!(parse_rtpmap("300 x/8000"), None);
        assert_eq!(parse_rtpmap("96 x"), None);
        let formats = ["8", "101", "99"].map(CompactString::from);
        let map = [CompactString::from("101 telephone-event/8000")];
        let got: Vec<_> = of_media(&formats, &map)
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(got, ["PCMA", "telephone-event"]);
        assert_eq!(static_type(9), Some(("G722", 8_000)));
    }
}
