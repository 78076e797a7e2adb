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
    /// Run against an in-process lab (a Proxmox VE API on 127.0.0.1 with template 1001)
    /// instead of the configured cluster.
    #[arg(long, global = true)]
    pub lab: bool,
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
    /// Recorded runs, newest first (all environments unless --env is given).
    #[command(
        after_help = "Examples:\n  sombrero history\n  sombrero history --env staging --limit 5 --json\n  \
            SOMBRERO_HISTORY=postgres://alice@db.internal/sombrero sombrero history import deployments/sombrero.db",
        args_conflicts_with_subcommands = true
    )]
    History(HistoryArgs),
    /// Deployment metrics: the runbook's analytics dashboard, or a Prometheus textfile.
    #[command(
        long_about = "Deployment metrics: total runs, success rate, average, median, fastest and \
            slowest duration, per-phase average and p95, issues by phase, the trend of the last \
            runs, per environment and per operator. Durations are over successful runs; the \
            success rate is over finished runs.",
        after_help = "Examples:\n  sombrero metrics --since 30d\n  sombrero metrics --env production --json\n  \
            sombrero metrics --prometheus /var/lib/node_exporter/textfile/sombrero.prom"
    )]
    Metrics(MetricsArgs),
    /// Write a self-contained HTML report with charts (no network access needed to view it).
    #[command(
        after_help = "Example:\n  sombrero report --html deployments/report.html --since 90d"
    )]
    Report(ReportArgs),
    /// Write the runbook's deployment record of a run (default: the latest) and print its path.
    #[command(
        after_help = "Examples:\n  sombrero checklist\n  sombrero checklist DEP-20261126-124610"
    )]
    Checklist(ChecklistArgs),
    /// The runbook's issue log ("Issues & Resolutions").
    #[command(subcommand)]
    Issue(IssueCommand),
    /// A raw Proxmox VE API call through sombrero's client, like pvesh (for debugging).
    #[command(
        long_about = "A raw Proxmox VE API call through sombrero's client, like pvesh.\n\n\
            Uses the resolved settings (API URL, token, TLS fingerprint or CA) and the same \
            retry policy as every stage. Prints the answer's data as text, or as JSON with \
            --json. API errors print their status and reason and exit 1. With --lab the call \
            goes to the in-process lab of `deploy --lab`. Writes (post, put, delete) are \
            recorded in the history.",
        after_help = "Examples:\n  sombrero api get /version\n  sombrero api get /cluster/resources type=vm --json\n  \
            sombrero api post /nodes/pve1/qemu/150/agent/exec command=cat command=/etc/hostname"
    )]
    Api(ApiArgs),
    /// The lab: a Proxmox VE API server on 127.0.0.1 for rehearsals and tests.
    #[command(subcommand)]
    Lab(LabCommand),
    /// Stage 2, read-only: what `deploy` would change, field by field.
    #[command(
        long_about = "Stage 2, read-only: compares the environment's VM with the cluster and \
            shows what `deploy` would do: create, update in place, update needing a restart, \
            or no changes, field by field. Sends no write request.",
        after_help = "Examples:\n  sombrero plan --env staging\n  sombrero plan --lab --json\n  \
            sombrero plan --template 1000"
    )]
    Plan(PlanArgs),
    /// Stage 1: the golden template from a cloud image, provisioned by Ansible.
    #[command(
        long_about = "Stage 1: creates a builder VM from the cloud image (build.base_image; the \
            node downloads it from build.base_image_url when missing), boots it, pins its SSH \
            host key through the guest agent, runs ansible/playbooks/golden-image.yml (Docker, \
            the tools, the guest agent, security updates, UTC, an sshd baseline), generalizes \
            it (generalize.yml), powers it off and converts it to the template (id and name \
            from sombrero.toml: 1001, ubuntu-server-numbat-docker) with its build metadata, \
            then writes deployments/outputs/packer-outputs.json. With a current template \
            present it changes nothing; --replace builds a new version and keeps the old one \
            under another id, tagged superseded.",
        after_help = "Examples:\n  sombrero build\n  sombrero build --replace\n  \
            sombrero build --template-id 1002 --json"
    )]
    Build(BuildArgs),
    /// The golden templates on the cluster and the environments cloned from each.
    #[command(after_help = "Examples:\n  sombrero templates\n  sombrero templates --json")]
    Templates,
    /// Stage 2: the environment's VM from the template, then the stage outputs.
    #[command(
        long_about = "Stage 2: clones the template into the environment's VM (or updates it in \
            place), starts it, waits for the guest agent's address, pins the VM's SSH host key \
            in a known_hosts file sombrero manages, waits until SSH answers, and writes \
            deployments/outputs/terraform-outputs.json and inventory.yml. Deploying a deployed \
            environment changes nothing. Asks for confirmation on a terminal unless --yes.",
        after_help = "Examples:\n  sombrero deploy --lab --yes\n  sombrero deploy --env staging --yes\n  \
            sombrero deploy --template 1000 --linked"
    )]
    Deploy(DeployArgs),
    /// Stage 3: the runbook's post-deploy configuration of the VM, through Ansible.
    #[command(
        long_about = "Stage 3: reads the environment's stage 2 outputs, waits for cloud-init \
            on the VM, runs ansible/playbooks/post-deploy.yml with the pinned known_hosts \
            (users and sudo, sshd hardening, an nftables firewall that leaves Docker alone, \
            Docker, mise and uv, logrotate, a health timer, the deployment marker), one line \
            per task, and writes deployments/outputs/ansible-results.json from what the VM \
            reports. The Ansible log goes to deployments/logs/. Running it again changes \
            nothing.",
        after_help = "Examples:\n  sombrero configure --env staging\n  sombrero configure --json | jq .firewall_rules"
    )]
    Configure,
    /// The runbook's smoke tests on the environment's VM, over one SSH connection.
    #[command(
        long_about = "The runbook's smoke tests, run inside the environment's VM over one \
            multiplexed SSH connection (the pinned known_hosts and the key stage 3 uses), \
            independent checks in parallel, every check run even when others fail. The full \
            suite: infrastructure (SSH, address, route, DNS, hostname), services (cloud-init, \
            guest agent, Docker, sshd, failed units, docker without sudo, compose), security \
            (sudo, sshd -T, the firewall, Docker's chains), packages, the files stage 3 \
            writes, a container run and the bridge network, and headroom ([verify] limits). \
            --quick: SSH, hostname, uptime. --docker: Docker and compose. Writes \
            deployments/outputs/<env>/verify-results.json; exits 1 when a check failed.",
        after_help = "Examples:\n  sombrero verify\n  sombrero verify --quick --env staging\n  \
            sombrero verify --docker --json | jq '.checks[] | select(.status == \"fail\")'"
    )]
    Verify(VerifyArgs),
    /// The runbook's troubleshooting guide as code: what is wrong with the VM, and the fix.
    #[command(
        long_about = "Looks at the environment's VM the way the runbook's troubleshooting \
            guide does, through the Proxmox API and the guest agent first (they work when SSH \
            does not), then SSH: API authentication and the token's privileges, the template, \
            SSH (VM status, the agent's addresses, sshd, firewall rules for port 22, the key \
            in authorized_keys), cloud-init, Docker. Prints each finding with the runbook's \
            fix; exits 1 when it found a problem. --bundle writes a tar.gz of logs, outputs \
            and configuration, secrets redacted.",
        after_help = "Examples:\n  sombrero diagnose\n  sombrero diagnose --env staging --bundle jump-man.tar.gz"
    )]
    Diagnose(DiagnoseArgs),
    /// The runbook's prerequisites: tools, API, TLS, token privileges, node, storage,
    /// bridge, template, base image, SSH keys, the address.
    #[command(
        long_about = "Checks the runbook's prerequisites for the environment, one line each \
            (ok, warn, fail) with what to do: ssh, Ansible and QEMU on this machine; the API \
            reachable and how TLS is verified; the token valid and holding the privileges \
            each stage needs (the missing ones listed per stage); the node online; the disk \
            storage present, holding images, with room for the disk; the bridge; the \
            template present and a template; the base image present or a download URL \
            configured; the SSH key pair readable; the environment's address not used by \
            another VM. Exits 1 when a check fails. Changes nothing.",
        after_help = "Examples:\n  sombrero doctor\n  sombrero doctor --env staging --json"
    )]
    Doctor,
    /// The environment's VM: power, address, uptime, template, drift.
    #[command(after_help = "Examples:\n  sombrero status\n  sombrero status --env staging --json")]
    Status,
    /// The environment's stage outputs: build, deploy, configure and verify.
    #[command(
        long_about = "Shows the environment's stage outputs together: packer-outputs.json \
            (stage 1), terraform-outputs.json (stage 2), ansible-results.json (stage 3) and \
            verify-results.json, each summarized, with the command that writes a missing \
            one. --stage shows one file whole (--json: the file as written).",
        after_help = "Examples:\n  sombrero outputs --env staging\n  \
            sombrero outputs --stage deploy --json | jq .vm_ip\n  sombrero outputs --json | jq .configure.docker_status"
    )]
    Outputs(OutputsArgs),
    /// Shut down and delete the environment's VM, and remove its outputs and host keys.
    #[command(
        long_about = "Shuts the environment's VM down (stop after a timeout), deletes it with \
            purge, and removes the environment's outputs and pinned host keys. Refuses VMs \
            sombrero does not manage. Asks for confirmation on a terminal unless --yes; \
            without a terminal, --yes is required.",
        after_help = "Examples:\n  sombrero destroy --env staging --yes"
    )]
    Destroy(DestroyArgs),
    /// The whole runbook in one tracked run: preflight, build (when needed), deploy,
    /// configure, verify.
    #[command(
        long_about = "The runbook's deploy-full, in order and as one recorded run: the checks \
            of `sombrero doctor` (a failed one stops it), stage 1 only when the template is \
            missing (or --rebuild), stage 2, stage 3, the smoke tests. Each stage reads the \
            previous one's outputs; a failed stage stops the run with its error, and running \
            `up` again continues from what is done (the template is not rebuilt, the VM not \
            re-cloned, configure converges, verify runs again). Ends with each stage's time, \
            the VM, the SSH command with the pinned host key, and where the outputs are. \
            With --lab, the whole runbook is rehearsed on an in-process lab with real QEMU \
            guests when this machine can run them (the guest image is built first when it can \
            be); otherwise the stages state-only guests allow, saying which were skipped and \
            what fixes it.",
        after_help = "Examples:\n  sombrero up --lab --yes\n  sombrero up --env staging --yes\n  \
            sombrero up --template 1002 --rebuild\n  sombrero up --lab --keep"
    )]
    Up(UpArgs),
    /// Re-create the environment's VM from a previous template: destroy, deploy,
    /// configure, verify.
    #[command(
        long_about = "The runbook's rollback: shows what will happen, asks (unless --yes), then \
            destroys the environment's VM and re-creates it from the given template (a \
            superseded build, see `sombrero templates`), configures and verifies it, as one \
            recorded run. No template is deleted.",
        after_help = "Examples:\n  sombrero templates\n  sombrero rollback --template 1005 --env staging"
    )]
    Rollback(RollbackArgs),
    /// Take over an existing VM for the environment (the runbook's `terraform import`).
    #[command(after_help = "Examples:\n  sombrero adopt 150\n  sombrero adopt 152 --env staging")]
    Adopt(AdoptArgs),
    /// Move the environment's VM to another node of the cluster (node maintenance).
    #[command(
        long_about = "Moves the environment's VM to NODE with PVE's migration (task qmigrate), \
            recorded in the history. A running VM needs --online (a live migration: it keeps \
            running, SSH sessions survive); a stopped one moves offline. The outputs and the \
            inventory are rewritten with the new node; the address and the pinned host key \
            stay valid. `deploy` afterwards changes nothing: it finds the VM where it is.",
        after_help = "Examples:\n  sombrero migrate --to pve2 --online\n  sombrero migrate --to lloyd --env staging"
    )]
    Migrate(MigrateArgs),
}

