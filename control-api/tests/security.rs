//! Security properties (issue 3, item 7): tenant isolation on every route, revocation,
//! operator/tenant separation, signup rate limiting, atomic writes, complete deletion.

// Test helpers outside `#[test]` functions panic on purpose when set-up fails.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::Utc;
use serde_json::{Value, json};
use support::{CA_PEM, FakeDataPlane, OPERATOR_TOKEN, TestApp, test_config};
use tenantmq_common::TenantId;
use tenantmq_control_store::models::UsageRecord;
use tenantmq_control_store::store_test;

/// Tenant A with one object of every kind, and tenant B.
struct Fixture {
    app: TestApp,
    a_id: String,
    a_key: String,
    a_key2_id: String,
    a_cred: String,
    a_ca: String,
    a_acl: String,
    b_key: String,
}

impl Fixture {
    async fn new(store: tenantmq_control_store::Store) -> Self {
        let app = TestApp::new(store);
        let (a_id, a_key) = app.signup("tenant-a").await;
        let (_, b_key) = app.signup("tenant-b").await;
        let a_key2_id = app.post("/v1/api-keys", &a_key, json!({})).await.body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let a_cred = app.credential(&a_key, "sensor-1").await;
        let a_ca = app
            .post("/v1/ca-certificates", &a_key, json!({"pem": CA_PEM}))
            .await
            .body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let acl = json!({"credential_id": a_cred, "action": "all", "topic_filter": "a/#", "permission": "allow"});
        let a_acl = app.post("/v1/acls", &a_key, acl).await.body["id"]
            .as_str()
            .unwrap()
            .to_owned();
        Self {
            app,
            a_id,
            a_key,
            a_key2_id,
            a_cred,
            a_ca,
            a_acl,
            b_key,
        }
    }

    /// B's request on an A object must look exactly like a request on nothing.
    async fn b_gets_404(&self, method: Method, path: &str) {
        let r = self
            .app
            .call(method.clone(), path, Some(&self.b_key), None)
            .await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::NOT_FOUND, "not_found"),
            "{method} {path}"
        );
    }

    /// Everything of A is still there.
    async fn a_intact(&self) {
        for (path, n) in [
            ("/v1/api-keys", 2),
            ("/v1/credentials", 1),
            ("/v1/ca-certificates", 1),
            ("/v1/acls", 1),
        ] {
            let r = self.app.get(path, &self.a_key).await;
            assert_eq!(r.body["items"].as_array().map(Vec::len), Some(n), "{path}");
        }
    }

    /// B's listing of `path` shows none of A's ids.
    async fn b_list_excludes_a(&self, path: &str) {
        let r = self.app.get(path, &self.b_key).await;
        assert_eq!(r.status, StatusCode::OK);
        let text = r.body.to_string();
        for id in [
            &self.a_id,
            &self.a_key2_id,
            &self.a_cred,
            &self.a_ca,
            &self.a_acl,
        ] {
            assert!(!text.contains(id.as_str()), "{path} leaks {id}");
        }
    }
}

store_test! {
    async fn cross_tenant_delete_api_key(store) {
        let f = Fixture::new(store).await;
        f.b_gets_404(Method::DELETE, &format!("/v1/api-keys/{}", f.a_key2_id)).await;
        f.a_intact().await;
    }
}

store_test! {
    async fn cross_tenant_list_api_keys(store) {
        let f = Fixture::new(store).await;
        f.b_list_excludes_a("/v1/api-keys").await;
        assert_eq!(f.app.get("/v1/api-keys", &f.b_key).await.body["items"].as_array().unwrap().len(), 1);
    }
}

