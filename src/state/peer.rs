//! The `cluster` peer relation, read once per hook into typed views.
//!
//! Keys are Charmed ZooKeeper's, so the two stay wire compatible:
//! - unit bags: `state=started` once the unit's server runs and was broadcasting; `ip`,
//!   `hostname`, `fqdn`; Juju's own `ingress-address`/`private-address`;
//! - app bag (leader writes): the membership ledger `"<unit id>": added|removed`, `quorum`,
//!   plus this charm's `internal-secret` (URI of the app secret holding the passwords) and
//!   `credentials-rev` (bumped with every password change so every unit hears of it at once).

use std::collections::{BTreeMap, BTreeSet};

use crate::juju::tools::{BagRead, Databag, HookTools, Missing, ToolError, ToolResult};
use crate::juju::{RelationId, UnitName};
use crate::quorum::plan::{Ledger, PeerUnit, UnitId};

pub const PEER_ENDPOINT: &str = "cluster";
pub const KEY_STATE: &str = "state";
pub const STATE_STARTED: &str = "started";
pub const KEY_IP: &str = "ip";
pub const KEY_HOSTNAME: &str = "hostname";
pub const KEY_FQDN: &str = "fqdn";
pub const KEY_SECRET: &str = "internal-secret";
pub const KEY_CREDENTIALS_REV: &str = "credentials-rev";
pub const KEY_QUORUM: &str = "quorum";
/// Bumped by the `restart` action: every server is behind and gets one rolling restart.
pub const KEY_RESTART_NONCE: &str = "restart-nonce";
pub const QUORUM_DEFAULT: &str = "default - non-ssl";

/// One unit's bag in the peer relation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerUnitData {
    pub name: UnitName,
    pub bag: Databag,
}

impl PeerUnitData {
    /// `ip` (what Charmed ZooKeeper publishes), else Juju's ingress or private address.
    pub fn address(&self) -> Option<&str> {
        ["ip", "ingress-address", "private-address"]
            .iter()
            .find_map(|k| {
                self.bag
                    .get(*k)
                    .map(String::as_str)
                    .filter(|v| !v.is_empty())
            })
    }
    pub fn started(&self) -> bool {
        self.bag.get(KEY_STATE).map(String::as_str) == Some(STATE_STARTED)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    pub relation: RelationId,
    /// Every unit in the relation, this one included, by unit number.
    pub units: BTreeMap<UnitId, PeerUnitData>,
    pub app: Databag,
}

impl PeerState {
    /// Reads the peer relation: `None` before it exists. One call for the ids (cached between
    /// hooks by [`crate::juju::cached::CachedTools`]), one for the members, one per unit bag, one
    /// for the app bag.
    pub fn read(tools: &dyn HookTools, me: &UnitName) -> ToolResult<Option<PeerState>> {
        let Some(relation) = tools.relation_ids(PEER_ENDPOINT)?.into_iter().next() else {
            return Ok(None);
        };
        let mut names = match tools.relation_list(relation) {
            Ok(names) => names,
            // Gone since it was listed (its -broken hook is on the way).
            Err(ToolError::NotFound {
                what: Missing::Relation,
                ..
            }) => return Ok(None),
            Err(e) => return Err(e),
        };
        names.push(me.clone());
        let mut reads: Vec<BagRead<'_>> = names
            .iter()
            .map(|name| BagRead {
                relation,
                target: name.as_str(),
                app: false,
            })
            .collect();
        reads.push(BagRead {
            relation,
            target: me.app(),
            app: true,
        });
        let mut bags = tools.relation_get_many(&reads).into_iter();
        let mut units = BTreeMap::new();
        for name in names.iter() {
            let bag = bags.next().unwrap_or_else(|| Ok(Databag::new()))?;
            units.insert(
                name.number(),
                PeerUnitData {
                    name: name.clone(),
                    bag,
                },
            );
        }
        let app = bags.next().unwrap_or_else(|| Ok(Databag::new()))?;
        Ok(Some(PeerState {
            relation,
            units,
            app,
        }))
    }

