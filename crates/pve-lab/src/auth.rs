//! Authentication like pve-http-server: API tokens, tickets and CSRF tokens.
//!
//! Why: clients must be tested against PVE's real rules, not a lab that lets anything in.
//! A token header `PVEAPIToken=USER@REALM!TOKENID=SECRET` (split at the last `=`) needs no
//! CSRF token; a ticket from `POST /access/ticket` travels as the `PVEAuthCookie` cookie
//! and needs the `CSRFPreventionToken` header on every non-GET. Failures are 401
//! `No ticket`, `Authentication failed!` or `Permission denied - invalid csrf token`.
//!
//! The lab has three identities: `root@pam` (random password), its token `root@pam!lab`
//! (no privilege separation, full privileges) and `root@pam!readonly` (privilege
//! separated, `PVEAuditor` on `/`). Secrets are random per lab, or kept in the state dir so
//! a restarted `lab serve` keeps its token. Tickets are signed with SHA-256 over a random
//! per-lab key and live two hours, like PVE's.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use http::HeaderMap;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::api::{ApiError, Identity};

/// The user of every lab identity.
pub const ROOT_USER: &str = "root@pam";
/// The full-privilege token id.
pub const FULL_TOKEN_ID: &str = "lab";
/// The read-only (`PVEAuditor`) token id.
pub const READONLY_TOKEN_ID: &str = "readonly";
/// How long a ticket is valid (PVE: two hours).
const TICKET_LIFETIME_SECONDS: u64 = 2 * 60 * 60;

/// The secrets of one lab. `Debug` redacts them.
#[derive(Clone, Serialize, Deserialize)]
pub struct Credentials {
    pub root_password: String,
    pub full_token_secret: String,
    pub readonly_token_secret: String,
    ticket_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Credentials { <redacted> }")
    }
}

fn random_uuid() -> String {
    let bytes: [u8; 16] = rand::rng().random();
    let hex = hex::encode(bytes);
    // Version 4, variant 10xx, as PVE's token secrets are.
    format!(
        "{}-{}-4{}-{:x}{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        8 | (bytes[8] & 0x3),
        &hex[17..20],
        &hex[20..32]
    )
}

fn random_text(length: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(length)
        .map(char::from)
        .collect()
}

impl Credentials {
    /// Fresh random secrets.
    pub fn generate() -> Self {
        Self {
            root_password: random_text(20),
            full_token_secret: random_uuid(),
            readonly_token_secret: random_uuid(),
            ticket_key: random_text(43),
        }
    }

    /// Loads `credentials.json` from `dir`, or generates and saves it (mode 0600).
    ///
    /// # Errors
    /// The file cannot be read, parsed or written.
    pub fn load_or_generate(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join("credentials.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let credentials = Self::generate();
                let text =
                    serde_json::to_vec_pretty(&credentials).map_err(std::io::Error::other)?;
                crate::tls::write_private_atomically(&path, &text)?;
                Ok(credentials)
            }
            Err(error) => Err(error),
        }
    }
}

/// How a caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub identity: Identity,
    /// Ticket logins need a CSRF token on non-GET requests; tokens do not.
    pub by_ticket: bool,
}

fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(401, message)
}

/// Verifies credentials and issues tickets for one lab.
#[derive(Debug, Clone)]
pub struct Auth {
    credentials: Credentials,
}

impl Auth {
    pub fn new(credentials: Credentials) -> Self {
        Self { credentials }
    }

    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    fn sign(&self, data: &str) -> String {
        let mut hasher = Sha256::new();
        hasher.update(self.credentials.ticket_key.as_bytes());
        hasher.update(b"\0");
        hasher.update(data.as_bytes());
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(hasher.finalize())
    }

    /// A ticket for `user`: `PVE:USER:HEXTIME::SIGNATURE`, PVE's layout.
    fn ticket(&self, user: &str, time: u64) -> String {
        let data = format!("PVE:{user}:{time:08X}");
        let signature = self.sign(&data);
        format!("{data}::{signature}")
    }

    /// The CSRF token bound to `user` and a time: `HEXTIME:SIGNATURE`.
    fn csrf_token(&self, user: &str, time: u64) -> String {
        let signature = self.sign(&format!("csrf:{time:08X}:{user}"));
        format!("{time:08X}:{signature}")
    }

    /// The user of a valid, unexpired ticket.
    fn verify_ticket(&self, ticket: &str) -> Option<String> {
        let (data, signature) = ticket.split_once("::")?;
        let mut parts = data.split(':');
        let (Some("PVE"), Some(user), Some(time), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let time = u64::from_str_radix(time, 16).ok()?;
        let now = now_seconds();
        let fresh = time <= now + 300 && now.saturating_sub(time) < TICKET_LIFETIME_SECONDS;
        (fresh && self.sign(data) == signature).then(|| user.to_owned())
    }

    fn verify_csrf(&self, user: &str, token: &str) -> bool {
        let Some((time, _)) = token.split_once(':') else {
            return false;
        };
        let Ok(time) = u64::from_str_radix(time, 16) else {
            return false;
        };
        now_seconds().saturating_sub(time) < TICKET_LIFETIME_SECONDS
            && self.csrf_token(user, time) == token
    }

    /// Authenticates a request from its headers. `is_get` decides whether a ticket login
    /// needs the CSRF token.
    ///
    /// # Errors
    /// 401 with PVE's message.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        is_get: bool,
    ) -> Result<Authenticated, ApiError> {
        if let Some(value) = headers.get(http::header::AUTHORIZATION) {
            let text = value
                .to_str()
                .map_err(|_| unauthorized("Authentication failed!"))?;
            if let Some(token) = text.trim().strip_prefix("PVEAPIToken=") {
                return self.verify_token(token);
            }
        }
        let Some(ticket) = cookie(headers, "PVEAuthCookie") else {
            return Err(unauthorized("No ticket"));
        };
        let ticket = crate::schema::percent_decode(&ticket).unwrap_or(ticket);
        let user = self
            .verify_ticket(&ticket)
            .ok_or_else(|| unauthorized("Authentication failed!"))?;
        if !is_get {
            let valid = headers
                .get("CSRFPreventionToken")
                .and_then(|value| value.to_str().ok())
                .is_some_and(|token| self.verify_csrf(&user, token));
            if !valid {
                return Err(unauthorized("Permission denied - invalid csrf token"));
            }
        }
        Ok(Authenticated {
            identity: Identity { user, token: None },
            by_ticket: true,
        })
    }

