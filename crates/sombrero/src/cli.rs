//! The command line, declared with clap.
//!
//! Why one module: the command surface is a contract (DESIGN.md, "Command surface"); keeping
//! every flag in one file makes it reviewable and keeps `--help` consistent. Each command's
//! `long_about`/`after_help` carries an example.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Deploy and run the Sombrero Edge Control jump host on Proxmox VE.
#[derive(Debug, Parser)]
#[command(
    name = "sombrero",
    version,
    propagate_version = true,
    after_help = "Example:\n  sombrero config show --env staging"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Environment to act on (production, staging, development); default: ENV, then production.
    #[arg(long, global = true, value_name = "ENV")]
    pub env: Option<String>,
    /// Configuration file [default: ./sombrero.toml].
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// More detail on stderr (repeatable).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors and data; no progress or messages.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print shell completions.
    #[command(
        after_help = "Example:\n  sombrero completions bash > /etc/bash_completion.d/sombrero"
    )]
    Completions(CompletionsArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