store_test! {
    async fn cross_tenant_create_api_key(store) {
        let f = Fixture::new(store).await;
        let r = f.app.post("/v1/api-keys", &f.b_key, json!({"name": "b"})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = f.app.get("/v1/tenant", r.body["api_key"].as_str().unwrap()).await;
        assert_eq!(r.body["slug"], "tenant-b");
        f.a_intact().await;
    }
}

store_test! {
    async fn cross_tenant_get_credential(store) {
        let f = Fixture::new(store).await;
        f.b_gets_404(Method::GET, &format!("/v1/credentials/{}", f.a_cred)).await;
    }
}

store_test! {
    async fn cross_tenant_delete_credential(store) {
        let f = Fixture::new(store).await;
        f.b_gets_404(Method::DELETE, &format!("/v1/credentials/{}", f.a_cred)).await;
        f.a_intact().await;
    }
}

store_test! {
    async fn cross_tenant_list_credentials(store) {
        let f = Fixture::new(store).await;
        f.b_list_excludes_a("/v1/credentials").await;
    }
}

store_test! {
    async fn cross_tenant_create_credential(store) {
        let f = Fixture::new(store).await;
        // Usernames are per tenant: B may use A's username, and that changes nothing of A.
        f.app.credential(&f.b_key, "sensor-1").await;
        f.a_intact().await;
    }
}

store_test! {
    async fn cross_tenant_get_ca_certificate(store) {
        let f = Fixture::new(store).await;
        f.b_gets_404(Method::GET, &format!("/v1/ca-certificates/{}", f.a_ca)).await;
    }
}

store_test! {
    async fn cross_tenant_delete_ca_certificate(store) {
        let f = Fixture::new(store).await;
        f.b_gets_404(Method::DELETE, &format!("/v1/ca-certificates/{}", f.a_ca)).await;
        f.a_intact().await;
    }
}

store_test! {
    async fn cross_tenant_list_ca_certificates(store) {
        let f = Fixture::new(store).await;
        f.b_list_excludes_a("/v1/ca-certificates").await;
    }
}

store_test! {
    async fn cross_tenant_create_ca_certificate(store) {
        let f = Fixture::new(store).await;
        let r = f.app.post("/v1/ca-certificates", &f.b_key, json!({"pem": CA_PEM})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_ne!(r.body["id"].as_str(), Some(f.a_ca.as_str()));
        f.a_intact().await;
    }
}

store_test! {
    async fn cross_tenant_create_acl_with_foreign_credential(store) {
        let f = Fixture::new(store).await;
        let body = json!({"credential_id": f.a_cred, "action": "all", "topic_filter": "#", "permission": "allow"});
        let r = f.app.post("/v1/acls", &f.b_key, body).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
        f.a_intact().await;
    }
}

store_test! {
    async fn cross_tenant_delete_acl(store) {
        let f = Fixture::new(store).await;
        f.b_gets_404(Method::DELETE, &format!("/v1/acls/{}", f.a_acl)).await;
        f.a_intact().await;
    }
}

store_test! {
    async fn cross_tenant_list_acls(store) {
        let f = Fixture::new(store).await;
        f.b_list_excludes_a("/v1/acls").await;
    }
}

store_test! {
    async fn cross_tenant_get_and_patch_tenant(store) {
        let f = Fixture::new(store).await;
        assert_eq!(f.app.get("/v1/tenant", &f.b_key).await.body["slug"], "tenant-b");
        let r = f.app.call(Method::PATCH, "/v1/tenant", Some(&f.b_key), Some(json!({"name": "B!"}))).await;
        assert_eq!(r.body["slug"], "tenant-b");
        assert_eq!(f.app.get("/v1/tenant", &f.a_key).await.body["name"], "Tenant tenant-a");
    }
}

store_test! {
    async fn cross_tenant_quotas(store) {
        let f = Fixture::new(store).await;
        let path = format!("/v1/admin/tenants/{}", f.a_id);
        let body = json!({"quota_overrides": {"max_connections": 7}});
        f.app.call(Method::PATCH, &path, Some(OPERATOR_TOKEN), Some(body)).await;
        assert_eq!(f.app.get("/v1/quotas", &f.a_key).await.body["quotas"]["max_connections"], 7);
        assert_eq!(f.app.get("/v1/quotas", &f.b_key).await.body["quotas"]["max_connections"], 100);
    }
}

store_test! {
    async fn cross_tenant_usage(store) {
        let f = Fixture::new(store).await;
        let tenant = TenantId::from_uuid(f.a_id.parse().unwrap());
        let rec = UsageRecord { tenant_id: tenant, hour: Utc::now(), connection_seconds: 1, peak_connections: 1,
            messages_in: 1, messages_out: 1, bytes_in: 1, bytes_out: 1, rejections: 1 };
        f.app.store.record_usage(&[rec]).await.unwrap();
        assert_eq!(f.app.get("/v1/usage", &f.a_key).await.body["items"].as_array().unwrap().len(), 1);
        assert!(f.app.get("/v1/usage", &f.b_key).await.body["items"].as_array().unwrap().is_empty());
    }
}

store_test! {
    async fn cross_tenant_list_clients(store) {
        let plane = std::sync::Arc::new(FakeDataPlane::default());
        let app = TestApp::with_session_admin(store, plane.clone());
        let (a, a_key) = app.signup("tenant-a").await;
        let (b, b_key) = app.signup("tenant-b").await;
        plane.connect(&a, "a-secret-device");
        plane.connect(&a, "sensor-1");
        plane.connect(&b, "sensor-1");
        let r = app.get("/v1/clients", &b_key).await;
        assert_eq!(r.status, StatusCode::OK);
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["client_id"], "sensor-1");
        assert!(!r.body.to_string().contains("a-secret-device"));
        let r = app.get("/v1/clients", &a_key).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
        assert_eq!(r.body["items"][0]["client_id"], "a-secret-device");
        assert_eq!(r.body["items"][0]["protocol"], "5.0");
        assert_eq!(r.body["items"][0]["peer"], "192.0.2.7:5555");
    }
}

store_test! {
    async fn cross_tenant_kick_client(store) {
        let plane = std::sync::Arc::new(FakeDataPlane::default());
        let app = TestApp::with_session_admin(store, plane.clone());
        let (a, a_key) = app.signup("tenant-a").await;
        let (b, b_key) = app.signup("tenant-b").await;
        plane.connect(&a, "a-only");
        plane.connect(&a, "sensor-1");
        plane.connect(&b, "sensor-1");
        // B cannot reach A's client: 404 exactly like a client that does not exist.
        let r = app.delete("/v1/clients/a-only", &b_key).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
        // The same client id kicks B's own client only.
        assert_eq!(app.delete("/v1/clients/sensor-1", &b_key).await.status, StatusCode::NO_CONTENT);
        assert_eq!(plane.connected(&a), ["a-only", "sensor-1"]);
        assert!(plane.connected(&b).is_empty());
        // A kicks its own; a second kick finds nothing.
        assert_eq!(app.delete("/v1/clients/a-only", &a_key).await.status, StatusCode::NO_CONTENT);
        assert_eq!(app.delete("/v1/clients/a-only", &a_key).await.status, StatusCode::NOT_FOUND);
        assert_eq!(plane.connected(&a), ["sensor-1"]);
        // The operator reaches A's clients through A's id only.
        let r = app.get(&format!("/v1/admin/tenants/{a}/clients"), OPERATOR_TOKEN).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
        let r = app.delete(&format!("/v1/admin/tenants/{b}/clients/sensor-1"), OPERATOR_TOKEN).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let r = app.delete(&format!("/v1/admin/tenants/{a}/clients/sensor-1"), OPERATOR_TOKEN).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(plane.connected(&a).is_empty());
        let ghost = uuid::Uuid::now_v7();
        let r = app.get(&format!("/v1/admin/tenants/{ghost}/clients"), OPERATOR_TOKEN).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    }
}

store_test! {
    async fn client_routes_without_a_data_plane_answer_503(store) {
        let app = TestApp::new(store);
        let (a, key) = app.signup("tenant-a").await;
        for (path, token) in [
            ("/v1/clients".to_owned(), key.as_str()),
            (format!("/v1/admin/tenants/{a}/clients"), OPERATOR_TOKEN),
        ] {
            let r = app.get(&path, token).await;
            assert_eq!((r.status, r.code()), (StatusCode::SERVICE_UNAVAILABLE, "data_plane_unavailable"), "{path}");
        }
        let r = app.delete("/v1/clients/x", &key).await;
        assert_eq!((r.status, r.code()), (StatusCode::SERVICE_UNAVAILABLE, "data_plane_unavailable"));
    }
}

store_test! {
    async fn admin_usage_exports_every_tenant_as_json_and_csv(store) {
        let f = Fixture::new(store).await;
        let a = TenantId::from_uuid(f.a_id.parse().unwrap());
        let b: TenantId = f.app.get("/v1/tenant", &f.b_key).await.body["id"].as_str().unwrap().parse().unwrap();
        let rec = |t, n| UsageRecord { tenant_id: t, hour: Utc::now(), connection_seconds: n, peak_connections: 1,
            messages_in: n, messages_out: n, bytes_in: n, bytes_out: n, rejections: 0 };
        f.app.store.record_usage(&[rec(a, 3), rec(b, 4)]).await.unwrap();
        let r = f.app.get("/v1/admin/usage", OPERATOR_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
        assert!(r.body["items"][0]["tenant_id"].is_string() && r.body["items"][0]["messages_in"].is_number());
        let r = f.app.get("/v1/admin/usage?format=csv", OPERATOR_TOKEN).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));
        let text = r.body.as_str().unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], tenantmq_control_api::USAGE_CSV_HEADER);
        assert_eq!(lines.len(), 3, "{text}");
        assert!(text.contains(&f.a_id) && text.contains(&b.to_string()));
        let r = f.app.get("/v1/admin/usage?format=xml", OPERATOR_TOKEN).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
        // Tenants never reach the export.
        assert_eq!(f.app.get("/v1/admin/usage", &f.a_key).await.status, StatusCode::FORBIDDEN);
    }
}

