//! ACL evaluation for one connection.
//!
//! The rules come from the control plane in [`AclRules`]; at CONNECT they are compiled for the
//! connection: `${username}` and `${clientid}` are substituted and each filter is validated
//! once, so a PUBLISH costs only filter matches. Semantics (also in `docs/architecture.md`):
//!
//! * rules govern only the actions they name (`publish`, `subscribe`, or `all` for both): an
//!   action no rule names is allowed (a tenant that restricts publishing keeps subscribing
//!   open, and the other way round);
//! * a governed action needs a matching `allow` rule and no matching `deny` rule;
//! * a SUBSCRIBE filter is allowed when some `allow` filter *covers* it (every topic it can
//!   match is matched by the allow filter) and no `deny` filter *overlaps* it (no topic is
//!   matched by both) — checked once at subscribe time, so delivery needs no ACL check.
//!
//! Substituted values come from the device (client ids are chosen by the client), so a value
//! containing `+`, `#`, `/` or U+0000 must never widen a rule: an `allow` rule with such a
//! value matches nothing, a `deny` rule with one denies everything.

use bytestring::ByteString;
use tenantmq_codec::{TopicFilter, TopicName};
use tenantmq_common::auth::{AclAction, AclRules, Permission};

/// One compiled rule.
#[derive(Debug, Clone)]
enum Rule {
    /// Applies to topics matched by the filter.
    Filter {
        action: AclAction,
        allow: bool,
        filter: TopicFilter,
    },
    /// A rule that could not be compiled safely: an allow that matches nothing is dropped, so
    /// only deny rules are kept in this form, matching everything.
    DenyAll { action: AclAction },
}

/// The compiled ACL of one connection.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledAcl {
    rules: Vec<Rule>,
    /// Some rule names PUBLISH (or `all`). Taken from the rules as configured, not as
    /// compiled: an `allow` rule dropped because of an unsafe substituted value still makes
    /// the action governed — otherwise dropping it would open the action to everything.
    governs_publish: bool,
    /// Some rule names SUBSCRIBE (or `all`).
    governs_subscribe: bool,
}

impl CompiledAcl {
    /// Compiles `rules` for a connection of `username` with `client_id`.
    pub fn compile(rules: &AclRules, username: Option<&str>, client_id: &str) -> Self {
        let governs = |a| rules.rules.iter().any(|r| r.action.covers(a));
        let governs_publish = governs(AclAction::Publish);
        let governs_subscribe = governs(AclAction::Subscribe);
        let mut out = Vec::with_capacity(rules.rules.len());
        for r in &rules.rules {
            let allow = r.permission == Permission::Allow;
            match substitute(&r.topic_filter, username, client_id)
                .and_then(|s| TopicFilter::new(ByteString::from(s)).ok())
            {
                Some(filter) => out.push(Rule::Filter {
                    action: r.action,
                    allow,
                    filter,
                }),
                None if allow => {}
                None => out.push(Rule::DenyAll { action: r.action }),
            }
        }
        Self {
            rules: out,
            governs_publish,
            governs_subscribe,
        }
    }

    /// May the connection publish to `topic`?
    pub fn allows_publish(&self, topic: &TopicName) -> bool {
        if !self.governs_publish {
            return true;
        }
        let mut allowed = false;
        for rule in &self.rules {
            match rule {
                Rule::Filter {
                    action,
                    allow,
                    filter,
                } if action.covers(AclAction::Publish) && filter.matches(topic) => {
                    if !allow {
                        return false;
                    }
                    allowed = true;
                }
                Rule::DenyAll { action } if action.covers(AclAction::Publish) => return false,
                _ => {}
            }
        }
        allowed
    }

    /// May the connection subscribe to `filter` (the filter proper, without `$share/<g>/`)?
    pub fn allows_subscribe(&self, filter: &TopicFilter) -> bool {
        if !self.governs_subscribe {
            return true;
        }
        let mut allowed = false;
        for rule in &self.rules {
            match rule {
                Rule::Filter {
                    action,
                    allow,
                    filter: f,
                } if action.covers(AclAction::Subscribe) => {
                    if *allow {
                        allowed |= covers(f.as_str(), filter.as_str());
                    } else if overlaps(f.as_str(), filter.as_str()) {
                        return false;
                    }
                }
                Rule::DenyAll { action } if action.covers(AclAction::Subscribe) => return false,
                _ => {}
            }
        }
        allowed
    }
}

/// Substitutes the placeholders; `None` when a substituted value could widen the filter.
fn substitute(pattern: &str, username: Option<&str>, client_id: &str) -> Option<String> {
    let safe = |v: &str| !v.is_empty() && !v.contains(['+', '#', '/', '\0']);
    let mut s = pattern.to_owned();
    if s.contains("${username}") {
        let u = username.filter(|u| safe(u))?;
        s = s.replace("${username}", u);
    }
    if s.contains("${clientid}") {
        if !safe(client_id) {
            return None;
        }
        s = s.replace("${clientid}", client_id);
    }
    Some(s)
}

/// Does filter `outer` match every topic that filter `inner` can match?
///
/// Topics beginning with `$` are ignored on both sides: the `$` rule (`MQTT-4.7.2-1`) only
/// makes wildcard filters match fewer topics, never more.
pub(crate) fn covers(outer: &str, inner: &str) -> bool {
    let mut o = outer.split('/');
    let mut i = inner.split('/');
    loop {
        match (o.next(), i.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            // "a/#" also matches "a" itself, so `outer` "a" does not cover `inner` "a/#".
            (Some(_), None) | (None, Some(_)) => return false,
            (Some("+"), Some(il)) => {
                if il == "#" {
                    return false;
                }
            }
            (Some(ol), Some(il)) => {
                if ol != il {
                    return false;
                }
            }
        }
    }
}

