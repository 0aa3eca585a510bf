//! The `sipscope` binary: everything happens in the library; see [`sipscope::cli`].

// mimalloc: the engine allocates many small records on one thread and keeps or frees them on
// another; glibc's allocator spent a sixth of the run time on this (docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sipscope::cli::main()
}
