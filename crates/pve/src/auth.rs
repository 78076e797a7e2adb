//! Credentials: API tokens, or username and password exchanged for a ticket.
//!
//! Why tickets are handled here: a ticket lives two hours and every non-GET request needs
//! its CSRF token, so a long deployment with password auth would otherwise fail half-way.
//! The client logs in lazily, renews the ticket well before it expires, and logs in again
//! once if the server answers 401.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::secret::Secret;
use crate::token::ApiToken;

/// Renew a ticket after this age (they expire after 2 hours).
pub const TICKET_RENEW_AFTER: Duration = Duration::from_secs(90 * 60);

/// How the client authenticates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Credentials {
    /// `Authorization: PVEAPIToken=USER@REALM!TOKENID=SECRET`; no CSRF token needed.
    Token(ApiToken),
    /// `POST /access/ticket`, then cookie `PVEAuthCookie` and header `CSRFPreventionToken`.
    Password { username: String, password: Secret },
}

/// A login ticket.
#[derive(Debug, Clone)]
pub(crate) struct Ticket {
    pub(crate) value: Secret,
    pub(crate) csrf: Secret,
    /// When to log in again ([`TICKET_RENEW_AFTER`] after the login). A deadline rather
    /// than the login time, so tests can make a ticket stale without an `Instant` from
    /// before the machine booted.
    pub(crate) renew_at: Instant,
}

impl Ticket {
    pub(crate) fn is_fresh(&self) -> bool {
        Instant::now() < self.renew_at
    }
}

/// `POST /access/ticket` data.
#[derive(Deserialize)]
pub(crate) struct TicketAnswer {
    pub(crate) ticket: String,
    #[serde(rename = "CSRFPreventionToken")]
    pub(crate) csrf: String,
}

/// The credentials plus the current ticket, if any.
#[derive(Debug)]
pub(crate) struct Auth {
    pub(crate) credentials: Option<Credentials>,
    pub(crate) ticket: Mutex<Option<Ticket>>,
}

/// The headers one request carries.
#[derive(Debug, Default)]
pub(crate) struct AuthHeaders {
    pub(crate) authorization: Option<Secret>,
    pub(crate) cookie: Option<Secret>,
    pub(crate) csrf: Option<Secret>,
}

impl AuthHeaders {
    pub(crate) fn for_token(token: &ApiToken) -> Self {
        Self {
            authorization: Some(Secret::new(token.authorization_header())),
            ..Self::default()
        }
    }

    pub(crate) fn for_ticket(ticket: &Ticket, write: bool) -> Self {
        Self {
            authorization: None,
            cookie: Some(Secret::new(format!(
                "PVEAuthCookie={}",
                ticket.value.expose()
            ))),
            csrf: write.then(|| ticket.csrf.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{AuthHeaders, TICKET_RENEW_AFTER, Ticket};
    use crate::secret::Secret;
    use std::time::Instant;

    #[test]
    fn ticket_headers_carry_csrf_only_on_writes_and_stay_redacted() {
        let ticket = Ticket {
            value: Secret::new("PVE:root@pam:ABC::sig"),
            csrf: Secret::new("csrf-value"),
            renew_at: Instant::now() + TICKET_RENEW_AFTER,
        };
        assert!(ticket.is_fresh());
        let read = AuthHeaders::for_ticket(&ticket, false);
        assert!(read.csrf.is_none());
        let write = AuthHeaders::for_ticket(&ticket, true);
        assert_eq!(write.csrf.as_ref().map(Secret::expose), Some("csrf-value"));
        assert_eq!(
            write.cookie.as_ref().map(Secret::expose),
            Some("PVEAuthCookie=PVE:root@pam:ABC::sig")
        );
        assert!(!format!("{write:?}").contains("csrf-value"));
        let stale = Ticket {
            renew_at: Instant::now(),
            ..ticket
        };
        assert!(!stale.is_fresh());
    }
}
