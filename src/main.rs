//! The `xf` command: parses arguments and hands over to [`cli`].

mod cli;
mod fmt_cli;
#[cfg(feature = "serve")]
mod playground;
mod progress_cli;
#[cfg(feature = "serve")]
mod serve_cli;
mod test_cli;

// Many small short-lived allocations per record (values, strings, request
// buffers): mimalloc's thread-local free lists take them for a fraction of
// the system allocator's time (README, performance).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
