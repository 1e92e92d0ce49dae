//! Behaviour of each resource, on Postgres and SQLite alike.

// Test helpers outside `#[test]` functions panic on purpose when set-up fails.
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use chrono::{TimeDelta, Utc};
use serde_json::json;
use support::{CA_PEM, LEAF_PEM, OPERATOR_TOKEN, TestApp};
use tenantmq_common::TenantId;
use tenantmq_common::quota::Quotas;
use tenantmq_control_store::models::UsageRecord;
use tenantmq_control_store::store_test;

store_test! {
    async fn walkthrough_signup_credential_acl_quotas(store) {
        let app = TestApp::new(store);
        let r = app.call(Method::POST, "/v1/signup", None,
            Some(json!({"name": "Acme", "slug": "acme", "email": "ops@acme.example"}))).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let tenant = &r.body["tenant"];
        assert_eq!((tenant["slug"].as_str(), tenant["plan"].as_str(), tenant["status"].as_str()),
            (Some("acme"), Some("free"), Some("active")));
        let key = r.body["api_key"].as_str().unwrap();
        assert!(key.starts_with("tmq_") && key.len() == 44);

        let r = app.post("/v1/credentials", key, json!({"username": "sensor-1", "password": "correct horse"})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.body["username"], "sensor-1");
        assert!(r.body.get("password").is_none() && r.body.get("password_hash").is_none());
        let cred = r.body["id"].as_str().unwrap();

        let r = app.post("/v1/acls", key, json!({"credential_id": cred, "action": "publish",
            "topic_filter": "devices/${clientid}/telemetry", "permission": "allow"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["credential_id"], cred);

        let r = app.get("/v1/quotas", key).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body["plan"], "free");
        assert_eq!(r.body["quotas"], serde_json::to_value(Quotas::free()).unwrap());
    }
}

store_test! {
    async fn signup_validates_and_rejects_duplicate_slugs(store) {
        let app = TestApp::new(store);
        app.signup("acme").await;
        let body = |slug: &str, email: &str| Some(json!({"name": "X", "slug": slug, "email": email}));
        let r = app.call(Method::POST, "/v1/signup", None, body("acme", "a@b.c")).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "slug_taken"));
        for (slug, email) in [("Acme", "a@b.c"), ("ab", "a@b.c"), ("good-slug", "no-at-sign")] {
            let r = app.call(Method::POST, "/v1/signup", None, body(slug, email)).await;
            assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{slug} {email}");
        }
        let r = app.call(Method::POST, "/v1/signup", None, Some(json!({"name": "X", "slug": "abc"}))).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_body"));
    }
}

store_test! {
    async fn extractor_rejections_share_the_error_shape(store) {
        let app = TestApp::new(store);
        let (_, key) = app.signup("acme").await;
        // Malformed JSON.
        let req = Request::post("/v1/credentials").header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "application/json").body(Body::from("{nope")).unwrap();
        let r = app.send(req).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_body"));
        // Wrong content type.
        let req = Request::post("/v1/credentials").header(header::AUTHORIZATION, format!("Bearer {key}"))
            .header(header::CONTENT_TYPE, "text/plain").body(Body::from("{}")).unwrap();
        let r = app.send(req).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"));
        // Too large.
        let big = json!({"pem": "x".repeat(100_000)});
        let r = app.post("/v1/ca-certificates", &key, big).await;
        assert_eq!((r.status, r.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
        // Not a UUID.
        let r = app.get("/v1/credentials/not-a-uuid", &key).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_path"));
        // Bad query.
        let r = app.get("/v1/usage?from=yesterday", &key).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_query"));
        // Unknown route and wrong method.
        let r = app.get("/v1/nothing-here", &key).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "route_not_found"));
        let r = app.call(Method::PUT, "/v1/credentials", Some(&key), None).await;
        assert_eq!((r.status, r.code()), (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"));
        assert!(r.body["error"]["message"].is_string());
    }
}

store_test! {
    async fn credentials_crud_and_rules(store) {
        let app = TestApp::new(store);
        let (_, key) = app.signup("acme").await;
        let id = app.credential(&key, "sensor-1").await;
        let r = app.post("/v1/credentials", &key, json!({"username": "sensor-1", "password": "another-pass"})).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "username_taken"));
        for (u, p) in [("a/b", "long-enough"), ("", "long-enough"), ("ok", "short")] {
            let r = app.post("/v1/credentials", &key, json!({"username": u, "password": p})).await;
            assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{u} {p}");
        }
        let r = app.get(&format!("/v1/credentials/{id}"), &key).await;
        assert_eq!((r.status, r.body["username"].as_str()), (StatusCode::OK, Some("sensor-1")));
        let r = app.get("/v1/credentials", &key).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
        let r = app.delete(&format!("/v1/credentials/{id}"), &key).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = app.get(&format!("/v1/credentials/{id}"), &key).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
        let r = app.delete(&format!("/v1/credentials/{id}"), &key).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        // The password hash is argon2id, never the password.
        let secret = app.store.credential_secret(
            app.store.tenant_by_slug(&"acme".parse_slug()).await.unwrap().unwrap().id, "sensor-1").await.unwrap();
        assert!(secret.is_none());
    }
}

