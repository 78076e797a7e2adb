//! The `sshkeys` config value, encoded exactly the way PVE expects.
//!
//! Why: PVE declares `sshkeys` with `format: urlencoded`: the value itself must be
//! percent-encoded (newline-joined keys, `%20` for spaces, and `/ + = : @` encoded) and is
//! then form-encoded again as a request body, so it is double-encoded on the wire. The
//! server decodes once, validates each line with `ssh-keygen -l` and stores and returns the
//! still-encoded value. Getting this wrong is one of the most reported Terraform/Packer
//! errors; here it is one function with tests.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Everything except `A-Z a-z 0-9 - _ . ~` is encoded (what `encodeURIComponent` leaves
/// alone minus `! ' ( ) *`, which PVE decodes fine either way).
const SSHKEYS_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Encodes public keys for the `sshkeys` parameter: trims each key, drops empty lines,
/// joins with `\n` and percent-encodes the result once. The form encoding of the request
/// body then encodes it a second time.
pub fn encode_sshkeys<I, S>(keys: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let joined = keys
        .into_iter()
        .flat_map(|key| {
            key.as_ref()
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n");
    utf8_percent_encode(&joined, SSHKEYS_ENCODE).to_string()
}

/// Decodes an `sshkeys` value as stored by PVE into one key per non-empty line.
pub fn decode_sshkeys(value: &str) -> Vec<String> {
    percent_decode_str(value)
        .decode_utf8_lossy()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{decode_sshkeys, encode_sshkeys};
    use proptest::prelude::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIH+/abc= admin@jump:host";

    #[test]
    fn encodes_spaces_slashes_plus_equals_colon_and_at() {
        let encoded = encode_sshkeys([KEY, "ssh-rsa AAAAB3Nza== second"]);
        assert_eq!(
            encoded,
            "ssh-ed25519%20AAAAC3NzaC1lZDI1NTE5AAAAIH%2B%2Fabc%3D%20admin%40jump%3Ahost%0A\
             ssh-rsa%20AAAAB3Nza%3D%3D%20second"
        );
        for raw in [' ', '/', '+', '=', ':', '@', '\n'] {
            assert!(
                !encoded.contains(raw),
                "{raw:?} left unencoded in {encoded}"
            );
        }
    }

    #[test]
    fn is_double_encoded_inside_a_form_body() {
        let value = encode_sshkeys([KEY]);
        let body: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("sshkeys", &value)
            .finish();
        assert!(body.contains("%2520"), "{body}");
        // The server's form decoding gives back the single-encoded value it stores.
        let decoded: Vec<(String, String)> = form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        assert_eq!(decoded[0].1, value);
        assert_eq!(decode_sshkeys(&decoded[0].1), vec![KEY.to_owned()]);
    }

    #[test]
    fn drops_blank_lines_and_surrounding_whitespace() {
        let encoded = encode_sshkeys([format!("\n  {KEY}  \n\n")]);
        assert_eq!(decode_sshkeys(&encoded), vec![KEY.to_owned()]);
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(keys in proptest::collection::vec("[!-~][ -~]{0,60}[!-~]", 1..5)) {
            let encoded = encode_sshkeys(&keys);
            prop_assert!(encoded.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.~%".contains(&byte)));
            let expected: Vec<String> = keys.iter().map(|key| key.trim().to_owned()).collect();
            prop_assert_eq!(decode_sshkeys(&encoded), expected);
        }
    }
}
