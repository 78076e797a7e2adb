//! The binary's integration tests: one test binary, one module per feature.

mod history;
mod history_report;
