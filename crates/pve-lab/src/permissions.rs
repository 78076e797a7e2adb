//! Permission checks: the schema's `permissions.check` expressions against a small
//! privilege model.
//!
//! Why: token privilege separation is one of the failures users of PVE clients keep
//! hitting (a token that can read but gets 403 on clone). The lab evaluates the same
//! expressions PVE's `RPCEnvironment::check_api_permissions` does (`perm` with `any` and
//! `require_param`, `and`, `or`) and answers 403 `Permission check failed (PATH, PRIV)`.
//! Forms it does not model (`userid-param`, `userid-group`, anything new) pass only for
//! full-privilege identities: refusing a restricted caller is the conservative choice.
//!
//! Some endpoints state their rule only in prose (`user: all` plus a description); the
//! ones the lab serves that matter are added in [`extra_check`].

use serde_json::{Map, Value, json};

use crate::api::{ApiError, Identity};
use crate::auth::READONLY_TOKEN_ID;

/// Privileges of the `PVEAuditor` role (PVE 9).
const AUDITOR: [&str; 7] = [
    "Datastore.Audit",
    "Mapping.Audit",
    "Pool.Audit",
    "SDN.Audit",
    "Sys.Audit",
    "VM.Audit",
    "VM.GuestAgent.Audit",
];

/// Whether `identity` holds every privilege on every path (root and its unseparated token).
fn is_full(identity: &Identity) -> bool {
    identity.user == crate::auth::ROOT_USER && identity.token.as_deref() != Some(READONLY_TOKEN_ID)
}

/// Whether `identity` has `privilege` on `path` (the lab's ACL grants on `/`, propagated).
pub fn has_privilege(identity: &Identity, _path: &str, privilege: &str) -> bool {
    is_full(identity) || AUDITOR.contains(&privilege)
}

/// Every privilege of PVE 9 (what `root@pam` holds on `/`).
const ALL: [&str; 47] = [
    "Datastore.Allocate",
    "Datastore.AllocateSpace",
    "Datastore.AllocateTemplate",
    "Datastore.Audit",
    "Group.Allocate",
    "Mapping.Audit",
    "Mapping.Modify",
    "Mapping.Use",
    "Permissions.Modify",
    "Pool.Allocate",
    "Pool.Audit",
    "Realm.Allocate",
    "Realm.AllocateUser",
    "SDN.Allocate",
    "SDN.Audit",
    "SDN.Use",
    "Sys.AccessNetwork",
    "Sys.Audit",
    "Sys.Console",
    "Sys.Incoming",
    "Sys.Modify",
    "Sys.PowerMgmt",
    "Sys.Syslog",
    "User.Modify",
    "VM.Allocate",
    "VM.Backup",
    "VM.Clone",
    "VM.Config.CDROM",
    "VM.Config.CPU",
    "VM.Config.Cloudinit",
    "VM.Config.Disk",
    "VM.Config.HWType",
    "VM.Config.Memory",
    "VM.Config.Network",
    "VM.Config.Options",
    "VM.Console",
    "VM.GuestAgent.Audit",
    "VM.GuestAgent.FileRead",
    "VM.GuestAgent.FileSystemMgmt",
    "VM.GuestAgent.FileWrite",
    "VM.GuestAgent.Unrestricted",
    "VM.Migrate",
    "VM.PowerMgmt",
    "VM.Replicate",
    "VM.Snapshot",
    "VM.Snapshot.Rollback",
    "VM.Audit",
];

/// `GET /access/permissions` for the caller: `{"/": {PRIV: 1, ...}}` (the lab grants
/// everything on `/`, propagated, or the auditor's privileges to the read-only token).
pub fn effective(identity: &Identity) -> Value {
    let held: Vec<&str> = if is_full(identity) {
        ALL.to_vec()
    } else {
        AUDITOR.to_vec()
    };
    let privileges: Map<String, Value> = held
        .into_iter()
        .map(|privilege| (privilege.to_owned(), json!(1)))
        .collect();
    json!({"/": privileges})
}

/// Checks that only the schema's prose states, for endpoints the lab serves.
fn extra_check(method: &str, template: &str) -> Option<Value> {
    match (method, template) {
        ("POST", "/nodes/{node}/qemu") => Some(json!(["perm", "/vms/{vmid}", ["VM.Allocate"]])),
        _ => None,
    }
}

/// A failed check; `what` is `PATH, PRIV` when PVE names it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Denied {
    what: Option<String>,
}

impl Denied {
    fn into_error(self) -> ApiError {
        match self.what {
            Some(what) => ApiError::new(403, format!("Permission check failed ({what})")),
            None => ApiError::new(403, "Permission check failed"),
        }
    }
}

fn param_text(params: &Map<String, Value>, name: &str) -> Option<String> {
    match params.get(name)? {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(u8::from(*flag).to_string()),
        _ => None,
    }
}

/// `PVE::Tools::template_replace`: `{name}` from the parameters.
fn fill(template: &str, params: &Map<String, Value>) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(length) = rest[start..].find('}') else {
            break;
        };
        let name = &rest[start + 1..start + length];
        out.push_str(&param_text(params, name).unwrap_or_default());
        rest = &rest[start + length + 1..];
    }
    out.push_str(rest);
    out
}

