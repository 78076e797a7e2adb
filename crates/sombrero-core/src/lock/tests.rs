//! The file lock: exclusive while held (also across processes of this machine), free
//! again when dropped, taken over (and reported) when its holder ended without releasing.

use super::{FileLocks, Holder, LockBackend, LockError, LockScope};

fn scope(environment: &str) -> LockScope {
    LockScope {
        endpoint: "https://pve.example.invalid:8006/api2/json".to_owned(),
        environment: environment.to_owned(),
    }
}

#[test]
fn a_second_writer_is_refused_naming_the_first() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let locks = FileLocks::new(directory.path().join("locks"));
    let first = locks
        .acquire(&scope("staging"), &Holder::this_process("deploy"))
        .expect("the first writer gets the lock");
    assert!(first.took_over.is_none());
    // A second handle (as a second process would open it) is refused at once.
    let other = FileLocks::new(directory.path().join("locks"));
    let refused = other
        .acquire(&scope("staging"), &Holder::this_process("destroy"))
        .expect_err("the lock is held");
    let LockError::Held { holder, .. } = &refused else {
        panic!("{refused:?}");
    };
    let holder = holder.0.as_ref().expect("the holder is named");
    assert_eq!(holder.command, "deploy");
    assert_eq!(holder.pid, std::process::id());
    assert!(
        refused.to_string().contains("sombrero deploy (pid "),
        "{refused}"
    );
    // Another environment, or another cluster's same environment, is not blocked.
    assert!(
        other
            .acquire(&scope("production"), &Holder::this_process("deploy"))
            .is_ok()
    );
    let elsewhere = LockScope {
        endpoint: "https://other.example.invalid:8006/api2/json".to_owned(),
        environment: "staging".to_owned(),
    };
    assert!(
        other
            .acquire(&elsewhere, &Holder::this_process("deploy"))
            .is_ok()
    );
    drop(first);
    let again = other
        .acquire(&scope("staging"), &Holder::this_process("destroy"))
        .expect("free after release");
    assert!(
        again.took_over.is_none(),
        "a released lock is not a takeover"
    );
}

#[test]
fn a_lock_left_by_a_killed_run_is_taken_over_and_reported() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let locks = FileLocks::new(directory.path());
    let killed = Holder {
        pid: 999_999,
        host: "jump".to_owned(),
        user: "alice".to_owned(),
        command: "deploy".to_owned(),
        since: "2026-12-04T15:36:17Z".to_owned(),
    };
    // What a SIGKILLed holder leaves: its description, and no OS lock.
    std::fs::write(
        directory
            .path()
            .join(format!("{}.lock", scope("staging").key())),
        serde_json::to_vec(&killed).expect("json"),
    )
    .expect("write");
    let acquired = locks
        .acquire(&scope("staging"), &Holder::this_process("deploy"))
        .expect("taken over");
    assert_eq!(acquired.took_over, Some(killed));
}

#[test]
fn keys_are_stable_and_name_the_environment() {
    assert_eq!(scope("staging").key(), scope("staging").key());
    assert_ne!(scope("staging").key(), scope("production").key());
    assert!(scope("staging").key().starts_with("staging-"));
    let odd = LockScope {
        endpoint: "x".into(),
        environment: "../etc".into(),
    };
    assert!(!odd.key().contains('/'), "{}", odd.key());
}
