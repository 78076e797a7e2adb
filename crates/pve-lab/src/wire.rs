//! The PVE wire format: request parameters in, `{"data": ...}` envelopes out.
//!
//! Why: third-party clients depend on details of pve-http-server that no schema states
//! (pve-api.md, "Wire protocol"): form pairs split on both `&` and `;`, repeated keys
//! become arrays, query parameters override body parameters, JSON bodies are accepted,
//! booleans travel as `0`/`1`, and errors carry the message in the status line's reason
//! phrase and in the body. This module is that format and nothing else, so it can be
//! tested without sockets.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::{Map, Value, json};

use crate::api::{ApiError, Reply};

/// The response type of the lab.
pub type LabResponse = Response<Full<Bytes>>;

/// Decodes `application/x-www-form-urlencoded` text like PVE: pairs split on `&` and `;`,
/// `+` is a space, malformed `%` escapes are kept literally (as Perl's `uri_unescape`
/// does), invalid UTF-8 is replaced rather than rejected.
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split(['&', ';'])
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(key), form_decode(value))
        })
        .collect()
}

fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let hex = |offset: usize| {
            bytes
                .get(index + offset)
                .and_then(|b| char::from(*b).to_digit(16))
        };
        match (byte, hex(1), hex(2)) {
            (b'%', Some(high), Some(low)) => {
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "two hex digits are at most 255"
                )]
                out.push((high * 16 + low) as u8);
                index += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                index += 1;
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Folds pairs into a parameter map; a key given more than once becomes an array.
pub fn pairs_to_map(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in pairs {
        match map.get_mut(&key) {
            Some(Value::Array(items)) => items.push(Value::String(value)),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, Value::String(value)]);
            }
            None => {
                map.insert(key, Value::String(value));
            }
        }
    }
    map
}

/// Why a body could not be read as parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// A JSON body that is not valid JSON or not an object.
    BadJson(String),
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::BadJson(detail) => {
                ApiError::new(400, format!("malformed JSON body: {detail}"))
            }
        }
    }
}

/// Parses a request body by its content type (JSON or form; anything else as form, as
/// pve-http-server does).
///
/// # Errors
/// [`BodyError::BadJson`] for a JSON content type with a body that is not a JSON object.
pub fn parse_body(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, BodyError> {
    let is_json = content_type.is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
    });
    if is_json {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Map::new());
        }
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(map),
            Ok(_) => Err(BodyError::BadJson("expected a JSON object".into())),
            Err(error) => Err(BodyError::BadJson(error.to_string())),
        };
    }
    Ok(pairs_to_map(parse_form(&String::from_utf8_lossy(body))))
}

/// Merges body and query parameters; query values win (pve-api.md).
pub fn merge(mut body: Map<String, Value>, query: Map<String, Value>) -> Map<String, Value> {
    for (key, value) in query {
        body.insert(key, value);
    }
    body
}

/// Rewrites JSON booleans as `1`/`0`, the way PVE's Perl encoder emits them.
pub fn booleans_as_numbers(value: &mut Value) {
    match value {
        Value::Bool(flag) => *value = json!(u8::from(*flag)),
        Value::Array(items) => items.iter_mut().for_each(booleans_as_numbers),
        Value::Object(map) => map.values_mut().for_each(booleans_as_numbers),
        _ => {}
    }
}

fn respond(status: StatusCode, reason: Option<&str>, body: &Value) -> LabResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{\"data\":null}".to_vec());
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=0"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::SERVER,
        HeaderValue::from_static("pve-api-daemon/3.0"),
    );
    if let Some(reason) = reason
        && let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(reason_phrase(reason).into_bytes())
    {
        response.extensions_mut().insert(phrase);
    }
    response
}

/// The first line of a message, made safe for a status line.
pub fn reason_phrase(message: &str) -> String {
    let line = message.lines().next().unwrap_or("").trim();
    let safe: String = line
        .chars()
        .take(256)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if safe.is_empty() {
        "Error".to_owned()
    } else {
        safe
    }
}

