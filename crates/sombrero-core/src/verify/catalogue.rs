//! The checks of each suite: the original `smoke-test.sh`'s 26, corrected, plus the
//! runbook's list. Each is a shell line run as the VM's user and a judgement of its
//! output; what a check expects (address, gateway, hostname, thresholds) comes from the
//! configuration and stage 2's outputs, never from constants.
//!
//! Corrections to the original: the address is looked for on the interface (not `ping`ed
//! from the host); DNS is checked inside the guest with a lookup that needs no internet
//! (the VM's own name); cloud-init must be `done`, not merely not running; `sshd -T`
//! gives the effective settings rather than grepping a config file; Docker runs a
//! container from a local image when no registry is reachable.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::judge::{self, Verdict};
use super::{CheckStatus, Suite};
use crate::ssh::RemoteOutput;

/// What the configuration says the VM should be.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Expectations {
    pub user: String,
    pub hostname: String,
    /// `ADDRESS/PREFIX` as configured.
    pub address: String,
    pub gateway: String,
    pub nameservers: Vec<String>,
    pub thresholds: Thresholds,
}

/// The headroom checks' limits (`[verify]` in sombrero.toml).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Thresholds {
    pub disk_percent: u8,
    pub memory_percent: u8,
    pub load_per_cpu: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            disk_percent: 90,
            memory_percent: 90,
            load_per_cpu: 2.0,
        }
    }
}

/// How a check's output is judged.
pub type Judge = Arc<dyn Fn(&RemoteOutput) -> Verdict + Send + Sync>;

/// One check: a name, a group, a shell line run as the user, its judgement.
#[derive(Clone)]
pub struct Check {
    pub name: String,
    pub group: &'static str,
    pub script: String,
    pub limit: Duration,
    pub judge: Judge,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("group", &self.group)
            .field("script", &self.script)
            .finish_non_exhaustive()
    }
}

const LIMIT: Duration = Duration::from_secs(30);
/// A container run may load an image first.
const DOCKER_LIMIT: Duration = Duration::from_secs(90);

fn check(
    group: &'static str,
    name: &str,
    script: &str,
    judge: impl Fn(&RemoteOutput) -> Verdict + Send + Sync + 'static,
) -> Check {
    Check {
        name: name.to_owned(),
        group,
        script: script.to_owned(),
        limit: LIMIT,
        judge: Arc::new(judge),
    }
}

/// Passes when `script` succeeds; the detail is its first line.
fn succeeds(group: &'static str, name: &str, script: &str, expected: &'static str) -> Check {
    check(group, name, script, move |output| {
        judge::succeeds(output, expected)
    })
}

/// Passes when `script`'s first line is `expected`.
fn equals(group: &'static str, name: &str, script: &str, expected: &'static str) -> Check {
    check(group, name, script, move |output| {
        judge::equals(output, expected)
    })
}

fn active(group: &'static str, name: &str, unit: &'static str) -> Check {
    equals(
        group,
        name,
        &format!("systemctl is-active {unit}"),
        "active",
    )
}

/// What `cloud-init status` reads, printed in one go: its own command is a Python start
/// (seconds under emulation) for two small files.
const CLOUD_INIT_FILES: &str = "cat /run/cloud-init/status.json && echo && echo ---sombrero--- \
    && { cat /run/cloud-init/result.json 2>/dev/null || echo '{}'; }";

/// `docker run` of a local image: the one the lab stages, else `hello-world` (pulled
/// where a registry is reachable).
const CONTAINER_RUN: &str = "set -e; archive=/var/local/sombrero/images/busybox.tar; \
    if [ -f \"$archive\" ]; then \
      docker image inspect busybox:lab >/dev/null 2>&1 || docker load -q -i \"$archive\" >/dev/null; \
      docker run --rm busybox:lab echo sombrero-container-ok; \
    else docker run --rm hello-world | grep -m1 'Hello from Docker' && echo sombrero-container-ok; fi";

