//! What the gateway learned about a device when it authenticated it, handed to the engine with
//! the session (`Open` on the link). The engine enforces the ACL rules with its topic matcher;
//! this module only carries data.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::TenantId;
use crate::quota::Quotas;

/// Which packets an ACL rule applies to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AclAction {
    /// PUBLISH (and will messages).
    Publish,
    /// SUBSCRIBE.
    Subscribe,
    /// Both.
    All,
}

impl AclAction {
    /// Whether a rule with this action governs `other` (`Publish` or `Subscribe`).
    pub fn covers(self, other: AclAction) -> bool {
        self == AclAction::All || self == other
    }
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// The rule grants access.
    Allow,
    /// The rule refuses access; a matching deny beats any allow.
    Deny,
}

/// One ACL rule as the engine evaluates it. `topic_filter` may contain `${username}` and
/// `${clientid}`, substituted per connection before matching.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRule {
    /// Which packets the rule governs.
    pub action: AclAction,
    /// An MQTT topic filter, possibly with substitution placeholders.
    pub topic_filter: String,
    /// Allow or deny.
    pub permission: Permission,
}

/// The rules that apply to one device: the tenant-wide rules plus those of its credential.
///
/// Semantics (documented in `docs/architecture.md`): rules govern only the actions they name
/// (`All` names both); an action no rule names is allowed; a governed action needs a matching
/// `allow` and no matching `deny`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclRules {
    /// The rules, in creation order.
    pub rules: Vec<AclRule>,
}

/// How the device proved who it is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthMethod {
    /// Anonymous access (only the `dev` tenant of standalone's dev flags).
    Anonymous,
    /// Username and password checked against a credential.
    Password {
        /// The credential's id.
        credential_id: Uuid,
    },
    /// A client certificate issued by a CA the tenant registered.
    ClientCertificate {
        /// The registered CA's id.
        ca_id: Uuid,
        /// Subject common name of the certificate, used as the username.
        common_name: String,
    },
}

/// Everything the engine needs to know about an authenticated device.
#[derive(Clone, Debug)]
pub struct AuthContext {
    /// The tenant the device belongs to.
    pub tenant: TenantId,
    /// The username without the `<slug>/` prefix (what `${username}` expands to).
    pub username: Option<String>,
    /// How the device authenticated.
    pub method: AuthMethod,
    /// ACL rules for the device, shared between connections of the same credential.
    pub acl: Arc<AclRules>,
    /// The tenant's effective quotas when the connection was authenticated.
    pub quotas: Arc<Quotas>,
}

impl AuthContext {
    /// Context for an anonymous device of the given tenant with no ACL rules.
    pub fn anonymous(tenant: TenantId, quotas: Arc<Quotas>) -> Self {
        Self {
            tenant,
            username: None,
            method: AuthMethod::Anonymous,
            acl: Arc::new(AclRules::default()),
            quotas,
        }
    }
}
