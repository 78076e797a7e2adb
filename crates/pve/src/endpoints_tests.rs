//! Every request the client can build, checked against the official PVE API schema.
//!
//! The schema comes from the lab's vendored subset (`crates/pve-lab/schema/`), so this runs
//! without `../shared`; the full schema is used when the subset is missing.

use std::path::PathBuf;

use serde_json::Value;

use super::{
    CloneOptions, DownloadUrl, MigrateOptions, PowerAction, ResizeTo, TaskFilter, agent_exec,
    agent_exec_status, agent_file_read, agent_interfaces, agent_ping, cluster_resources,
    cluster_status, download_url, next_id, node_status, nodes, storage_content, storage_list,
    task_log, task_status, tasks, version, vm_clone, vm_cloudinit, vm_config, vm_config_set,
    vm_config_set_async, vm_create, vm_delete, vm_list, vm_migrate, vm_power, vm_resize, vm_status,
    vm_template,
};
use crate::request::{Method, Request, RetryRule};
use crate::secret::Secret;
use crate::types::{
    AgentConfig, ConfigUpdate, Disk, DiskSize, IpConfig, NetDevice, PropertyString, ResourceType,
    Upid,
};

fn schema() -> Value {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        manifest.join("../pve-lab/schema/pve-api-subset.json"),
        manifest.join("../../../shared/reference/pve-api-schema.json"),
    ];
    let path = candidates
        .iter()
        .find(|path| path.exists())
        .expect("the lab's vendored schema subset (crates/pve-lab/schema/pve-api-subset.json)");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Finds the schema template matching an encoded path, with the placeholder values.
fn find_template<'a>(schema: &'a Value, path: &str) -> Option<(&'a str, Vec<(String, String)>)> {
    let segments: Vec<String> = path
        .split('/')
        .skip(1)
        .map(|segment| {
            percent_encoding::percent_decode_str(segment)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    schema.as_object()?.keys().find_map(|template| {
        let parts: Vec<&str> = template.split('/').skip(1).collect();
        if parts.len() != segments.len() {
            return None;
        }
        let mut values = Vec::new();
        for (part, segment) in parts.iter().zip(&segments) {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                values.push((name.to_owned(), segment.clone()));
            } else if part != segment {
                return None;
            }
        }
        Some((template.as_str(), values))
    })
}

/// `net0` -> `net[n]` when the schema uses indexed names.
fn property<'a>(properties: &'a serde_json::Map<String, Value>, name: &str) -> Option<&'a Value> {
    properties.get(name).or_else(|| {
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit());
        (base.len() < name.len())
            .then(|| properties.get(&format!("{base}[n]")))
            .flatten()
    })
}

fn check_value(request: &str, name: &str, spec: &Value, value: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let kind = spec["type"].as_str().unwrap_or("string");
    match kind {
        "boolean" if !matches!(value, "0" | "1") => {
            problems.push(format!("{request}: {name}={value:?} is not 0/1"));
        }
        "integer" => match value.parse::<i64>() {
            Ok(number) => {
                if spec["minimum"].as_i64().is_some_and(|min| number < min)
                    || spec["maximum"].as_i64().is_some_and(|max| number > max)
                {
                    problems.push(format!("{request}: {name}={number} out of range"));
                }
            }
            Err(_) => problems.push(format!("{request}: {name}={value:?} is not an integer")),
        },
        _ => {}
    }
    if let Some(values) = spec["enum"].as_array()
        && !values.iter().any(|allowed| allowed.as_str() == Some(value))
    {
        problems.push(format!("{request}: {name}={value:?} not in enum"));
    }
    if let Some(pattern) = spec["pattern"].as_str() {
        let regex = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
        if !regex.is_match(value) {
            problems.push(format!(
                "{request}: {name}={value:?} does not match {pattern}"
            ));
        }
    }
    if let Some(max) = spec["maxLength"].as_u64()
        && value.len() as u64 > max
    {
        problems.push(format!("{request}: {name} longer than {max}"));
    }
    if let Some(format) = spec["format"].as_object() {
        // A property string: every key must be one the format knows; a bare value needs a
        // default key.
        let parsed: PropertyString = value.parse().unwrap();
        for entry in parsed.entries() {
            let known = match &entry.key {
                Some(key) => format.contains_key(key),
                None => format
                    .values()
                    .any(|sub| sub["default_key"].as_u64() == Some(1)),
            };
            if !known {
                problems.push(format!(
                    "{request}: {name}={value:?} has unknown key {:?}",
                    entry.key
                ));
            }
        }
    }
    problems
}

