//! `-v`/`-q` and the libraries' own messages: a tracing subscriber that writes through the
//! printer's stderr.
//!
//! Why: the libraries never print; they emit tracing events (the client's insecure-TLS
//! warning, the lab's "cannot save the lab state", each API request). Without a
//! subscriber those were dropped. Levels (for sombrero's own crates; other crates stay at
//! warnings so HTTP internals never flood the output):
//!
//! | flags   | shows |
//! |---------|-------|
//! | `-q`, none | warnings and errors |
//! | `-v`    | + what sombrero and the lab are doing (info) |
//! | `-vv`   | + every API request as sent and answered: method, path, status, duration, attempt (debug) |
//! | `-vvv`  | + request parameters, secrets redacted (trace) |
//!
//! `SOMBRERO_LOG` (else `RUST_LOG`) replaces these defaults with an `EnvFilter` directive
//! such as `pve=debug`.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::printer::Printer;

/// The variable whose filter directive replaces the defaults (before `RUST_LOG`).
pub const LOG_ENV: &str = sombrero_core::settings::env_vars::SOMBRERO_LOG;

/// The crates whose events `-v` makes more detailed.
const OWN_CRATES: [&str; 4] = ["sombrero", "sombrero_core", "pve", "pve_lab"];

/// The default filter directive for `verbose` (`-v` count).
pub fn directive(verbose: u8) -> String {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    std::iter::once("warn".to_owned())
        .chain(OWN_CRATES.iter().map(|name| format!("{name}={level}")))
        .collect::<Vec<_>>()
        .join(",")
}

/// Installs the subscriber. `env_directive` is `SOMBRERO_LOG` or `RUST_LOG`, if set; an
/// unreadable one is reported and the defaults apply.
pub fn init(printer: &Printer, env_directive: Option<&str>) {
    let verbose = printer.verbosity();
    let filter = match env_directive {
        Some(text) => EnvFilter::try_new(text).unwrap_or_else(|error| {
            printer.warn(&format!(
                "{LOG_ENV}/RUST_LOG {text:?} is not a log filter ({error}); using the defaults"
            ));
            EnvFilter::new(directive(verbose))
        }),
        None => EnvFilter::new(directive(verbose)),
    };
    let writer = printer.clone();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Plain text: the lines are read in logs and CI output as often as on a terminal.
        .with_ansi(false)
        .event_format(Lines {
            with_target: verbose >= 2,
        })
        .with_writer(move || writer.log_writer())
        .try_init();
}

/// One line per event in the printer's style: `warning: ...`, `debug: ...`.
struct Lines {
    with_target: bool,
}

/// The label an event's level gets.
fn label(level: Level) -> &'static str {
    match level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        Level::TRACE => "trace",
    }
}

impl<S, N> FormatEvent<S, N> for Lines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    N: for<'writer> FormatFields<'writer> + 'static,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let metadata = event.metadata();
        write!(writer, "{}: ", label(*metadata.level()))?;
        if self.with_target {
            write!(writer, "[{}] ", metadata.target())?;
        }
        context
            .field_format()
            .format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::directive;

    #[test]
    fn each_v_raises_only_sombreros_own_crates() {
        assert_eq!(
            directive(0),
            "warn,sombrero=warn,sombrero_core=warn,pve=warn,pve_lab=warn"
        );
        assert!(directive(2).contains("pve=debug") && directive(2).starts_with("warn,"));
        assert_eq!(directive(3), directive(7));
        assert!(directive(3).contains("pve_lab=trace"));
    }
}
