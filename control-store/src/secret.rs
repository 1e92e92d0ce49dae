//! A wrapper that keeps secrets (database URLs with passwords, operator tokens) out of logs.

use std::fmt;

use serde::Deserialize;

/// A value that never prints: `Debug` and `Display` show `[redacted]`. Read it with
/// [`Secret::expose`], and only where it is used.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret.
    pub const fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret itself.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let s = Secret::new("postgres://u:hunter2@db/x".to_owned());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert!(s.expose().contains("hunter2"));
    }
}