/// Every tenant-scoped route, with a well-formed path.
fn tenant_routes() -> Vec<(Method, String, Option<Value>)> {
    let id = uuid::Uuid::now_v7();
    vec![
        (Method::GET, "/v1/tenant".into(), None),
        (Method::PATCH, "/v1/tenant".into(), Some(json!({}))),
        (Method::POST, "/v1/api-keys".into(), Some(json!({}))),
        (Method::GET, "/v1/api-keys".into(), None),
        (Method::DELETE, format!("/v1/api-keys/{id}"), None),
        (
            Method::POST,
            "/v1/credentials".into(),
            Some(json!({"username": "u", "password": "long-enough"})),
        ),
        (Method::GET, "/v1/credentials".into(), None),
        (Method::GET, format!("/v1/credentials/{id}"), None),
        (Method::DELETE, format!("/v1/credentials/{id}"), None),
        (
            Method::POST,
            "/v1/ca-certificates".into(),
            Some(json!({"pem": CA_PEM})),
        ),
        (Method::GET, "/v1/ca-certificates".into(), None),
        (Method::GET, format!("/v1/ca-certificates/{id}"), None),
        (Method::DELETE, format!("/v1/ca-certificates/{id}"), None),
        (
            Method::POST,
            "/v1/acls".into(),
            Some(json!({"action": "all", "topic_filter": "#", "permission": "allow"})),
        ),
        (Method::GET, "/v1/acls".into(), None),
        (Method::DELETE, format!("/v1/acls/{id}"), None),
        (Method::GET, "/v1/quotas".into(), None),
        (Method::GET, "/v1/usage".into(), None),
        (Method::GET, "/v1/clients".into(), None),
        (Method::DELETE, "/v1/clients/sensor-1".into(), None),
    ]
}

