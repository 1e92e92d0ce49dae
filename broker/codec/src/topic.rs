//! Topic names and topic filters (MQTT v5 §4.7, v3.1.1 §4.7) and shared-subscription parsing
//! (MQTT v5 §4.8.2).
//!
//! Both types are validated newtypes over [`ByteString`], so a topic decoded from a PUBLISH or a
//! filter decoded from a SUBSCRIBE stays a zero-copy slice of its packet until the engine decides
//! to keep it. The rules are identical for MQTT 3.1.1 and 5.0 except shared subscriptions, which
//! only MQTT 5 defines; whether a 3.1.1 client's `$share/...` filter is parsed as shared is the
//! engine's choice, so [`parse_subscription`] is a separate function.

use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use bytestring::ByteString;

/// Longest topic name or filter in bytes: both travel as an MQTT UTF-8 string with a 16-bit
/// length prefix (MQTT-4.7.3-3).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// The topic-level separator (§4.7.1.1).
const SEPARATOR: char = '/';

/// Prefix of a shared subscription's filter (MQTT v5 §4.8.2).
const SHARE_PREFIX: &str = "$share/";

/// Why a string is not a valid topic name, topic filter or shared subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Topic names and filters must be at least one character long (MQTT-4.7.3-1).
    #[error("topic is empty")]
    Empty,
    /// Longer than 65,535 bytes (MQTT-4.7.3-3).
    #[error("topic is longer than 65535 bytes")]
    TooLong,
    /// A topic name contains `+` or `#` (MQTT-3.3.2-2).
    #[error("topic name contains a wildcard character")]
    WildcardInTopicName,
    /// A wildcard does not occupy a whole level, or `#` is not the last level
    /// (MQTT-4.7.1-1, MQTT-4.7.1-2).
    #[error("wildcard must occupy a whole level and '#' must be last")]
    InvalidWildcard,
    /// Contains U+0000 (MQTT-4.7.3-2).
    #[error("topic contains the null character")]
    NullCharacter,
    /// A `$share/` filter whose ShareName is empty or contains `+` or `#` (MQTT-4.8.2-1,
    /// MQTT-4.8.2-2).
    #[error("invalid share name in shared subscription")]
    InvalidShareName,
    /// A `$share/{ShareName}` filter with no topic filter after the ShareName (MQTT-4.8.2-2).
    #[error("shared subscription has no topic filter")]
    MissingShareFilter,
}

/// Checks shared by names and filters: non-empty, not too long, no U+0000.
fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    if s.as_bytes().contains(&0) {
        return Err(TopicError::NullCharacter);
    }
    Ok(())
}

/// The topic a message is published to, e.g. `sensors/42/temperature`.
///
/// Valid by construction: non-empty, at most 65,535 bytes, no wildcard and no U+0000. Empty
/// levels are allowed (`a//b` and `/a` are distinct valid topics, §4.7.1.1).
#[derive(Clone)]
pub struct TopicName(ByteString);

impl TopicName {
    /// Validates `s` as a topic name.
    ///
    /// # Errors
    /// [`TopicError::Empty`] (MQTT-4.7.3-1), [`TopicError::TooLong`] (MQTT-4.7.3-3),
    /// [`TopicError::NullCharacter`] (MQTT-4.7.3-2) or [`TopicError::WildcardInTopicName`]
    /// (MQTT-3.3.2-2).
    pub fn new(s: ByteString) -> Result<Self, TopicError> {
        check_common(&s)?;
        if s.bytes().any(|b| b == b'+' || b == b'#') {
            return Err(TopicError::WildcardInTopicName);
        }
        Ok(Self(s))
    }

    /// The topic as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying zero-copy string.
    #[inline]
    pub fn as_byte_string(&self) -> &ByteString {
        &self.0
    }

    /// Unwraps the underlying zero-copy string.
    #[inline]
    pub fn into_inner(self) -> ByteString {
        self.0
    }

    /// The levels between `/` separators; empty levels are yielded as `""`.
    #[inline]
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split(SEPARATOR)
    }

    /// How many levels the topic has (one more than its number of separators).
    pub fn level_count(&self) -> usize {
        level_count(&self.0)
    }

    /// Whether the topic starts with `$` (e.g. `$SYS/...`): such topics are not matched by a
    /// filter starting with a wildcard (MQTT-4.7.2-1).
    #[inline]
    pub fn is_system(&self) -> bool {
        self.0.as_bytes().first() == Some(&b'$')
    }
}

fn level_count(s: &str) -> usize {
    s.bytes().filter(|&b| b == b'/').count() + 1
}

