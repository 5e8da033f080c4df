//! `openapi.json`, the admin API's hand-written OpenAPI 3.1 description, served as is. The
//! test below holds it to the route table: every route is described, every described
//! operation is a route.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

pub const SPEC: &str = include_str!("openapi.json");

pub async fn serve() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], SPEC)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::SPEC;
    use crate::admin::routes::ROUTES;

    const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

    #[test]
    fn the_spec_describes_exactly_the_routes_the_router_serves() {
        let spec: serde_json::Value = serde_json::from_str(SPEC).expect("openapi.json parses");
        let mut described = BTreeSet::new();
        for (path, item) in spec["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                assert!(METHODS.contains(&method.as_str()), "{path}: {method}");
                assert!(op["responses"].is_object(), "{method} {path} has responses");
                described.insert((method.to_uppercase(), path.clone()));
            }
        }
        let routed: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        assert_eq!(routed.len(), ROUTES.len(), "a route is listed twice");
        let undocumented: Vec<_> = routed.difference(&described).collect();
        let unrouted: Vec<_> = described.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.json: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "described but not routed: {unrouted:?}"
        );
    }

    #[test]
    fn every_path_parameter_is_declared() {
        let spec: serde_json::Value = serde_json::from_str(SPEC).unwrap();
        for (path, item) in spec["paths"].as_object().unwrap() {
            let wanted: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
                .collect();
            for (method, op) in item.as_object().unwrap() {
                let declared: BTreeSet<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| ps.iter().filter_map(|p| p["name"].as_str()).collect())
                    .unwrap_or_default();
                assert_eq!(wanted, declared, "{method} {path}");
            }
        }
    }
}
