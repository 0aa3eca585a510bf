//! The `sipscope` binary: everything happens in the library; see [`sipscope::cli`].

// mimalloc: the engine allocates many small records on one thread and keeps or frees them on
// another; glibc's allocator spent a sixth of the run time on this (docs/performance.md).
// Version 2 (Cargo.toml): v3 took fresh pages from the kernel through the run, and zeroing
// them was a tenth of the run time on the benchmark capture (docs/performance.md, session 11).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (v2 `mimalloc.h`, `enum mi_option_e`: the sixteenth
/// entry; libmimalloc-sys names its neighbours 14 and 16 but not this one).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

/// How long freed memory stays with the process before mimalloc hands it back to the kernel.
/// The default, 10 ms, is shorter than a call lasts: pages freed as calls end went back and
/// were faulted in again, zeroed, for the next calls (5–7% of the samples of `calls` on the
/// benchmark capture in the kernel's `clear_page_erms`; about 1% at one second, with no more
/// peak memory; docs/performance.md, session 12). Memory is still returned, a second later.
const PURGE_DELAY_MS: std::ffi::c_long = 1000;

fn main() -> std::process::ExitCode {
    // The environment variable still wins, as mimalloc documents it.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores an integer in mimalloc's option table and has no
        // other precondition; it runs before any thread of ours starts, and the value is in
        // the documented range (-1 for never, 0 for at once, or milliseconds).
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
    sipscope::cli::main()
}
