//! SHA-256-crypt (`$5$salt$hash`), which PVE uses to store `cipassword`.
//!
//! Why: PVE never keeps a cloud-init password in clear: `update_vm_api` and `create_vm`
//! replace it with `crypt(pw, "$5$salt")` unless it already looks hashed, and cloud-init
//! receives the hash. The lab stores the same, so config files, digests and the generated
//! user-data match a real node. Algorithm: Ulrich Drepper's "Unix crypt using SHA-256".

use sha2::{Digest, Sha256};

use super::state::SplitMix;

const ALPHABET: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ROUNDS: usize = 5000;

/// Whether a value already is a crypt hash (PVE's `^\$(?:[156]|2[ay])(\$.+){2}`).
pub(crate) fn looks_hashed(value: &str) -> bool {
    let Some(rest) = value.strip_prefix('$') else {
        return false;
    };
    let (scheme, tail) = rest.split_once('$').unwrap_or((rest, ""));
    let known = matches!(scheme, "1" | "5" | "6" | "2a" | "2y");
    let mut parts = tail.split('$');
    known
        && parts.next().is_some_and(|salt| !salt.is_empty())
        && parts.next().is_some_and(|hash| !hash.is_empty())
}

/// Hashes a password with a random 16-character salt.
pub(crate) fn hash_password(password: &str, random: &mut SplitMix) -> String {
    let salt: String = random
        .bytes::<16>()
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(byte % 64)]))
        .collect();
    sha256_crypt(password.as_bytes(), salt.as_bytes())
}

fn repeated(block: &[u8], length: usize) -> Vec<u8> {
    block.iter().copied().cycle().take(length).collect()
}

/// `$5$SALT$HASH` for a password and a salt of at most 16 bytes.
pub(crate) fn sha256_crypt(password: &[u8], salt: &[u8]) -> String {
    let salt = &salt[..salt.len().min(16)];
    let alternate = Sha256::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut context = Sha256::new().chain_update(password).chain_update(salt);
    context.update(repeated(&alternate, password.len()));
    let mut length = password.len();
    while length > 0 {
        if length & 1 == 1 {
            context.update(alternate);
        } else {
            context.update(password);
        }
        length >>= 1;
    }
    let mut current = context.finalize();
    let mut password_context = Sha256::new();
    for _ in 0..password.len() {
        password_context.update(password);
    }
    let password_bytes = repeated(&password_context.finalize(), password.len());
    let mut salt_context = Sha256::new();
    for _ in 0..16 + usize::from(current[0]) {
        salt_context.update(salt);
    }
    let salt_bytes = repeated(&salt_context.finalize(), salt.len());
    for round in 0..ROUNDS {
        let mut context = Sha256::new();
        if round % 2 == 1 {
            context.update(&password_bytes);
        } else {
            context.update(current);
        }
        if round % 3 != 0 {
            context.update(&salt_bytes);
        }
        if round % 7 != 0 {
            context.update(&password_bytes);
        }
        if round % 2 == 1 {
            context.update(current);
        } else {
            context.update(&password_bytes);
        }
        current = context.finalize();
    }
    let mut encoded = String::with_capacity(43);
    let mut push = |high: u8, middle: u8, low: u8, count: usize| {
        let mut word = (u32::from(high) << 16) | (u32::from(middle) << 8) | u32::from(low);
        for _ in 0..count {
            encoded.push(char::from(ALPHABET[(word & 0x3f) as usize]));
            word >>= 6;
        }
    };
    let groups: [(usize, usize, usize); 10] = [
        (0, 10, 20),
        (21, 1, 11),
        (12, 22, 2),
        (3, 13, 23),
        (24, 4, 14),
        (15, 25, 5),
        (6, 16, 26),
        (27, 7, 17),
        (18, 28, 8),
        (9, 19, 29),
    ];
    for (high, middle, low) in groups {
        push(current[high], current[middle], current[low], 4);
    }
    push(0, current[31], current[30], 3);
    format!("$5${}${encoded}", String::from_utf8_lossy(salt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_vector() {
        // `openssl passwd -5 -salt saltstring 'Hello world!'`
        assert_eq!(
            sha256_crypt(b"Hello world!", b"saltstring"),
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
        );
        assert!(looks_hashed("$5$saltstring$5B8vYYiY"));
        assert!(!looks_hashed("secret"));
        assert!(!looks_hashed("$5$"));
    }
}
