//! The QEMU guest agent protocol (QGA): JSON over a virtio-serial port, through a unix
//! socket on the host.
//!
//! Why: in qemu mode the agent endpoints answer from the real `qemu-guest-agent` inside
//! the guest, nothing faked. The channel is a byte pipe that survives reconnects and may
//! hold stale answers from an earlier client, so every exchange starts with
//! `guest-sync-delimited` (QEMU's documented resync): the agent answers after a `0xFF`
//! byte with the random id we sent, and everything before that answer is discarded. A
//! guest whose agent does not answer within the sync timeout is "not running", which is
//! what PVE reports too.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// The delimiter byte the agent writes before a `guest-sync-delimited` answer.
const DELIMITER: u8 = 0xFF;

/// Why an agent exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// No answer to the sync: the agent is not (yet) running in the guest.
    #[error("QEMU guest agent is not running")]
    NotRunning,
    /// The agent answered with an error (`class`, `desc`).
    #[error("Agent error: {0}")]
    Agent(String),
    /// The agent answered something that is not QGA.
    #[error("unexpected answer from the guest agent: {0}")]
    Protocol(String),
    #[error("cannot talk to the guest agent socket")]
    Io(#[from] std::io::Error),
}

/// One request line: `{"execute": ..., "arguments": ...}` plus a newline.
pub(crate) fn encode_request(command: &str, arguments: Option<&Value>) -> Vec<u8> {
    let mut request = json!({"execute": command});
    if let Some(arguments) = arguments {
        request["arguments"] = arguments.clone();
    }
    let mut bytes = request.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// Parses one answer line: the `return` value, or the agent's error. Leading delimiter
/// bytes are skipped; `None` when the line is not JSON (noise from a resync).
pub(crate) fn decode_answer(line: &[u8]) -> Option<Result<Value, AgentError>> {
    let start = line
        .iter()
        .position(|byte| *byte != DELIMITER)
        .unwrap_or(line.len());
    let value: Value = serde_json::from_slice(&line[start..]).ok()?;
    if let Some(result) = value.get("return") {
        return Some(Ok(result.clone()));
    }
    let error = value.get("error")?;
    let description = error
        .get("desc")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    Some(Err(AgentError::Agent(description.to_owned())))
}

/// A synced connection to one guest's agent.
#[derive(Debug)]
pub(crate) struct Agent {
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    timeout: Duration,
}

impl Agent {
    /// Connects and syncs; [`AgentError::NotRunning`] when the agent does not answer
    /// within `sync_timeout`.
    pub async fn connect(
        path: &Path,
        sync_timeout: Duration,
        timeout: Duration,
    ) -> Result<Self, AgentError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|_| AgentError::NotRunning)?;
        let (read, writer) = stream.into_split();
        let mut agent = Self {
            reader: BufReader::new(read),
            writer,
            timeout,
        };
        let id = rand::random::<u32>() & 0x7FFF_FFFF;
        let request = encode_request("guest-sync-delimited", Some(&json!({"id": id})));
        agent.writer.write_all(&request).await?;
        let synced = tokio::time::timeout(sync_timeout, async {
            loop {
                match agent.read_answer().await? {
                    Some(Ok(value)) if value.as_u64() == Some(u64::from(id)) => return Ok(()),
                    Some(_) | None => {}
                }
            }
        })
        .await;
        match synced {
            Ok(Ok(())) => Ok(agent),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(AgentError::NotRunning),
        }
    }

    async fn read_answer(&mut self) -> Result<Option<Result<Value, AgentError>>, AgentError> {
        let mut line = Vec::new();
        let read = self.reader.read_until(b'\n', &mut line).await?;
        if read == 0 {
            return Err(AgentError::NotRunning);
        }
        Ok(decode_answer(&line))
    }

    /// Runs one command and returns its `return` value.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, AgentError> {
        let request = encode_request(command, arguments.as_ref());
        self.writer.write_all(&request).await?;
        let answer = tokio::time::timeout(self.timeout, async {
            loop {
                if let Some(answer) = self.read_answer().await? {
                    return answer;
                }
            }
        })
        .await;
        answer.unwrap_or_else(|_| {
            Err(AgentError::Protocol(format!(
                "no answer to {command} within {:?}",
                self.timeout
            )))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_one_json_line() {
        let bytes = encode_request("guest-exec-status", Some(&json!({"pid": 7})));
        assert_eq!(
            bytes,
            b"{\"arguments\":{\"pid\":7},\"execute\":\"guest-exec-status\"}\n"
        );
        assert_eq!(
            encode_request("guest-ping", None),
            b"{\"execute\":\"guest-ping\"}\n"
        );
    }

    #[test]
    fn the_sync_answer_follows_the_delimiter() {
        let answer = decode_answer(b"\xff{\"return\": 1234}\n");
        assert_eq!(answer.map(Result::ok), Some(Some(json!(1234))));
    }

    #[test]
    fn agent_errors_carry_their_description() {
        let line = br#"{"error": {"class": "GenericError", "desc": "failed to open file '/x' (mode: 'r'): No such file or directory"}}"#;
        let Some(Err(error)) = decode_answer(line) else {
            panic!("expected an error");
        };
        assert_eq!(
            error.to_string(),
            "Agent error: failed to open file '/x' (mode: 'r'): No such file or directory"
        );
    }

    #[test]
    fn noise_is_skipped() {
        assert!(decode_answer(b"\xff\xff").is_none());
        assert!(decode_answer(b"garbage\n").is_none());
        assert!(decode_answer(b"{\"event\": \"X\"}\n").is_none());
    }
}