/// A success envelope: `{"data": ...}` plus `total` when the reply has one.
pub fn success(reply: impl Into<Reply>) -> LabResponse {
    let Reply { mut data, total } = reply.into();
    booleans_as_numbers(&mut data);
    let mut envelope = Map::new();
    envelope.insert("data".into(), data);
    if let Some(total) = total {
        envelope.insert("total".into(), json!(total));
    }
    respond(StatusCode::OK, None, &Value::Object(envelope))
}

/// An error the PVE way: status, reason phrase = first line, body with `data: null`,
/// `message` (full text, newline-terminated) and for 400 the `errors` map. 401 answers
/// carry only `{"data":null}`: PVE sends no details to unauthenticated callers.
pub fn error(error: &ApiError) -> LabResponse {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut body = Map::new();
    body.insert("data".into(), Value::Null);
    if error.status != 401 {
        let mut message = error.message.clone();
        if !message.ends_with('\n') {
            message.push('\n');
        }
        body.insert("message".into(), Value::String(message));
        if !error.errors.is_empty() {
            let errors: Map<String, Value> = error
                .errors
                .iter()
                .map(|(key, text)| (key.clone(), Value::String(text.clone())))
                .collect();
            body.insert("errors".into(), Value::Object(errors));
        }
    }
    respond(status, Some(&error.message), &Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_splits_on_both_separators_and_collects_repeats() {
        let map = pairs_to_map(parse_form(
            "command=ls&command=-l;vmid=150&name=a+b%2Fc&bad=%zz%4",
        ));
        assert_eq!(map["command"], json!(["ls", "-l"]));
        assert_eq!(map["vmid"], json!("150"));
        assert_eq!(map["name"], json!("a b/c"));
        assert_eq!(map["bad"], json!("%zz%4"));
        assert_eq!(pairs_to_map(parse_form("flag")), {
            let mut m = Map::new();
            m.insert("flag".into(), json!(""));
            m
        });
    }

    #[test]
    fn json_bodies_and_query_override() {
        let body = parse_body(
            Some("application/json; charset=utf-8"),
            br#"{"cores": 2, "name": "x"}"#,
        )
        .expect("a value");
        let query = pairs_to_map(parse_form("name=y"));
        let merged = merge(body, query);
        assert_eq!(merged["cores"], json!(2));
        assert_eq!(merged["name"], json!("y"));
        assert!(parse_body(Some("application/json"), b"[1]").is_err());
        assert!(parse_body(Some("application/json"), b"{").is_err());
        assert!(
            parse_body(Some("application/json"), b"")
                .expect("a value")
                .is_empty()
        );
    }

    async fn body_json(response: LabResponse) -> Value {
        use http_body_util::BodyExt;
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("a body")
            .to_bytes();
        serde_json::from_slice(&bytes).expect("JSON")
    }

    #[tokio::test]
    async fn success_envelopes_carry_total_only_when_the_reply_has_one() {
        let paged = success(Reply::with_total(json!([{"n": 1}]), 7));
        assert_eq!(
            body_json(paged).await,
            json!({"data": [{"n": 1}], "total": 7})
        );
        let plain = success(json!({"running": true}));
        assert_eq!(body_json(plain).await, json!({"data": {"running": 1}}));
    }

    #[test]
    fn errors_have_reason_phrase_message_and_errors() {
        let response = error(&ApiError::param(
            "vmid",
            "type check ('integer') failed - got 'x'",
        ));
        assert_eq!(response.status(), 400);
        let phrase = response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .expect("a value");
        assert_eq!(phrase.as_bytes(), b"Parameter verification failed.");
        assert_eq!(reason_phrase("VM 150 is locked\nmore"), "VM 150 is locked");
        assert_eq!(reason_phrase("bad\u{7}char"), "bad?char");
    }
}