fn operator_routes(tenant: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/v1/admin/tenants".into(), None),
        (Method::GET, format!("/v1/admin/tenants/{tenant}"), None),
        (
            Method::PATCH,
            format!("/v1/admin/tenants/{tenant}"),
            Some(json!({"status": "suspended"})),
        ),
        (Method::GET, "/v1/admin/usage".into(), None),
        (
            Method::GET,
            format!("/v1/admin/tenants/{tenant}/clients"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/admin/tenants/{tenant}/clients/sensor-1"),
            None,
        ),
        (Method::DELETE, format!("/v1/admin/tenants/{tenant}"), None),
    ]
}

store_test! {
    async fn tenant_routes_refuse_missing_garbage_and_operator_credentials(store) {
        let app = TestApp::new(store);
        app.signup("acme").await;
        let garbage = format!("tmq_{}", "A".repeat(40));
        for (method, path, body) in tenant_routes() {
            for token in [None, Some("garbage"), Some(garbage.as_str()), Some(OPERATOR_TOKEN)] {
                let r = app.call(method.clone(), &path, token, body.clone()).await;
                assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{method} {path} {token:?}");
                assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
            }
        }
        // Not a bearer scheme at all.
        let req = Request::get("/v1/tenant").header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz").body(Body::empty()).unwrap();
        assert_eq!(app.send(req).await.status, StatusCode::UNAUTHORIZED);
    }
}

