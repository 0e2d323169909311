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