/// A subscription's pattern, e.g. `sensors/+/temperature` or `sensors/#`.
///
/// Valid by construction: non-empty, at most 65,535 bytes, no U+0000, `+` only as a whole level
/// and `#` only as the whole last level. A shared subscription's `$share/{ShareName}/` prefix is
/// not part of a `TopicFilter`; see [`parse_subscription`].
#[derive(Clone)]
pub struct TopicFilter(ByteString);

impl TopicFilter {
    /// Validates `s` as a topic filter.
    ///
    /// # Errors
    /// [`TopicError::Empty`] (MQTT-4.7.3-1), [`TopicError::TooLong`] (MQTT-4.7.3-3),
    /// [`TopicError::NullCharacter`] (MQTT-4.7.3-2) or [`TopicError::InvalidWildcard`]
    /// (MQTT-4.7.1-1, MQTT-4.7.1-2).
    pub fn new(s: ByteString) -> Result<Self, TopicError> {
        check_common(&s)?;
        let mut levels = s.split(SEPARATOR).peekable();
        while let Some(level) = levels.next() {
            // A level that holds a wildcard must be exactly that wildcard; `#` must also be
            // the last level (MQTT-4.7.1-1), `+` may appear anywhere (MQTT-4.7.1-2).
            let has_plus = level.contains('+');
            let has_hash = level.contains('#');
            if (has_plus && level != "+") || (has_hash && (level != "#" || levels.peek().is_some()))
            {
                return Err(TopicError::InvalidWildcard);
            }
        }
        Ok(Self(s))
    }

    /// The filter as a string slice.
    #[inline]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The underlying zero-copy string.
    #[inline]
    pub fn as_byte_string(&self) -> &ByteString {
        &self.0
    }

    /// Unwraps the underlying zero-copy string.
    #[inline]
    pub fn into_inner(self) -> ByteString {
        self.0
    }

    /// The levels between `/` separators; empty levels are yielded as `""`, wildcards as
    /// `"+"` and `"#"`.
    #[inline]
    pub fn levels(&self) -> std::str::Split<'_, char> {
        self.0.split(SEPARATOR)
    }

    /// How many levels the filter has, a trailing `#` included.
    pub fn level_count(&self) -> usize {
        level_count(&self.0)
    }

    /// Whether the filter contains `+` or `#`, i.e. can match more than one topic.
    pub fn has_wildcards(&self) -> bool {
        self.0.bytes().any(|b| b == b'+' || b == b'#')
    }

    /// Whether `topic` matches this filter (§4.7).
    ///
    /// `+` matches exactly one level, possibly empty; `#` matches the parent level and any
    /// number of levels below it, so `sport/#` matches `sport` (§4.7.1.2). A filter whose first
    /// level is a wildcard does not match a topic starting with `$` (MQTT-4.7.2-1).
    pub fn matches(&self, topic: &TopicName) -> bool {
        if topic.is_system() && matches!(self.0.as_bytes().first(), Some(b'+' | b'#')) {
            return false;
        }
        let mut filter_levels = self.levels();
        let mut topic_levels = topic.levels();
        loop {
            match (filter_levels.next(), topic_levels.next()) {
                // `#` is always last (validated), and matches whatever remains, even nothing.
                (Some("#"), _) => return true,
                (Some("+"), Some(_)) => {}
                (Some(f), Some(t)) if f == t => {}
                (None, None) => return true,
                _ => return false,
            }
        }
    }
}

/// Splits a SUBSCRIBE topic filter into its share group and the filter proper.
///
/// `$share/{ShareName}/{filter}` (MQTT v5 §4.8.2) yields `(Some(ShareName), filter)`; any other
/// string yields `(None, filter)`. Both parts are zero-copy slices of `s`. Note that the filter
/// of `$share/g/#` is `#`, which matches every topic not starting with `$`.
///
/// # Errors
/// [`TopicError::InvalidShareName`] when the ShareName is empty or contains `+` or `#`
/// (MQTT-4.8.2-1, MQTT-4.8.2-2), [`TopicError::MissingShareFilter`] when no filter follows it
/// (MQTT-4.8.2-2), and any [`TopicFilter::new`] error for the filter.
pub fn parse_subscription(s: ByteString) -> Result<(Option<ByteString>, TopicFilter), TopicError> {
    let Some(rest) = s.strip_prefix(SHARE_PREFIX) else {
        return Ok((None, TopicFilter::new(s)?));
    };
    check_common(&s)?;
    let (name, filter) = match rest.split_once(SEPARATOR) {
        Some(parts) => parts,
        // `$share/` and `$share/g`: the ShareName must be followed by "/" and a filter.
        None if rest.is_empty() => return Err(TopicError::InvalidShareName),
        None => return Err(TopicError::MissingShareFilter),
    };
    if name.is_empty() || name.contains(['+', '#']) {
        return Err(TopicError::InvalidShareName);
    }
    if filter.is_empty() {
        return Err(TopicError::MissingShareFilter);
    }
    let filter = TopicFilter::new(s.slice_ref(filter))?;
    Ok((Some(s.slice_ref(name)), filter))
}

