//! The `sipscope` binary: everything happens in the library; see [`sipscope::cli`].

// mimalloc: the engine allocates many small records on one thread and keeps or frees them on
// another; glibc's allocator spent a sixth of the run time on this (docs/performance.md).
// Version 2 (Cargo.toml): v3 took fresh pages from the kernel through the run, and zeroing
// them was a tenth of the run time on the benchmark capture (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (v2 `mimalloc.h`, `enum mi_option_e`: the sixteenth
/// entry; libmimalloc-sys names its neighbours 14 and 16 but not this one).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
// Checked against the neighbours the crate does name, so that a renumbering fails the build.
const _: () = assert!(
    libmimalloc_sys::mi_option_eager_commit_delay + 1 == MI_OPTION_PURGE_DELAY
        && libmimalloc_sys::mi_option_use_numa_nodes - 1 == MI_OPTION_PURGE_DELAY
);

/// Freed memory stays with the process: mimalloc never hands it back to the kernel. With any
/// purge delay (10 ms by default, 1 s tried too) pages freed as calls end went back and were
/// faulted in again, zeroed two megabytes at a time (transparent huge pages), for the next
/// calls: 5–9% of the samples of `calls` on the benchmark capture were the kernel's
/// `clear_page_erms`, 1–3% without purging, at the same peak RSS (docs/performance.md). The process holds its high-water mark until it exits; every cache of the engine is
/// bounded, so that mark is too.
const PURGE_DELAY_NEVER: std::ffi::c_long = -1;

fn main() -> std::process::ExitCode {
    // The environment variable still wins, as mimalloc documents it.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` stores an integer in mimalloc's option table and has no
        // other precondition; it runs before any thread of ours starts, and -1 is the
        // documented value for never.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_NEVER) };
    }
    sipscope::cli::main()
}
