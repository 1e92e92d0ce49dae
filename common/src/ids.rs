//! Identifier newtypes. A tenant is identified by an immutable UUID; its slug is a mutable,
//! human-friendly alias that only the gateway and the control plane ever see.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The immutable identity of a tenant. Every per-tenant structure is keyed by this, never by a
/// slug, so renaming a tenant can never make two tenants' data meet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(Uuid);

impl TenantId {
    /// Wraps an existing UUID.
    pub const fn from_uuid(id: Uuid) -> Self {
        Self(id)
    }

    /// A fresh, time-ordered id (UUID v7) for a new tenant.
    pub fn new_v7() -> Self {
        Self(Uuid::now_v7())
    }

    /// The underlying UUID.
    pub const fn as_uuid(&self) -> &Uuid {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for TenantId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Error returned by [`Slug::parse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a slug is 3 to 40 characters of a-z, 0-9 and '-'")]
pub struct InvalidSlug;

/// A tenant's slug: `[a-z0-9-]{3,40}`. Used in SNI (`<slug>.<base_domain>`) and in
/// `<slug>/<username>` device usernames.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Slug(String);

impl Slug {
    /// Validates and wraps a slug.
    ///
    /// # Errors
    /// [`InvalidSlug`] when the text is not 3–40 characters of `[a-z0-9-]`.
    pub fn parse(s: &str) -> Result<Self, InvalidSlug> {
        let ok = (3..=40).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidSlug)
        }
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Slug {
    type Error = InvalidSlug;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Slug> for String {
    fn from(s: Slug) -> Self {
        s.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_rules() {
        assert!(Slug::parse("acme").is_ok());
        assert!(Slug::parse("a-1").is_ok());
        assert!(Slug::parse(&"a".repeat(40)).is_ok());
        assert_eq!(Slug::parse("ab"), Err(InvalidSlug));
        assert_eq!(Slug::parse(&"a".repeat(41)), Err(InvalidSlug));
        assert_eq!(Slug::parse("Acme"), Err(InvalidSlug));
        assert_eq!(Slug::parse("ac_me"), Err(InvalidSlug));
        assert_eq!(Slug::parse("ac.me"), Err(InvalidSlug));
    }

    #[test]
    fn tenant_id_round_trips_through_text_and_json() {
        let id = TenantId::new_v7();
        assert_eq!(id.to_string().parse::<TenantId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<TenantId>(&json).unwrap(), id);
    }
}
