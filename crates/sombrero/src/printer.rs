//! All output of the binary goes through [`Printer`].
//!
//! Why (uv style): data goes to stdout, and everything meant for a person (messages,
//! warnings, progress, errors) goes to stderr, so `sombrero ... --json | jq` always works;
//! `--json` serializes the same struct the text view renders; `-q` silences messages but
//! never data. Writes ignore a closed pipe (`| head`) instead of panicking.

use std::io::Write;

use crate::cli::GlobalArgs;

/// Where and how much to print.
#[derive(Debug, Clone)]
pub struct Printer {
    json: bool,
    quiet: bool,
    verbose: u8,
}

impl Printer {
    pub fn new(global: &GlobalArgs) -> Self {
        Self {
            json: global.json,
            quiet: global.quiet,
            verbose: global.verbose,
        }
    }

    /// Whether the user asked for machine-readable output.
    pub fn json_mode(&self) -> bool {
        self.json
    }

    /// Whether `-q` silences messages and progress.
    pub fn is_quiet(&self) -> bool {
        self.quiet
    }

    /// How many `-v` were given.
    pub fn verbosity(&self) -> u8 {
        self.verbose
    }

    /// Where log lines (the libraries' tracing events, see `logging`) are written: stderr,
    /// like every message for a person.
    #[expect(
        clippy::unused_self,
        reason = "a method on purpose: all output flows through a Printer value"
    )]
    pub fn log_writer(&self) -> std::io::StderrLock<'static> {
        std::io::stderr().lock()
    }

    /// Data for stdout, followed by a newline.
    #[expect(
        clippy::unused_self,
        reason = "a method on purpose: all output flows through a Printer value"
    )]
    pub fn data(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
    }

    /// A value as pretty JSON on stdout.
    ///
    /// # Errors
    /// If the value cannot be serialized (a bug: our output types are plain data).
    pub fn json<T: serde::Serialize>(&self, value: &T) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(value)?;
        self.data(&text);
        Ok(())
    }

    /// A message for a person on stderr (suppressed by `-q`).
    pub fn info(&self, text: &str) {
        if !self.quiet {
            let _ = writeln!(std::io::stderr().lock(), "{text}");
        }
    }

    /// A warning on stderr (never suppressed).
    #[expect(
        clippy::unused_self,
        reason = "a method on purpose: all output flows through a Printer value"
    )]
    pub fn warn(&self, text: &str) {
        let _ = writeln!(std::io::stderr().lock(), "warning: {text}");
    }

    /// An error chain as `error:` / `Caused by:` / `hint:` on stderr.
    #[expect(
        clippy::unused_self,
        reason = "a method on purpose: all output flows through a Printer value"
    )]
    pub fn error(&self, error: &anyhow::Error) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "error: {error}");
        let causes: Vec<String> = error.chain().skip(1).map(ToString::to_string).collect();
        if !causes.is_empty() {
            let _ = writeln!(err, "\nCaused by:");
            for cause in causes {
                let _ = writeln!(err, "  {cause}");
            }
        }
        if let Some(hint) = crate::exit::hint_for(error) {
            let _ = writeln!(err, "\nhint: {hint}");
        }
    }
}
