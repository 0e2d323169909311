//! The `xf` command: parses arguments and hands over to [`cli`].

mod cli;
mod fmt_cli;
mod lsp;
#[cfg(feature = "serve")]
mod playground;
mod progress_cli;
#[cfg(feature = "serve")]
mod replay_cli;
#[cfg(feature = "serve")]
mod serve_cli;
mod shared_cli;
mod test_cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

/// jemalloc (feature `jemalloc`): 8 % fewer instructions than glibc's malloc
/// on `xf run`, at the same peak RSS (README, Performance). The library never
/// chooses an allocator; only this program does.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
