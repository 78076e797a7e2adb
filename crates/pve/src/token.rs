//! API tokens in Proxmox's `USER@REALM!TOKENID=SECRET` form.
//!
//! Why parse instead of passing a string around: a malformed token should be reported
//! before any request, naming which part is wrong, and the secret half must stay inside a
//! [`Secret`] from the moment it is read.

use std::fmt;
use std::str::FromStr;

use crate::secret::Secret;

/// A parsed API token. `Display` prints `user@realm!tokenid=[redacted]`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    user: String,
    realm: String,
    token_id: String,
    secret: Secret,
}

/// Why a token string is not `USER@REALM!TOKENID=SECRET`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenParseError {
    #[error("API token must look like USER@REALM!TOKENID=SECRET, but has no '=' before the secret")]
    MissingSecret,
    #[error(
        "API token must look like USER@REALM!TOKENID=SECRET, but has no '!' before the token id"
    )]
    MissingTokenId,
    #[error("API token must look like USER@REALM!TOKENID=SECRET, but the user has no '@REALM'")]
    MissingRealm,
    #[error("API token has an empty {0}")]
    Empty(&'static str),
    #[error("API token {part} contains a character that is not allowed: {character:?}")]
    BadCharacter { part: &'static str, character: char },
}

impl ApiToken {
    /// `user@realm`.
    pub fn userid(&self) -> String {
        format!("{}@{}", self.user, self.realm)
    }

    /// `user@realm!tokenid`, the form PVE writes into UPIDs and permission paths.
    pub fn full_token_id(&self) -> String {
        format!("{}@{}!{}", self.user, self.realm, self.token_id)
    }

    /// The token id after `!`.
    pub fn token_id(&self) -> &str {
        &self.token_id
    }

    /// The secret after the last `=`.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The `Authorization` header value. Contains the secret: only for the wire.
    pub fn authorization_header(&self) -> String {
        format!(
            "PVEAPIToken={}={}",
            self.full_token_id(),
            self.secret.expose()
        )
    }
}

fn check_part(part: &'static str, value: &str, extra: &[char]) -> Result<(), TokenParseError> {
    if value.is_empty() {
        return Err(TokenParseError::Empty(part));
    }
    if let Some(character) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(c)))
    {
        return Err(TokenParseError::BadCharacter { part, character });
    }
    Ok(())
}

impl FromStr for ApiToken {
    type Err = TokenParseError;

    /// Parses `USER@REALM!TOKENID=SECRET`, splitting the secret at the last `=` like PVE.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (id, secret) = text
            .rsplit_once('=')
            .ok_or(TokenParseError::MissingSecret)?;
        let (userid, token_id) = id.split_once('!').ok_or(TokenParseError::MissingTokenId)?;
        let (user, realm) = userid
            .rsplit_once('@')
            .ok_or(TokenParseError::MissingRealm)?;
        check_part("user", user, &['-', '_', '.'])?;
        check_part("realm", realm, &['-', '_', '.'])?;
        check_part("token id", token_id, &['-', '_', '.'])?;
        if secret.is_empty() {
            return Err(TokenParseError::Empty("secret"));
        }
        if secret.chars().any(char::is_whitespace) {
            return Err(TokenParseError::BadCharacter {
                part: "secret",
                character: ' ',
            });
        }
        Ok(Self {
            user: user.to_owned(),
            realm: realm.to_owned(),
            token_id: token_id.to_owned(),
            secret: Secret::new(secret),
        })
    }
}

impl fmt::Display for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.full_token_id(), self.secret)
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiToken, TokenParseError};

    #[test]
    fn parses_the_runbook_form_and_redacts() {
        let token: ApiToken = "terraform@pve!token=5ec7e7-a1b2".parse().unwrap();
        assert_eq!(token.userid(), "terraform@pve");
        assert_eq!(token.full_token_id(), "terraform@pve!token");
        assert_eq!(token.secret().expose(), "5ec7e7-a1b2");
        assert!(!format!("{token} {token:?}").contains("5ec7e7"));
        assert_eq!(
            token.authorization_header(),
            "PVEAPIToken=terraform@pve!token=5ec7e7-a1b2"
        );
    }

    #[test]
    fn rejects_malformed_tokens() {
        assert_eq!(
            "root@pam".parse::<ApiToken>(),
            Err(TokenParseError::MissingSecret)
        );
        assert_eq!(
            "root@pam=x".parse::<ApiToken>(),
            Err(TokenParseError::MissingTokenId)
        );
        assert_eq!(
            "root!t=x".parse::<ApiToken>(),
            Err(TokenParseError::MissingRealm)
        );
        assert_eq!(
            "root@pam!t=".parse::<ApiToken>(),
            Err(TokenParseError::Empty("secret"))
        );
    }
}
