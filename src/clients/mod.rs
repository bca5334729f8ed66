//! The client relation (`zookeeper` endpoint): a znode (chroot) per client application, ACLs,
//! credentials and discovery. Requests are parsed (pure, [`request`]); who owns which znode is
//! data ([`ownership`], kept in the peer application bag); what to grant, revoke and delete is
//! decided by a pure planner ([`plan`]), after a one-time repair of older deployments
//! ([`sweep`]); answers are shaped as data_interfaces does ([`response`]). The leader applies the
//! plan on the quorum leader and publishes credentials only once every server knows the client's
//! user.

pub mod ownership;
pub mod plan;
pub mod request;
pub mod response;
pub mod sweep;

use std::fmt;

use crate::juju::RelationId;
use crate::secret::Secret;
use crate::zk::acl::{AclEntry, AclError, Perms};
use request::Roles;

/// The ZooKeeper user of a client relation, `relation-<id>` (Charmed ZooKeeper's naming): its
/// SASL and digest user, and its key in the credentials secret. The one place that name is built
/// and read back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientUser(pub u32);

impl ClientUser {
    pub fn of(rel: RelationId) -> ClientUser {
        ClientUser(rel.0)
    }

    /// `relation-<id>` back to its user, exactly as [`fmt::Display`] writes it (`relation-07` is
    /// another ZooKeeper user, not relation 7's).
    pub fn parse(s: &str) -> Option<ClientUser> {
        let id: u32 = s.strip_prefix("relation-")?.parse().ok()?;
        let user = ClientUser(id);
        (user.to_string() == s).then_some(user)
    }

    pub fn relation(self) -> RelationId {
        RelationId(self.0)
    }
}

impl fmt::Display for ClientUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "relation-{}", self.0)
    }
}

/// The charm's own znodes (never a client's chroot): super only.
pub const CHARM_ROOT: &str = "/zookeeper-charm";
/// The journal of operations started ([`plan::Started`]).
pub const JOURNAL: &str = "/zookeeper-charm/journal";

/// The client's ACL on its chroot: its user over both SASL and digest, with its roles. Computed
/// only from an existing password (a digest over an empty one would be a hole).
pub fn client_acls(
    rel: RelationId,
    password: &Secret,
    roles: &Roles,
) -> Result<Vec<AclEntry>, AclError> {
    let perms = Perms::parse(roles.as_str())?;
    let user = response::username(rel);
    Ok(vec![
        AclEntry::sasl(&user, perms),
        AclEntry::digest(&user, password, perms),
    ])
}

/// Only the super user: chroots taken back from clients, the charm's own bookkeeping.
pub fn super_only() -> Vec<AclEntry> {
    vec![AclEntry::sasl("super", Perms::ALL)]
}

/// The root, `/zookeeper` and every parent the charm creates above chroots: readable by every
/// client (a client connecting with a chroot may look at it), writable by none.
pub fn locked() -> Vec<AclEntry> {
    vec![
        AclEntry::sasl("super", Perms::ALL),
        AclEntry::world_anyone(Perms::READ),
    ]
}

/// Whether an ACL is the one the charm gives the parents it creates.
pub fn is_locked(acls: &[AclEntry]) -> bool {
    let mut want = locked();
    let mut got = acls.to_vec();
    want.sort_by_key(ToString::to_string);
    got.sort_by_key(ToString::to_string);
    want == got
}

/// The client relations whose user an ACL names (`sasl:relation-<id>` or
/// `digest:relation-<id>:<hash>`).
pub fn named_relations(acls: &[AclEntry]) -> std::collections::BTreeSet<u32> {
    acls.iter()
        .filter_map(|e| {
            let user = match e.scheme.as_str() {
                "sasl" => e.id.as_str(),
                "digest" => e.id.split_once(':')?.0,
                _ => return None,
            };
            ClientUser::parse(user).map(|u| u.0)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_user_is_relation_dash_id_exactly() {
        let u = ClientUser::of(RelationId(7));
        assert_eq!(u.to_string(), "relation-7");
        assert_eq!(ClientUser::parse("relation-7"), Some(u));
        assert_eq!(u.relation(), RelationId(7));
        for other in [
            "relation-07",
            "relation-",
            "relation-x",
            "relation-+7",
            "relations-7",
            "super",
            "",
        ] {
            assert_eq!(ClientUser::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn acls_for_a_client() {
        let pw = Secret::new("pw".into());
        let acls = client_acls(RelationId(7), &pw, &Roles::parse("rw").unwrap()).unwrap();
        let shown: Vec<String> = acls.iter().map(ToString::to_string).collect();
        assert_eq!(shown[0], "sasl:relation-7:rw");
        assert!(
            shown[1].starts_with("digest:relation-7:") && shown[1].ends_with(":rw"),
            "{}",
            shown[1]
        );
        assert!(!shown[1].contains(":pw:"));
        assert_eq!(super_only()[0].to_string(), "sasl:super:cdrwa");
        assert_eq!(
            named_relations(&acls).into_iter().collect::<Vec<_>>(),
            [7],
            "both schemes"
        );
        assert!(named_relations(&locked()).is_empty());
        assert!(is_locked(&[
            AclEntry::world_anyone(Perms::READ),
            AclEntry::sasl("super", Perms::ALL)
        ]));
        assert!(!is_locked(&super_only()));
    }
}
