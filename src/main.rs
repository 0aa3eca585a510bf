//! The `sipscope` binary: everything happens in the library; see [`sipscope::cli`].

// mimalloc: the engine allocates many small records on one thread and keeps or frees them on
// another; glibc's allocator spent a sixth of the run time on this (docs/performance.md).
// Version 2 (Cargo.toml): v3 took fresh pages from the kernel through the run, and zeroing
// them was a tenth of the run time on the benchmark capture (docs/performance.md, session 11).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sipscope::cli::main()
}
