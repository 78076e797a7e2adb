//! The binary's integration tests: one test binary, one module per feature.

#![expect(
    clippy::unwrap_used,
    reason = "helpers shared by tests panic on failure: that panic is the test report"
)]

mod api;
mod bad_input;
mod build_cli;
mod build_real_guest;
mod cluster;
mod config;
mod config_docs;
mod configure_cli;
mod configure_real_guest;
mod deploy_cli;
mod deploy_cli_errors;
mod deploy_real_guest;
mod destroy_cli;
mod doctor_cli;
mod history;
mod history_fixture;
mod history_lab;
mod history_postgres;
mod history_postgres_tls;
mod history_report;
mod hostile;
mod interrupt;
mod kill;
mod lab_layer;
mod lab_serve;
mod lock;
mod lock_postgres;
mod logging;
mod migrate_real_guest;
mod mise_tasks;
mod outputs_cli;
mod postgres;
mod sandbox;
mod secrets;
mod secrets_files;
mod snapshot;
mod soak_cli;
mod up_cli;
mod up_real_guest;
mod verify_cli;
mod verify_real_guest;
