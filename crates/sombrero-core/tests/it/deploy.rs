//! Stage 2 against the in-process lab (tasks 100x faster): a fresh deploy of each
//! environment, zero writes on re-deploy (the client's request counter), drift planned and
//! applied, destroy, adopt, and the outputs against docs/outputs.md.

use std::collections::HashMap;
use std::path::Path;

use pve_lab::{Lab, LabHandle, LabOptions};
use sombrero_core::deploy::{self, Action, DeployError, DeployEvent, Desired, Timeouts, template};
use sombrero_core::settings::{self, CliOverrides, ConfigFile, Inputs};

/// The repository's own configuration file.
pub const SHIPPED_CONFIG: &str = include_str!("../../../../sombrero.toml");

/// A real ed25519 public key (its private half was discarded).
pub const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINcNWuGhU1/xEN3OkvtFt4lRJ8WrNAFW3w4LZ4K5ibj+ test@sombrero";

/// A lab with template 1001, plain HTTP, fast tasks.
pub async fn lab() -> LabHandle {
    let mut options = LabOptions::for_tests();
    options.node.with_template = true;
    Lab::start(options).await.expect("lab starts")
}

/// A client with the lab's full token (or `token`).
pub fn client(lab: &LabHandle, token: &str) -> pve::Client {
    pve::Client::builder(lab.url())
        .token(token.parse().expect("token"))
        .build()
        .expect("client")
}

/// The settings of `environment` from the shipped sombrero.toml, outputs under `dir`.
pub fn settings(environment: &str, dir: &Path) -> settings::Settings {
    settings_from(SHIPPED_CONFIG, environment, dir)
}

/// The shipped sombrero.toml without its `template_id`: stage 2 discovers the template.
pub fn without_template_id() -> String {
    assert!(SHIPPED_CONFIG.contains("template_id = 1001\n"));
    SHIPPED_CONFIG.replacen("template_id = 1001\n", "", 1)
}