fn container_run() -> Check {
    let mut run = check("docker", "container-run", CONTAINER_RUN, |output| {
        if output.success() && output.stdout.contains("sombrero-container-ok") {
            (
                CheckStatus::Pass,
                "a container ran and printed its line".to_owned(),
            )
        } else {
            (
                CheckStatus::Fail,
                format!(
                    "expected a container to run, seen: {}",
                    judge::complaint(output)
                ),
            )
        }
    });
    run.limit = DOCKER_LIMIT;
    run
}

fn compose() -> Check {
    succeeds(
        "services",
        "compose",
        // The plugin (Go, fast), else the Debian package's version without starting
        // docker-compose v1 (Python), else docker-compose itself.
        "docker compose version --short 2>/dev/null \
         || dpkg-query -W -f='docker-compose ${Version}\\n' docker-compose 2>/dev/null \
         || docker-compose version --short",
        "docker compose or docker-compose",
    )
}

fn ssh_user(expect: &Expectations) -> Check {
    let user = expect.user.clone();
    check("infrastructure", "ssh", "id -un", move |output| {
        judge::equals(output, &user)
    })
}

fn hostname(expect: &Expectations) -> Check {
    let name = expect.hostname.clone();
    check("infrastructure", "hostname", "hostname", move |output| {
        judge::equals(output, &name)
    })
}

/// The suite's checks, the SSH check first (it opens the shared connection).
pub fn suite(suite: Suite, expect: &Expectations) -> Vec<Check> {
    match suite {
        Suite::Quick => vec![
            ssh_user(expect),
            hostname(expect),
            succeeds("infrastructure", "uptime", "uptime", "the uptime"),
        ],
        Suite::Docker => vec![
            ssh_user(expect),
            succeeds(
                "docker",
                "docker-version",
                "docker --version",
                "the Docker client",
            ),
            compose(),
            container_run(),
            succeeds(
                "docker",
                "docker-ps-all",
                "all=$(docker ps -a -q) && echo \"$(printf '%s' \"$all\" | grep -c .) container(s)\"",
                "docker ps -a",
            ),
            succeeds(
                "docker",
                "server-version",
                "docker version --format '{{.Server.Version}}'",
                "the Docker server's version",
            ),
            succeeds(
                "docker",
                "storage-driver",
                "docker info --format '{{.Driver}}'",
                "a storage driver",
            ),
        ],
        Suite::Full => full(expect),
    }
}

fn full(expect: &Expectations) -> Vec<Check> {
    let mut checks = vec![ssh_user(expect)];
    checks.extend(infrastructure(expect));
    checks.extend(services());
    checks.extend(security());
    for tool in ["git", "tmux", "curl", "wget", "jq", "python3", "mise", "uv"] {
        checks.push(check(
            "packages",
            tool,
            &format!("command -v {tool} || {{ echo '{tool}: not found' >&2; exit 1; }}"),
            move |output| judge::succeeds(output, &format!("{tool} on the PATH")),
        ));
    }
    checks.extend(files());
    checks.push(container_run());
    checks.push(equals(
        "docker",
        "bridge-network",
        "docker network inspect bridge --format '{{.Driver}}'",
        "bridge",
    ));
    checks.extend(headroom(expect.thresholds));
    checks
}

fn infrastructure(expect: &Expectations) -> Vec<Check> {
    let address = vec![format!("inet {}", expect.address)];
    let route = vec![format!("via {}", expect.gateway)];
    let nameservers = expect.nameservers.clone();
    vec![
        check(
            "infrastructure",
            "address",
            "ip -4 -o addr show",
            move |output| judge::contains_all(output, &address, &address[0]),
        ),
        check(
            "infrastructure",
            "default-route",
            "ip -4 route show default",
            move |output| judge::contains_all(output, &route, &judge::first_line(&output.stdout)),
        ),
        check(
            "infrastructure",
            "dns-resolver",
            "{ resolvectl dns 2>/dev/null; grep -h '^nameserver' /etc/resolv.conf; } | tr '\\n' ' '",
            move |output| {
                if nameservers.is_empty() {
                    judge::succeeds(output, "a resolver")
                } else {
                    judge::contains_all(output, &nameservers, &nameservers.join(", "))
                }
            },
        ),
        succeeds(
            "infrastructure",
            "dns-lookup",
            "getent ahostsv4 \"$(hostname)\" | awk 'NR==1 {print $3 \" -> \" $1}'",
            "the VM's own name resolves",
        ),
        hostname(expect),
    ]
}

