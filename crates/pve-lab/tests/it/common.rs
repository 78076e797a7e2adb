//! Helpers: start a lab, call it like a PVE client, check answers against the schema.
//!
//! Why: every test speaks real HTTP to a real lab on 127.0.0.1, so wire details (reason
//! phrases, envelopes, separators) are what is tested; [`assert_schema`] is what lets
//! node tests check every response against the official `returns` shapes.

use std::net::SocketAddr;
use std::time::Duration;

use pve_lab::api::Method;
use pve_lab::{Lab, LabHandle, LabOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Installs the ring provider for reqwest (built with `rustls-no-provider`).
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A test lab: plain HTTP on 127.0.0.1:0, in memory, fast tasks.
pub async fn start() -> LabHandle {
    start_with(|_| {}).await
}

/// A test lab with adjusted options.
pub async fn start_with(adjust: impl FnOnce(&mut LabOptions)) -> LabHandle {
    install_crypto();
    let mut options = LabOptions::for_tests();
    adjust(&mut options);
    Lab::start(options).await.expect("the lab starts")
}

/// Form parameters of a call, as `(name, value)` pairs.
pub type Params<'a> = &'a [(&'a str, &'a str)];

/// One answer: status and JSON body (reason phrases are checked with [`raw_exchange`]).
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Reply {
    /// `body.data`.
    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// `body.errors.<name>` as text.
    pub fn error(&self, name: &str) -> Option<&str> {
        self.body["errors"][name].as_str()
    }

    /// `body.message` as text.
    pub fn message(&self) -> &str {
        self.body["message"].as_str().unwrap_or("")
    }
}

/// A client of one lab with one identity.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    authorization: Option<String>,
    extra_headers: Vec<(String, String)>,
}

impl Api {
    fn new(lab: &LabHandle, authorization: Option<String>) -> Self {
        install_crypto();
        Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .expect("client"),
            base: lab.url().to_owned(),
            authorization,
            extra_headers: Vec::new(),
        }
    }

    /// The full-privilege token `root@pam!lab`.
    pub fn token(lab: &LabHandle) -> Self {
        Self::new(lab, Some(lab.authorization()))
    }

    /// The read-only token `root@pam!readonly`.
    pub fn readonly(lab: &LabHandle) -> Self {
        Self::new(lab, Some(format!("PVEAPIToken={}", lab.readonly_token())))
    }

    /// No credentials at all.
    pub fn anonymous(lab: &LabHandle) -> Self {
        Self::new(lab, None)
    }

    /// Adds a header to every request (cookies, CSRF tokens).
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.extra_headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends a request to `path` relative to the API base (`/version`, not
    /// `/api2/json/version`) with a raw query string and an optional body (content type,
    /// bytes), exactly as given.
    pub async fn raw_call(
        &self,
        method: &str,
        path: &str,
        query: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Reply {
        let mut url = format!("{}{path}", self.base);
        if !query.is_empty() {
            url.push('?');
            url.push_str(query);
        }
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = self.client.request(method, url);
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        for (name, value) in &self.extra_headers {
            request = request.header(name, value);
        }
        if let Some((content_type, bytes)) = body {
            request = request.header("Content-Type", content_type).body(bytes);
        }
        let response = request.send().await.expect("the lab answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Reply { status, body }
    }

    /// A call to `path` relative to the API base (`/version`) with form-encoded
    /// parameters (query for GET/DELETE, body otherwise).
    pub async fn call(&self, method: &str, path: &str, params: &[(&str, &str)]) -> Reply {
        let encoded = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        if method == "GET" || method == "DELETE" {
            self.raw_call(method, path, &encoded, None).await
        } else {
            self.raw_call(
                method,
                path,
                "",
                Some(("application/x-www-form-urlencoded", encoded.into_bytes())),
            )
            .await
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call("GET", path, &[]).await
    }
}

/// Asserts that a successful answer's `data` matches the schema's `returns` of `method`
/// `path` (a concrete path below `/api2/json`); non-200 answers are not checked.
pub fn assert_schema(method: Method, path: &str, reply: &Reply) {
    if reply.status != 200 {
        return;
    }
    if let Err(problems) = pve_lab::check_response(method, path, reply.data()) {
        panic!(
            "{path}: response does not match the schema:\n{}\n{}",
            problems.join("\n"),
            reply.body
        );
    }
}

/// Sends raw bytes and returns everything the server sends back before it closes the
/// connection (or 5 s pass).
pub async fn raw_exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// Like [`raw_exchange`], but closes the sending side after the request, the way a client
/// that gives up does: the lab must answer or close at once, never wait for more bytes.
pub async fn raw_exchange_then_close(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream.write_all(request).await.expect("write");
    let _ = stream.shutdown().await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// The status line of a raw HTTP response.
pub fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}
