//! Configuring a [`Client`]: URL, TLS trust, credentials, retries, timeouts, hooks.
//!
//! Why separate from the transport: building validates everything that can be checked
//! without a request (URL shape, CA file, fingerprint), so misconfiguration fails before
//! the first call, and the transport code only deals with sending.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::{Auth, Credentials};
use crate::client::{Client, Inner};
use crate::error::Error;
use crate::metrics::{Metrics, RequestHook};
use crate::retry::RetryPolicy;
use crate::secret::Secret;
use crate::tls::{TlsMode, client_config, trust_nothing_config};
use crate::token::ApiToken;

/// The largest response body read by default: far above what a big cluster's
/// `/cluster/resources` or a long task log returns, far below what would hurt the operator's
/// machine if a proxy or a misbehaving endpoint streamed without end.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// `SOMBRERO_API_TIMEOUT`: seconds one request may take to be answered (default 60).
pub const REQUEST_TIMEOUT_ENV: &str = "SOMBRERO_API_TIMEOUT";

/// The per-request timeout from a [`REQUEST_TIMEOUT_ENV`]-style value: whole seconds
/// (at least 1); anything else is the default, 60 s.
pub fn request_timeout_from(value: Option<&str>) -> Duration {
    value
        .and_then(|text| text.trim().parse::<u64>().ok())
        .filter(|seconds| *seconds > 0)
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

impl Client {
    /// Starts configuring a client for `base_url` (`https://HOST:8006`; a trailing
    /// `/api2/json` is accepted).
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            tls: TlsMode::default(),
            credentials: None,
            retry: RetryPolicy::default(),
            request_timeout: request_timeout_from(
                std::env::var(REQUEST_TIMEOUT_ENV).ok().as_deref(),
            ),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            hook: None,
        }
    }
}

/// Configures a [`Client`].
#[derive(Clone)]
pub struct ClientBuilder {
    base_url: String,
    tls: TlsMode,
    credentials: Option<Credentials>,
    retry: RetryPolicy,
    request_timeout: Duration,
    connect_timeout: Duration,
    max_response_bytes: usize,
    hook: Option<RequestHook>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Trust mode for the server certificate (default: system roots).
    #[must_use]
    pub fn tls(mut self, mode: TlsMode) -> Self {
        self.tls = mode;
        self
    }

    /// Authenticate with an API token.
    #[must_use]
    pub fn token(mut self, token: ApiToken) -> Self {
        self.credentials = Some(Credentials::Token(token));
        self
    }

    /// Authenticate with a username (`root@pam`) and password (ticket login).
    #[must_use]
    pub fn password(mut self, username: &str, password: Secret) -> Self {
        self.credentials = Some(Credentials::Password {
            username: username.to_owned(),
            password,
        });
        self
    }

    /// Retry policy (default: [`RetryPolicy::default`], which honours the environment).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Limit for one attempt of one request (default 60 s).
    #[must_use]
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Limit for establishing a connection (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Largest response body accepted (default [`DEFAULT_MAX_RESPONSE_BYTES`]); a longer
    /// one is an [`Error::Decode`] and is never buffered whole.
    #[must_use]
    pub fn max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// Called after every attempt of every request.
    #[must_use]
    pub fn on_request(mut self, hook: RequestHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// Builds the client. No request is made.
    ///
    /// # Errors
    /// [`Error::Setup`] for an invalid URL or TLS configuration.
    pub fn build(self) -> Result<Client, Error> {
        let base = normalize_base(&self.base_url)?;
        let root = server_root(&base)?;
        // Always hand reqwest our own rustls config (ring provider): with
        // `rustls-no-provider` it has no default, even for plain-http lab URLs.
        let tls = if base.starts_with("https://") {
            client_config(&self.tls)?
        } else {
            trust_nothing_config()?
        };
        let http = reqwest::Client::builder()
            .timeout(self.request_timeout)
            .connect_timeout(self.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("sombrero-pve/", env!("CARGO_PKG_VERSION")))
            .tls_backend_preconfigured(tls);
        let http = http.build().map_err(|error| Error::Setup {
            reason: "cannot build the HTTP client".to_owned(),
            source: Some(Box::new(error)),
        })?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                root,
                auth: Auth {
                    credentials: self.credentials,
                    ticket: tokio::sync::Mutex::new(None),
                },
                retry: self.retry,
                max_response_bytes: self.max_response_bytes,
                metrics: Metrics::default(),
                hook: self.hook,
            }),
        })
    }
}

pub(crate) fn normalize_base(url: &str) -> Result<String, Error> {
    let parsed = url::Url::parse(url.trim()).map_err(|error| Error::Setup {
        reason: format!("invalid API URL {url:?}"),
        source: Some(Box::new(error)),
    })?;
    if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
        return Err(Error::Setup {
            reason: format!("API URL {url:?} must be https://HOST:PORT"),
            source: None,
        });
    }
    let trimmed = parsed.as_str().trim_end_matches('/');
    let base = trimmed
        .strip_suffix("/api2/json")
        .unwrap_or(trimmed)
        .to_owned();
    Ok(format!("{base}/api2/json"))
}

/// `scheme://host:port` of a normalized base URL: where [`PathScope::ServerRoot`]
/// requests go (a path prefix before `/api2/json` is not part of it).
///
/// [`PathScope::ServerRoot`]: crate::request::PathScope::ServerRoot
pub(crate) fn server_root(base: &str) -> Result<String, Error> {
    let parsed = url::Url::parse(base).map_err(|error| Error::Setup {
        reason: format!("invalid API URL {base:?}"),
        source: Some(Box::new(error)),
    })?;
    Ok(parsed.origin().ascii_serialization())
}
