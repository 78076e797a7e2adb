//! A scripted HTTP server on 127.0.0.1 for unit tests: each connection gets the next
//! canned reply (or a hang-up), and every request text is recorded.
//!
//! Why not the lab: these tests need exact control over reason phrases, lost answers and
//! the order of answers, independent of the lab's behaviour.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// What the scripted server does with the Nth connection.
#[derive(Clone)]
pub enum Reply {
    Respond(String),
    Hangup,
}

pub struct Script {
    pub base: String,
    pub connections: Arc<AtomicUsize>,
    pub requests: Arc<Mutex<Vec<String>>>,
}

pub fn http(status_line: &str, body: &str) -> Reply {
    Reply::Respond(format!(
        "HTTP/1.1 {status_line}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ))
}

pub async fn serve(replies: Vec<Reply>) -> Script {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (counter, log) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let index = counter.fetch_add(1, Ordering::SeqCst);
            let reply = replies.get(index).or(replies.last()).cloned().unwrap();
            let mut buffer = vec![0u8; 65536];
            let mut received = Vec::new();
            // Read headers and the body announced by Content-Length.
            loop {
                let count = stream.read(&mut buffer).await.unwrap_or(0);
                if count == 0 {
                    break;
                }
                received.extend_from_slice(&buffer[..count]);
                let text = String::from_utf8_lossy(&received).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length = text
                        .lines()
                        .find_map(|line| {
                            line.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if received.len() >= end + 4 + length {
                        break;
                    }
                }
            }
            log.lock()
                .await
                .push(String::from_utf8_lossy(&received).to_string());
            match reply {
                Reply::Respond(text) => {
                    let _ = stream.write_all(text.as_bytes()).await;
                    let _ = stream.shutdown().await;
                }
                Reply::Hangup => drop(stream),
            }
        }
    });
    Script {
        base,
        connections,
        requests,
    }
}