/// Arguments of `sombrero plan`.
#[derive(Debug, Clone, Args)]
pub struct PlanArgs {
    /// Clone this template instead of the configured or newest tagged one.
    #[arg(long, value_name = "ID")]
    pub template: Option<u32>,
}

/// A stage whose outputs `sombrero outputs --stage` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Stage {
    /// packer-outputs.json (alias: packer).
    #[value(alias = "packer")]
    Build,
    /// terraform-outputs.json (alias: terraform).
    #[value(alias = "terraform")]
    Deploy,
    /// ansible-results.json (alias: ansible).
    #[value(alias = "ansible")]
    Configure,
    /// verify-results.json.
    Verify,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Build => "build",
            Self::Deploy => "deploy",
            Self::Configure => "configure",
            Self::Verify => "verify",
        }
    }

    /// The heading of its section in `outputs`.
    pub fn title(self) -> &'static str {
        match self {
            Self::Build => "stage 1, build",
            Self::Deploy => "stage 2, deploy",
            Self::Configure => "stage 3, configure",
            Self::Verify => "verify",
        }
    }
}

/// Arguments of `sombrero outputs`.
#[derive(Debug, Clone, Args)]
pub struct OutputsArgs {
    /// Only this stage's file, whole.
    #[arg(long, value_enum, value_name = "STAGE")]
    pub stage: Option<Stage>,
}

