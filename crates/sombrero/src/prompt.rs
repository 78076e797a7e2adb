//! Asking for confirmation before a change that cannot be undone.
//!
//! Why these rules: a command that writes asks on a terminal (like `terraform apply`), and
//! without one it refuses unless `--yes` was given, so a script never hangs on a prompt
//! nobody can answer. Shared by every command that asks (deploy, destroy, and later up
//! and rollback).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use crate::exit::BadInput;

/// Asks `question` on a terminal; without one, refuses with a hint naming `--yes`.
///
/// # Errors
/// [`BadInput`] when there is no terminal to ask on.
pub fn confirm(question: &str) -> anyhow::Result<bool> {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(BadInput {
            message: format!("{question} needs confirmation, and there is no terminal to ask on"),
            hint: Some("add --yes to confirm non-interactively".into()),
        }
        .into());
    }
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