fn validate(schema: &Value, request: &Request) -> Vec<String> {
    let label = format!("{} {}", request.method, request.path);
    let Some((template, path_values)) = find_template(schema, &request.path) else {
        return vec![format!("{label}: no such path in the schema")];
    };
    let Some(info) = schema[template].get(request.method.as_str()) else {
        return vec![format!("{label}: {template} has no {}", request.method)];
    };
    let properties = info["parameters"]["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut problems = Vec::new();
    let mut given: Vec<(String, String)> = path_values;
    let encoded = request.params.encode();
    given.extend(form_urlencoded::parse(encoded.as_bytes()).into_owned());
    for (name, value) in &given {
        match property(&properties, name) {
            None => problems.push(format!("{label}: parameter {name} is not in the schema")),
            Some(spec) => problems.extend(check_value(&label, name, spec, value)),
        }
        let repeated = given.iter().filter(|(other, _)| other == name).count() > 1;
        if repeated && property(&properties, name).is_some_and(|spec| spec["type"] != "array") {
            problems.push(format!("{label}: {name} repeated but not an array"));
        }
    }
    for (name, spec) in &properties {
        let optional = spec["optional"].as_u64() == Some(1) || name.ends_with("[n]");
        if !optional && !given.iter().any(|(given_name, _)| given_name == name) {
            problems.push(format!("{label}: required parameter {name} missing"));
        }
    }
    problems
}

fn every_request() -> Vec<Request> {
    let upid: Upid = "UPID:pve1:0001A2B3:1C8D4E5F6:6745A1B2:qmclone:9000:terraform@pve!token:"
        .parse()
        .unwrap();
    let mut net = NetDevice::new("virtio", "vmbr0");
    net.set_firewall(true).set("tag", "10");
    let mut disk = Disk::new("local-lvm:vm-150-disk-0");
    disk.set("discard", "on").set("ssd", "1").set("size", "32G");
    let update = ConfigUpdate::new()
        .memory(2048)
        .balloon(1024)
        .cores(2)
        .set("cpu", "host")
        .set("name", "jump-01")
        .set("description", "managed by sombrero")
        .net(0, &net)
        .disk("scsi0", &disk)
        .disk("ide2", &Disk::new("local-lvm:cloudinit"))
        .ipconfig(
            0,
            &"ip=192.168.10.20/24,gw=192.168.10.1"
                .parse::<IpConfig>()
                .unwrap(),
        )
        .agent(&AgentConfig::new(true))
        .set_bool("onboot", true)
        .set("ciuser", "admin")
        .cipassword(&Secret::new("pa55word"))
        .sshkeys(["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH+/x= admin@jump"])
        .set("nameserver", "192.168.10.1")
        .set("boot", "order=scsi0;ide2;net0")
        .tags(["sombrero", "jump"]);
    let clone = CloneOptions {
        newid: 150,
        name: Some("jump-01".into()),
        description: Some("sombrero deploy 42".into()),
        full: Some(true),
        storage: Some("local-lvm".into()),
        pool: Some("edge".into()),
        target: Some("pve2".into()),
    };
    vec![
        version(),
        nodes(),
        node_status("pve1"),
        cluster_resources(None),
        cluster_resources(Some(ResourceType::Vm)),
        cluster_status(),
        next_id(None),
        next_id(Some(150)),
        vm_list("pve1"),
        vm_create("pve1", 150, update.clone()),
        vm_config("pve1", 150, false),
        vm_config("pve1", 150, true),
        vm_config_set(
            "pve1",
            150,
            update
                .clone()
                .digest("0123456789abcdef0123456789abcdef01234567")
                .delete("ide0"),
        ),
        vm_config_set_async("pve1", 150, update),
        vm_clone("pve1", 9000, &clone),
        vm_clone(
            "pve1",
            9000,
            &CloneOptions {
                newid: 151,
                ..CloneOptions::default()
            },
        ),
        vm_template("pve1", 9000),
        vm_migrate(
            "pve1",
            150,
            &MigrateOptions {
                target: "pve2".into(),
                online: Some(true),
                with_local_disks: Some(true),
                targetstorage: Some("local-lvm:shared".into()),
            },
        ),
        vm_migrate(
            "pve1",
            150,
            &MigrateOptions {
                target: "pve2".into(),
                ..MigrateOptions::default()
            },
        ),
        vm_resize(
            "pve1",
            150,
            "scsi0",
            ResizeTo::Absolute(DiskSize::from_gib(32)),
            Some("0123"),
        ),
        vm_resize(
            "pve1",
            150,
            "scsi0",
            ResizeTo::Grow(DiskSize::from_mib(512)),
            None,
        ),
        vm_delete("pve1", 150, true),
        vm_delete("pve1", 150, false),
        vm_status("pve1", 150),
        vm_power("pve1", 150, PowerAction::Start),
        vm_power("pve1", 150, PowerAction::Stop),
        vm_power("pve1", 150, PowerAction::Reboot),
        vm_power(
            "pve1",
            150,
            PowerAction::Shutdown {
                timeout: Some(60),
                force_stop: true,
            },
        ),
        agent_ping("pve1", 150),
        agent_interfaces("pve1", 150),
        agent_exec("pve1", 150, &["cat", "/etc/os-release"], Some("input")),
        agent_exec_status("pve1", 150, 4242),
        agent_file_read("pve1", 150, "/etc/hostname"),
        vm_cloudinit("pve1", 150),
        tasks(
            "pve1",
            &TaskFilter {
                vmid: Some(150),
                typefilter: Some("qmclone".into()),
                limit: Some(50),
                source: Some("all".into()),
            },
        ),
        task_status(&upid),
        task_log(&upid, 0, 50),
        storage_list("pve1", Some("images")),
        storage_content("pve1", "local", Some("iso")),
        download_url(
            "pve1",
            "local",
            &DownloadUrl {
                content: "import".into(),
                filename: "noble-server-cloudimg-amd64.qcow2".into(),
                url:
                    "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img"
                        .into(),
                sha256: Some("0".repeat(64)),
            },
        ),
    ]
}

#[test]
fn every_request_validates_against_the_schema() {
    let schema = schema();
    let requests = every_request();
    let problems: Vec<String> = requests
        .iter()
        .flat_map(|request| validate(&schema, request))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_validator_catches_mistakes() {
    let schema = schema();
    let mut wrong = next_id(Some(150));
    wrong.params.set("vmid", "abc");
    assert!(!validate(&schema, &wrong).is_empty());
    let mut unknown = vm_status("pve1", 150);
    unknown.params.set("verbose", "1");
    assert!(!validate(&schema, &unknown).is_empty());
    let mut boolean = vm_config("pve1", 150, true);
    boolean.params.set("current", "true");
    assert!(!validate(&schema, &boolean).is_empty());
    let bad_net = vm_config_set(
        "pve1",
        150,
        ConfigUpdate::new().set("net0", "virtio,bridged=vmbr0"),
    );
    assert!(!validate(&schema, &bad_net).is_empty());
}

#[test]
fn retry_rules_follow_endpoint_semantics() {
    assert_eq!(version().retry, RetryRule::Idempotent);
    assert_eq!(cluster_status().retry, RetryRule::Idempotent);
    assert_eq!(
        vm_migrate("pve1", 150, &MigrateOptions::default()).retry,
        RetryRule::TaskDispatch
    );
    assert_eq!(
        vm_clone("pve1", 9000, &CloneOptions::default()).retry,
        RetryRule::TaskDispatch
    );
    assert_eq!(
        agent_exec("pve1", 1, &["true"], None).retry,
        RetryRule::NeverSentOnly
    );
    assert_eq!(
        vm_config_set("pve1", 1, ConfigUpdate::new().cores(2)).retry,
        RetryRule::Idempotent
    );
    assert_eq!(
        vm_config_set("pve1", 1, ConfigUpdate::new().cores(2).digest("ab")).retry,
        RetryRule::TaskDispatch
    );
    assert_eq!(
        vm_config_set("pve1", 1, ConfigUpdate::new().set("scsi1", "local-lvm:10")).retry,
        RetryRule::TaskDispatch
    );
    assert_eq!(
        vm_resize(
            "pve1",
            1,
            "scsi0",
            ResizeTo::Absolute(DiskSize::from_gib(8)),
            None
        )
        .retry,
        RetryRule::Idempotent
    );
    assert_eq!(
        vm_resize(
            "pve1",
            1,
            "scsi0",
            ResizeTo::Grow(DiskSize::from_gib(8)),
            None
        )
        .retry,
        RetryRule::TaskDispatch
    );
    assert_eq!(vm_delete("pve1", 1, true).method, Method::Delete);
    let request = agent_exec("pve1", 1, &["ls", "-l"], None);
    assert_eq!(request.params.encode(), "command=ls&command=-l");
}

/// The same requests through the lab's validator, which checks what the lightweight
/// validator above does not: named formats (`pve-vmid`, `dns-name`, `urlencoded`,
/// `pve-tag-list`, ...), every key and value of property strings (`net0`, `scsi0`,
/// `ipconfig0`, `agent`), and array parameters, exactly as the lab answers a client.
#[test]
fn every_request_passes_the_labs_full_schema_validator() {
    use pve_lab::schema::Schema;
    use pve_lab::schema::validate::validate_parameters;
    let mut problems = Vec::new();
    for request in every_request() {
        let label = format!("{} {}", request.method, request.path);
        let method = match request.method {
            Method::Get => pve_lab::api::Method::Get,
            Method::Post => pve_lab::api::Method::Post,
            Method::Put => pve_lab::api::Method::Put,
            Method::Delete => pve_lab::api::Method::Delete,
        };
        let Ok(resolved) = Schema::get().resolve(method, &request.path) else {
            problems.push(format!("{label}: not in the lab's schema"));
            continue;
        };
        let mut params =
            pve_lab::wire::pairs_to_map(pve_lab::wire::parse_form(&request.params.encode()));
        for (name, value) in &resolved.path_params {
            params.insert(name.clone(), Value::String(value.clone()));
        }
        if let Err(error) = validate_parameters(&resolved.endpoint.parameters, params) {
            problems.push(format!("{label}: {} {:?}", error.message, error.errors));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // And it can fail: a VMID below 100 is refused.
    let mut wrong = vm_status("pve1", 150);
    wrong.path = "/nodes/pve1/qemu/99/status/current".into();
    let resolved = Schema::get()
        .resolve(pve_lab::api::Method::Get, &wrong.path)
        .unwrap();
    let mut params = serde_json::Map::new();
    for (name, value) in &resolved.path_params {
        params.insert(name.clone(), Value::String(value.clone()));
    }
    assert!(validate_parameters(&resolved.endpoint.parameters, params).is_err());
}