/// Arguments of `sombrero verify`.
#[derive(Debug, Clone, Default, Args)]
pub struct VerifyArgs {
    /// Only SSH, hostname and uptime (the runbook's smoke-test-quick).
    #[arg(long, conflicts_with = "docker")]
    pub quick: bool,
    /// Only Docker: versions, a container run, ps, storage driver (smoke-test-docker).
    #[arg(long)]
    pub docker: bool,
    /// One SSH connection per check, one check after another: the original smoke test's
    /// way, for benchmarks.
    #[arg(long, hide = true)]
    pub one_connection_per_check: bool,
}

/// Arguments of `sombrero diagnose`.
#[derive(Debug, Clone, Args)]
pub struct DiagnoseArgs {
    /// Also write a tar.gz with the VM's logs, the outputs and the configuration
    /// (secrets redacted).
    #[arg(long, value_name = "FILE")]
    pub bundle: Option<std::path::PathBuf>,
}

/// Arguments of `sombrero build`.
#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Build a new version even when the template is current; the old one is kept under
    /// another id, tagged superseded.
    #[arg(long)]
    pub replace: bool,
    /// The template's id (default: `template_id` in sombrero.toml, else 1001).
    #[arg(long, value_name = "N")]
    pub template_id: Option<u32>,
}