store_test! {
    async fn operator_routes_refuse_tenant_keys(store) {
        let app = TestApp::new(store);
        let (id, key) = app.signup("acme").await;
        for (method, path, body) in operator_routes(&id) {
            let r = app.call(method.clone(), &path, Some(&key), body.clone()).await;
            assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{method} {path}");
            for token in [None, Some("garbage"), Some("operator-token-for-tests-012345678")] {
                let r = app.call(method.clone(), &path, token, body.clone()).await;
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path} {token:?}");
            }
        }
        // Still active and present: nothing above took effect.
        assert_eq!(app.get("/v1/tenant", &key).await.body["status"], "active");
    }
}

store_test! {
    async fn operator_routes_are_closed_without_a_configured_token(store) {
        let app = TestApp::with_config(store, tenantmq_control_api::ApiConfig { operator_token: None, ..test_config() });
        let r = app.get("/v1/admin/tenants", OPERATOR_TOKEN).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

store_test! {
    async fn revoked_key_fails_at_once(store) {
        let app = TestApp::new(store);
        let (_, first) = app.signup("acme").await;
        let r = app.post("/v1/api-keys", &first, json!({})).await;
        let (second, second_id) = (r.body["api_key"].as_str().unwrap().to_owned(), r.body["id"].as_str().unwrap().to_owned());
        assert_eq!(app.get("/v1/credentials", &second).await.status, StatusCode::OK);
        assert_eq!(app.delete(&format!("/v1/api-keys/{second_id}"), &first).await.status, StatusCode::NO_CONTENT);
        for (method, path, body) in tenant_routes() {
            let r = app.call(method.clone(), &path, Some(&second), body).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{method} {path}");
        }
    }
}

store_test! {
    async fn signup_is_rate_limited_per_ip(store) {
        let config = tenantmq_control_api::ApiConfig { signup_per_minute: 3, signup_burst: 3, ..test_config() };
        let app = TestApp::with_config(store, config);
        for n in 0..3 {
            app.signup(&format!("tenant-{n}")).await;
        }
        let body = json!({"name": "x", "slug": "tenant-x", "email": "a@b.c"});
        let r = app.call(Method::POST, "/v1/signup", None, Some(body.clone())).await;
        assert_eq!((r.status, r.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
        let retry: u64 = r.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        // Another client IP has its own allowance; X-Forwarded-For is ignored by default.
        let from = |ip: [u8; 4], xff: Option<&str>| {
            let mut req = Request::post("/v1/signup").header(header::CONTENT_TYPE, "application/json");
            if let Some(xff) = xff {
                req = req.header("x-forwarded-for", xff);
            }
            let mut req = req.body(Body::from(body.to_string())).unwrap();
            req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((ip, 1))));
            req
        };
        assert_eq!(app.send(from([192, 0, 2, 1], Some("198.51.100.7"))).await.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(app.send(from([192, 0, 2, 99], None)).await.status, StatusCode::CREATED);
    }
}

store_test! {
    async fn forwarded_for_is_used_only_when_trusted(store) {
        let config = tenantmq_control_api::ApiConfig {
            signup_per_minute: 1, signup_burst: 1, trust_forwarded_for: true, ..test_config()
        };
        let app = TestApp::with_config(store, config);
        let signup = |slug: &str, xff: &str| {
            Request::post("/v1/signup").header(header::CONTENT_TYPE, "application/json")
                .header("x-forwarded-for", xff)
                .body(Body::from(json!({"name": "x", "slug": slug, "email": "a@b.c"}).to_string())).unwrap()
        };
        // The proxy appends the real client last; a client-supplied first entry is ignored.
        assert_eq!(app.send(signup("tenant-1", "10.0.0.1, 198.51.100.7")).await.status, StatusCode::CREATED);
        assert_eq!(app.send(signup("tenant-2", "10.0.0.2, 198.51.100.7")).await.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(app.send(signup("tenant-3", "198.51.100.8")).await.status, StatusCode::CREATED);
    }
}

store_test! {
    async fn deleting_a_tenant_removes_every_row(store) {
        let f = Fixture::new(store).await;
        let a = TenantId::from_uuid(f.a_id.parse().unwrap());
        let rec = UsageRecord { tenant_id: a, hour: Utc::now(), connection_seconds: 1, peak_connections: 1,
            messages_in: 1, messages_out: 1, bytes_in: 1, bytes_out: 1, rejections: 0 };
        f.app.store.record_usage(&[rec]).await.unwrap();
        let before = f.app.store.count_rows(a).await.unwrap();
        assert!(before.iter().all(|(_, n)| *n > 0), "{before:?}");
        let b_before = f.app.get("/v1/tenant", &f.b_key).await.body;

        let r = f.app.delete(&format!("/v1/admin/tenants/{}", f.a_id), OPERATOR_TOKEN).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let after = f.app.store.count_rows(a).await.unwrap();
        assert!(after.iter().all(|(_, n)| *n == 0), "{after:?}");
        assert_eq!(f.app.get("/v1/tenant", &f.b_key).await.body, b_before);
        assert_eq!(f.app.get("/v1/tenant", &f.a_key).await.status, StatusCode::UNAUTHORIZED);
    }
}

store_test! {
    async fn failed_signup_leaves_nothing_behind(store) {
        let app = TestApp::new(store);
        let trigger = match app.store.backend_name() {
            "postgres" => "CREATE FUNCTION fail_insert() RETURNS trigger AS $$ BEGIN \
                           RAISE EXCEPTION 'injected failure'; END $$ LANGUAGE plpgsql; \
                           CREATE TRIGGER fail_api_key BEFORE INSERT ON api_keys \
                           FOR EACH ROW EXECUTE FUNCTION fail_insert();",
            _ => "CREATE TRIGGER fail_api_key BEFORE INSERT ON api_keys \
                  BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        };
        app.store.execute_raw(trigger).await.unwrap();
        let body = json!({"name": "Acme", "slug": "acme", "email": "ops@acme.example"});
        let r = app.call(Method::POST, "/v1/signup", None, Some(body.clone())).await;
        assert_eq!((r.status, r.code()), (StatusCode::INTERNAL_SERVER_ERROR, "internal"));
        assert!(!r.body.to_string().contains("injected"), "internal detail leaked: {}", r.body);
        let slug = tenantmq_common::ids::Slug::parse("acme").unwrap();
        assert!(app.store.tenant_by_slug(&slug).await.unwrap().is_none());
        assert!(app.store.list_tenants(10, None).await.unwrap().is_empty());

        app.store.execute_raw("DROP TRIGGER fail_api_key ON api_keys").await.ok();
        app.store.execute_raw("DROP TRIGGER fail_api_key").await.ok();
        let r = app.call(Method::POST, "/v1/signup", None, Some(body)).await;
        assert_eq!(r.status, StatusCode::CREATED, "the slug is free again: {:?}", r.body);
    }
}
