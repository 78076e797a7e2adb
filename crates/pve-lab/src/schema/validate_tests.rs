//! Tests of parameter validation: PVE's message for each rule, coercion to schema types,
//! and no panic on any endpoint whatever the input.
//!
//! Why separate: the cases are long tables; kept out of `validate.rs` so the code stays
//! under the file-size limit.

use super::*;
use serde_json::json;

fn run(schema: &Value, params: Value) -> Result<Map<String, Value>, Errors> {
    let Value::Object(params) = params else {
        panic!()
    };
    validate_parameters(schema, params).map_err(|error| error.errors)
}

#[test]
fn pve_messages_for_each_rule() {
    let schema = json!({"additionalProperties": 0, "properties": {
        "vmid": {"type": "integer", "format": "pve-vmid", "minimum": 100, "maximum": 999_999_999},
        "full": {"type": "boolean", "optional": 1},
        "cores": {"type": "integer", "optional": 1, "minimum": 1},
        "name": {"type": "string", "optional": 1, "maxLength": 5},
        "kind": {"type": "string", "optional": 1, "enum": ["vm", "node"]},
        "size": {"type": "string", "optional": 1, "pattern": "\\+?\\d+[KMGT]?"},
        "net[n]": {"type": "string", "optional": 1},
    }});
    let cases = [
        (
            json!({}),
            "vmid",
            "property is missing and it is not optional",
        ),
        (
            json!({"vmid": "abc"}),
            "vmid",
            "type check ('integer') failed - got 'abc'",
        ),
        (
            json!({"vmid": "99"}),
            "vmid",
            "invalid format - value does not look like a valid VM ID\n",
        ),
        (
            json!({"vmid": "150", "cores": "0"}),
            "cores",
            "value must have a minimum value of 1",
        ),
        (
            json!({"vmid": "150", "full": "true"}),
            "full",
            "type check ('boolean') failed - got 'true'",
        ),
        (
            json!({"vmid": "150", "name": "toolong"}),
            "name",
            "value may only be 5 characters long",
        ),
        (
            json!({"vmid": "150", "kind": "x"}),
            "kind",
            "value 'x' does not have a value in the enumeration 'vm', 'node'",
        ),
        (
            json!({"vmid": "150", "size": "-1G"}),
            "size",
            "value does not match the regex pattern",
        ),
        (
            json!({"vmid": "150", "bogus": "1"}),
            "bogus",
            "property is not defined in schema and the schema does not allow additional properties",
        ),
        (
            json!({"vmid": "150", "net32": "x"}),
            "net32",
            "property is not defined in schema and the schema does not allow additional properties",
        ),
        (
            json!({"vmid": ["150", "151"]}),
            "vmid",
            "type check ('integer') failed - got ARRAY",
        ),
    ];
    for (params, key, message) in cases {
        let errors = run(&schema, params.clone()).expect_err("an error");
        assert_eq!(
            errors.get(key).map(String::as_str),
            Some(message),
            "{params}"
        );
    }
}

#[test]
fn coerces_to_schema_types() {
    let schema = json!({"additionalProperties": 0, "properties": {
        "vmid": {"type": "integer"}, "full": {"type": "boolean", "optional": 1},
        "cpu": {"type": "number", "optional": 1}, "net[n]": {"type": "string", "optional": 1},
        "command": {"type": "array", "items": {"type": "string"}, "optional": 1},
    }});
    let out = run(
        &schema,
        json!({"vmid": "150", "full": "1", "cpu": "0.5", "net0": "virtio", "command": "ls"}),
    )
    .expect("a value");
    assert_eq!(out["vmid"], json!(150));
    assert_eq!(out["full"], json!(true));
    assert_eq!(out["cpu"], json!(0.5));
    assert_eq!(out["net0"], json!("virtio"));
    assert_eq!(out["command"], json!(["ls"]));
    let from_json = run(&schema, json!({"vmid": 150, "full": true})).expect("a value");
    assert_eq!(from_json["full"], json!(true));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

    /// Whatever a client sends, validation answers (no panic) on every endpoint.
    #[test]
    fn never_panics_on_any_endpoint(
        pairs in proptest::collection::vec(
            (
                proptest::sample::select(vec![
                    "vmid", "node", "net0", "scsi0", "ipconfig0", "delete", "boot", "tags",
                    "sshkeys", "memory", "agent", "size", "command", "full", "newid",
                    "content", "start", "limit", "bogus", "net99", "cores", "name",
                ]),
                "[ -~]{0,40}",
            ),
            0..8,
        ),
        endpoint_index in 0usize..200,
    ) {
        let endpoints: Vec<_> = super::super::Schema::get().endpoints().collect();
        let endpoint = endpoints[endpoint_index % endpoints.len()];
        let params = crate::wire::pairs_to_map(
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        );
        let _ = validate_parameters(&endpoint.parameters, params);
    }
}