fn services() -> Vec<Check> {
    vec![
        check(
            "services",
            "cloud-init",
            CLOUD_INIT_FILES,
            judge::cloud_init,
        ),
        active("services", "qemu-guest-agent", "qemu-guest-agent"),
        active("services", "docker", "docker"),
        active("services", "sshd", "ssh"),
        check(
            "services",
            "failed-units",
            "systemctl list-units --state=failed --no-legend --plain",
            |output| judge::empty_list(output, "no failed units", "failed"),
        ),
        succeeds(
            "services",
            "docker-without-sudo",
            "docker ps -q >/dev/null && echo \"docker ps works for $(id -un)\"",
            "docker ps as the user",
        ),
        compose(),
    ]
}

fn security() -> Vec<Check> {
    let sshd = |name: &str, key: &'static str| {
        check("security", name, "sudo -n sshd -T", move |output| {
            judge::setting(output, key, "no")
        })
    };
    vec![
        succeeds(
            "security",
            "sudo",
            "sudo -n true",
            "sudo without a password",
        ),
        sshd("sshd-password-auth", "passwordauthentication"),
        sshd("sshd-root-login", "permitrootlogin"),
        check(
            "security",
            "firewall-input-drop",
            "sudo -n nft list chain inet sombrero input",
            |output| judge::contains_all(output, &["policy drop".to_owned()], "input policy drop"),
        ),
        succeeds(
            "security",
            "firewall-ssh-rule",
            "n=$(sudo -n nft list chain inet sombrero input | grep 'tcp dport 22 ' | grep -c accept) \
             && echo \"$n rule(s) accept tcp/22\"",
            "a rule accepting tcp/22",
        ),
        succeeds(
            "security",
            "docker-chains",
            "n=$(sudo -n nft list ruleset | grep -c 'chain DOCKER') && echo \"$n Docker chain(s)\"",
            "Docker's chains",
        ),
        equals(
            "security",
            "firewall-persisted",
            "systemctl is-enabled sombrero-firewall.service",
            "enabled",
        ),
    ]
}

fn files() -> Vec<Check> {
    vec![
        succeeds(
            "files",
            "marker",
            "grep '^environment=' /etc/jump-man-deployment-complete",
            "the stage 3 marker",
        ),
        succeeds(
            "files",
            "logrotate-rule",
            "test -s /etc/logrotate.d/jump-man && echo /etc/logrotate.d/jump-man",
            "/etc/logrotate.d/jump-man",
        ),
        check(
            "files",
            "health-timer",
            "systemctl is-enabled jump-man-health.timer && systemctl is-active jump-man-health.timer",
            |output| {
                judge::contains_all(
                    output,
                    &["enabled".to_owned(), "active".to_owned()],
                    "enabled, active",
                )
            },
        ),
    ]
}

fn headroom(limits: Thresholds) -> Vec<Check> {
    vec![
        check(
            "headroom",
            "disk",
            "df -P / | awk 'NR==2 {print $5}'",
            move |output| judge::at_most(output, "disk use", f64::from(limits.disk_percent), "%"),
        ),
        check(
            "headroom",
            "memory",
            "awk '/^MemTotal:/ {t=$2} /^MemAvailable:/ {a=$2} END {printf \"%.1f\\n\", (t-a)*100/t}' /proc/meminfo",
            move |output| {
                judge::at_most(output, "memory use", f64::from(limits.memory_percent), "%")
            },
        ),
        check(
            "headroom",
            "load",
            "awk -v n=\"$(nproc)\" '{printf \"%.2f\\n\", $1/n}' /proc/loadavg",
            move |output| judge::at_most(output, "1-minute load per CPU", limits.load_per_cpu, ""),
        ),
    ]
}

#[cfg(test)]
#[path = "catalogue_tests.rs"]
mod tests;
