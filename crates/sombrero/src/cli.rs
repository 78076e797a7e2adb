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
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        help = "Configuration file [default: env SOMBRERO_CONFIG, then ./sombrero.toml]"
    )]
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
    /// Show the resolved configuration and where each value came from.
    #[command(
        after_help = "Examples:\n  sombrero config show\n  sombrero config show --env staging --json"
    )]
    Config(ConfigArgs),
    /// Check the configuration and the environment variables, without network.
    #[command(
        long_about = "Check the configuration and the environment variables, without network.\n\n\
            Resolves every setting (flags, environment, .mise.local.toml, sombrero.toml, \
            defaults), checks all environments in sombrero.toml, and checks that what the \
            pipeline needs is present: API URL, API token, SSH public key. Exits 0 when \
            everything is fine and 2 with every problem listed otherwise.",
        after_help = "Examples:\n  sombrero validate\n  ENV=staging sombrero validate --json"
    )]
    Validate,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum ConfigCommand {
    /// Print every resolved setting with its source (flag, variable, file and key, default).
    #[command(
        after_help = "Examples:\n  sombrero config show\n  sombrero config show --env staging --json | jq .vm.vmid"
    )]
    Show,
}
