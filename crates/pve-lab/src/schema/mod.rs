//! The official PVE API schema, vendored as the subset the lab serves.
//!
//! Why: every parameter rule and response shape comes from Proxmox's own schema
//! (`schema/pve-api-subset.json`, extracted by `schema/extract.py` from
//! `pve-api-schema.json`), not from what our client happens to send. This module loads it
//! once, matches request paths against its templates, and hands out each endpoint's
//! parameter schema, permissions and `returns` shape; `validate` checks and coerces
//! parameters, `formats` implements PVE's named formats, `returns` checks responses.

mod checks;
pub mod formats;
mod property_string;
pub mod returns;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use crate::api::Method;

/// The vendored schema text.
const SUBSET: &str = include_str!("../../schema/pve-api-subset.json");

/// One method of one path.
#[derive(Debug)]
pub struct Endpoint {
    pub method: Method,
    /// The path template, e.g. `/nodes/{node}/qemu/{vmid}/config`.
    pub template: String,
    /// `{"additionalProperties": 0, "properties": {...}}`.
    pub parameters: Value,
    /// The response shape of the `data` member.
    pub returns: Value,
    /// `{"check": [...]}` or `{"user": "all" | "world"}`.
    pub permissions: Value,
    /// Whether API tokens may call it.
    pub allow_token: bool,
}

#[derive(Debug)]
enum Segment {
    Literal(String),
    Placeholder(String),
}

#[derive(Debug)]
struct Route {
    segments: Vec<Segment>,
    endpoints: BTreeMap<Method, Endpoint>,
}

/// All routes of the vendored schema.
#[derive(Debug)]
pub struct Schema {
    routes: Vec<Route>,
}

/// A path resolved against the schema.
#[derive(Debug)]
pub struct Resolved<'schema> {
    pub endpoint: &'schema Endpoint,
    /// Percent-decoded values of the template's placeholders.
    pub path_params: BTreeMap<String, String>,
}

/// Why a path did not resolve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unresolved {
    /// No template matches, or the template lacks this method: PVE answers 501.
    NotImplemented,
}

fn method_from_name(name: &str) -> Option<Method> {
    match name {
        "GET" => Some(Method::Get),
        "POST" => Some(Method::Post),
        "PUT" => Some(Method::Put),
        "DELETE" => Some(Method::Delete),
        _ => None,
    }
}

/// The name PVE uses for a method in messages.
pub fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
    }
}

