//! Field rules of the API, each returning the message a client sees in a 400.

use crate::error::ApiError;
use tenantmq_codec::{ByteString, TopicError, TopicFilter};

/// Longest display name.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest e-mail address (RFC 5321 path limit).
pub const MAX_EMAIL_BYTES: usize = 254;
/// Longest device username (the engine sees `<slug>/<username>` within MQTT's string limit).
pub const MAX_USERNAME_CHARS: usize = 128;
/// Shortest device password. Devices usually get generated passwords, so length is the only
/// rule; anything shorter is guessable online.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest device password (bounds the hashing work a request can cause).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest topic filter: MQTT strings carry a 16-bit length (MQTT-1.5.4).
pub const MAX_TOPIC_FILTER_BYTES: usize = 65_535;
/// The substitutions an ACL topic filter may contain.
pub const PLACEHOLDERS: [&str; 2] = ["${username}", "${clientid}"];

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::Validation(message.into())
}

/// A display name: 1–200 characters, not only whitespace. Returns it trimmed.
pub fn name(field: &str, value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    if v.is_empty() || v.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(format!(
            "{field} must be 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    Ok(v.to_owned())
}

/// An e-mail address, loosely: one `@` with text on both sides, no whitespace, ≤ 254 bytes.
/// Whether it receives mail is not ours to decide at signup.
pub fn email(value: &str) -> Result<String, ApiError> {
    let v = value.trim();
    let ok = v.len() <= MAX_EMAIL_BYTES
        && v.matches('@').count() == 1
        && !v.starts_with('@')
        && !v.ends_with('@')
        && !v.chars().any(char::is_whitespace);
    if ok {
        Ok(v.to_owned())
    } else {
        Err(invalid("email is not a valid address"))
    }
}

/// A device username: 1–128 characters, no `/` (it separates the slug in `<slug>/<username>`)
/// and no NUL (forbidden in MQTT strings, MQTT-1.5.4-2).
pub fn username(value: &str) -> Result<(), ApiError> {
    let n = value.chars().count();
    if n == 0 || n > MAX_USERNAME_CHARS || value.contains(['/', '\0']) {
        return Err(invalid(format!(
            "username must be 1 to {MAX_USERNAME_CHARS} characters without '/' or NUL"
        )));
    }
    Ok(())
}

/// A device password: at least 8 characters, at most 1024 bytes.
pub fn password(value: &str) -> Result<(), ApiError> {
    if value.chars().count() < MIN_PASSWORD_CHARS || value.len() > MAX_PASSWORD_BYTES {
        return Err(invalid(format!(
            "password must be at least {MIN_PASSWORD_CHARS} characters and at most \
             {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// An ACL topic filter: a valid MQTT filter once each placeholder is replaced by a plain
/// value. Placeholders may stand anywhere inside a level (`devices/${clientid}/#`,
/// `site-${username}`); no other `${…}` is accepted.
pub fn acl_topic_filter(value: &str) -> Result<(), ApiError> {
    let mut substituted = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        substituted.push_str(&rest[..at]);
        let tail = &rest[at..];
        let placeholder = PLACEHOLDERS
            .iter()
            .find(|p| tail.starts_with(*p))
            .ok_or_else(|| {
                invalid("topic_filter: the only placeholders are ${username} and ${clientid}")
            })?;
        substituted.push('x');
        rest = &tail[placeholder.len()..];
    }
    substituted.push_str(rest);
    if value.len() > MAX_TOPIC_FILTER_BYTES {
        return Err(invalid("topic_filter is longer than 65535 bytes"));
    }
    topic_filter(&substituted).map_err(|reason| invalid(format!("topic_filter: {reason}")))
}

/// The codec's own filter rules (MQTT-4.7.1), so the API accepts exactly the filters the
/// engine can enforce.
fn topic_filter(f: &str) -> Result<(), TopicError> {
    TopicFilter::new(ByteString::from(f)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters() {
        for ok in [
            "a",
            "a/b",
            "#",
            "a/#",
            "+",
            "+/+/c",
            "/",
            "a//b",
            "devices/${clientid}/#",
            "site-${username}/+",
            "${username}${clientid}",
        ] {
            assert!(acl_topic_filter(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "a/#/b",
            "a#",
            "a+/b",
            "a/b+",
            "${user}",
            "${username",
            "x\0y",
            "${clientid}#",
        ] {
            assert!(acl_topic_filter(bad).is_err(), "{bad:?}");
        }
        assert!(acl_topic_filter(&"a".repeat(65_536)).is_err());
    }

    #[test]
    fn usernames_passwords_emails() {
        assert!(username("sensor-1").is_ok());
        assert!(username(&"é".repeat(128)).is_ok());
        for bad in ["", "a/b", "a\0", &"x".repeat(129)] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
        assert!(password("12345678").is_ok());
        assert!(password("1234567").is_err());
        assert!(password(&"x".repeat(1025)).is_err());
        assert!(email("ops@example.com").is_ok());
        for bad in [
            "",
            "a",
            "@b",
            "a@",
            "a@@b",
            "a b@c",
            &format!("{}@x", "a".repeat(254)),
        ] {
            assert!(email(bad).is_err(), "{bad:?}");
        }
        assert_eq!(name("name", "  Acme  ").unwrap(), "Acme");
        assert!(name("name", "   ").is_err());
    }
}
