//! QMP, QEMU's machine protocol: one JSON object per line over a unix socket.
//!
//! Why: the lab asks QEMU whether a guest runs (`query-status`), powers it down the way
//! PVE's `shutdown` does (`system_powerdown`, an ACPI event), quits it (`quit`, PVE's
//! `stop`) and grows a running disk (`block_resize`). A connection is opened per
//! operation: QEMU accepts one QMP client at a time per socket and operations are rare.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Why a QMP exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QmpError {
    #[error("cannot talk to QEMU's QMP socket {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("QEMU did not answer on QMP within {0:?}")]
    Timeout(Duration),
    #[error("QEMU refused {command}: {message}")]
    Refused { command: String, message: String },
    #[error("QEMU closed the QMP connection")]
    Closed,
}

/// One QMP connection, capabilities negotiated.
#[derive(Debug)]
pub(crate) struct Qmp {
    path: String,
    reader: BufReader<tokio::net::unix::OwnedReadHalf>,
    writer: tokio::net::unix::OwnedWriteHalf,
    timeout: Duration,
}

impl Qmp {
    /// Connects, reads the greeting and leaves negotiation mode.
    pub async fn connect(path: &Path, timeout: Duration) -> Result<Self, QmpError> {
        let display = path.display().to_string();
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| QmpError::Timeout(timeout))?
            .map_err(|source| QmpError::Io {
                path: display.clone(),
                source,
            })?;
        let (read, writer) = stream.into_split();
        let mut qmp = Self {
            path: display,
            reader: BufReader::new(read),
            writer,
            timeout,
        };
        let greeting = qmp.read_message().await?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Closed);
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self) -> Result<Value, QmpError> {
        let mut line = String::new();
        let read = tokio::time::timeout(self.timeout, self.reader.read_line(&mut line))
            .await
            .map_err(|_| QmpError::Timeout(self.timeout))?
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Err(QmpError::Closed);
        }
        serde_json::from_str(&line).map_err(|_| QmpError::Closed)
    }

    /// Runs one command and returns its `return` value (events in between are skipped).
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        let mut request = json!({"execute": command});
        if let Some(arguments) = arguments {
            request["arguments"] = arguments;
        }
        let mut bytes = request.to_string().into_bytes();
        bytes.push(b'\n');
        self.writer
            .write_all(&bytes)
            .await
            .map_err(|source| QmpError::Io {
                path: self.path.clone(),
                source,
            })?;
        loop {
            let message = self.read_message().await?;
            if let Some(result) = message.get("return") {
                return Ok(result.clone());
            }
            if let Some(error) = message.get("error") {
                return Err(QmpError::Refused {
                    command: command.to_owned(),
                    message: error
                        .get("desc")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error")
                        .to_owned(),
                });
            }
        }
    }

    /// `query-status`'s `status`: `running`, `paused`, `internal-error`, `shutdown`, ...
    pub async fn status(&mut self) -> Result<String, QmpError> {
        let value = self.execute("query-status", None).await?;
        Ok(value
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_owned())
    }
}
