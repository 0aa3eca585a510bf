//! The `sipscope` binary: everything happens in the library; see [`sipscope::cli`].

fn main() -> std::process::ExitCode {
    sipscope::cli::main()
}
