//! The capture-filter parser (`-f`): arbitrary expressions, and each one that parses
//! evaluated on arbitrary frames of every link type. Input: `[n][n bytes of expression][frame]`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::capture::LinkType;
use sipscope::capture::filter;

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (text, frame) = rest.split_at(usize::from(n).min(rest.len()));
    let text = String::from_utf8_lossy(text);
    if let Ok(expr) = filter::CaptureFilter::parse(&text, sipscope::net::link::filter_facts) {
        for link in [
            LinkType::ETHERNET,
            LinkType::RAW,
            LinkType::LINUX_SLL,
            LinkType::LINUX_SLL2,
            LinkType::NULL,
            LinkType::IPV6,
        ] {
            let _ = expr.matches(link, frame);
        }
    }
});