trait ParseSlug {
    fn parse_slug(&self) -> tenantmq_common::ids::Slug;
}
impl ParseSlug for str {
    fn parse_slug(&self) -> tenantmq_common::ids::Slug {
        tenantmq_common::ids::Slug::parse(self).unwrap()
    }
}

store_test! {
    async fn passwords_are_stored_as_argon2id(store) {
        let app = TestApp::new(store);
        let (id, key) = app.signup("acme").await;
        app.credential(&key, "sensor-1").await;
        let tenant = TenantId::from_uuid(id.parse().unwrap());
        let secret = app.store.credential_secret(tenant, "sensor-1").await.unwrap().unwrap();
        assert!(secret.password_hash.starts_with("$argon2id$"), "{}", secret.password_hash);
        assert!(!secret.password_hash.contains("s3cret-pass"));
    }
}

store_test! {
    async fn ca_certificates(store) {
        let app = TestApp::new(store);
        let (_, key) = app.signup("acme").await;
        let r = app.post("/v1/ca-certificates", &key, json!({"pem": CA_PEM, "name": "fleet CA"})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        assert_eq!(r.body["subject"], "CN=tenantmq test device CA");
        assert_eq!(r.body["fingerprint_sha256"].as_str().unwrap().len(), 64);
        let id = r.body["id"].as_str().unwrap().to_owned();
        let r = app.post("/v1/ca-certificates", &key, json!({"pem": CA_PEM})).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "ca_certificate_exists"));
        let two = format!("{CA_PEM}{CA_PEM}");
        for junk in ["junk", LEAF_PEM, two.as_str(), "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"] {
            let r = app.post("/v1/ca-certificates", &key, json!({"pem": junk})).await;
            assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{junk}");
        }
        assert_eq!(app.get("/v1/ca-certificates", &key).await.body["items"].as_array().unwrap().len(), 1);
        assert_eq!(app.get(&format!("/v1/ca-certificates/{id}"), &key).await.body["pem"].as_str().unwrap().trim(), CA_PEM.trim());
        let all = app.store.all_ca_certificates().await.unwrap();
        assert_eq!(all.len(), 1);
        assert!(!all[0].der.is_empty());
        assert_eq!(app.delete(&format!("/v1/ca-certificates/{id}"), &key).await.status, StatusCode::NO_CONTENT);
        assert_eq!(app.get(&format!("/v1/ca-certificates/{id}"), &key).await.status, StatusCode::NOT_FOUND);
    }
}

