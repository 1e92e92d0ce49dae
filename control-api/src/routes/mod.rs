//! The routes, and the OpenAPI document generated from the same declarations: each handler's
//! `#[utoipa::path]` is both its documentation and, through `utoipa_axum::routes!`, its route.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;

mod acls;
mod admin;
mod api_keys;
mod ca_certificates;
mod clients;
mod credentials;
mod health;
mod quotas;
mod signup;
mod tenant;

/// Largest page of `GET /v1/admin/tenants`.
pub const MAX_PAGE_LIMIT: u32 = 1000;
/// Default page of `GET /v1/admin/tenants`.
pub const DEFAULT_PAGE_LIMIT: u32 = 100;

pub use quotas::USAGE_CSV_HEADER;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tenantmq control API",
        version = "1",
        description = "Signup, API keys, device credentials, CA certificates, ACLs, quotas and \
                       usage of tenantmq, a multi-tenant managed MQTT service. Errors are \
                       `{\"error\": {\"code\", \"message\"}}`."
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "signup", description = "Public signup"),
        (name = "tenant", description = "The caller's tenant (API key)"),
        (name = "devices", description = "Device credentials, CA certificates and ACLs (API key)"),
        (name = "quotas", description = "Effective quotas and usage (API key)"),
        (name = "clients", description = "Connected clients: list and disconnect (API key)"),
        (name = "admin", description = "Operator routes (operator token)"),
        (name = "health", description = "Probes"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        components.add_security_scheme(
            "operator_token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(signup::signup))
        .routes(routes!(tenant::get_tenant, tenant::patch_tenant))
        .routes(routes!(api_keys::create_api_key, api_keys::list_api_keys))
        .routes(routes!(api_keys::delete_api_key))
        .routes(routes!(
            credentials::create_credential,
            credentials::list_credentials
        ))
        .routes(routes!(
            credentials::get_credential,
            credentials::delete_credential
        ))
        .routes(routes!(
            ca_certificates::create_ca,
            ca_certificates::list_cas
        ))
        .routes(routes!(ca_certificates::get_ca, ca_certificates::delete_ca))
        .routes(routes!(acls::create_acl, acls::list_acls))
        .routes(routes!(acls::delete_acl))
        .routes(routes!(quotas::get_quotas))
        .routes(routes!(quotas::get_usage))
        .routes(routes!(clients::list_clients))
        .routes(routes!(clients::kick_client))
        .routes(routes!(quotas::admin_usage))
        .routes(routes!(clients::admin_list_clients))
        .routes(routes!(clients::admin_kick_client))
        .routes(routes!(admin::list_tenants))
        .routes(routes!(
            admin::get_tenant,
            admin::patch_tenant,
            admin::delete_tenant
        ))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
}

/// The OpenAPI 3 document of the API (what `GET /v1/openapi.json` serves).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// The whole API, ready for `Router::oneshot` or [`crate::run`].
pub fn router(state: AppState) -> Router {
    let max_body = state.config().max_body_bytes;
    let (router, doc) = api_router().split_for_parts();
    let doc = Arc::new(doc);
    router
        .route(
            "/v1/openapi.json",
            get(move || async move { Json(doc.as_ref().clone()) }),
        )
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

/// One log line per request: method, path (never the query or headers, which may carry
/// secrets), status and latency.
async fn log_request(request: Request, next: Next) -> Response {
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = Instant::now();
    let response = next.run(request).await.into_response();
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}