/// The settings of `environment` from `config`, outputs under `dir`.
pub fn settings_from(config: &str, environment: &str, dir: &Path) -> settings::Settings {
    let file = ConfigFile::parse(dir.join("sombrero.toml"), config).expect("config");
    let env: HashMap<String, String> = [
        ("TF_VAR_ci_ssh_key", SSH_KEY.to_owned()),
        (
            "SOMBRERO_OUTPUTS_DIR",
            dir.join("outputs").display().to_string(),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect();
    let cli = CliOverrides {
        environment: Some(environment.to_owned()),
        template_id: None,
        lab: None,
    };
    settings::resolve(Inputs {
        cli: &cli,
        env: &env,
        mise: None,
        file: &file,
    })
    .expect("settings")
}

/// The desired VM of `environment` from the shipped sombrero.toml, outputs under `dir`.
pub fn desired(environment: &str, dir: &Path) -> Desired {
    let settings = settings(environment, dir);
    let key = settings
        .ssh_public_key(|_| unreachable!("inline key"))
        .expect("key");
    Desired::from_settings(&settings, Some(&key), false)
}

/// Makes template 1002 ("golden-2"), a newer copy of 1001 with the same build tags.
pub async fn newer_tagged_template(client: &pve::Client) {
    let options = pve::endpoints::CloneOptions {
        newid: 1002,
        name: Some("golden-2".into()),
        full: Some(true),
        ..Default::default()
    };
    let timeout = std::time::Duration::from_secs(60);
    client
        .clone_vm_and_wait("lloyd", 1001, &options, timeout, &pve::no_progress)
        .await
        .unwrap();
    let upid = client.vm_template("lloyd", 1002).await.unwrap();
    client
        .wait_task(&upid, timeout, &pve::no_progress)
        .await
        .unwrap();
}

pub fn newest() -> template::TemplateRequest {
    template::TemplateRequest::Newest {
        tags: deploy::TEMPLATE_TAGS
            .iter()
            .map(|t| (*t).to_owned())
            .collect(),
        fallback: Some((1001, "test".into())),
    }
}

/// Plans and applies; returns the report.
pub async fn deploy_env(
    client: &pve::Client,
    desired: &Desired,
) -> Result<deploy::DeployReport, DeployError> {
    let plan = deploy::plan(client, desired, &newest()).await?;
    let events = |_: &DeployEvent| {};
    deploy::apply(client, desired, plan, Timeouts::default(), &events).await
}

/// The files of an environment's outputs directory: name -> content.
fn env_files(dir: &Path, environment: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir.join("outputs").join(environment))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn each_environment_deploys_and_a_redeploy_writes_nothing() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let mut kept = Vec::new();
    for (environment, vmid, address) in [
        ("production", 150, "192.168.10.250"),
        ("staging", 152, "192.168.10.252"),
        ("development", 151, "192.168.10.251"),
    ] {
        let desired = desired(environment, dir.path());
        let report = deploy_env(&client, &desired).await.unwrap();
        assert_eq!(report.plan.action, Action::Create);
        assert_eq!(report.outputs.vm_ip, address);
        assert_eq!(report.outputs.vm_id, vmid.to_string());
        assert_eq!(report.outputs.template_id.as_deref(), Some("1001"));
        let config = client.vm_config("lloyd", vmid).await.unwrap();
        assert_eq!(config.balloon(), Some(1024));
        assert_eq!(config.get_text("onboot").as_deref(), Some("1"));
        assert!(config.tags().contains(&environment.to_owned()));
        assert_eq!(
            config
                .scsi0()
                .unwrap()
                .unwrap()
                .size()
                .unwrap()
                .unwrap()
                .to_string(),
            "32G"
        );
        let description = config.description().unwrap();
        assert!(description.contains(&format!("managed-by: sombrero env={environment}")));
        assert_eq!(
            client.vm_status("lloyd", vmid).await.unwrap().status,
            pve::VmState::Running
        );
        // The pinned key is the one the lab's guest has.
        let known = std::fs::read_to_string(
            dir.path()
                .join("outputs")
                .join(environment)
                .join("known_hosts"),
        )
        .unwrap();
        let key = client
            .agent_file_read("lloyd", vmid, "/etc/ssh/ssh_host_ed25519_key.pub")
            .await
            .unwrap()
            .content;
        let blob = key.split_whitespace().nth(1).unwrap();
        assert!(
            known.starts_with(&format!("{address} ssh-ed25519 {blob}")),
            "{known}"
        );

        let before = client.metrics();
        let again = deploy_env(&client, &desired).await.unwrap();
        let after = client.metrics();
        assert_eq!(again.plan.action, Action::NoChanges);
        assert_eq!(
            after.writes() - before.writes(),
            0,
            "a re-deploy must not write"
        );
        assert!(!again.host_key_changed);
        kept.push((environment, env_files(dir.path(), environment)));
    }
    // Deploying the later environments left the earlier ones' files byte for byte intact.
    for (environment, files) in &kept {
        assert_eq!(files.len(), 3, "{environment}: {files:?}");
        assert_eq!(&env_files(dir.path(), environment), files, "{environment}");
    }
    // Every environment kept its own outputs.
    for environment in ["production", "staging", "development"] {
        let layout = deploy::Layout::new(&dir.path().join("outputs"), environment);
        assert_eq!(
            deploy::outputs::read(&layout).unwrap().environment,
            environment
        );
    }
}

#[tokio::test]
async fn drift_is_planned_and_applied_in_place() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let mut desired = desired("staging", dir.path());
    deploy_env(&client, &desired).await.unwrap();

    // A tag is applied at once; no restart.
    desired.tags.push("blue".into());
    desired.tags.sort();
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    assert_eq!(plan.action, Action::Update);
    assert_eq!(plan.changes.len(), 1, "{:?}", plan.changes);
    assert!(!plan.changes[0].restart);

    // Someone changed the cores by hand, and the config asks for more memory: restart.
    client
        .vm_config_set("lloyd", 152, pve::ConfigUpdate::new().cores(4))
        .await
        .unwrap();
    desired.memory_mib = 4096;
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    assert_eq!(plan.action, Action::UpdateWithRestart);
    let fields: Vec<&str> = plan.changes.iter().map(|c| c.key.as_str()).collect();
    assert!(
        fields.contains(&"cores") && fields.contains(&"memory") && fields.contains(&"tags"),
        "{fields:?}"
    );
    let cores = plan.changes.iter().find(|c| c.key == "cores").unwrap();
    assert_eq!(
        (cores.from.as_deref(), cores.to.as_str(), cores.restart),
        (Some("4"), "2", true)
    );

    let report = deploy_env(&client, &desired).await.unwrap();
    assert_eq!(report.plan.action, Action::UpdateWithRestart);
    let config = client.vm_config("lloyd", 152).await.unwrap();
    assert_eq!(config.cores(), Some(2));
    assert_eq!(config.memory().unwrap().unwrap().current, 4096);
    // Applied, not pending: the restart happened.
    let current = client
        .execute(&pve::endpoints::vm_config("lloyd", 152, true))
        .await
        .unwrap();
    assert_eq!(current["memory"].to_string().trim_matches('"'), "4096");
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    assert_eq!(plan.action, Action::NoChanges, "{:?}", plan.changes);

    // A stopped VM with no changes is started, and nothing else is written.
    client
        .stop_vm_and_wait(
            "lloyd",
            152,
            std::time::Duration::from_secs(30),
            &pve::no_progress,
        )
        .await
        .unwrap();
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    assert_eq!(plan.action, Action::Start);
    assert!(plan.changes.is_empty());
    deploy_env(&client, &desired).await.unwrap();
    assert_eq!(
        client.vm_status("lloyd", 152).await.unwrap().status,
        pve::VmState::Running
    );
}

