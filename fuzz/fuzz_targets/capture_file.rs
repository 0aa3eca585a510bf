//! The pcap/pcapng reader on arbitrary bytes (plain or gzip): frames or counted damage, never a
//! panic or an endless loop.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::capture::{FileSource, FrameSource};

fuzz_target!(|data: &[u8]| {
    let reader = Box::new(std::io::Cursor::new(data.to_vec()));
    if let Ok(mut src) = FileSource::from_reader(reader, "fuzz", 0, Some(data.len() as u64)) {
        let mut n = 0u64;
        while let Some(frame) = src.next_frame() {
            n += frame.data.len() as u64;
        }
        let _ = (n, src.damage(0));
    }
});
