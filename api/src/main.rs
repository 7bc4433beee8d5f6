use std::process::ExitCode;

use clap::Parser;
use expensewise_api::cli::{run, Cli, Tampered};

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        // A verification that found the history changed has said so already.
        Err(e) if e.is::<Tampered>() => ExitCode::from(2),
        Err(e) => {
            // One line, naming the cause: what an operator needs from a failed start.
            eprintln!("expensewise: {e:#}");
            ExitCode::FAILURE
        }
    }
}
