//! The control API's configuration: one typed struct, defaults as named constants, layered
//! defaults → optional TOML/JSON file → `TENANTMQ_*` environment (applied by the binary).
//! `docs/control-api.md` lists every key.

use std::net::SocketAddr;
use std::path::Path;

use serde::Deserialize;
use tenantmq_control_store::Secret;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
/// Default database: Postgres on the local host.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/tenantmq";
/// Signups allowed per client IP and minute, in the long run.
pub const DEFAULT_SIGNUP_PER_MINUTE: u32 = 5;
/// Signups one client IP may make back to back before the rate applies.
pub const DEFAULT_SIGNUP_BURST: u32 = 5;
/// Argon2id memory cost in KiB (OWASP's 19 MiB, two passes, one lane).
pub const DEFAULT_ARGON2_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const DEFAULT_ARGON2_ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const DEFAULT_ARGON2_PARALLELISM: u32 = 1;
/// Largest request body accepted; CA certificates are the largest legitimate bodies.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// Configuration of `tenantmq control-api`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Address to listen on (used by the binary; [`crate::run`] takes a bound listener).
    pub listen: SocketAddr,
    /// `postgres://…` or `sqlite://…` (used by the binary to open the store).
    pub database_url: Secret<String>,
    /// Apply pending migrations at start-up.
    pub migrate: bool,
    /// Redis for the change feed; without it invalidations stay in the process.
    pub redis_url: Option<Secret<String>>,
    /// Bearer token of the operator routes (`/v1/admin/…`); without it they refuse everyone.
    pub operator_token: Option<Secret<String>>,
    /// Signups per client IP and minute.
    pub signup_per_minute: u32,
    /// Signup burst per client IP.
    pub signup_burst: u32,
    /// Take the client IP from the last `X-Forwarded-For` entry (only behind a proxy that
    /// sets it, such as an AWS ALB; otherwise clients could pick their own rate-limit bucket).
    pub trust_forwarded_for: bool,
    /// Argon2id memory cost in KiB for new device credentials.
    pub argon2_memory_kib: u32,
    /// Argon2id passes.
    pub argon2_iterations: u32,
    /// Argon2id lanes.
    pub argon2_parallelism: u32,
    /// Largest request body in bytes (larger → 413).
    pub max_body_bytes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 8080))),
            database_url: Secret::new(DEFAULT_DATABASE_URL.to_owned()),
            migrate: false,
            redis_url: None,
            operator_token: None,
            signup_per_minute: DEFAULT_SIGNUP_PER_MINUTE,
            signup_burst: DEFAULT_SIGNUP_BURST,
            trust_forwarded_for: false,
            argon2_memory_kib: DEFAULT_ARGON2_MEMORY_KIB,
            argon2_iterations: DEFAULT_ARGON2_ITERATIONS,
            argon2_parallelism: DEFAULT_ARGON2_PARALLELISM,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML/JSON or has unknown keys.
    #[error("invalid configuration file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ApiConfig {
    /// Defaults overlaid with a TOML file (or JSON, when the name ends in `.json`).
    ///
    /// # Errors
    /// [`ConfigError::Read`] or [`ConfigError::Parse`].
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        let parsed = if path.extension().is_some_and(|e| e == "json") {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        } else {
            toml::from_str(&text).map_err(|e| e.to_string())
        };
        parsed.map_err(|message| ConfigError::Parse {
            path: shown,
            message,
        })
    }

    /// Checks values that would otherwise fail at the first request.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.signup_per_minute == 0 || self.signup_burst == 0 {
            return Err(ConfigError::Invalid(
                "signup_per_minute and signup_burst must be ≥ 1".into(),
            ));
        }
        crate::password::params(self).map_err(|e| ConfigError::Invalid(format!("argon2: {e}")))?;
        if self
            .operator_token
            .as_ref()
            .is_some_and(|t| t.expose().len() < 16)
        {
            return Err(ConfigError::Invalid(
                "operator_token must be at least 16 characters".into(),
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "max_body_bytes must be at least 1024".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_secrets_do_not_print() {
        let c = ApiConfig {
            operator_token: Some(Secret::new("0123456789abcdef-operator".into())),
            ..ApiConfig::default()
        };
        c.validate().unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("operator\""), "{shown}");
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(!shown.contains("postgres://"), "{shown}");
    }

    #[test]
    fn file_layers_over_defaults_and_rejects_unknown_keys() {
        let dir = std::env::temp_dir().join(format!("tmq-cfg-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let toml_path = dir.join("api.toml");
        std::fs::write(&toml_path, "signup_burst = 9\ntrust_forwarded_for = true\n").unwrap();
        let c = ApiConfig::from_file(&toml_path).unwrap();
        assert_eq!((c.signup_burst, c.trust_forwarded_for), (9, true));
        assert_eq!(c.signup_per_minute, DEFAULT_SIGNUP_PER_MINUTE);

        let json_path = dir.join("api.json");
        std::fs::write(&json_path, r#"{"signup_brust": 1}"#).unwrap();
        assert!(matches!(
            ApiConfig::from_file(&json_path),
            Err(ConfigError::Parse { .. })
        ));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