/// Arguments of `sombrero deploy`.
#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// Clone this template instead of the configured or newest tagged one.
    #[arg(long, value_name = "ID")]
    pub template: Option<u32>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// A linked clone (faster; the VM keeps depending on the template's disk).
    #[arg(long)]
    pub linked: bool,
}

/// Arguments of `sombrero destroy`.
#[derive(Debug, Clone, Args)]
pub struct DestroyArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Every environment's VM that sombrero manages (one confirmation lists them).
    #[arg(long)]
    pub all: bool,
    /// Also remove the environment's logs (Ansible and build logs, diagnose bundles are
    /// yours); checklists and the history are kept.
    #[arg(long)]
    pub clean: bool,
}

/// Arguments of `sombrero up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Deploy from this template (`TEMPLATE_ID` too).
    #[arg(long, value_name = "ID")]
    pub template: Option<u32>,
    /// Build a new version of the template even when it is present.
    #[arg(long)]
    pub rebuild: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// With --lab: keep the lab and its VM running after the summary (Ctrl-C ends them).
    #[arg(long)]
    pub keep: bool,
}

/// Arguments of `sombrero rollback`.
#[derive(Debug, Clone, Args)]
pub struct RollbackArgs {
    /// The template to re-create the VM from.
    #[arg(long, value_name = "ID")]
    pub template: u32,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// Arguments of `sombrero migrate`.
#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    /// The node to move the VM to.
    #[arg(long, value_name = "NODE")]
    pub to: String,
    /// Live migration of a running VM (it keeps running).
    #[arg(long)]
    pub online: bool,
}

