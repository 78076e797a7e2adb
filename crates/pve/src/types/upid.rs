//! Task identifiers (UPIDs) as a parsed type.
//!
//! Why: every long operation answers with a UPID, and the node that runs the task, its type
//! and its target are encoded inside it. Parsing it once lets waiting code poll the right
//! node and lets errors name the task, while the original text is kept byte for byte because
//! it goes back to the server inside a URL path.

use std::fmt;
use std::str::FromStr;

/// A parsed `UPID:{node}:{pid}:{pstart}:{starttime}:{type}:{id}:{user}:` task id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Upid {
    node: String,
    pid: u32,
    pstart: u64,
    starttime: u32,
    task_type: String,
    id: String,
    user: String,
    text: String,
}

/// Why a string is not a UPID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpidParseError {
    #[error("a UPID starts with 'UPID:' and ends with ':'")]
    Frame,
    #[error("a UPID has 8 fields, found {0}")]
    FieldCount(usize),
    #[error("UPID field {field} is not valid: {value:?}")]
    Field { field: &'static str, value: String },
}

fn hex_field(
    field: &'static str,
    value: &str,
    digits: std::ops::RangeInclusive<usize>,
) -> Result<u64, UpidParseError> {
    let invalid = || UpidParseError::Field {
        field,
        value: value.to_owned(),
    };
    if !digits.contains(&value.len()) || !value.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    u64::from_str_radix(value, 16).map_err(|_| invalid())
}

fn word_field(
    field: &'static str,
    value: &str,
    allow_empty: bool,
) -> Result<String, UpidParseError> {
    if (value.is_empty() && !allow_empty) || value.chars().any(char::is_whitespace) {
        return Err(UpidParseError::Field {
            field,
            value: value.to_owned(),
        });
    }
    Ok(value.to_owned())
}

impl Upid {
    /// Builds a UPID from its parts, printed the way PVE prints it (upper-case hex).
    ///
    /// # Errors
    /// When a part contains `:` or whitespace, or a required part is empty.
    pub fn new(
        node: &str,
        pid: u32,
        pstart: u64,
        starttime: u32,
        task_type: &str,
        id: &str,
        user: &str,
    ) -> Result<Self, UpidParseError> {
        let text =
            format!("UPID:{node}:{pid:08X}:{pstart:08X}:{starttime:08X}:{task_type}:{id}:{user}:");
        let upid: Self = text.parse()?;
        Ok(upid)
    }

    /// The node running the task; its status lives under `/nodes/{node}/tasks/...`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The worker's process start time in clock ticks (may need 9 hex digits).
    pub fn pstart(&self) -> u64 {
        self.pstart
    }

    /// Task start, seconds since the Unix epoch.
    pub fn starttime(&self) -> u32 {
        self.starttime
    }

    /// The task type, e.g. `qmclone`, `qmstart`.
    pub fn task_type(&self) -> &str {
        &self.task_type
    }

    /// The task's object id; for `qmclone` it is the SOURCE vmid.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Who started it: `user@realm` or `user@realm!tokenid`.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The UPID exactly as the server wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Upid {
    type Err = UpidParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let inner = text
            .strip_prefix("UPID:")
            .and_then(|rest| rest.strip_suffix(':'))
            .ok_or(UpidParseError::Frame)?;
        let fields: Vec<&str> = inner.split(':').collect();
        let [node, pid, pstart, starttime, task_type, id, user] = fields[..] else {
            return Err(UpidParseError::FieldCount(fields.len() + 1));
        };
        let valid_node = !node.is_empty()
            && node
                .chars()
                .all(|character| character.is_ascii_alphanumeric() || character == '-');
        if !valid_node {
            return Err(UpidParseError::Field {
                field: "node",
                value: node.to_owned(),
            });
        }
        let pid =
            u32::try_from(hex_field("pid", pid, 8..=8)?).map_err(|_| UpidParseError::Field {
                field: "pid",
                value: pid.to_owned(),
            })?;
        let starttime_value = hex_field("starttime", starttime, 8..=8)?;
        Ok(Self {
            node: node.to_owned(),
            pid,
            pstart: hex_field("pstart", pstart, 8..=9)?,
            starttime: u32::try_from(starttime_value).map_err(|_| UpidParseError::Field {
                field: "starttime",
                value: starttime.to_owned(),
            })?,
            task_type: word_field("type", task_type, false)?,
            id: word_field("id", id, true)?,
            user: word_field("user", user, false)?,
            text: text.to_owned(),
        })
    }
}

impl fmt::Display for Upid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl fmt::Debug for Upid {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Upid({})", self.text)
    }
}

impl serde::Serialize for Upid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Upid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::{Upid, UpidParseError};
    use proptest::prelude::*;

    #[test]
    fn parses_a_token_clone_upid_with_nine_digit_pstart() {
        let text = "UPID:pve1:0001A2B3:1C8D4E5F6:6745A1B2:qmclone:9000:terraform@pve!token:";
        let upid: Upid = text.parse().unwrap();
        assert_eq!(upid.node(), "pve1");
        assert_eq!(upid.pid(), 0x0001_A2B3);
        assert_eq!(upid.pstart(), 0x1_C8D4_E5F6);
        assert_eq!(upid.starttime(), 0x6745_A1B2);
        assert_eq!(upid.task_type(), "qmclone");
        assert_eq!(upid.id(), "9000");
        assert_eq!(upid.user(), "terraform@pve!token");
        assert_eq!(upid.to_string(), text);
    }

    #[test]
    fn rejects_malformed_upids() {
        assert_eq!("pve1:0:0".parse::<Upid>(), Err(UpidParseError::Frame));
        assert!(matches!(
            "UPID:pve1:00000001:00000002:qmstart:100:root@pam:".parse::<Upid>(),
            Err(UpidParseError::FieldCount(7))
        ));
        assert!(matches!(
            "UPID:pve1:0001:00000002:00000003:qmstart:100:root@pam:".parse::<Upid>(),
            Err(UpidParseError::Field { field: "pid", .. })
        ));
        assert!(
            "UPID:pve1:00000001:1234567890:00000003:qmstart:100:root@pam:"
                .parse::<Upid>()
                .is_err()
        );
    }

    proptest! {
        #[test]
        fn fields_round_trip_through_text(
            node in "[a-z][a-z0-9-]{0,10}[a-z0-9]",
            pid in any::<u32>(),
            pstart in 0u64..=0xF_FFFF_FFFF,
            starttime in any::<u32>(),
            task_type in "[a-z]{2,12}",
            id in "[0-9]{0,9}",
            user in "[a-z]{1,8}@(pam|pve)(![a-z0-9]{1,8})?",
        ) {
            let upid = Upid::new(&node, pid, pstart, starttime, &task_type, &id, &user).unwrap();
            let reparsed: Upid = upid.to_string().parse().unwrap();
            prop_assert_eq!(&reparsed, &upid);
            prop_assert_eq!(reparsed.node(), node.as_str());
            prop_assert_eq!(reparsed.pid(), pid);
            prop_assert_eq!(reparsed.pstart(), pstart);
            prop_assert_eq!(reparsed.starttime(), starttime);
            prop_assert_eq!(reparsed.id(), id.as_str());
            prop_assert_eq!(reparsed.user(), user.as_str());
            let json = serde_json::to_string(&upid).unwrap();
            prop_assert_eq!(serde_json::from_str::<Upid>(&json).unwrap(), upid);
        }

        #[test]
        fn parsing_never_panics(text in "UPID:[ -~]{0,60}") {
            let _ = text.parse::<Upid>();
        }
    }
}
