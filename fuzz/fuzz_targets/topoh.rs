//! Call-IDs masked by Kamailio's topoh, read back with any key: arbitrary keys and masked
//! text, never a panic, and what reads back is printable.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::group::topoh::{DEFAULT_KEY, Mask, PREFIX};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (key, masked) = text.split_once('\n').unwrap_or((DEFAULT_KEY, &text));
    if let Some(mask) = Mask::new(key) {
        for candidate in [masked.to_string(), format!("{PREFIX}{masked}")] {
            if let Some(id) = mask.unmask(&candidate) {
                assert!(id.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }
});
