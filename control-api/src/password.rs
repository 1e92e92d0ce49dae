//! Device passwords are stored as argon2id PHC strings. The cost parameters are recorded in
//! each hash, so verification (in `tenantmq-control-cache`) needs no configuration and old
//! hashes keep verifying after the parameters change.

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::ApiConfig;
use crate::error::ApiError;

/// The configured argon2id parameters.
///
/// # Errors
/// When the parameters are outside what argon2 accepts.
pub(crate) fn params(config: &ApiConfig) -> Result<Params, argon2::Error> {
    Params::new(
        config.argon2_memory_kib,
        config.argon2_iterations,
        config.argon2_parallelism,
        None,
    )
}

/// Hashes `password` on the blocking pool: argon2 is deliberately slow and must not stall
/// the async workers.
pub(crate) async fn hash(password: String, params: Params) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt_bytes: [u8; 16] = rand::random();
        let salt = SaltString::encode_b64(&salt_bytes)?;
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| ApiError::internal(format!("hashing task failed: {e}")))?
    .map_err(|e| ApiError::internal(format!("argon2: {e}")))
}
