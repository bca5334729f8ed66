//! The client relation (`zookeeper` endpoint): a znode (chroot) per client application, ACLs,
//! credentials and discovery. Requests are parsed and arbitrated (pure, [`request`]), answers
//! shaped as data_interfaces does ([`response`]); the leader provisions znodes on the quorum
//! leader and publishes credentials only once every server knows the client's user.

pub mod request;
pub mod response;

use crate::juju::RelationId;
use crate::secret::Secret;
use crate::zk::acl::{AclEntry, AclError, Perms};
use request::Roles;

/// Secret keys holding a client's chroot (beside its `relation-<id>` password), so a new leader
/// can revoke a client whose relation went away while it was not the leader.
pub fn chroot_key(rel: RelationId) -> String {
    format!("chroot-{}", rel.0)
}

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

/// Only the super user: parents the charm creates, and chroots of former clients kept as data.
pub fn super_only() -> Vec<AclEntry> {
    vec![AclEntry::sasl("super", Perms::ALL)]
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