/// Arguments of `sombrero adopt`.
#[derive(Debug, Clone, Args)]
pub struct AdoptArgs {
    /// The VM to take over; must be the environment's configured vmid.
    pub vmid: u32,
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

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show at most this many runs.
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub limit: usize,
    #[command(subcommand)]
    pub action: Option<HistoryAction>,
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// Copy the runs of a local history file into this history (typically the team's
    /// database); runs already there are skipped, so importing twice imports once.
    #[command(
        after_help = "Examples:\n  SOMBRERO_HISTORY=postgres://alice@db.internal/sombrero sombrero history import deployments/sombrero.db"
    )]
    Import {
        /// The history file to copy from (it is only read).
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Only runs started since: a date (2026-11-01), an RFC 3339 time, or an age (30d, 12h).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Count runs of this command (deploy, build, configure, verify, destroy, ...), or of
    /// every command with `all` [default: the pipeline's runs, of up and of deploy].
    #[arg(long, value_name = "COMMAND")]
    pub command: Option<String>,
    /// Write node-exporter textfile metrics to FILE (atomically) instead of the dashboard.
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The HTML file to write (replaced atomically).
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// Only runs started since: a date, an RFC 3339 time, or an age (30d, 12h).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Count runs of this command, or of every command with `all` [default: the
    /// pipeline's runs, of up and of deploy].
    #[arg(long, value_name = "COMMAND")]
    pub command: Option<String>,
}

#[derive(Debug, Args)]
pub struct ChecklistArgs {
    /// The run (DEP-...); default: the latest.
    pub run: Option<String>,
    /// Directory for the record [default: `checklists/` next to the history database].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum IssueCommand {
    /// Log an issue for a run; asks for missing fields on a terminal.
    #[command(
        after_help = "Example:\n  sombrero issue add --phase configure --description \"apt lock held\" \\\n    \
            --root-cause \"unattended-upgrades\" --resolution \"waited\" --time-to-resolve 10m"
    )]
    Add(IssueAddArgs),
}

#[derive(Debug, Args)]
pub struct IssueAddArgs {
    /// The run (DEP-...); default: the latest.
    #[arg(long, value_name = "RUN")]
    pub run: Option<String>,
    /// The phase the issue happened in (required).
    #[arg(long)]
    pub phase: Option<String>,
    /// What went wrong (required).
    #[arg(long)]
    pub description: Option<String>,
    #[arg(long)]
    pub symptoms: Option<String>,
    #[arg(long)]
    pub root_cause: Option<String>,
    #[arg(long)]
    pub resolution: Option<String>,
    /// How long it took to resolve: 15m, 1h30m, or minutes.
    #[arg(long, value_name = "DURATION")]
    pub time_to_resolve: Option<String>,
    #[arg(long)]
    pub impact: Option<String>,
    #[arg(long)]
    pub prevention: Option<String>,
}

