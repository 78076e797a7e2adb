//! Facts about the process and working directory a run is recorded from: host, PID, a
//! token that tells this process apart from a later one reusing its PID, the operator, and
//! the git branch and commit.
//!
//! Why the token: a run left `running` by a process that was killed must be marked
//! `interrupted` the next time anyone opens the store. A PID alone is not enough (PIDs are
//! reused), so on Linux the run also records the boot id and the process start time from
//! `/proc`; the run is alive only if the same PID still has the same start time in the same
//! boot. Elsewhere only the age rule applies.

use std::path::Path;
use std::process::Command;

/// The host name, from the kernel; `unknown` when it cannot be read.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// `boot-id:start-time` of a process on Linux, `None` where `/proc` has no answer.
pub fn process_token(pid: u32) -> Option<String> {
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: fields after
    // the last ')' start at field 3, so the start time (field 22) is the 20th of them.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let start_time = after_name.split_whitespace().nth(19)?;
    Some(format!("{}:{start_time}", boot_id.trim()))
}

/// Whether a run's process can still be running.
///
/// `None` means "cannot tell from here" (another host, or no token recorded).
pub fn is_alive(host: &str, pid: i64, token: Option<&str>) -> Option<bool> {
    if host != host_name() {
        return None;
    }
    let recorded = token?;
    let pid = u32::try_from(pid).ok()?;
    Some(process_token(pid).as_deref() == Some(recorded))
}

/// Who is running sombrero: `USER` (or `USERNAME`, `LOGNAME`); where none is set (cron,
/// systemd units, CI runners, `env -i`), the account of the process's real uid from
/// `/etc/passwd`, or `uid N`; `unknown` only where `/proc` has no answer.
pub fn operator() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
        .or_else(|| {
            let uid = real_uid(&std::fs::read_to_string("/proc/self/status").ok()?)?;
            let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
            Some(account_of(&passwd, uid).unwrap_or_else(|| format!("uid {uid}")))
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The real uid from `/proc/PID/status` text (`Uid: REAL EFFECTIVE SAVED FS`).
fn real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().next())
        .and_then(|id| id.parse().ok())
}

/// The account name of `uid` in `/etc/passwd` text (`name:x:uid:gid:...`).
fn account_of(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id = fields.nth(1)?;
        (id.parse() == Ok(uid) && !name.is_empty()).then(|| name.to_owned())
    })
}

/// The git branch and commit of a working directory; both `None` outside a repository or
/// without git installed (a deployment from an unpacked tarball is fine).
pub fn git_revision(directory: &Path) -> (Option<String>, Option<String>) {
    let ask = |arguments: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(directory)
            .args(arguments)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|output| output.status.success())
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .map(|text| text.trim().to_owned())
            .filter(|text| !text.is_empty())
    };
    let commit = ask(&["rev-parse", "HEAD"]);
    let branch = commit
        .as_ref()
        .and_then(|_| ask(&["rev-parse", "--abbrev-ref", "HEAD"]));
    (branch, commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_token_is_not() {
        let pid = std::process::id();
        let Some(token) = process_token(pid) else {
            return; // not Linux: nothing to check
        };
        assert_eq!(
            is_alive(&host_name(), i64::from(pid), Some(&token)),
            Some(true)
        );
        assert_eq!(
            is_alive(&host_name(), i64::from(pid), Some("other-boot:1")),
            Some(false)
        );
        assert_eq!(is_alive("another-host", i64::from(pid), Some(&token)), None);
    }

    #[test]
    fn outside_a_repository_git_gives_nothing() {
        let directory = tempfile::tempdir().unwrap();
        assert_eq!(git_revision(directory.path()), (None, None));
    }

    #[test]
    fn the_operator_falls_back_to_the_uid_account() {
        let status = "Name:\tsombrero\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\n";
        assert_eq!(real_uid(status), Some(1000));
        assert_eq!(real_uid("Name: x\n"), None);
        let passwd = "root:x:0:0:root:/root:/bin/bash\n\
                      # a comment\n\
                      ops:x:1000:1000:Ops,,,:/home/ops:/bin/bash\n\
                      broken-line\n";
        assert_eq!(account_of(passwd, 1000).as_deref(), Some("ops"));
        assert_eq!(account_of(passwd, 0).as_deref(), Some("root"));
        assert_eq!(account_of(passwd, 4242), None);
    }
}
