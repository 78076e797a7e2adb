//! Tests of fault injection: spec parsing and printing, and reproducible, counted draws.
//!
//! Why separate: kept out of `faults.rs` so the code stays under the file-size limit;
//! the draws are checked over 1000 requests against the rates the spec asks for.

use super::*;

#[test]
fn parses_the_documented_example() {
    let spec: FaultSpec =
        "http5xx=0.2,reset=0.05,lock-timeout=0.1,task-fail=0.05,slow=2.0,agent-never=0.1,seed=42"
            .parse()
            .expect("a value");
    let fields = [
        spec.http_5xx,
        spec.reset,
        spec.lock_timeout,
        spec.task_fail,
        spec.slow,
        spec.agent_never,
    ];
    let expected = [0.2, 0.05, 0.1, 0.05, 2.0, 0.1];
    for (field, want) in fields.iter().zip(expected) {
        assert!((field - want).abs() < 1e-12, "{fields:?}");
    }
    assert_eq!(spec.seed, 42);
    let again: FaultSpec = spec.to_string().parse().expect("a value");
    assert_eq!(again, spec);
}

#[test]
fn rejects_unknown_keys_and_bad_numbers_naming_them() {
    let cases = [
        ("bogus=1", "unknown fault 'bogus'"),
        ("http5xx=2", "'2' is not a probability"),
        ("reset=x", "fault 'reset': 'x'"),
        ("slow=0", "'0' is not a positive multiplier"),
        ("seed=-1", "'-1' is not a non-negative integer"),
        ("lost=1.5", "fault 'lost': '1.5' is not a probability"),
        ("reset", "fault 'reset' needs a value"),
    ];
    for (text, expected) in cases {
        let error = text.parse::<FaultSpec>().expect_err("an error").to_string();
        assert!(error.contains(expected), "{text}: {error}");
    }
    assert_eq!(
        "".parse::<FaultSpec>().expect("a value"),
        FaultSpec::default()
    );
}

#[test]
fn same_seed_same_decisions_and_rates_roughly_match() {
    let spec: FaultSpec = "http5xx=0.2,reset=0.1,seed=7".parse().expect("a value");
    let first = Faults::new(spec.clone());
    let second = Faults::new(spec);
    let a: Vec<_> = (0..1000).map(|_| first.next_request()).collect();
    let b: Vec<_> = (0..1000).map(|_| second.next_request()).collect();
    assert_eq!(a, b);
    let resets = a.iter().filter(|f| **f == Some(HttpFault::Reset)).count();
    let errors = a
        .iter()
        .filter(|f| matches!(f, Some(HttpFault::Error { .. })))
        .count();
    assert!((60..140).contains(&resets), "{resets}");
    assert!((140..260).contains(&errors), "{errors}");
    let counted = first.injected();
    assert_eq!(
        (counted.reset, counted.http_5xx),
        (resets as u64, errors as u64)
    );
    first.set("http5xx=0.2,reset=0.1,seed=8".parse().expect("a value"));
    let c: Vec<_> = (0..1000).map(|_| first.next_request()).collect();
    assert_ne!(a, c);
    let since_set = first.injected();
    assert_eq!(
        since_set.reset + since_set.http_5xx,
        c.iter().filter(|f| f.is_some()).count() as u64,
        "counters restart with the spec"
    );
}

#[test]
fn lost_answers_are_drawn_after_resets_and_5xx_and_counted() {
    let faults = Faults::new("lost=0.3,seed=5".parse().expect("a value"));
    let drawn: Vec<_> = (0..1000).map(|_| faults.next_request()).collect();
    let lost = drawn
        .iter()
        .filter(|f| **f == Some(HttpFault::Lost))
        .count();
    assert!((220..380).contains(&lost), "{lost}");
    assert_eq!(
        drawn.iter().flatten().count(),
        lost,
        "nothing but lost answers"
    );
    assert_eq!(faults.injected().lost, lost as u64);
    assert!(!"lost=0.1".parse::<FaultSpec>().expect("a value").is_quiet());
}

#[test]
fn quiet_spec_never_faults() {
    assert!(Faults::default().spec().is_quiet());
    let faults = Faults::new(FaultSpec::default());
    assert!((0..100).all(|_| faults.next_request().is_none()));
}