/// `sombrero lab ...`
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Serve the Proxmox VE API on 127.0.0.1 until SIGINT/SIGTERM.
    #[command(
        long_about = "Serve the Proxmox VE API on 127.0.0.1 until SIGINT/SIGTERM.\n\n\
            When ready, prints the API URL, an API token with full privileges \
            (root@pam!lab=<secret>), the root@pam password for ticket login and the TLS \
            certificate's SHA-256 fingerprint; with --json exactly one JSON object \
            {\"url\",\"token\",\"password\",\"fingerprint\"} on stdout. Point any PVE client at it \
            like at a cluster. Listens on loopback addresses only.",
        after_help = "Examples:\n  sombrero lab serve --json --with-template\n  \
            sombrero lab serve --state ~/.local/state/sombrero-lab --listen 127.0.0.1:8006\n  \
            sombrero lab serve --faults http5xx=0.2,reset=0.05,lock-timeout=0.1,seed=42"
    )]
    Serve(LabServeArgs),
    /// The real guests' base image.
    #[command(subcommand)]
    Image(LabImageCommand),
    /// Which guests `--guests auto` would run here, and why (with the fixes).
    #[command(
        long_about = "Which guests `--guests auto` would run here, and why: QEMU installed, \
            the seed ISO tool, the guest image built, KVM usable (a real test boot, not the \
            existence of /dev/kvm). Prints the command that fixes each gap.",
        after_help = "Examples:\n  sombrero lab doctor\n  sombrero lab doctor --json"
    )]
    Doctor,
}

/// `sombrero lab image ...`
#[derive(Debug, Subcommand)]
pub enum LabImageCommand {
    /// Build (or reuse) the Debian image real lab guests boot.
    #[command(
        long_about = "Build the Debian 12 image real lab guests boot: debootstrap from Debian's \
            mirror, cloud-init (NoCloud), openssh-server, qemu-guest-agent, the golden-image \
            packages staged as a local apt repository, a busybox Docker image archive, uv and \
            mise. Needs root. Cached by a hash of the recipe (lab/ in the sources) under \
            $SOMBRERO_LAB_IMAGES, else $XDG_CACHE_HOME/sombrero/lab-images; an existing image \
            is reused.",
        after_help = "Examples:\n  sudo sombrero lab image build\n  \
            SOMBRERO_LAB_IMAGES=/var/cache/sombrero sombrero lab image build --force"
    )]
    Build(LabImageBuildArgs),
}

#[derive(Debug, Args)]
pub struct LabImageBuildArgs {
    /// Rebuild even when the cache holds this recipe's image.
    #[arg(long)]
    pub force: bool,
}

/// Which guests the lab runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GuestsMode {
    /// Real QEMU guests when QEMU and the guest image are there, else state-only.
    Auto,
    /// State-only guests: fast, API behaviour only.
    State,
    /// Real QEMU guests booting Debian (see `sombrero lab doctor`).
    Qemu,
}

#[derive(Debug, Args)]
pub struct LabServeArgs {
    /// Address to listen on (loopback only; port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8006")]
    pub listen: std::net::SocketAddr,
    /// Keep state, certificate and credentials in DIR across restarts [default: in memory].
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// Which guests to run.
    #[arg(long, value_enum, default_value_t = GuestsMode::Auto)]
    pub guests: GuestsMode,
    /// Faults to inject (probabilities per request or task; `lost`: handled, answer dropped),
    /// e.g. http5xx=0.2,reset=0.05,lost=0.02,lock-timeout=0.1,task-fail=0.05,slow=2.0,agent-never=0.1,seed=42
    #[arg(long, value_name = "SPEC")]
    pub faults: Option<String>,
    /// Also create template 1001, ready to clone (on storage `shared` in a cluster).
    #[arg(long)]
    pub with_template: bool,
    /// Serve a cluster of these nodes, e.g. lloyd,pve2,pve3 (the first answers the API;
    /// more than one adds the shared storage `shared`) [default: one node, lloyd].
    #[arg(long, value_name = "NAMES")]
    pub nodes: Option<String>,
    /// Serve plain HTTP instead of HTTPS (for tests and debugging).
    #[arg(long)]
    pub plain_http: bool,
}

/// Arguments of `sombrero api`.
#[derive(Debug, Clone, Args)]
pub struct ApiArgs {
    /// get, post, put or delete (pvesh's create and set work too).
    pub method: String,
    /// The API path below /api2/json, e.g. /cluster/resources.
    pub path: String,
    /// Parameters as key=value; repeat a key for array parameters.
    #[arg(value_name = "KEY=VALUE")]
    pub params: Vec<String>,
}