    /// The URI of the internal users' secret, once the leader created it.
    pub fn credentials_secret(&self) -> Option<&str> {
        self.app
            .get(KEY_SECRET)
            .map(String::as_str)
            .filter(|u| !u.is_empty())
    }

    /// The membership ledger: digit keys with `added`/`removed` (other values are ignored).
    pub fn ledger(&self) -> BTreeMap<UnitId, Ledger> {
        ledger_from(&self.app)
    }

    /// The planner's view of the units.
    pub fn planner_units(&self) -> BTreeMap<UnitId, PeerUnit> {
        self.units
            .iter()
            .map(|(u, d)| {
                (
                    *u,
                    PeerUnit {
                        address: d.address().map(str::to_string),
                        started: d.started(),
                    },
                )
            })
            .collect()
    }

    pub fn unit(&self, id: UnitId) -> Option<&PeerUnitData> {
        self.units.get(&id)
    }

    pub fn others(&self, me: UnitId) -> BTreeSet<UnitId> {
        self.units.keys().copied().filter(|u| *u != me).collect()
    }

    /// Applies our own committed-in-this-hook writes to the cached view (relation-set merges;
    /// an empty value deletes).
    pub fn apply_unit_write(&mut self, me: UnitId, data: &Databag) {
        if let Some(u) = self.units.get_mut(&me) {
            merge(&mut u.bag, data);
        }
    }

    pub fn apply_app_write(&mut self, data: &Databag) {
        merge(&mut self.app, data);
    }
}

pub fn merge(bag: &mut Databag, data: &Databag) {
    for (k, v) in data {
        if v.is_empty() {
            bag.remove(k);
        } else {
            bag.insert(k.clone(), v.clone());
        }
    }
}

pub fn ledger_from(app: &Databag) -> BTreeMap<UnitId, Ledger> {
    app.iter()
        .filter(|(k, _)| !k.is_empty() && k.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|(k, v)| Some((k.parse().ok()?, Ledger::parse(v)?)))
        .collect()
}

/// The bag entries for ledger updates.
pub fn ledger_writes(updates: &BTreeMap<UnitId, Ledger>) -> Databag {
    updates
        .iter()
        .map(|(u, l)| (u.to_string(), l.as_str().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bag(kv: &[(&str, &str)]) -> Databag {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn ledger_reads_digit_keys_only() {
        let app = bag(&[
            ("0", "added"),
            ("1", "removed"),
            ("10", "added"),
            ("quorum", "default - non-ssl"),
            ("2", "weird"),
            ("internal-secret", "secret:x"),
        ]);
        let l = ledger_from(&app);
        assert_eq!(
            l,
            [
                (0, Ledger::Added),
                (1, Ledger::Removed),
                (10, Ledger::Added)
            ]
            .into()
        );
        assert_eq!(
            ledger_writes(&[(3, Ledger::Added)].into()),
            bag(&[("3", "added")])
        );
    }

    #[test]
    fn unit_address_prefers_ip_then_juju_addresses() {
        let u = |kv: &[(&str, &str)]| PeerUnitData {
            name: UnitName::parse("zookeeper/1").unwrap(),
            bag: bag(kv),
        };
        assert_eq!(
            u(&[("ip", "10.0.0.1"), ("ingress-address", "10.0.0.2")]).address(),
            Some("10.0.0.1")
        );
        assert_eq!(
            u(&[
                ("ingress-address", "10.0.0.2"),
                ("private-address", "10.0.0.3")
            ])
            .address(),
            Some("10.0.0.2")
        );
        assert_eq!(
            u(&[("ip", ""), ("private-address", "10.0.0.3")]).address(),
            Some("10.0.0.3")
        );
        assert_eq!(u(&[]).address(), None);
        assert!(u(&[("state", "started")]).started());
        assert!(!u(&[("state", "")]).started());
    }

    #[test]
    fn cached_writes_merge_and_delete() {
        let mut b = bag(&[("a", "1"), ("b", "2")]);
        merge(&mut b, &bag(&[("a", ""), ("c", "3")]));
        assert_eq!(b, bag(&[("b", "2"), ("c", "3")]));
    }
}
