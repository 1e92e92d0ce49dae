//! Test harness: a router over a fresh store, and small request helpers. HTTP without a socket
//! (`Router::oneshot`).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tenantmq_common::session_admin::SessionAdmin;
use tenantmq_control_api::{ApiConfig, AppState, router};
use tenantmq_control_store::{ChangeFeed, InProcessFeed, Secret, Store};
use tower::ServiceExt;

pub const OPERATOR_TOKEN: &str = "operator-token-for-tests-0123456789";
pub const CA_PEM: &str = include_str!("../fixtures/ca.pem");
pub const LEAF_PEM: &str = include_str!("../fixtures/leaf.pem");

/// A configuration for tests: cheapest argon2, an operator token, a signup limit high enough
/// for multi-tenant tests.
pub fn test_config() -> ApiConfig {
    ApiConfig {
        operator_token: Some(Secret::new(OPERATOR_TOKEN.to_owned())),
        argon2_memory_kib: 8,
        argon2_iterations: 1,
        argon2_parallelism: 1,
        signup_per_minute: 1000,
        signup_burst: 1000,
        ..ApiConfig::default()
    }
}

pub struct TestApp {
    pub router: Router,
    pub store: Store,
    pub feed: Arc<dyn ChangeFeed>,
}

pub struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Response {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub fn new(store: Store) -> Self {
        Self::with_config(store, test_config())
    }

    pub fn with_config(store: Store, config: ApiConfig) -> Self {
        Self::with_feed(store, config, Arc::new(InProcessFeed::new()))
    }

    /// An app whose client routes reach `admin` (a fake data plane).
    pub fn with_session_admin(store: Store, admin: Arc<dyn SessionAdmin>) -> Self {
        let feed: Arc<dyn ChangeFeed> = Arc::new(InProcessFeed::new());
        let state = AppState::new(test_config(), store.clone(), feed.clone())
            .expect("valid test config")
            .with_session_admin(admin);
        Self {
            router: router(state),
            store,
            feed,
        }
    }

    pub fn with_feed(store: Store, config: ApiConfig, feed: Arc<dyn ChangeFeed>) -> Self {
        let state = AppState::new(config, store.clone(), feed.clone()).expect("valid test config");
        Self {
            router: router(state),
            store,
            feed,
        }
    }

    /// Sends a request from 192.0.2.1 with an optional bearer token and JSON body.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    /// Sends a prepared request (with connection info for 192.0.2.1 unless already set).
    pub async fn send(&self, mut request: Request<Body>) -> Response {
        if request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_none()
        {
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 1], 40000))));
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Signs up `slug`; returns (tenant id, API key).
    pub async fn signup(&self, slug: &str) -> (String, String) {
        let r = self
            .call(
                Method::POST,
                "/v1/signup",
                None,
                Some(json!({"name": format!("Tenant {slug}"), "slug": slug, "email": format!("ops@{slug}.example")})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        (
            r.body["tenant"]["id"].as_str().unwrap().to_owned(),
            r.body["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a credential; returns its id.
    pub async fn credential(&self, key: &str, username: &str) -> String {
        let r = self
            .post(
                "/v1/credentials",
                key,
                json!({"username": username, "password": "s3cret-pass"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }
}

/// A data plane in memory: connected clients by tenant; a kick removes the client.
#[derive(Default)]
pub struct FakeDataPlane {
    pub clients: std::sync::Mutex<
        std::collections::HashMap<
            tenantmq_common::TenantId,
            Vec<tenantmq_common::link::ClientInfo>,
        >,
    >,
}

impl FakeDataPlane {
    /// Connects `client_id` for `tenant`.
    pub fn connect(&self, tenant: &str, client_id: &str) {
        let info = tenantmq_common::link::ClientInfo {
            client_id: client_id.to_owned(),
            username: Some("sensor".into()),
            protocol_level: 5,
            peer: Some(SocketAddr::from(([192, 0, 2, 7], 5555))),
            connected_at_unix: 1_800_000_000,
            subscriptions: 1,
            inflight: 0,
            queued: 0,
        };
        self.clients
            .lock()
            .unwrap()
            .entry(tenant.parse().unwrap())
            .or_default()
            .push(info);
    }

    /// The client ids connected for `tenant`.
    pub fn connected(&self, tenant: &str) -> Vec<String> {
        let t: tenantmq_common::TenantId = tenant.parse().unwrap();
        self.clients
            .lock()
            .unwrap()
            .get(&t)
            .map(|v| v.iter().map(|c| c.client_id.clone()).collect())
            .unwrap_or_default()
    }
}

impl SessionAdmin for FakeDataPlane {
    fn list_clients(
        &self,
        tenant: tenantmq_common::TenantId,
    ) -> tenantmq_common::session_admin::AdminFuture<
        '_,
        Result<
            Vec<tenantmq_common::link::ClientInfo>,
            tenantmq_common::session_admin::SessionAdminError,
        >,
    > {
        let list = self
            .clients
            .lock()
            .unwrap()
            .get(&tenant)
            .cloned()
            .unwrap_or_default();
        Box::pin(async move { Ok(list) })
    }

    fn kick(
        &self,
        tenant: tenantmq_common::TenantId,
        client_id: String,
    ) -> tenantmq_common::session_admin::AdminFuture<
        '_,
        Result<bool, tenantmq_common::session_admin::SessionAdminError>,
    > {
        let mut clients = self.clients.lock().unwrap();
        let list = clients.entry(tenant).or_default();
        let before = list.len();
        list.retain(|c| c.client_id != client_id);
        let kicked = list.len() < before;
        Box::pin(async move { Ok(kicked) })
    }
}
