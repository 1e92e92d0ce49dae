//! The OpenAPI document and the router agree: every route is documented, every documented
//! operation is routed.

// Test helpers outside `#[test]` functions panic on purpose when set-up fails.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use serde_json::json;
use support::{OPERATOR_TOKEN, TestApp};
use tenantmq_control_store::store_test;

/// Every route of the API (besides `/v1/openapi.json` itself).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/signup"),
    ("get", "/v1/tenant"),
    ("patch", "/v1/tenant"),
    ("post", "/v1/api-keys"),
    ("get", "/v1/api-keys"),
    ("delete", "/v1/api-keys/{id}"),
    ("post", "/v1/credentials"),
    ("get", "/v1/credentials"),
    ("get", "/v1/credentials/{id}"),
    ("delete", "/v1/credentials/{id}"),
    ("post", "/v1/ca-certificates"),
    ("get", "/v1/ca-certificates"),
    ("get", "/v1/ca-certificates/{id}"),
    ("delete", "/v1/ca-certificates/{id}"),
    ("post", "/v1/acls"),
    ("get", "/v1/acls"),
    ("delete", "/v1/acls/{id}"),
    ("get", "/v1/quotas"),
    ("get", "/v1/usage"),
    ("get", "/v1/clients"),
    ("delete", "/v1/clients/{client_id}"),
    ("get", "/v1/admin/usage"),
    ("get", "/v1/admin/tenants/{id}/clients"),
    ("delete", "/v1/admin/tenants/{id}/clients/{client_id}"),
    ("get", "/v1/admin/tenants"),
    ("get", "/v1/admin/tenants/{id}"),
    ("patch", "/v1/admin/tenants/{id}"),
    ("delete", "/v1/admin/tenants/{id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
];

fn documented(doc: &serde_json::Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head", "options"]
                .contains(&method.as_str())
            {
                ops.insert((method.clone(), path.clone()));
            }
        }
    }
    ops
}

store_test! {
    async fn every_route_is_documented_and_every_documented_operation_is_routed(store) {
        let app = TestApp::new(store);
        let r = app.call(Method::GET, "/v1/openapi.json", None, None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
        let expected: BTreeSet<_> = ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
        assert_eq!(documented(&r.body), expected);
        assert_eq!(serde_json::to_value(tenantmq_control_api::openapi()).unwrap(), r.body);

        let (tenant, key) = app.signup("acme").await;
        for (method, path) in documented(&r.body) {
            let concrete = path.replace("{id}", &tenant).replace("{client_id}", "sensor-1");
            let token = if path.starts_with("/v1/admin") { OPERATOR_TOKEN } else { key.as_str() };
            let method: Method = method.to_uppercase().parse().unwrap();
            let body = matches!(method, Method::POST | Method::PATCH).then(|| json!({}));
            let r = app.call(method.clone(), &concrete, Some(token), body).await;
            assert!(!["route_not_found", "method_not_allowed"].contains(&r.code()), "{method} {path}: {:?}", r.body);
            assert!(r.status != StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        }
    }
}

#[test]
fn security_schemes_and_error_schema_are_documented() {
    let doc = serde_json::to_value(tenantmq_control_api::openapi()).unwrap();
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["operator_token"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
}
