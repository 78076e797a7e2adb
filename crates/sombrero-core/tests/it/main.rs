//! The core's integration tests: stage 2 (plan, apply, destroy, adopt, outputs, errors,
//! reaching the VM) against the in-process lab, without the binary. One test binary, one
//! module per feature; the binary's own suite runs the `sombrero` command.

#![expect(
    clippy::unwrap_used,
    reason = "helpers shared by tests panic on failure: that panic is the test report"
)]

mod agent_silent;
mod deploy;
mod deploy_destroy;
mod deploy_errors;
mod deploy_forward;
mod deploy_outputs;
mod disk_size;
mod interrupted_clone;
mod reach_lab;
mod soak;
mod template_choice;
