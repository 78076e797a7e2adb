//! The client: sends [`Request`] values, decodes PVE's envelope and errors, retries what is
//! safe to retry, and counts every attempt.
//!
//! Why one choke point: authentication, retries, error decoding, metrics and request
//! tracing must behave the same for all 30-odd endpoints (and for the few requests outside
//! `/api2/json`, [`PathScope::ServerRoot`]), and the endpoint methods (in `api/`) stay
//! one-liners that name their path. The client is cheap to clone (an `Arc` inside) and
//! `Send + Sync`.
//!
//! Tracing (target `pve::client`): at DEBUG one event as each attempt is sent
//! (`GET /version attempt=1`) and one as it is answered (`GET /version -> 200 in 12 ms
//! attempt=1`, or the transport failure instead of a status), plus one per retry; at
//! TRACE also the request's parameters, secrets redacted by their `Debug`. Headers (the
//! token, the ticket) and bodies are never logged.

use std::sync::Arc;
use std::time::Instant;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::auth::{Auth, AuthHeaders, Credentials, Ticket, TicketAnswer};
use crate::error::{Error, RetrySafety};
use crate::metrics::{Metrics, MetricsSnapshot, RequestEvent, RequestHook};
use crate::request::{Method, Params, PathScope, Request, RetryRule};
use crate::response::api_error;
use crate::retry::RetryPolicy;
use crate::secret::Secret;

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    /// `scheme://host:port`, the prefix of [`PathScope::ServerRoot`] requests.
    pub(crate) root: String,
    pub(crate) auth: Auth,
    pub(crate) retry: RetryPolicy,
    pub(crate) max_response_bytes: usize,
    pub(crate) metrics: Metrics,
    pub(crate) hook: Option<RequestHook>,
}

/// A PVE API client. Clone it freely; clones share connections, ticket and counters.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Client")
            .field("base", &self.inner.base)
            .finish_non_exhaustive()
    }
}

/// The result of sending one request, with what the retries imply.
pub(crate) struct Sent {
    pub(crate) result: Result<Value, Error>,
    /// An earlier attempt may have been executed by the server (lost answer or 5xx).
    pub(crate) earlier_attempt_may_have_run: bool,
}

impl Client {
    /// `https://HOST:PORT/api2/json`.
    pub fn base_url(&self) -> &str {
        &self.inner.base
    }

    /// The retry policy this client was built with.
    pub fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// Counters of every attempt so far.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// Sends `request` (retrying per its rule) and returns the envelope's `data`.
    ///
    /// # Errors
    /// [`Error::NotSent`], [`Error::MaybeSent`] or [`Error::Api`] from the last attempt.
    pub async fn execute(&self, request: &Request) -> Result<Value, Error> {
        self.send_tracked(request).await.result
    }

    /// Sends `request` and decodes `data` as `T`.
    ///
    /// # Errors
    /// As [`Client::execute`], plus [`Error::Decode`] when `data` is not a `T`.
    pub async fn call<T: DeserializeOwned>(&self, request: &Request) -> Result<T, Error> {
        let data = self.execute(request).await?;
        decode(request, data)
    }

    pub(crate) async fn send_tracked(&self, request: &Request) -> Sent {
        let policy = self.inner.retry;
        let mut earlier_attempt_may_have_run = false;
        let mut relogged = false;
        let mut attempt: u32 = 0;
        let mut timeouts: u32 = 0;
        loop {
            attempt += 1;
            let result = self.attempt(request, attempt).await;
            let Err(error) = result else {
                return Sent {
                    result,
                    earlier_attempt_may_have_run,
                };
            };
            let login_failed = error.api().is_some_and(|api| api.path == "/access/ticket");
            if error.is_unauthorized() && !relogged && !login_failed && self.uses_ticket() {
                // The ticket expired or was revoked: log in again once.
                relogged = true;
                *self.inner.auth.ticket.lock().await = None;
                continue;
            }
            // A server that does not answer in time is unlikely to answer the next time:
            // one more try, not `attempts` times the timeout (a silent server used to take
            // 8 minutes to fail, a black hole 90 s).
            if error.is_timeout() {
                timeouts += 1;
            }
            if attempt >= policy.attempts.max(1)
                || timeouts >= MAX_TIMED_OUT_ATTEMPTS
                || !should_retry(request.retry, &error)
            {
                return Sent {
                    result: Err(error),
                    earlier_attempt_may_have_run,
                };
            }
            if error.retry_safety() != RetrySafety::NeverSent {
                earlier_attempt_may_have_run = true;
            }
            let delay = policy.delay(attempt - 1);
            // Announced at WARN: a retry is worth seeing (a flaky proxy, an overloaded
            // node), and a run that converged only after retries should say so.
            // The error names the method and path.
            tracing::warn!(
                "{error}; retrying in {} ms (attempt {} of {})",
                delay.as_millis(),
                attempt + 1,
                policy.attempts.max(1)
            );
            tokio::time::sleep(delay).await;
        }
    }

