//! For test suites that need a resource this machine may lack (QEMU, the guest image,
//! OpenSSH, Chromium, ansible-core): how they say they skipped, visibly.
//!
//! Why not `eprintln!`: the test harness captures `print!`/`eprint!` output of passing
//! tests, so a skipped test would look exactly like a passing one. Writing to the process's
//! stderr handle directly is not captured: the reason shows up in every `cargo test` run,
//! next to the test's `ok`.

use std::io::Write as _;

/// Reports that `test` did not run, and why (with the command that fixes it, if any).
pub fn skip(test: &str, reason: &str) {
    let line = format!("SKIPPED {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}
