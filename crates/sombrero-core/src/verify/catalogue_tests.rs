//! The suites' composition and how expectations reach the judgements.

use super::*;

fn expect() -> Expectations {
    Expectations {
        user: "ansible".into(),
        hostname: "jump-man".into(),
        address: "192.168.10.251/24".into(),
        gateway: "192.168.10.1".into(),
        nameservers: vec!["192.168.10.1".into()],
        thresholds: Thresholds::default(),
    }
}

#[test]
fn the_full_suite_has_at_least_the_originals_26_checks_with_unique_names() {
    let checks = suite(Suite::Full, &expect());
    assert!(checks.len() >= 26, "{}", checks.len());
    assert_eq!(checks[0].name, "ssh", "the SSH check opens the connection");
    let mut names: Vec<&str> = checks.iter().map(|check| check.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), checks.len(), "names are unique");
    for group in [
        "infrastructure",
        "services",
        "security",
        "packages",
        "files",
        "docker",
        "headroom",
    ] {
        assert!(checks.iter().any(|check| check.group == group), "{group}");
    }
    assert_eq!(suite(Suite::Quick, &expect()).len(), 3);
    assert_eq!(suite(Suite::Docker, &expect()).len(), 7);
}

#[test]
fn expectations_come_from_the_configuration() {
    let checks = suite(Suite::Full, &expect());
    let find = |name: &str| checks.iter().find(|check| check.name == name).expect(name);
    let output = |stdout: &str| RemoteOutput {
        code: Some(0),
        stdout: stdout.to_owned(),
        stderr: String::new(),
    };
    let address = find("address");
    let seen = "2: eth0    inet 192.168.10.251/24 brd 192.168.10.255 scope global eth0";
    assert_eq!((address.judge)(&output(seen)).0, CheckStatus::Pass);
    let (status, detail) = (address.judge)(&output("2: eth0    inet 10.0.2.15/24"));
    assert_eq!(status, CheckStatus::Fail);
    assert!(detail.contains("192.168.10.251/24"), "{detail}");
    let route = find("default-route");
    assert_eq!(
        (route.judge)(&output("default via 192.168.10.9 dev eth0")).0,
        CheckStatus::Fail
    );
}
