//! Per-client-IP rate limit of the public signup route (governor's GCRA, keyed by IP).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;
use crate::{ApiConfig, AppState};

/// The signup limiter.
#[derive(Debug)]
pub(crate) struct SignupLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
}

impl SignupLimiter {
    pub(crate) fn new(config: &ApiConfig) -> Self {
        let per_minute = NonZeroU32::new(config.signup_per_minute).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.signup_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute).allow_burst(burst)),
        }
    }

    /// Takes one signup from `ip`'s allowance.
    pub(crate) fn check(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            // Round up: a client that waits the advertised seconds must succeed.
            let retry_after_secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::RateLimited {
                retry_after_secs: retry_after_secs.max(1),
            }
        })
    }

    /// Forgets IPs whose allowance is full again, so the table does not grow without bound.
    pub(crate) fn retain_recent(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The client's IP: the TCP peer, or — with `trust_forwarded_for` — the last
/// `X-Forwarded-For` entry, which is the one the trusted proxy appended (earlier entries are
/// whatever the client sent). Without connection info (in-process tests) it is 0.0.0.0.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if state.config().trust_forwarded_for {
            let forwarded = parts
                .headers
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(|ip| ip.trim().parse::<IpAddr>().ok())
                .next_back();
            if let Some(ip) = forwarded {
                return Ok(Self(ip));
            }
        }
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        Ok(Self(peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}
