//! Scrubbing secrets out of text before it is stored in the history.
//!
//! Why here as well as in `pve::Secret`: errors recorded in a run come from many layers
//! (API error bodies, Ansible output, SSH stderr) and the history file is kept for months
//! and copied into reports. `Secret` keeps tokens out of our own messages; this is the
//! second line of defence for text we did not format ourselves.

use std::sync::LazyLock;

use regex::Regex;

static SECRET_PATTERNS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        // Authorization: PVEAPIToken=user@realm!id=SECRET (header or free text)
        r"(?i)(PVEAPIToken[= ])\S+",
        // user@realm!tokenid=SECRET
        r"([\w.\-]+@[\w.\-]+![\w.\-]+=)[^\s'\x22,;&]+",
        // password=..., secret: ..., token="...", ticket=...
        r#"(?i)((?:password|passwd|secret|token|ticket|api[_-]?key)["']?\s*[:=]\s*["']?)[^\s'",;&]+"#,
        // Cookie: PVEAuthCookie=...
        r"(PVEAuthCookie=)[^\s;]+",
        // CSRFPreventionToken header
        r"(?i)(CSRFPreventionToken[:=]\s*)\S+",
    ]
    .iter()
    .filter_map(|pattern| Regex::new(pattern).ok())
    .collect()
});

/// `text` with anything that looks like a credential replaced by `[redacted]`.
pub fn redact(text: &str) -> String {
    let mut result = text.to_owned();
    for pattern in SECRET_PATTERNS.iter() {
        result = pattern.replace_all(&result, "${1}[redacted]").into_owned();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn tokens_and_passwords_are_removed() {
        let secret = "0b5c3a9e-1111-2222-3333-444455556666";
        for text in [
            format!("Authorization: PVEAPIToken=root@pam!ci={secret}"),
            format!("token root@pam!ci={secret} rejected"),
            format!("login failed: password={secret}"),
            format!("{{\"token\": \"{secret}\"}}"),
            format!("Cookie: PVEAuthCookie={secret}; path=/"),
        ] {
            let cleaned = redact(&text);
            assert!(!cleaned.contains(secret), "{cleaned}");
            assert!(cleaned.contains("[redacted]"), "{cleaned}");
        }
    }

    #[test]
    fn ordinary_text_is_kept() {
        let text = "clone of template 8024 to VM 7000 failed: storage local-lvm is full";
        assert_eq!(redact(text), text);
    }
}
