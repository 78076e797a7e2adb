//! `sombrero lab serve`: the printed JSON, a real request with only the printed token,
//! a clean stop on SIGTERM, and exit 2 for bad flags.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::sandbox::Sandbox;
use crate::snapshot::sombrero_snapshot;

/// Starts `sombrero lab serve ARGS` and reads its one line of JSON from stdout.
pub(crate) fn serve(args: &[&str]) -> (Child, Value) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("sombrero"))
        .args(["lab", "serve", "--json", "--listen", "127.0.0.1:0"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sombrero starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("a line");
    let ready: Value = serde_json::from_str(&line).expect("one JSON object");
    (child, ready)
}

/// A plain HTTP/1.1 GET with a token; returns the raw response.
fn get(url: &str, path: &str, token: &str) -> String {
    get_raw(url, &format!("/api2/json{path}"), token)
}

/// The `data` of `GET /lab/faults` (plain HTTP lab): the live spec and the `injected`
/// counts.
pub(crate) fn lab_faults(url: &str, token: &str) -> Value {
    data(&get_raw(url, "/lab/faults", token))
}

/// A plain HTTP/1.1 GET of a server path (not below `/api2/json`) with a token.
fn get_raw(url: &str, path: &str, token: &str) -> String {
    let address = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port");
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: PVEAPIToken={token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// A plain HTTP/1.1 POST with a form body and a token; returns the raw response.
fn post(url: &str, path: &str, token: &str, form: &str) -> String {
    let address = url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .expect("host:port");
    let mut stream = TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "POST /api2/json{path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: PVEAPIToken={token}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// The `data` of a raw 200 response.
fn data(response: &str) -> Value {
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let body = response.split("\r\n\r\n").nth(1).expect("a body");
    serde_json::from_str::<Value>(body).expect("JSON")["data"].clone()
}

/// Polls a task until it stops and returns its exit status.
fn wait_task(url: &str, token: &str, upid: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = data(&get(
            url,
            &format!("/nodes/lloyd/tasks/{upid}/status"),
            token,
        ));
        if status["status"] == "stopped" {
            return status["exitstatus"]
                .as_str()
                .expect("exitstatus")
                .to_owned();
        }
        assert!(Instant::now() < deadline, "task {upid} still running");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sends SIGTERM and waits (at most 10 s) for the exit code.
pub(crate) fn terminate(mut child: Child) -> (Option<i32>, String) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                let _ = pipe.read_to_string(&mut stderr);
            }
            return (status.code(), stderr);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("lab serve did not stop within 10 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn serves_with_the_printed_token_and_stops_cleanly() {
    let (child, ready) = serve(&["--plain-http", "--with-template"]);
    let mut keys: Vec<&str> = ready
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["fingerprint", "password", "token", "url"]);
    let url = ready["url"].as_str().expect("url");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/api2/json"),
        "{url}"
    );
    let token = ready["token"].as_str().expect("token");
    assert!(token.starts_with("root@pam!lab="), "{token}");
    assert!(ready["fingerprint"].is_null());
    let nodes = get(url, "/nodes", token);
    assert!(nodes.starts_with("HTTP/1.1 200"), "{nodes}");
    assert!(nodes.contains("\"node\":\"lloyd\""), "{nodes}");
    let template = get(url, "/nodes/lloyd/qemu/1001/config", token);
    assert!(template.contains("\"template\":1"), "{template}");
    let (code, stderr) = terminate(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("lab ready"), "{stderr}");
    assert!(
        !stderr.contains(token),
        "the token is printed on stdout only"
    );
}

/// The issue's "done when": a plain HTTP client with only the printed token lists nodes,
/// clones 1001 to 150, watches the clone task, starts the VM and reads its agent's
/// interfaces.
#[test]
fn a_plain_client_clones_starts_and_reads_the_agent_with_the_printed_token() {
    let (child, ready) = serve(&["--plain-http", "--with-template", "--guests", "state"]);
    let url = ready["url"].as_str().expect("url");
    let token = ready["token"].as_str().expect("token");
    let nodes = data(&get(url, "/nodes", token));
    assert_eq!(nodes[0]["node"], "lloyd", "{nodes}");
    let clone = data(&post(
        url,
        "/nodes/lloyd/qemu/1001/clone",
        token,
        "newid=150&name=jump-man&full=1",
    ));
    let upid = clone.as_str().expect("a UPID");
    assert!(upid.starts_with("UPID:lloyd:") && upid.contains(":qmclone:1001:root@pam!lab:"));
    assert_eq!(wait_task(url, token, upid), "OK");
    let config = data(&get(url, "/nodes/lloyd/qemu/150/config", token));
    assert_eq!(config["name"], "jump-man", "{config}");
    assert!(config.get("lock").is_none(), "{config}");
    let start = data(&post(url, "/nodes/lloyd/qemu/150/status/start", token, ""));
    assert_eq!(wait_task(url, token, start.as_str().expect("a UPID")), "OK");
    let deadline = Instant::now() + Duration::from_secs(60);
    let interfaces = loop {
        let answer = get(
            url,
            "/nodes/lloyd/qemu/150/agent/network-get-interfaces",
            token,
        );
        if answer.starts_with("HTTP/1.1 200") {
            break data(&answer);
        }
        assert!(
            answer.contains("QEMU guest agent is not running"),
            "before boot the agent is just not running yet: {answer}"
        );
        assert!(Instant::now() < deadline, "the agent never came up");
        std::thread::sleep(Duration::from_millis(250));
    };
    let names: Vec<&str> = interfaces["result"]
        .as_array()
        .expect("result")
        .iter()
        .filter_map(|interface| interface["name"].as_str())
        .collect();
    assert!(
        names.contains(&"lo") && names.contains(&"eth0"),
        "{interfaces}"
    );
    let (code, stderr) = terminate(child);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn https_by_default_with_a_pve_style_fingerprint() {
    let (child, ready) = serve(&[]);
    assert!(
        ready["url"]
            .as_str()
            .expect("url")
            .starts_with("https://127.0.0.1:")
    );
    let fingerprint = ready["fingerprint"].as_str().expect("fingerprint");
    assert_eq!(fingerprint.len(), 95, "{fingerprint}");
    assert!(fingerprint.split(':').all(|pair| {
        pair.len() == 2
            && pair
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase())
    }));
    let (code, _) = terminate(child);
    assert_eq!(code, Some(0));
}

#[test]
fn bad_flags_are_exit_2_with_a_reason() {
    let sandbox = Sandbox::new().timeout(Duration::from_secs(20));
    // HOME is the sandbox, so no lab image is there: qemu guests are refused with the fix.
    // (Not a snapshot: the reasons depend on the tools this machine has.)
    sandbox
        .run(&["lab", "serve", "--guests", "qemu"])
        .expect_code(2)
        .stderr_has("--guests qemu is not possible here")
        .stderr_has("sombrero lab image build");
    sombrero_snapshot!(sandbox, &["lab", "serve", "--faults", "bogus=1"], @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: invalid --faults: unknown fault 'bogus' (known: http5xx, reset, lost, lock-timeout, task-fail, slow, agent-never, node-down, seed)

    hint: example: --faults http5xx=0.2,reset=0.05,lock-timeout=0.1,task-fail=0.05,slow=2.0,agent-never=0.1,seed=42
    ");
    let refused = sombrero_snapshot!(sandbox, &["lab", "serve", "--listen", "0.0.0.0:0"], @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: refusing to listen on 0.0.0.0:0: the lab only listens on loopback addresses (127.0.0.1, ::1)

    hint: use --listen 127.0.0.1:PORT
    ");
    // Refused before the guest backend is probed (which can boot QEMU).
    assert!(!refused.stderr.contains("guests:"), "{}", refused.stderr);
    sombrero_snapshot!(sandbox, &["lab", "serve", "--nodes", "lloyd,pve_2"], @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: invalid --nodes 'lloyd,pve_2': 'pve_2' is not a valid node name (PVE's rule: letters, digits and '-', starting and ending with a letter or digit, at most 63 characters)

    hint: example: --nodes lloyd,pve2,pve3
    ");
    sombrero_snapshot!(sandbox, &["lab", "serve", "--nodes", "lloyd,lloyd"], @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: invalid --nodes 'lloyd,lloyd': node 'lloyd' is named twice

    hint: example: --nodes lloyd,pve2,pve3
    ");
    sombrero_snapshot!(sandbox, &["lab", "serve", "--nodes", "lloyd,pve2", "--faults", "node-down=pve3"], @r"
    success: false
    exit_code: 2
    ----- stdout -----

    ----- stderr -----
    error: invalid --faults: node-down=pve3 names no node of the lab (lloyd,pve2)

    hint: name a node given in --nodes
    ");
}

/// `--nodes`: a three-node cluster whose members all answer, one taken down by the fault.
#[test]
fn serves_a_cluster_with_one_node_down() {
    let (child, ready) = serve(&[
        "--plain-http",
        "--guests",
        "state",
        "--with-template",
        "--nodes",
        "lloyd,pve2,pve3",
        "--faults",
        "node-down=pve3",
    ]);
    let url = ready["url"].as_str().expect("url");
    let token = ready["token"].as_str().expect("token");
    let status = data(&get(url, "/cluster/status", token));
    let online: Vec<(&str, u64)> = status
        .as_array()
        .expect("a list")
        .iter()
        .filter(|item| item["type"] == "node")
        .map(|item| {
            (
                item["name"].as_str().unwrap(),
                item["online"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(online, [("lloyd", 1), ("pve2", 1), ("pve3", 0)]);
    let template = get(url, "/nodes/lloyd/qemu/1001/config", token);
    assert!(template.contains("shared:base-1001-disk-0"), "{template}");
    let down = get(url, "/nodes/pve3/status", token);
    assert!(down.starts_with("HTTP/1.1 595 No route to host"), "{down}");
    let (code, stderr) = terminate(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("cluster of 3 nodes: lloyd, pve2, pve3"),
        "{stderr}"
    );
}

#[test]
fn doctor_says_what_auto_picks_and_how_to_fix_it() {
    let sandbox = Sandbox::new().timeout(Duration::from_secs(60));
    let output = sandbox.run(&["lab", "doctor", "--json"]).expect_code(0);
    let report: Value = serde_json::from_str(&output.stdout).expect("one JSON object");
    // No image under the sandbox's HOME: state-only, and the build command is the fix.
    assert_eq!(report["auto"], "state", "{report}");
    let fixes = report["fixes"].as_array().expect("fixes");
    assert!(
        fixes.iter().any(|fix| fix
            .as_str()
            .is_some_and(|fix| fix.contains("sombrero lab image build"))),
        "{report}"
    );
    assert!(
        report["reasons"]
            .as_array()
            .is_some_and(|reasons| !reasons.is_empty())
    );
}
