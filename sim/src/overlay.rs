//! A running hook's own writes, kept apart from the world until the hook commits (Juju 3.6,
//! `juju-concurrency.md` §1.3): relation settings, unit state, ports, storage, secrets and the
//! unit's cache of remote bags are buffered; reads are live (the world as other units' commits
//! left it) with this hook's writes laid over it.
//!
//! The hook tools keep working on a plain [`World`]: each call runs on a view (the live world
//! with the overlay applied), and what the call changed in the parts this unit may write is
//! folded back into the overlay ([`Overlay::absorb`]). At exit 0 the overlay is applied to the
//! world as it is then ([`Overlay::commit`]); on failure it is dropped and nobody ever saw it.
//! Unit and application bags are key-level deltas, as Juju's `updateUnitSettingsOp` writes
//! them, so a commit never undoes what another unit committed meanwhile.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{app_of, parse_unit, Bag, Consumer, Port, Secret, StorageInstance, World};

/// Key-level changes of one bag: `Some(v)` set, `None` deleted.
pub type Delta = BTreeMap<String, Option<String>>;

/// What one secret's commit changes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SecretDelta {
    /// The owner's part (everything but the consumers): `Some(None)` removed,
    /// `Some(Some(s))` created or changed (its `consumers` field is ignored).
    pub owner: Option<Option<Secret>>,
    /// Consumer entries changed by this hook (its own tracking, or the owner's revokes).
    pub consumers: BTreeMap<String, Option<Consumer>>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overlay {
    /// (relation id, bag owner: this unit or, for the leader, its application).
    pub bags: BTreeMap<(u64, String), Delta>,
    pub state: Delta,
    pub ports: Option<BTreeSet<Port>>,
    pub storage: Option<Vec<StorageInstance>>,
    /// The unit's cache of remote unit bags, per relation.
    pub caches: BTreeMap<u64, BTreeMap<String, Bag>>,
    pub secrets: BTreeMap<String, SecretDelta>,
}

/// What a commit changed that other units must hear about.
#[derive(Debug, Default)]
pub struct Committed {
    /// Bags whose data changed (their versions were bumped).
    pub bags: Vec<(u64, String)>,
}

fn diff(before: Option<&Bag>, after: Option<&Bag>, into: &mut Delta) {
    let empty = Bag::new();
    let (b, a) = (before.unwrap_or(&empty), after.unwrap_or(&empty));
    for (k, v) in a {
        if b.get(k) != Some(v) {
            into.insert(k.clone(), Some(v.clone()));
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            into.insert(k.clone(), None);
        }
    }
}

fn apply_delta(bag: &mut Bag, delta: &Delta) {
    for (k, v) in delta {
        match v {
            Some(v) => {
                bag.insert(k.clone(), v.clone());
            }
            None => {
                bag.remove(k);
            }
        }
    }
}

fn owner_part(s: &Secret) -> Secret {
    Secret {
        consumers: BTreeMap::new(),
        ..s.clone()
    }
}

impl Overlay {
    /// Whether the hook wrote an application bag (such a commit needs leadership).
    pub fn writes_app_bags(&self) -> bool {
        self.bags
            .iter()
            .any(|((_, owner), d)| parse_unit(owner).is_none() && !d.is_empty())
    }