/// Is there a topic matched by both filters?
pub(crate) fn overlaps(a: &str, b: &str) -> bool {
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some(_), None) | (None, Some(_)) => return false,
            (Some(l), Some(r)) => {
                if l != "+" && r != "+" && l != r {
                    return false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenantmq_common::auth::AclRule;

    fn rule(action: AclAction, f: &str, allow: bool) -> AclRule {
        AclRule {
            action,
            topic_filter: f.into(),
            permission: if allow {
                Permission::Allow
            } else {
                Permission::Deny
            },
        }
    }
    fn name(s: &str) -> TopicName {
        TopicName::new(ByteString::from(s)).unwrap()
    }
    fn filter(s: &str) -> TopicFilter {
        TopicFilter::new(ByteString::from(s)).unwrap()
    }

    #[test]
    fn no_rules_allow_everything() {
        let acl = CompiledAcl::compile(&AclRules::default(), None, "c");
        assert!(acl.allows_publish(&name("any/thing")));
        assert!(acl.allows_subscribe(&filter("#")));
    }

    #[test]
    fn allow_and_deny_with_substitution() {
        let rules = AclRules {
            rules: vec![
                rule(AclAction::All, "devices/${username}/#", true),
                rule(AclAction::Publish, "devices/${username}/secret", false),
                rule(AclAction::Subscribe, "broadcast/+", true),
            ],
        };
        let acl = CompiledAcl::compile(&rules, Some("alice"), "c1");
        assert!(acl.allows_publish(&name("devices/alice/temp")));
        assert!(!acl.allows_publish(&name("devices/alice/secret")));
        assert!(!acl.allows_publish(&name("devices/bob/temp")));
        assert!(
            !acl.allows_publish(&name("broadcast/x")),
            "subscribe-only rule"
        );
        assert!(acl.allows_subscribe(&filter("devices/alice/#")));
        assert!(acl.allows_subscribe(&filter("devices/alice/+/x")));
        assert!(acl.allows_subscribe(&filter("broadcast/news")));
        assert!(!acl.allows_subscribe(&filter("broadcast/#")));
        assert!(!acl.allows_subscribe(&filter("#")));
        assert!(!acl.allows_subscribe(&filter("devices/+/temp")));
    }

    #[test]
    fn rules_govern_only_the_actions_they_name() {
        let rules = AclRules {
            rules: vec![rule(AclAction::Publish, "devices/${username}/#", true)],
        };
        let acl = CompiledAcl::compile(&rules, Some("alice"), "c");
        assert!(acl.allows_publish(&name("devices/alice/t")));
        assert!(!acl.allows_publish(&name("devices/bob/t")));
        assert!(
            acl.allows_subscribe(&filter("#")),
            "no rule names subscribe"
        );
        let rules = AclRules {
            rules: vec![rule(AclAction::Subscribe, "alerts/#", true)],
        };
        let acl = CompiledAcl::compile(&rules, None, "c");
        assert!(
            acl.allows_publish(&name("anything")),
            "no rule names publish"
        );
        assert!(!acl.allows_subscribe(&filter("other/#")));
    }

    #[test]
    fn a_dropped_allow_rule_still_governs_its_action() {
        // The only publish rule cannot be compiled for client id "+": publishing must be
        // refused, not opened up.
        let rules = AclRules {
            rules: vec![rule(AclAction::Publish, "devices/${clientid}/#", true)],
        };
        let acl = CompiledAcl::compile(&rules, None, "+");
        assert!(!acl.allows_publish(&name("devices/victim/x")));
        assert!(!acl.allows_publish(&name("anything")));
    }

    #[test]
    fn deny_overlap_refuses_a_wide_subscription() {
        let rules = AclRules {
            rules: vec![
                rule(AclAction::All, "#", true),
                rule(AclAction::All, "secret/#", false),
            ],
        };
        let acl = CompiledAcl::compile(&rules, None, "c");
        assert!(acl.allows_subscribe(&filter("public/#")));
        assert!(!acl.allows_subscribe(&filter("#")));
        assert!(!acl.allows_subscribe(&filter("+/x")));
        assert!(!acl.allows_publish(&name("secret/x")));
    }

    #[test]
    fn hostile_substitution_values_never_widen_a_rule() {
        let rules = AclRules {
            rules: vec![rule(AclAction::All, "devices/${clientid}/#", true)],
        };
        for evil in ["+", "#", "a/b", ""] {
            let acl = CompiledAcl::compile(&rules, None, evil);
            assert!(!acl.allows_publish(&name("devices/victim/x")), "{evil:?}");
            assert!(!acl.allows_subscribe(&filter("devices/+/#")), "{evil:?}");
        }
        let rules = AclRules {
            rules: vec![
                rule(AclAction::All, "#", true),
                rule(AclAction::Publish, "devices/${username}/#", false),
            ],
        };
        let acl = CompiledAcl::compile(&rules, Some("a+b"), "c");
        assert!(
            !acl.allows_publish(&name("anything")),
            "deny with unsafe value denies all"
        );
        assert!(CompiledAcl::compile(&rules, None, "c").allows_subscribe(&filter("x")));
    }

    #[test]
    fn covers_and_overlaps() {
        assert!(covers("#", "a/b"));
        assert!(covers("a/#", "a"));
        assert!(covers("a/#", "a/#"));
        assert!(!covers("a", "a/#"));
        assert!(covers("a/+", "a/+"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(overlaps("a/+", "+/b"));
        assert!(overlaps("a/#", "a"));
        assert!(!overlaps("a/b", "a/c"));
        assert!(!overlaps("a/b/c", "a/b"));
    }
}