macro_rules! string_newtype_impls {
    ($ty:ident) => {
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Lets a `HashMap<TopicName, _>` (or `TopicFilter`) be queried with a `&str`; sound
        /// because `Eq`, `Ord` and `Hash` below are those of the string.
        impl Borrow<str> for $ty {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq for $ty {
            fn eq(&self, other: &Self) -> bool {
                self.as_str() == other.as_str()
            }
        }

        impl Eq for $ty {}

        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl Hash for $ty {
            fn hash<H: Hasher>(&self, state: &mut H) {
                self.as_str().hash(state);
            }
        }

        impl PartialOrd for $ty {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $ty {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self.as_str(), f)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<ByteString> for $ty {
            type Error = TopicError;

            fn try_from(s: ByteString) -> Result<Self, TopicError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = TopicError;

            fn try_from(s: &str) -> Result<Self, TopicError> {
                Self::new(ByteString::from(s))
            }
        }

        impl FromStr for $ty {
            type Err = TopicError;

            fn from_str(s: &str) -> Result<Self, TopicError> {
                Self::new(ByteString::from(s))
            }
        }

        impl From<$ty> for ByteString {
            fn from(t: $ty) -> ByteString {
                t.0
            }
        }
    };
}

string_newtype_impls!(TopicName);
string_newtype_impls!(TopicFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn name(s: &str) -> TopicName {
        TopicName::try_from(s).expect("valid topic name")
    }

    fn filter(s: &str) -> TopicFilter {
        TopicFilter::try_from(s).expect("valid topic filter")
    }

    fn matches(f: &str, t: &str) -> bool {
        filter(f).matches(&name(t))
    }

    #[test]
    fn topic_name_validation() {
        for ok in [
            "a",
            "/",
            "a//b",
            "/a",
            "a/",
            "$SYS/x",
            "sport/tennis/player1",
            "ü/€",
        ] {
            assert!(TopicName::try_from(ok).is_ok(), "{ok:?}");
        }
        // MQTT-4.7.3-1
        assert_eq!(TopicName::try_from(""), Err(TopicError::Empty));
        // MQTT-3.3.2-2
        for bad in ["+", "a/+", "#", "a/#", "a+", "sport#"] {
            assert_eq!(
                TopicName::try_from(bad),
                Err(TopicError::WildcardInTopicName),
                "{bad:?}"
            );
        }
        // MQTT-4.7.3-2
        assert_eq!(TopicName::try_from("a\0b"), Err(TopicError::NullCharacter));
        // MQTT-4.7.3-3
        let longest = "a".repeat(MAX_TOPIC_LEN);
        assert!(TopicName::try_from(longest.as_str()).is_ok());
        let too_long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(
            TopicName::try_from(too_long.as_str()),
            Err(TopicError::TooLong)
        );
    }

    #[test]
    fn topic_filter_validation() {
        // §4.7.1.2 and §4.7.1.3 examples of valid filters.
        for ok in [
            "sport/tennis/player1/#",
            "sport/#",
            "#",
            "+",
            "+/tennis/#",
            "sport/+/player1",
            "+/+",
            "/+",
            "a//b",
            "/",
            "$SYS/#",
        ] {
            assert!(TopicFilter::try_from(ok).is_ok(), "{ok:?}");
        }
        // MQTT-4.7.1-1: `#` alone and last.
        for bad in [
            "sport/tennis#",
            "sport/tennis/#/ranking",
            "sport#",
            "#/",
            "##",
            "a/#b",
        ] {
            assert_eq!(
                TopicFilter::try_from(bad),
                Err(TopicError::InvalidWildcard),
                "{bad:?}"
            );
        }
        // MQTT-4.7.1-2: `+` occupies a whole level.
        for bad in ["sport+", "a+", "a/+b", "++", "+a/b"] {
            assert_eq!(
                TopicFilter::try_from(bad),
                Err(TopicError::InvalidWildcard),
                "{bad:?}"
            );
        }
        assert_eq!(TopicFilter::try_from(""), Err(TopicError::Empty));
        assert_eq!(
            TopicFilter::try_from("a/\0"),
            Err(TopicError::NullCharacter)
        );
        let too_long = "+/".repeat(MAX_TOPIC_LEN / 2 + 1);
        assert_eq!(
            TopicFilter::try_from(too_long.as_str()),
            Err(TopicError::TooLong)
        );
    }

    #[test]
    fn levels_and_counts() {
        let t = name("/a//b/");
        assert_eq!(t.levels().collect::<Vec<_>>(), ["", "a", "", "b", ""]);
        assert_eq!(t.level_count(), 5);
        assert_eq!(name("a").level_count(), 1);
        assert_eq!(name("/").level_count(), 2);
        let f = filter("a/+/#");
        assert_eq!(f.levels().collect::<Vec<_>>(), ["a", "+", "#"]);
        assert_eq!(f.level_count(), 3);
        assert!(f.has_wildcards());
        assert!(!filter("a/b").has_wildcards());
        assert!(name("$SYS/uptime").is_system());
        assert!(!name("a/$SYS").is_system());
    }

    #[test]
    fn multi_level_wildcard_examples() {
        // §4.7.1.2: "sport/tennis/player1/#" matches all of these …
        for t in [
            "sport/tennis/player1",
            "sport/tennis/player1/ranking",
            "sport/tennis/player1/score/wimbledon",
        ] {
            assert!(matches("sport/tennis/player1/#", t), "{t}");
        }
        // … "sport/#" also matches the singular "sport", since # includes the parent level.
        assert!(matches("sport/#", "sport"));
        assert!(matches("sport/#", "sport/"));
        assert!(matches("#", "sport/tennis"));
        assert!(matches("#", "/"));
        assert!(!matches("sport/tennis/#", "sport"));
        assert!(!matches("sport/#", "sports"));
    }

    #[test]
    fn single_level_wildcard_examples() {
        // §4.7.1.3
        assert!(matches("sport/tennis/+", "sport/tennis/player1"));
        assert!(matches("sport/tennis/+", "sport/tennis/player2"));
        assert!(!matches("sport/tennis/+", "sport/tennis/player1/ranking"));
        assert!(!matches("sport/+", "sport"));
        assert!(matches("sport/+", "sport/"));
        assert!(matches("+/+", "/finance"));
        assert!(matches("/+", "/finance"));
        assert!(!matches("+", "/finance"));
        // `+` matches an empty level.
        assert!(matches("a/+/b", "a//b"));
        assert!(matches("+", "a"));
        assert!(matches("+/tennis/#", "sport/tennis/player1"));
    }

    #[test]
    fn exact_levels_are_case_and_space_sensitive() {
        // §4.7.3: topics are case sensitive and may contain spaces.
        assert!(!matches("ACCOUNTS", "Accounts"));
        assert!(matches("Accounts payable", "Accounts payable"));
        assert!(!matches("a/b", "a/b/"));
        assert!(!matches("/a", "a"));
    }

    #[test]
    fn dollar_topics_are_not_matched_by_leading_wildcards() {
        // MQTT-4.7.2-1 and the §4.7.2 examples.
        assert!(!matches("#", "$SYS/uptime"));
        assert!(!matches("+/monitor/Clients", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/#", "$SYS/monitor/Clients"));
        assert!(matches("$SYS/monitor/+", "$SYS/monitor/Clients"));
        assert!(!matches("+", "$SYS"));
        // Only the first level is special.
        assert!(matches("a/+", "a/$b"));
        assert!(matches("a/#", "a/$b"));
    }

    #[test]
    fn shared_subscriptions() {
        let parse = |s: &'static str| parse_subscription(ByteString::from_static(s));
        let (group, f) = parse("$share/consumer1/sport/tennis/+").expect("valid");
        assert_eq!(group.as_deref(), Some("consumer1"));
        assert_eq!(f, "sport/tennis/+");
        let (group, f) = parse("$share/g/#").expect("valid");
        assert_eq!(group.as_deref(), Some("g"));
        assert!(f.matches(&name("any/topic")));
        assert!(!f.matches(&name("$SYS/x")));
        let (group, f) = parse("$share/g//x").expect("valid");
        assert_eq!((group.as_deref(), f.as_str()), (Some("g"), "/x"));
        // Plain filters, including ones that merely look similar.
        for plain in ["sport/#", "$share", "$sharex/g/a", "$SYS/#"] {
            let (group, f) = parse(plain).expect("valid");
            assert_eq!((group, f.as_str()), (None, plain));
        }
        // MQTT-4.8.2-1: the ShareName is at least one character long.
        assert_eq!(parse("$share//x"), Err(TopicError::InvalidShareName));
        assert_eq!(parse("$share/"), Err(TopicError::InvalidShareName));
        // MQTT-4.8.2-2: no wildcard in the ShareName, and a filter must follow it.
        assert_eq!(parse("$share/a+/x"), Err(TopicError::InvalidShareName));
        assert_eq!(parse("$share/#/x"), Err(TopicError::InvalidShareName));
        assert_eq!(parse("$share/+/x"), Err(TopicError::InvalidShareName));
        assert_eq!(parse("$share/g"), Err(TopicError::MissingShareFilter));
        assert_eq!(parse("$share/g/"), Err(TopicError::MissingShareFilter));
        assert_eq!(parse("$share/g/a#"), Err(TopicError::InvalidWildcard));
        assert_eq!(parse("$share/g\0/a"), Err(TopicError::NullCharacter));
        assert_eq!(parse(""), Err(TopicError::Empty));
    }

    #[test]
    fn shared_subscription_parts_are_zero_copy() {
        let s = ByteString::from("$share/group/a/b");
        let base = s.as_ptr() as usize;
        let (group, f) = parse_subscription(s).expect("valid");
        assert_eq!(group.expect("shared").as_ptr() as usize, base + 7);
        assert_eq!(f.as_str().as_ptr() as usize, base + 13);
    }

    #[test]
    fn lookup_by_str() {
        let mut m = HashMap::new();
        m.insert(name("a/b"), 1);
        assert_eq!(m.get("a/b"), Some(&1));
        assert_eq!(name("a/b").to_string(), "a/b");
        assert_eq!(format!("{:?}", filter("a/+")), "\"a/+\"");
        assert!(name("a") < name("b"));
    }

    /// A deliberately different formulation of §4.7 to check [`TopicFilter::matches`] against:
    /// recursion over level slices instead of a loop over two iterators.
    fn reference_matches(filter: &[&str], topic: &[&str], first: bool) -> bool {
        let dollar = first && topic.first().is_some_and(|t| t.starts_with('$'));
        match filter.split_first() {
            None => topic.is_empty(),
            Some((&"#", _)) => !dollar,
            Some((&"+", rest)) => {
                !topic.is_empty() && !dollar && reference_matches(rest, &topic[1..], false)
            }
            Some((level, rest)) => {
                topic.first() == Some(level) && reference_matches(rest, &topic[1..], false)
            }
        }
    }

    fn topic_strategy() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(vec!["a", "b", "", "$x", "ab"]), 1..6)
            .prop_map(|levels| levels.join("/"))
            .prop_filter("topic names are non-empty", |t| !t.is_empty())
    }

    fn filter_strategy() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(prop::sample::select(vec!["a", "b", "", "$x", "+"]), 0..5),
            any::<bool>(),
        )
            .prop_map(|(mut levels, hash)| {
                if hash || levels.is_empty() {
                    levels.push("#");
                }
                levels.join("/")
            })
            .prop_filter("filters are non-empty", |f| !f.is_empty())
    }

    /// Reference validity of a filter over the `/+#a` alphabet.
    fn reference_filter_valid(s: &str) -> bool {
        let levels: Vec<&str> = s.split('/').collect();
        !s.is_empty()
            && levels.iter().enumerate().all(|(i, l)| {
                (!l.contains('+') || *l == "+")
                    && (!l.contains('#') || (*l == "#" && i == levels.len() - 1))
            })
    }

    proptest! {
        #[test]
        fn matches_agrees_with_reference(f in filter_strategy(), t in topic_strategy()) {
            let fl: Vec<&str> = f.split('/').collect();
            let tl: Vec<&str> = t.split('/').collect();
            prop_assert_eq!(filter(&f).matches(&name(&t)), reference_matches(&fl, &tl, true));
        }

        #[test]
        fn filter_validation_agrees_with_reference(s in "[a/+#$]{0,8}") {
            prop_assert_eq!(TopicFilter::try_from(s.as_str()).is_ok(), reference_filter_valid(&s));
        }

        #[test]
        fn name_validation_agrees_with_reference(s in "[a/+#$]{0,8}") {
            let valid = !s.is_empty() && !s.contains(['+', '#']);
            prop_assert_eq!(TopicName::try_from(s.as_str()).is_ok(), valid);
        }
    }
}