store_test! {
    async fn acl_rules(store) {
        let app = TestApp::new(store);
        let (id, key) = app.signup("acme").await;
        let cred = app.credential(&key, "sensor-1").await;
        let rule = |filter: &str| json!({"action": "all", "topic_filter": filter, "permission": "deny"});
        for bad in ["", "a/#/b", "a+", "${user}/x", "x\u{0}"] {
            let r = app.post("/v1/acls", &key, rule(bad)).await;
            assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "validation_failed"), "{bad:?}");
        }
        let r = app.post("/v1/acls", &key, json!({"action": "read", "topic_filter": "a", "permission": "allow"})).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_body"));
        let r = app.post("/v1/acls", &key, json!({"credential_id": uuid::Uuid::now_v7(), "action": "all",
            "topic_filter": "a", "permission": "allow"})).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        let wide = app.post("/v1/acls", &key, rule("secret/#")).await;
        assert_eq!(wide.status, StatusCode::CREATED);
        let own = app.post("/v1/acls", &key, json!({"credential_id": cred, "action": "subscribe",
            "topic_filter": "devices/${username}/+", "permission": "allow"})).await;
        assert_eq!(own.status, StatusCode::CREATED);
        assert_eq!(app.get("/v1/acls", &key).await.body["items"].as_array().unwrap().len(), 2);

        let tenant = TenantId::from_uuid(id.parse().unwrap());
        let rules = app.store.acl_rules_for(tenant, Some(cred.parse().unwrap())).await.unwrap();
        assert_eq!(rules.iter().map(|r| r.topic_filter.as_str()).collect::<Vec<_>>(), ["secret/#", "devices/${username}/+"]);
        assert_eq!(app.store.acl_rules_for(tenant, None).await.unwrap().len(), 1);

        // Deleting the credential takes its rules along.
        assert_eq!(app.delete(&format!("/v1/credentials/{cred}"), &key).await.status, StatusCode::NO_CONTENT);
        assert_eq!(app.get("/v1/acls", &key).await.body["items"].as_array().unwrap().len(), 1);
        let wide_id = wide.body["id"].as_str().unwrap();
        assert_eq!(app.delete(&format!("/v1/acls/{wide_id}"), &key).await.status, StatusCode::NO_CONTENT);
        assert!(app.get("/v1/acls", &key).await.body["items"].as_array().unwrap().is_empty());
    }
}

store_test! {
    async fn api_keys_list_create_revoke(store) {
        let app = TestApp::new(store);
        let (_, first) = app.signup("acme").await;
        let r = app.call(Method::POST, "/v1/api-keys", Some(&first), None).await;
        assert_eq!((r.status, &r.body["name"]), (StatusCode::CREATED, &serde_json::Value::Null));
        let r = app.post("/v1/api-keys", &first, json!({"name": "ci"})).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let second = r.body["api_key"].as_str().unwrap().to_owned();
        assert!(second.starts_with(r.body["prefix"].as_str().unwrap()));
        let list = app.get("/v1/api-keys", &second).await;
        let items = list.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 3);
        let text = list.body.to_string();
        assert!(!text.contains(&first) && !text.contains(&second), "secrets listed");
        let first_id = items[0]["id"].as_str().unwrap();
        let second_id = items[2]["id"].as_str().unwrap();
        assert_eq!(app.delete(&format!("/v1/api-keys/{first_id}"), &second).await.status, StatusCode::NO_CONTENT);
        let unnamed = items[1]["id"].as_str().unwrap();
        assert_eq!(app.delete(&format!("/v1/api-keys/{unnamed}"), &second).await.status, StatusCode::NO_CONTENT);
        assert_eq!(app.get("/v1/tenant", &first).await.status, StatusCode::UNAUTHORIZED);
        let r = app.delete(&format!("/v1/api-keys/{second_id}"), &second).await;
        assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "last_api_key"));
        assert_eq!(app.get("/v1/tenant", &second).await.status, StatusCode::OK);
    }
}