    fn verify_token(&self, token: &str) -> Result<Authenticated, ApiError> {
        let failed = || unauthorized("Authentication failed!");
        let (token_id, secret) = token.rsplit_once('=').ok_or_else(failed)?;
        let (user, name) = token_id.split_once('!').ok_or_else(failed)?;
        let expected = match (user, name) {
            (ROOT_USER, FULL_TOKEN_ID) => &self.credentials.full_token_secret,
            (ROOT_USER, READONLY_TOKEN_ID) => &self.credentials.readonly_token_secret,
            _ => return Err(failed()),
        };
        if !constant_time_equal(secret.as_bytes(), expected.as_bytes()) {
            return Err(failed());
        }
        Ok(Authenticated {
            identity: Identity {
                user: user.to_owned(),
                token: Some(name.to_owned()),
            },
            by_ticket: false,
        })
    }

    /// `POST /access/ticket`: a ticket for a user and password (or a valid ticket as the
    /// password, which renews it). Tokens are not accepted here.
    ///
    /// # Errors
    /// 401 `authentication failure` for wrong credentials.
    pub fn login(
        &self,
        username: &str,
        password: &str,
        realm: Option<&str>,
    ) -> Result<Value, ApiError> {
        let user = match (username.contains('@'), realm) {
            (false, Some(realm)) => format!("{username}@{realm}"),
            _ => username.to_owned(),
        };
        let by_password = user == ROOT_USER
            && constant_time_equal(
                password.as_bytes(),
                self.credentials.root_password.as_bytes(),
            );
        let by_ticket = self
            .verify_ticket(password)
            .is_some_and(|owner| owner == user);
        if !(by_password || by_ticket) {
            return Err(unauthorized("authentication failure"));
        }
        let now = now_seconds();
        Ok(json!({
            "username": user,
            "ticket": self.ticket(&user, now),
            "CSRFPreventionToken": self.csrf_token(&user, now),
            "cap": {},
        }))
    }
}

fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len() && left.iter().zip(right).fold(0, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// The value of cookie `name`, if any `Cookie` header carries it.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("a value"),
                value.parse().expect("a value"),
            );
        }
        map
    }

    #[test]
    fn tokens_split_at_the_last_equals_sign() {
        let auth = Auth::new(Credentials::generate());
        let secret = auth.credentials().full_token_secret.clone();
        assert_eq!(secret.len(), 36);
        let good = format!("PVEAPIToken=root@pam!lab={secret}");
        let ok = auth
            .authenticate(&headers(&[("authorization", &good)]), false)
            .expect("a value");
        assert_eq!(ok.identity.upid_user(), "root@pam!lab");
        let bad = "PVEAPIToken=root@pam!lab=00000000-0000-4000-8000-000000000000";
        let error = auth
            .authenticate(&headers(&[("authorization", bad)]), true)
            .expect_err("an error");
        assert_eq!(
            (error.status, error.message.as_str()),
            (401, "Authentication failed!")
        );
        let none = auth
            .authenticate(&HeaderMap::new(), true)
            .expect_err("an error");
        assert_eq!(none.message, "No ticket");
    }

    #[test]
    fn tickets_need_csrf_on_writes() {
        let auth = Auth::new(Credentials::generate());
        let password = auth.credentials().root_password.clone();
        assert!(auth.login("root@pam", "wrong", None).is_err());
        let login = auth.login("root", &password, Some("pam")).expect("a value");
        let ticket = login["ticket"].as_str().expect("a value");
        let csrf = login["CSRFPreventionToken"].as_str().expect("a value");
        let cookie = format!("PVEAuthCookie={}", ticket.replace(':', "%3A"));
        assert!(
            auth.authenticate(&headers(&[("cookie", &cookie)]), true)
                .is_ok()
        );
        let error = auth
            .authenticate(&headers(&[("cookie", &cookie)]), false)
            .expect_err("an error");
        assert_eq!(error.message, "Permission denied - invalid csrf token");
        let with_csrf = headers(&[("cookie", &cookie), ("CSRFPreventionToken", csrf)]);
        assert_eq!(
            auth.authenticate(&with_csrf, false)
                .expect("a value")
                .identity
                .user,
            "root@pam"
        );
        let forged = cookie.replace("root@pam", "evil@pam");
        assert!(
            auth.authenticate(&headers(&[("cookie", &forged)]), true)
                .is_err()
        );
        assert!(auth.login("root@pam", ticket, None).is_ok());
    }
}