impl Schema {
    /// The schema of the lab, parsed on first use.
    pub fn get() -> &'static Self {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| Self::parse(SUBSET))
    }

    fn parse(text: &str) -> Self {
        // The vendored file is part of the crate and checked by tests; an unparsable file
        // is a build defect, so an empty schema (every path 501) is the only fallback.
        let document: BTreeMap<String, BTreeMap<String, Value>> =
            serde_json::from_str(text).unwrap_or_default();
        let mut routes = Vec::new();
        for (template, methods) in document {
            let segments = template
                .split('/')
                .filter(|segment| !segment.is_empty())
                .map(
                    |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => Segment::Placeholder(name.to_owned()),
                        None => Segment::Literal(segment.to_owned()),
                    },
                )
                .collect();
            let mut endpoints = BTreeMap::new();
            for (name, info) in methods {
                let Some(method) = method_from_name(&name) else {
                    continue;
                };
                endpoints.insert(
                    method,
                    Endpoint {
                        method,
                        template: template.clone(),
                        parameters: info.get("parameters").cloned().unwrap_or(Value::Null),
                        returns: info.get("returns").cloned().unwrap_or(Value::Null),
                        permissions: info.get("permissions").cloned().unwrap_or(Value::Null),
                        allow_token: info.get("allowtoken").and_then(Value::as_i64) != Some(0),
                    },
                );
            }
            routes.push(Route {
                segments,
                endpoints,
            });
        }
        Self { routes }
    }

    /// The endpoint of `method` on `template`, if the lab serves it.
    pub fn endpoint(&self, method: Method, template: &str) -> Option<&Endpoint> {
        self.routes
            .iter()
            .filter_map(|route| route.endpoints.get(&method))
            .find(|endpoint| endpoint.template == template)
    }

    /// Every endpoint of the subset.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.routes
            .iter()
            .flat_map(|route| route.endpoints.values())
    }

    /// Resolves a path below `/api2/json` (raw, still percent-encoded segments).
    ///
    /// # Errors
    /// [`Unresolved::NotImplemented`] when no template has this method.
    pub fn resolve(&self, method: Method, path: &str) -> Result<Resolved<'_>, Unresolved> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        // Prefer the template with the most literal segments (PVE matches literals first).
        let mut best: Option<(usize, &Route)> = None;
        for route in &self.routes {
            if route.segments.len() != segments.len() {
                continue;
            }
            let mut literals = 0;
            let matches =
                route
                    .segments
                    .iter()
                    .zip(&segments)
                    .all(|(pattern, actual)| match pattern {
                        Segment::Literal(text) => {
                            literals += 1;
                            text == actual
                        }
                        Segment::Placeholder(_) => true,
                    });
            if matches && best.is_none_or(|(count, _)| literals > count) {
                best = Some((literals, route));
            }
        }
        let (_, route) = best.ok_or(Unresolved::NotImplemented)?;
        let endpoint = route
            .endpoints
            .get(&method)
            .ok_or(Unresolved::NotImplemented)?;
        let mut path_params = BTreeMap::new();
        for (pattern, actual) in route.segments.iter().zip(&segments) {
            if let Segment::Placeholder(name) = pattern {
                let decoded = percent_decode(actual).ok_or(Unresolved::NotImplemented)?;
                path_params.insert(name.clone(), decoded);
            }
        }
        Ok(Resolved {
            endpoint,
            path_params,
        })
    }
}

/// Percent-decodes a path segment; `None` for malformed escapes or invalid UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let high = bytes
                .get(index + 1)
                .and_then(|b| (*b as char).to_digit(16))?;
            let low = bytes
                .get(index + 2)
                .and_then(|b| (*b as char).to_digit(16))?;
            #[expect(
                clippy::cast_possible_truncation,
                reason = "two hex digits are at most 255"
            )]
            out.push((high * 16 + low) as u8);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vendored_schema_parses_with_every_path_the_issue_lists() {
        let schema = Schema::get();
        for (method, template) in [
            (Method::Get, "/version"),
            (Method::Post, "/access/ticket"),
            (Method::Get, "/cluster/nextid"),
            (Method::Post, "/nodes/{node}/qemu/{vmid}/clone"),
            (Method::Put, "/nodes/{node}/qemu/{vmid}/resize"),
            (Method::Get, "/nodes/{node}/tasks/{upid}/log"),
            (Method::Get, "/nodes/{node}/storage/{storage}/content"),
        ] {
            assert!(schema.endpoint(method, template).is_some(), "{template}");
        }
    }

    #[test]
    fn resolves_templates_and_decodes_placeholders() {
        let schema = Schema::get();
        let resolved = schema
            .resolve(Method::Get, "/nodes/lloyd/tasks/UPID%3Alloyd%3A0/status")
            .expect("a value");
        assert_eq!(
            resolved.endpoint.template,
            "/nodes/{node}/tasks/{upid}/status"
        );
        assert_eq!(resolved.path_params["upid"], "UPID:lloyd:0");
        assert_eq!(resolved.path_params["node"], "lloyd");
        assert!(schema.resolve(Method::Get, "/nodes/lloyd/bogus").is_err());
        assert!(schema.resolve(Method::Delete, "/version").is_err());
        assert!(
            schema
                .resolve(Method::Get, "/nodes/lloyd/tasks/%zz/status")
                .is_err()
        );
    }
}