    fn uses_ticket(&self) -> bool {
        matches!(
            self.inner.auth.credentials,
            Some(Credentials::Password { .. })
        )
    }

    async fn auth_headers(&self, write: bool) -> Result<AuthHeaders, Error> {
        match &self.inner.auth.credentials {
            None => Ok(AuthHeaders::default()),
            Some(Credentials::Token(token)) => Ok(AuthHeaders::for_token(token)),
            Some(Credentials::Password { username, password }) => {
                let mut slot = self.inner.auth.ticket.lock().await;
                if let Some(ticket) = slot.as_ref().filter(|ticket| ticket.is_fresh()) {
                    return Ok(AuthHeaders::for_ticket(ticket, write));
                }
                let ticket = self.login(username, password).await?;
                let headers = AuthHeaders::for_ticket(&ticket, write);
                *slot = Some(ticket);
                Ok(headers)
            }
        }
    }

    async fn login(&self, username: &str, password: &Secret) -> Result<Ticket, Error> {
        let mut params = Params::new();
        params
            .set("username", username)
            .set_secret("password", password.clone());
        let request = Request::new(Method::Post, "/access/ticket".to_owned())
            .with_params(params)
            .with_retry(RetryRule::Idempotent);
        let policy = self.inner.retry;
        let mut attempt = 0;
        let data = loop {
            attempt += 1;
            match self
                .attempt_with(&request, attempt, AuthHeaders::default())
                .await
            {
                Ok(data) => break data,
                Err(error) if attempt < policy.attempts && should_retry(request.retry, &error) => {
                    tokio::time::sleep(policy.delay(attempt - 1)).await;
                }
                Err(error) => return Err(error),
            }
        };
        let answer: TicketAnswer = decode(&request, data)?;
        Ok(Ticket {
            value: Secret::new(answer.ticket),
            csrf: Secret::new(answer.csrf),
            renew_at: Instant::now() + crate::auth::TICKET_RENEW_AFTER,
        })
    }

    async fn attempt(&self, request: &Request, attempt: u32) -> Result<Value, Error> {
        let headers = self.auth_headers(request.method != Method::Get).await?;
        self.attempt_with(request, attempt, headers).await
    }

    async fn attempt_with(
        &self,
        request: &Request,
        attempt: u32,
        auth: AuthHeaders,
    ) -> Result<Value, Error> {
        let started = Instant::now();
        tracing::debug!(attempt, "{} {}", request.method, request.path);
        if !request.params.is_empty() {
            tracing::trace!(attempt, params = ?request.params, "{} {} parameters", request.method, request.path);
        }
        let answered = self.send_once(request, auth).await;
        let event = RequestEvent {
            method: request.method,
            path: request.path.clone(),
            attempt,
            status: match &answered {
                Ok((status, _)) => Some(*status),
                Err(error) => error.status(),
            },
            elapsed: started.elapsed(),
        };
        self.inner.metrics.record(&event, answered.is_ok());
        if let Some(hook) = &self.inner.hook {
            hook(&event);
        }
        tracing::debug!(
            attempt,
            "{} {} -> {} in {} ms",
            event.method,
            event.path,
            outcome(&answered),
            event.elapsed.as_millis()
        );
        answered.map(|(_, data)| data)
    }