store_test! {
    async fn tenant_patch_and_usage(store) {
        let app = TestApp::new(store);
        let (id, key) = app.signup("acme").await;
        let r = app.call(Method::PATCH, "/v1/tenant", Some(&key), Some(json!({"name": "Acme Corp"}))).await;
        assert_eq!((r.status, r.body["name"].as_str(), r.body["email"].as_str()),
            (StatusCode::OK, Some("Acme Corp"), Some("ops@acme.example")));
        let r = app.call(Method::PATCH, "/v1/tenant", Some(&key), Some(json!({"slug": "other"}))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);

        let tenant = TenantId::from_uuid(id.parse().unwrap());
        let now = Utc::now();
        let record = |at, n| UsageRecord { tenant_id: tenant, hour: at, connection_seconds: n,
            peak_connections: n, messages_in: n, messages_out: n, bytes_in: n, bytes_out: n, rejections: 0 };
        app.store.record_usage(&[record(now, 10), record(now - TimeDelta::hours(2), 1)]).await.unwrap();
        app.store.record_usage(&[record(now, 5)]).await.unwrap();
        let r = app.get("/v1/usage", &key).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!((items[1]["messages_in"].as_i64(), items[1]["peak_connections"].as_i64()), (Some(15), Some(10)));
        let from = (now - TimeDelta::days(40)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let r = app.get(&format!("/v1/usage?from={from}"), &key).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "validation_failed"));
        let r = app.get("/v1/usage?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", &key).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
}

store_test! {
    async fn operator_manages_tenants(store) {
        let app = TestApp::new(store);
        let (a, key) = app.signup("tenant-a").await;
        app.signup("tenant-b").await;
        app.signup("tenant-c").await;
        let r = app.get("/v1/admin/tenants?limit=2", OPERATOR_TOKEN).await;
        assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
        let cursor = r.body["next_cursor"].as_str().unwrap();
        let r = app.get(&format!("/v1/admin/tenants?limit=2&cursor={cursor}"), OPERATOR_TOKEN).await;
        assert_eq!(r.body["items"][0]["slug"], "tenant-c");
        assert!(r.body["next_cursor"].is_null());
        assert_eq!(app.get("/v1/admin/tenants?limit=0", OPERATOR_TOKEN).await.status, StatusCode::BAD_REQUEST);

        let path = format!("/v1/admin/tenants/{a}");
        let patch = |body| app.call(Method::PATCH, &path, Some(OPERATOR_TOKEN), Some(body));
        let r = patch(json!({"plan": "pro", "quota_overrides": {"max_connections": 7}})).await;
        assert_eq!((r.status, r.body["plan"].as_str()), (StatusCode::OK, Some("pro")));
        let q = app.get("/v1/quotas", &key).await;
        assert_eq!((q.body["plan"].as_str(), q.body["quotas"]["max_connections"].as_u64()), (Some("pro"), Some(7)));
        assert_eq!(q.body["quotas"]["max_inflight"].as_u64(), Some(u64::from(Quotas::pro().max_inflight)));
        for bad in [json!({"plan": "gold"}), json!({"quota_overrides": {"maximum_qos": 3}}),
                    json!({"quota_overrides": {"max_conections": 1}}), json!({"status": "paused"})] {
            let r = patch(bad.clone()).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        }

        // Suspension: reads still work, writes are refused.
        assert_eq!(patch(json!({"status": "suspended"})).await.body["status"], "suspended");
        assert_eq!(app.get("/v1/tenant", &key).await.status, StatusCode::OK);
        let r = app.post("/v1/credentials", &key, json!({"username": "u", "password": "long-enough"})).await;
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "tenant_suspended"));
        patch(json!({"status": "active"})).await;
        let r = app.post("/v1/credentials", &key, json!({"username": "u", "password": "long-enough"})).await;
        assert_eq!(r.status, StatusCode::CREATED);

        assert_eq!(app.get(&path, OPERATOR_TOKEN).await.body["slug"], "tenant-a");
        assert_eq!(app.delete(&path, OPERATOR_TOKEN).await.status, StatusCode::NO_CONTENT);
        assert_eq!(app.get(&path, OPERATOR_TOKEN).await.status, StatusCode::NOT_FOUND);
        assert_eq!(app.get("/v1/tenant", &key).await.status, StatusCode::UNAUTHORIZED);
    }
}

store_test! {
    async fn probes(store) {
        let app = TestApp::new(store);
        assert_eq!(app.call(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
        assert_eq!(app.call(Method::GET, "/readyz", None, None).await.status, StatusCode::OK);
        app.store.close().await;
        let r = app.call(Method::GET, "/readyz", None, None).await;
        assert_eq!((r.status, r.code()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"));
        assert_eq!(app.call(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
    }
}