    /// Folds what one tool call changed (`before` -> `after`, both views of `unit`) into the
    /// overlay: only what `unit` may write.
    pub fn absorb(&mut self, before: &World, after: &World, unit: &str) {
        let app = app_of(unit);
        let ids: BTreeSet<u64> = before
            .relations
            .keys()
            .chain(after.relations.keys())
            .copied()
            .collect();
        for id in ids {
            let (b, a) = (before.relations.get(&id), after.relations.get(&id));
            for owner in [unit, app] {
                let is_unit = owner == unit;
                fn get<'w>(
                    r: Option<&'w crate::model::Relation>,
                    owner: &str,
                    is_unit: bool,
                ) -> Option<&'w Bag> {
                    r.and_then(|r| {
                        if is_unit {
                            r.unit_bags.get(owner)
                        } else {
                            r.app_bags.get(owner)
                        }
                    })
                    .map(|s| &s.data)
                }
                let (bb, ab) = (get(b, owner, is_unit), get(a, owner, is_unit));
                if bb != ab && a.is_some() {
                    diff(
                        bb,
                        ab,
                        self.bags.entry((id, owner.to_string())).or_default(),
                    );
                }
            }
        }
        let (bu, au) = (before.unit(unit), after.unit(unit));
        if let (Some(bu), Some(au)) = (bu, au) {
            if bu.state != au.state {
                diff(Some(&bu.state), Some(&au.state), &mut self.state);
            }
            if bu.ports != au.ports {
                self.ports = Some(au.ports.clone());
            }
            if bu.storage != au.storage {
                self.storage = Some(au.storage.clone());
            }
            for (id, lr) in &au.local.relations {
                if bu.local.relations.get(id).map(|l| &l.cache) != Some(&lr.cache) {
                    self.caches.insert(*id, lr.cache.clone());
                }
            }
        }
        let xids: BTreeSet<&String> = before.secrets.keys().chain(after.secrets.keys()).collect();
        for xid in xids {
            let (b, a) = (before.secrets.get(xid), after.secrets.get(xid));
            if b == a {
                continue;
            }
            let d = self.secrets.entry(xid.clone()).or_default();
            match a {
                None => {
                    d.owner = Some(None);
                    d.consumers.clear();
                }
                Some(a) => {
                    if b.map(owner_part) != Some(owner_part(a)) {
                        d.owner = Some(Some(owner_part(a)));
                    }
                    let empty = BTreeMap::new();
                    let bc = b.map(|s| &s.consumers).unwrap_or(&empty);
                    let names: BTreeSet<&String> = bc.keys().chain(a.consumers.keys()).collect();
                    for c in names {
                        if bc.get(c) != a.consumers.get(c) {
                            d.consumers.insert(c.clone(), a.consumers.get(c).cloned());
                        }
                    }
                }
            }
        }
    }

    /// Lays the overlay over `world` (a view for one tool call; no versions change).
    pub fn apply(&self, world: &mut World, unit: &str) {
        self.apply_inner(world, unit, false);
    }

    /// Applies the overlay to the world at commit: bags whose data changed get a new version
    /// (counted against the world as it is now, whatever others committed meanwhile).
    pub fn commit(&self, world: &mut World, unit: &str) -> Committed {
        self.apply_inner(world, unit, true)
    }

    fn apply_inner(&self, world: &mut World, unit: &str, bump: bool) -> Committed {
        let mut out = Committed::default();
        for ((id, owner), delta) in &self.bags {
            let Some(rel) = world.relations.get_mut(id) else {
                continue;
            };
            let bags = if parse_unit(owner).is_some() {
                &mut rel.unit_bags
            } else {
                &mut rel.app_bags
            };
            let settings = bags.entry(owner.clone()).or_default();
            let before = settings.data.clone();
            apply_delta(&mut settings.data, delta);
            if bump && settings.data != before {
                settings.version += 1;
                out.bags.push((*id, owner.clone()));
            }
        }
        for (xid, d) in &self.secrets {
            match &d.owner {
                Some(None) => {
                    world.secrets.remove(xid);
                    continue;
                }
                Some(Some(s)) => {
                    let consumers = world
                        .secrets
                        .get(xid)
                        .map(|w| w.consumers.clone())
                        .unwrap_or_default();
                    world.secrets.insert(
                        xid.clone(),
                        Secret {
                            consumers,
                            ..s.clone()
                        },
                    );
                }
                None => {}
            }
            if let Some(s) = world.secrets.get_mut(xid) {
                for (c, v) in &d.consumers {
                    match v {
                        Some(v) => {
                            s.consumers.insert(c.clone(), v.clone());
                        }
                        None => {
                            s.consumers.remove(c);
                        }
                    }
                }
            }
        }
        if let Some(u) = world.unit_mut(unit) {
            apply_delta(&mut u.state, &self.state);
            if let Some(p) = &self.ports {
                u.ports = p.clone();
            }
            if let Some(s) = &self.storage {
                u.storage = s.clone();
            }
            for (id, cache) in &self.caches {
                if let Some(lr) = u.local.relations.get_mut(id) {
                    lr.cache = cache.clone();
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Relation, Settings};

    fn world_with_peer() -> World {
        let mut w = World::new("m", (10, 20));
        let mut r = Relation {
            id: 0,
            interface: "zk".into(),
            ends: Vec::new(),
            life: crate::model::Life::Alive,
            app_bags: BTreeMap::new(),
            unit_bags: BTreeMap::new(),
        };
        r.unit_bags.insert(
            "zk/0".into(),
            Settings {
                data: [("a".to_string(), "1".to_string())].into(),
                version: 3,
            },
        );
        w.relations.insert(0, r);
        w
    }

    #[test]
    fn bag_writes_are_key_deltas_committed_over_others_commits() {
        let w0 = world_with_peer();
        let mut view = w0.clone();
        let bag = &mut view
            .relations
            .get_mut(&0)
            .unwrap()
            .unit_bags
            .get_mut("zk/0")
            .unwrap();
        bag.data.insert("b".into(), "2".into());
        bag.data.remove("a");
        let mut o = Overlay::default();
        o.absorb(&w0, &view, "zk/0");
        assert_eq!(
            o.bags[&(0, "zk/0".to_string())],
            [
                ("a".to_string(), None),
                ("b".to_string(), Some("2".to_string()))
            ]
            .into()
        );
        // Meanwhile the world moved on (a key this hook did not touch).
        let mut w = w0.clone();
        let other = w.relations.get_mut(&0).unwrap();
        other
            .unit_bags
            .get_mut("zk/0")
            .unwrap()
            .data
            .insert("c".into(), "3".into());
        let c = o.commit(&mut w, "zk/0");
        let s = &w.relations[&0].unit_bags["zk/0"];
        assert_eq!(s.version, 4);
        assert_eq!(
            s.data,
            [
                ("b".to_string(), "2".to_string()),
                ("c".to_string(), "3".to_string())
            ]
            .into()
        );
        assert_eq!(c.bags, vec![(0, "zk/0".to_string())]);
    }

    #[test]
    fn an_unchanged_bag_keeps_its_version_and_others_bags_are_not_absorbed() {
        let w0 = world_with_peer();
        let mut view = w0.clone();
        let rel = view.relations.get_mut(&0).unwrap();
        rel.unit_bags
            .get_mut("zk/0")
            .unwrap()
            .data
            .insert("a".into(), "1".into());
        // Not this unit's bag: never written back.
        rel.unit_bags.insert("zk/1".into(), Settings::default());
        rel.app_bags.insert("other".into(), Settings::default());
        let mut o = Overlay::default();
        o.absorb(&w0, &view, "zk/0");
        assert_eq!(o, Overlay::default());
        assert!(!o.writes_app_bags());
        let mut w = w0.clone();
        o.commit(&mut w, "zk/0");
        assert_eq!(w, w0);
    }
}