    async fn send_once(&self, request: &Request, auth: AuthHeaders) -> Result<(u16, Value), Error> {
        let prefix = match request.scope {
            PathScope::Api => &self.inner.base,
            PathScope::ServerRoot => &self.inner.root,
        };
        let mut url = format!("{prefix}{}", request.path);
        if request.method.uses_query() && !request.params.is_empty() {
            url.push('?');
            url.push_str(&request.params.encode());
        }
        let method = match request.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut builder = self.inner.http.request(method, &url);
        if !request.method.uses_query() {
            builder = builder
                .header(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-www-form-urlencoded"),
                )
                .body(request.params.encode());
        }
        for (name, value) in [
            (AUTHORIZATION.as_str(), auth.authorization),
            (COOKIE.as_str(), auth.cookie),
            ("CSRFPreventionToken", auth.csrf),
        ] {
            if let Some(value) = value {
                let mut header =
                    HeaderValue::from_str(value.expose()).map_err(|_| Error::Setup {
                        reason: format!(
                            "credentials contain characters not allowed in the {name} header"
                        ),
                        source: None,
                    })?;
                header.set_sensitive(true);
                builder = builder.header(name, header);
            }
        }
        let response = builder
            .send()
            .await
            .map_err(|error| self.transport_error(request, error))?;
        let status = response.status();
        let reason = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|phrase| String::from_utf8_lossy(phrase.as_bytes()).into_owned())
            .or_else(|| status.canonical_reason().map(str::to_owned))
            .unwrap_or_default();
        let body = self.read_body(request, response).await?;
        let parsed: Option<Value> = serde_json::from_slice(&body).ok();
        if status.is_success() {
            let envelope = parsed.ok_or_else(|| Error::Decode {
                method: request.method,
                path: request.path.clone(),
                reason: format!("the body is not JSON ({} bytes)", body.len()),
                source: serde_json::from_slice::<Value>(&body).err(),
            })?;
            return Ok((
                status.as_u16(),
                envelope.get("data").cloned().unwrap_or(Value::Null),
            ));
        }
        Err(Error::Api(Box::new(api_error(
            request,
            status.as_u16(),
            reason,
            parsed,
        ))))
    }
}

/// How an attempt ended, for the DEBUG line: the status, or what kind of failure.
fn outcome(answered: &Result<(u16, Value), Error>) -> String {
    let error = match answered {
        Ok((status, _)) => return status.to_string(),
        Err(error) => error,
    };
    if let Some(status) = error.status() {
        return status.to_string();
    }
    match error {
        Error::NotSent { .. } => "not sent (cannot connect)",
        Error::MaybeSent { source, .. } if source.is_timeout() => "timed out",
        Error::MaybeSent { .. } => "no complete answer",
        Error::Setup { .. } => "TLS or setup failure",
        Error::Decode { .. } => "unexpected answer",
        _ => "failed",
    }
    .to_owned()
}

/// Attempts that may end in a timeout before a request gives up, whatever the policy.
const MAX_TIMED_OUT_ATTEMPTS: u32 = 2;

/// Whether `error` allows another attempt under `rule`.
pub(crate) fn should_retry(rule: RetryRule, error: &Error) -> bool {
    match error.retry_safety() {
        RetrySafety::NeverSent => true,
        RetrySafety::MayHaveReachedServer => rule == RetryRule::Idempotent,
        RetrySafety::ServerAnswered => match rule {
            RetryRule::Idempotent => error.is_transient_server_error(),
            // 504/599 mean a proxy gave up waiting: the task may have started.
            RetryRule::TaskDispatch => {
                error.is_transient_server_error() && !matches!(error.status(), Some(504 | 599))
            }
            RetryRule::NeverSentOnly => false,
        },
        _ => false,
    }
}

/// Decodes `data` into `T`, naming the request on failure.
pub(crate) fn decode<T: DeserializeOwned>(request: &Request, data: Value) -> Result<T, Error> {
    serde_json::from_value(data).map_err(|error| Error::Decode {
        method: request.method,
        path: request.path.clone(),
        reason: error.to_string(),
        source: Some(error),
    })
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "client_tracing_tests.rs"]
mod tracing_tests;

#[cfg(test)]
#[path = "timeout_tests.rs"]
mod timeout_tests;
