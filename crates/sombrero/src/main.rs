//! The `sombrero` binary: command-line parsing, settings resolution, commands, the printer,
//! error rendering and exit codes.
//!
//! Why this shape (ripgrep/uv style): raw arguments are parsed once into [`cli::Cli`], turned
//! into validated settings once, and only then does a command run; commands never parse and
//! never print except through [`printer::Printer`]. Errors travel as values up to [`main`],
//! which is the one place that renders them and decides the exit code ([`exit`]).

mod cli;
mod commands;
mod context;
mod exit;
mod lab_mode;
mod logging;
mod printer;
mod progress;
mod prompt;
mod recording;
mod resolution;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let printer = printer::Printer::new(&cli.global);
    let log_directive = [logging::LOG_ENV, "RUST_LOG"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()));
    logging::init(&printer, log_directive.as_deref());
    match commands::run(cli, &printer) {
        Ok(status) => status.into(),
        Err(error) => {
            let status = exit::status_for(&error);
            printer.error(&error);
            status.into()
        }
    }
}
