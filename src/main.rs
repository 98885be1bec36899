//! CLI entry: parse arguments, run the command, map errors to exit codes.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = converge::cli::Cli::parse();
    converge::install_quiet_panic_hook();
    match catch_unwind(AssertUnwindSafe(|| converge::cli::main(cli))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
        Err(payload) => {
            eprintln!(
                "internal error: {} (please report this)",
                converge::panic_message(payload.as_ref())
            );
            ExitCode::from(1)
        }
    }
}