#[tokio::test]
async fn destroy_removes_the_vm_and_its_outputs() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    deploy_env(&client, &desired).await.unwrap();
    let layout = deploy::Layout::new(&dir.path().join("outputs"), "staging");
    assert!(layout.top_outputs().exists() && layout.known_hosts().exists());
    let events = |_: &DeployEvent| {};
    let report = deploy::destroy(&client, &desired, Timeouts::default(), &events)
        .await
        .unwrap();
    assert!(report.deleted);
    assert!(client.vm_config_opt("lloyd", 152).await.unwrap().is_none());
    assert!(!layout.environment_dir().exists() && !layout.top_outputs().exists());
    // Destroying again is fine: nothing to delete.
    let again = deploy::destroy(&client, &desired, Timeouts::default(), &events)
        .await
        .unwrap();
    assert!(!again.deleted);
}

#[tokio::test]
async fn a_foreign_vm_is_never_touched_until_adopted() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    let desired = desired("staging", dir.path());
    // Someone else's VM with staging's id.
    let options = pve::endpoints::CloneOptions {
        newid: 152,
        name: Some("legacy".into()),
        full: Some(true),
        ..Default::default()
    };
    client
        .clone_vm_and_wait(
            "lloyd",
            1001,
            &options,
            std::time::Duration::from_secs(60),
            &pve::no_progress,
        )
        .await
        .unwrap();
    let before = client.vm_config("lloyd", 152).await.unwrap();
    let writes = client.metrics().writes();
    let error = deploy_env(&client, &desired).await.unwrap_err();
    assert!(
        matches!(error, DeployError::ForeignVm { vmid: 152, .. }),
        "{error}"
    );
    let events = |_: &DeployEvent| {};
    let error = deploy::destroy(&client, &desired, Timeouts::default(), &events)
        .await
        .unwrap_err();
    assert!(matches!(error, DeployError::ForeignVm { .. }), "{error}");
    assert_eq!(client.metrics().writes(), writes, "nothing was written");
    assert_eq!(client.vm_config("lloyd", 152).await.unwrap(), before);

    let wrong = deploy::adopt(&client, &desired, 150).await.unwrap_err();
    assert!(matches!(wrong, DeployError::WrongVmid { .. }) && wrong.is_bad_input());
    let template = deploy::adopt(&client, &desired_with_vmid(&desired, 1001), 1001)
        .await
        .unwrap_err();
    assert!(
        matches!(template, DeployError::ForeignVm { template: true, .. }),
        "{template}"
    );

    assert!(deploy::adopt(&client, &desired, 152).await.unwrap().adopted);
    assert!(
        !deploy::adopt(&client, &desired, 152).await.unwrap().adopted,
        "adopting twice changes nothing"
    );
    let plan = deploy::plan(&client, &desired, &newest()).await.unwrap();
    assert!(
        plan.changes.iter().any(|c| c.key == "name"),
        "{:?}",
        plan.changes
    );
    let report = deploy_env(&client, &desired).await.unwrap();
    assert_eq!(
        report.outputs.template_id, None,
        "an adopted VM's template is unknown"
    );
    assert_eq!(
        client
            .vm_config("lloyd", 152)
            .await
            .unwrap()
            .name()
            .as_deref(),
        Some("jump-man")
    );
}

fn desired_with_vmid(desired: &Desired, vmid: u32) -> Desired {
    let mut copy = desired.clone();
    copy.vmid = vmid;
    copy
}

#[tokio::test]
async fn the_stage_one_handoff_picks_the_template_and_linked_clones_work() {
    let lab = lab().await;
    let client = client(&lab, &lab.token());
    let dir = tempfile::tempdir().unwrap();
    // A second template, 1002 (a copy of 1001, same tags).
    newer_tagged_template(&client).await;
    std::fs::create_dir_all(dir.path().join("outputs")).unwrap();
    std::fs::write(
        dir.path().join("outputs/packer-outputs.json"),
        r#"{"template_id": "1002", "template_name": "golden-2"}"#,
    )
    .unwrap();
    // With no template id set on purpose, stage 1's handoff decides.
    let discovering = settings_from(&without_template_id(), "staging", dir.path());
    let request = template::request(&discovering).unwrap();
    assert!(
        matches!(&request, template::TemplateRequest::Explicit { id: 1002, chosen_by } if chosen_by.contains("packer-outputs.json")),
        "{request:?}"
    );
    let mut desired = desired("staging", dir.path());
    desired.linked_clone = true;
    let plan = deploy::plan(&client, &desired, &request).await.unwrap();
    assert_eq!(plan.template.as_ref().map(|choice| choice.id), Some(1002));
    let events = |_: &DeployEvent| {};
    let report = deploy::apply(&client, &desired, plan, Timeouts::default(), &events)
        .await
        .unwrap();
    assert_eq!(report.outputs.template_id.as_deref(), Some("1002"));
    let disk = client
        .vm_config("lloyd", 152)
        .await
        .unwrap()
        .scsi0()
        .unwrap()
        .unwrap();
    assert!(
        disk.volume().contains("base-1002"),
        "a linked clone shares the template's disk: {}",
        disk.volume()
    );
    assert_eq!(disk.size().unwrap().unwrap().to_string(), "32G");
}