fn evaluate(check: &Value, identity: &Identity, params: &Map<String, Value>) -> Result<(), Denied> {
    let Some(items) = check.as_array() else {
        return deny_unless_full(identity);
    };
    let operation = items.first().and_then(Value::as_str).unwrap_or("");
    let arguments = &items[1.min(items.len())..];
    match operation {
        "and" => arguments
            .iter()
            .try_for_each(|sub| evaluate(sub, identity, params)),
        "or" => {
            if arguments
                .iter()
                .any(|sub| evaluate(sub, identity, params).is_ok())
            {
                Ok(())
            } else {
                Err(Denied { what: None })
            }
        }
        "perm" => {
            let template = arguments.first().and_then(Value::as_str).unwrap_or("/");
            let privileges: Vec<&str> = arguments
                .get(1)
                .and_then(Value::as_array)
                .map(|list| list.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let options: Vec<&Value> = arguments.iter().skip(2).collect();
            let option = |name: &str| {
                options
                    .chunks(2)
                    .find(|pair| pair.first().and_then(|key| key.as_str()) == Some(name))
                    .and_then(|pair| pair.get(1).copied())
            };
            if let Some(required) = option("require_param").and_then(Value::as_str)
                && params.get(required).is_none()
            {
                return Err(Denied { what: None });
            }
            let path = fill(template, params);
            let any = option("any").is_some_and(|flag| flag.as_i64() == Some(1));
            if any {
                if privileges.iter().any(|p| has_privilege(identity, &path, p)) {
                    return Ok(());
                }
                return Err(Denied {
                    what: Some(format!("{path}, {}", privileges.join("|"))),
                });
            }
            match privileges
                .iter()
                .find(|p| !has_privilege(identity, &path, p))
            {
                Some(missing) => Err(Denied {
                    what: Some(format!("{path}, {missing}")),
                }),
                None => Ok(()),
            }
        }
        _ => deny_unless_full(identity),
    }
}

fn deny_unless_full(identity: &Identity) -> Result<(), Denied> {
    if is_full(identity) {
        Ok(())
    } else {
        Err(Denied { what: None })
    }
}

/// Checks an endpoint's `permissions` for a caller; `params` includes path parameters.
///
/// # Errors
/// 403 `Permission check failed (PATH, PRIV)`.
pub fn check(
    method: &str,
    template: &str,
    permissions: &Value,
    identity: &Identity,
    params: &Map<String, Value>,
) -> Result<(), ApiError> {
    let result = if let Some(check) = permissions.get("check") {
        evaluate(check, identity, params)
    } else {
        match permissions.get("user").and_then(Value::as_str) {
            Some("all" | "world") => Ok(()),
            _ => deny_unless_full(identity),
        }
    };
    result.map_err(Denied::into_error)?;
    if let Some(extra) = extra_check(method, template) {
        evaluate(&extra, identity, params).map_err(Denied::into_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(token: &str) -> Identity {
        Identity {
            user: "root@pam".into(),
            token: Some(token.into()),
        }
    }

    fn params(value: &Value) -> Map<String, Value> {
        value.as_object().cloned().expect("a value")
    }

    #[test]
    fn auditor_reads_but_cannot_allocate() {
        let clone = json!({"check": ["and", ["perm", "/vms/{vmid}", ["VM.Clone"]],
            ["or", ["perm", "/vms/{newid}", ["VM.Allocate"]],
                   ["perm", "/pool/{pool}", ["VM.Allocate"], "require_param", "pool"]]]});
        let request = params(&json!({"vmid": 1001, "newid": 150}));
        let readonly = identity(READONLY_TOKEN_ID);
        let error = check("POST", "/x", &clone, &readonly, &request).expect_err("an error");
        assert_eq!(
            (error.status, error.message.as_str()),
            (403, "Permission check failed (/vms/1001, VM.Clone)")
        );
        assert!(check("POST", "/x", &clone, &identity("lab"), &request).is_ok());

        let delete = json!({"check": ["perm", "/vms/{vmid}", ["VM.Allocate"]]});
        let error = check(
            "DELETE",
            "/x",
            &delete,
            &readonly,
            &params(&json!({"vmid": 150})),
        )
        .expect_err("an error");
        assert_eq!(
            error.message,
            "Permission check failed (/vms/150, VM.Allocate)"
        );

        let agent = json!({"check": ["perm", "/vms/{vmid}", ["VM.GuestAgent.Audit", "VM.GuestAgent.Unrestricted"], "any", 1]});
        assert!(check("GET", "/x", &agent, &readonly, &request).is_ok());
        let exec = json!({"check": ["perm", "/vms/{vmid}", ["VM.GuestAgent.Unrestricted", "VM.PowerMgmt"], "any", 1]});
        let error = check("GET", "/x", &exec, &readonly, &request).expect_err("an error");
        assert_eq!(
            error.message,
            "Permission check failed (/vms/1001, VM.GuestAgent.Unrestricted|VM.PowerMgmt)"
        );

        let create = json!({"user": "all"});
        let error = check(
            "POST",
            "/nodes/{node}/qemu",
            &create,
            &readonly,
            &params(&json!({"vmid": 150})),
        )
        .expect_err("an error");
        assert_eq!(
            error.message,
            "Permission check failed (/vms/150, VM.Allocate)"
        );
        let unknown = json!({"check": ["userid-param", "self"]});
        assert!(check("GET", "/x", &unknown, &readonly, &request).is_err());
        assert!(check("GET", "/x", &unknown, &identity("lab"), &request).is_ok());
    }
}
