use super::*;
use crate::clients::request;
use crate::testutil::Rng;

/// Who a toy znode's ACL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Acl {
    /// `sasl:super` only.
    Super,
    /// The charm's parent ACL (super, world read).
    Parent,
    /// The charm's grant to a relation (on a chroot).
    Client(u32),
    /// A node the client created with its creator ACL.
    Creator(u32),
}

impl Acl {
    fn names(self) -> Option<u32> {
        match self {
            Acl::Client(r) | Acl::Creator(r) => Some(r),
            _ => None,
        }
    }
}

/// A toy ZooKeeper tree and the Juju side of the client relations: just enough to drive the
/// planner the way the charm's executor does and to check what any client can reach.
struct World {
    tree: BTreeMap<String, Acl>,
    record: Ownership,
    clients: BTreeMap<u32, Client>,
    gone: BTreeSet<u32>,
    policy: ZnodePolicy,
    /// The next hook dies after this many operations (its record write is lost).
    die_after: Option<usize>,
    /// The last hook died.
    died: bool,
    refusals: Vec<Refusal>,
    /// The grant journal (in ZooKeeper: written at once, whatever happens to the hook).
    journal: Vec<Started>,
    hooks: u64,
    /// What happened, for failure messages.
    trace: Vec<String>,
}

impl World {
    fn new() -> World {
        World {
            tree: BTreeMap::new(),
            record: Ownership::default(),
            clients: BTreeMap::new(),
            gone: BTreeSet::new(),
            policy: ZnodePolicy::Keep,
            die_after: None,
            died: false,
            refusals: Vec::new(),
            journal: Vec::new(),
            hooks: 0,
            trace: Vec::new(),
        }
    }

    fn request(&mut self, rel: u32, app: &str, path: &str) {
        self.ask(rel, app, path);
        self.hook();
    }

    /// Changes a relation's request without running a hook.
    fn ask(&mut self, rel: u32, app: &str, path: &str) {
        self.trace.push(format!("R{rel} {app} {path}"));
        self.clients.insert(rel, Client::asking(rel, app, path));
    }

    fn remove(&mut self, rel: u32) {
        self.trace.push(format!("X{rel}"));
        self.clients.remove(&rel);
        self.gone.insert(rel);
        self.hook();
    }

    fn facts(&self, path: &str) -> PathFacts {
        let chroot = Chroot::parse(path).expect("valid");
        PathFacts {
            exists: self.tree.contains_key(path),
            named: self
                .tree
                .get(path)
                .and_then(|a| a.names())
                .into_iter()
                .collect(),
            ancestors: chroot
                .parents()
                .into_iter()
                .filter_map(|a| {
                    let acl = self.tree.get(&a)?;
                    Some((a, *acl == Acl::Parent))
                })
                .collect(),
        }
    }

    fn subtree(&self, path: &str) -> Vec<String> {
        self.tree
            .keys()
            .filter(|p| is_within(p, path))
            .cloned()
            .collect()
    }

    /// As the executor: the journal entry first.
    fn execute(&mut self, step: &Step) {
        if let Some(e) = &step.journal {
            if !self.journal.contains(e) {
                self.journal.push(e.clone());
            }
        }
        self.apply(&step.op);
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Grant {
                path,
                relation,
                existing,
                ..
            } => {
                let chroot = Chroot::parse(path).expect("valid");
                for parent in chroot.parents() {
                    self.tree.entry(parent).or_insert(Acl::Parent);
                }
                if *existing {
                    for node in self.subtree(path) {
                        self.tree.insert(node, Acl::Client(relation.0));
                    }
                } else {
                    assert!(
                        !self.tree.contains_key(path),
                        "creating {path}, which exists"
                    );
                }
                self.tree.insert(path.clone(), Acl::Client(relation.0));
            }
            Op::SetRoles { path, relation, .. } => {
                self.tree.insert(path.clone(), Acl::Client(relation.0));
            }
            Op::Revoke { path, except } => {
                for node in self.subtree(path) {
                    if !except.iter().any(|e| is_within(&node, e)) {
                        self.tree.insert(node, Acl::Super);
                    }
                }
            }
            Op::Delete { path } => {
                for node in self.subtree(path) {
                    self.tree.remove(&node);
                }
            }
        }
    }

    /// One leader hook: plan, ask for facts, plan again, run the operations in order; the
    /// record is written only if the hook exits normally.
    fn hook(&mut self) -> Plan {
        self.hooks += 1;
        let clients: Vec<Client> = self.clients.values().cloned().collect();
        let now = format!("t{}", self.hooks);
        let mut record = self.record.clone();
        let mut budget = self.die_after.take();
        self.died = budget.is_some();
        let mut first: Option<Plan> = None;
        // Decide, execute, decide again on what the operations changed, until nothing is left.
        for round in 0..5 {
            // Only the first round reads the journal: later rounds would confirm entries against
            // a record that is not committed yet.
            let journal = if round == 0 {
                self.journal.clone()
            } else {
                Vec::new()
            };
            let mut facts = BTreeMap::new();
            let plan = loop {
                let p = plan(&Input {
                    clients: &clients,
                    record: &record,
                    facts: &facts,
                    journal: &journal,
                    policy: self.policy,
                    now: &now,
                })
                .unwrap_or_else(|e| panic!("{e} after {:?} with record {record:?}", self.trace));
                if p.needs_facts.iter().all(|n| facts.contains_key(n)) {
                    break p;
                }
                for n in &p.needs_facts {
                    facts.insert(n.clone(), self.facts(n));
                }
            };
            self.refusals = plan.refusals.clone();
            let done = plan.steps.is_empty();
            if let Some(n) = budget {
                self.trace.push(format!(
                    "(dies after {n} of {:?})",
                    plan.steps.iter().map(|s| &s.op).collect::<Vec<_>>()
                ));
            }
            for step in &plan.steps {
                if budget == Some(0) {
                    break;
                }
                self.execute(step);
                budget = budget.map(|n| n - 1);
            }
            if budget == Some(0) || (budget.is_some() && done) {
                // The hook dies: nothing of its record is written.
                return first.unwrap_or(plan);
            }
            if round == 0 {
                self.journal.retain(|e| !plan.journal_done.contains(e));
            }
            record = plan.record.clone();
            first.get_or_insert(plan);
            if done {
                break;
            }
        }
        if self.died {
            // It was to die after more operations than there were: it finished.
            self.died = false;
        }
        self.record = record;
        self.assert_tenancy();
        first.unwrap_or_else(|| panic!("no plan"))
    }

    /// A client writes a child under `parent` with its creator ACL, if ZooKeeper lets it
    /// (create permission on the parent). Returns whether it could.
    fn write(&mut self, rel: u32, parent: &str, name: &str) -> bool {
        match self.tree.get(parent) {
            Some(Acl::Client(r) | Acl::Creator(r)) if *r == rel => {
                self.tree
                    .insert(format!("{parent}/{name}"), Acl::Creator(rel));
                true
            }
            _ => false,
        }
    }

    /// No node names a removed relation; a live relation is named only inside the chroot the
    /// record grants it.
    fn assert_tenancy(&self) {
        for (node, acl) in &self.tree {
            let Some(r) = acl.names() else { continue };
            assert!(
                !self.gone.contains(&r),
                "{node} still grants removed relation {r}: {:?} after {:?}",
                self.tree,
                self.trace
            );
            let granted = self.record.granted_to(RelationId(r)).map(|(p, _)| p);
            let claimed = self
                .record
                .conflicts
                .iter()
                .any(|(p, c)| c.relation == r && is_within(node, p));
            assert!(
                claimed || granted.is_some_and(|g| is_within(node, g)),
                "{node} grants relation {r} outside its chroot {granted:?} after {:?}",
                self.trace
            );
        }
    }

    /// `/a=granted(app#1) /b=kept:moved(app)`.
    fn summary(&self) -> String {
        let mut out: Vec<String> = self
            .record
            .chroots
            .iter()
            .map(|(p, o)| match o.state {
                State::Granted => format!("{p}=granted({}#{})", o.app, o.relation),
                State::Kept => format!(
                    "{p}=kept:{}({})",
                    match o.why {
                        Some(KeptWhy::Moved) => "moved",
                        _ => "removed",
                    },
                    o.app
                ),
                State::Revoking => format!("{p}=revoking({})", o.app),
                State::Deleting => format!("{p}=deleting({})", o.app),
            })
            .collect();
        out.extend(
            self.record
                .conflicts
                .iter()
                .map(|(p, c)| format!("{p}=conflict({}#{})", c.app, c.relation)),
        );
        out.join(" ")
    }

    fn refused(&self, rel: u32) -> String {
        self.refusals
            .iter()
            .filter(|r| r.relation.0 == rel)
            .map(|r| r.why.clone())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One line of a history:
/// `R<rel> <app> <path>` the relation asks for a path (`r...`: without a hook); `X<rel>` it is removed; `W<rel> <parent>
/// <name>` it writes a child with its creator ACL (must succeed); `w<rel> <parent> <name>` it
/// tries and must be refused; `P keep|delete` the policy; `O <path>` an operator creates
/// super-only data; `D<n>` the next hook dies after n operations; `J<rel> <app> <path>` a grant
/// journaled whose node never got the relation's ACL; `H` a hook with no change.
fn run(history: &str) -> World {
    let mut w = World::new();
    for line in history.split(';').map(str::trim).filter(|l| !l.is_empty()) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (kind, rest) = words[0].split_at(1);
        let num = || rest.parse::<u32>().expect("number");
        match kind {
            "R" => w.request(num(), words[1], words[2]),
            "r" => w.ask(num(), words[1], words[2]),
            "X" => w.remove(num()),
            "W" => assert!(w.write(num(), words[1], words[2]), "{line}: refused"),
            "w" => assert!(!w.write(num(), words[1], words[2]), "{line}: allowed"),
            "P" => {
                w.policy = if words[1] == "delete" {
                    ZnodePolicy::Delete
                } else {
                    ZnodePolicy::Keep
                }
            }
            "O" => {
                w.tree.insert(words[1].to_string(), Acl::Super);
            }
            "D" => w.die_after = Some(num() as usize),
            "J" => w.journal.push(Started {
                op: StartedOp::Grant,
                path: words[2].to_string(),
                relation: num(),
                app: words[1].to_string(),
            }),
            "H" => {
                w.hook();
            }
            other => panic!("unknown history step {other}"),
        }
    }
    w
}

/// Request histories and the record and refusals they end with.
#[test]
fn request_histories() {
    // (name, history, record summary, [(relation, refusal substring)])
    type Row<'a> = (&'a str, &'a str, &'a str, &'a [(u32, &'a str)]);
    let table: &[Row<'_>] = &[
        (
            "a changed request revokes the first chroot, removal the second (issue 11, 1)",
            "R1 kafka /first; W1 /first a; R1 kafka /second; w1 /first b; W1 /second c; X1",
            "/first=kept:removed(kafka) /second=kept:removed(kafka)",
            &[],
        ),
        (
            "a moved-away chroot is kept for its application, not handed to another (issue 11, 2)",
            "R4 app4 /d1; W4 /d1 x; R4 app4 /d2; R5 app5 /d1; R5 app5 /d3; W5 /d3 y; X4; W5 /d3 z",
            "/d1=kept:removed(app4) /d2=kept:removed(app4) /d3=granted(app5#5)",
            &[],
        ),
        (
            "under delete, removal deletes every tree the relation held and nothing else",
            "P delete; R6 app6 /e1; W6 /e1 x; R6 app6 /e2; R7 app7 /e1; R7 app7 /e3; W7 /e3 y; X6; W7 /e3 z",
            "/e3=granted(app7#7)",
            &[],
        ),
        (
            "a freed path is granted again, empty",
            "P delete; R6 app6 /e1; X6; R7 app7 /e1",
            "/e1=granted(app7#7)",
            &[],
        ),
        (
            "a request for another's kept chroot is refused with the reason",
            "R1 kafka /k; X1; R2 other /k",
            "/k=kept:removed(kafka)",
            &[(2, "kept for application kafka after its removal")],
        ),
        (
            "an application of the same name gets its kept data back",
            "R1 kafka /k; W1 /k topics; X1; R2 kafka /k; W2 /k/topics t",
            "/k=granted(kafka#2)",
            &[],
        ),
        (
            "operator data is never granted",
            "O /probe-data; R1 nosy /probe-data",
            "",
            &[(1, "the charm never gave it to this application")],
        ),
        (
            "nothing is created inside operator data",
            "O /ops; R1 nosy /ops/mine",
            "",
            &[(1, "inside /ops, which exists and was not created by the charm")],
        ),
        (
            "a chroot under a parent the charm created is fine; the parent itself is not",
            "R1 a /team/a; R2 b /team/b; R3 c /team",
            "/team/a=granted(a#1) /team/b=granted(b#2)",
            &[(3, "is /team, which the charm created as a parent")],
        ),
        (
            "a refused move keeps the chroot the client has",
            "R1 a /a; R2 b /b; R1 a /b",
            "/a=granted(a#1) /b=granted(b#2)",
            &[(1, "overlaps /b, granted to application b (relation 2)")],
        ),
        (
            "a chroot cannot move inside itself",
            "R1 a /a; R1 a /a/inner",
            "/a=granted(a#1)",
            &[(1, "which this application holds now")],
        ),
        (
            "changed three times, then back to the first",
            "R1 a /p1; W1 /p1 x; R1 a /p2; R1 a /p3; R1 a /p4; R1 a /p1; W1 /p1/x y",
            "/p1=granted(a#1) /p2=kept:moved(a) /p3=kept:moved(a) /p4=kept:moved(a)",
            &[],
        ),
        (
            "a hook that dies after creating the chroot is taken up, not refused",
            "D1; R1 a /a; H; W1 /a x",
            "/a=granted(a#1)",
            &[],
        ),
        (
            "a hook that dies between the new grant and the revocation revokes at the next",
            "R1 a /a; W1 /a x; D1; R1 a /b; H",
            "/a=kept:moved(a) /b=granted(a#1)",
            &[],
        ),
        (
            "a grant cut short and no longer wanted is taken back and kept",
            "D1; R1 a /a; R1 a /b; W1 /b x",
            "/a=kept:moved(a) /b=granted(a#1)",
            &[],
        ),
        (
            "a grant cut short whose relation left is taken back",
            "D1; R1 a /a; X1",
            "/a=kept:removed(a)",
            &[],
        ),
        (
            "a kept chroot given back part way, then no longer wanted, is taken back again",
            "R1 a /k; W1 /k x; R1 a /j; D1; R1 a /k; R1 a /m",
            "/j=kept:moved(a) /k=kept:moved(a) /m=granted(a#1)",
            &[],
        ),
        (
            "a move cut short after the revocation, then another request refused: the old chroot \
             is given back",
            "R1 a /e; W1 /e x; R9 k /k; X9; D2; R1 a /b; R1 a /k/x; W1 /e y",
            "/b=kept:moved(a) /e=granted(a#1) /k=kept:removed(k)",
            &[(1, "overlaps /k, kept for application k")],
        ),
        (
            "a journaled grant that never happened (the node is operator data) is dropped, not \
             adopted",
            "O /p; J1 a /p; R1 a /p",
            "",
            &[(1, "the charm never gave it to this application")],
        ),
        (
            "a deletion cut short continues",
            "P delete; R1 a /a; W1 /a x; D0; X1; H",
            "",
            &[],
        ),
        (
            "changing the policy never deletes data kept before",
            "R1 a /a; X1; P delete; H",
            "/a=kept:removed(a)",
            &[],
        ),
        (
            "two new overlapping requests in one hook: the earlier relation wins",
            "r2 b /s/x; r1 a /s; H; R3 c /s/x",
            "/s=granted(a#1)",
            &[
                (2, "overlaps /s, granted to application a (relation 1)"),
                (3, "overlaps /s, granted to application a"),
            ],
        ),
        (
            "a path above a charm parent is refused",
            "R2 b /s/x; R1 a /s",
            "/s/x=granted(b#2)",
            &[(1, "is /s, which the charm created as a parent")],
        ),
        (
            "an invalid request keeps the grant and says why",
            "R1 a /a; R1 a /zookeeper/x",
            "/a=granted(a#1)",
            &[(1, "reserved")],
        ),
    ];
    for (name, history, want, refusals) in table {
        let w = run(history);
        assert_eq!(w.summary(), *want, "{name}: record");
        for (rel, why) in *refusals {
            let got = w.refused(*rel);
            assert!(got.contains(why), "{name}: relation {rel} refused {got:?}");
        }
        if refusals.is_empty() {
            assert!(w.refusals.is_empty(), "{name}: {:?}", w.refusals);
        }
    }
}

#[test]
fn the_data_of_a_moved_or_removed_client_stays_and_is_reduced_to_super() {
    let w = run("R1 kafka /first; W1 /first a; W1 /first/a b; R1 kafka /second; X1");
    for node in ["/first", "/first/a", "/first/a/b", "/second"] {
        assert_eq!(w.tree.get(node), Some(&Acl::Super), "{node}: {:?}", w.tree);
    }
    let w = run("P delete; R1 kafka /t/first; W1 /t/first a; R1 kafka /t/second; X1");
    assert_eq!(
        w.tree.keys().collect::<Vec<_>>(),
        ["/t"],
        "the parent stays: {:?}",
        w.tree
    );
}

#[test]
fn a_move_grants_first_then_revokes_and_a_grant_names_only_recorded_paths() {
    let mut w = run("R1 a /a");
    if let Some(c) = w.clients.get_mut(&1) {
        c.request = request::parse(
            RelationId(1),
            "a",
            &[("database".to_string(), "/b".to_string())].into(),
        );
    }
    let plan = w.hook();
    let ops: Vec<String> = plan.steps.iter().map(|s| format!("{:?}", s.op)).collect();
    assert!(ops[0].starts_with("Grant { path: \"/b\""), "{ops:?}");
    assert!(ops[1].starts_with("Revoke { path: \"/a\""), "{ops:?}");
    // Between the two, the record says /a is being taken back, not granted twice.
    assert_eq!(plan.steps[0].after.chroots["/a"].state, State::Revoking);
    // Nothing to do in a hook after that.
    assert!(w.hook().steps.is_empty());
}

#[test]
fn roles_change_sets_the_chroot_node_only() {
    let mut w = run("R1 a /a; W1 /a child");
    let bag: crate::juju::tools::Databag = [
        ("database".to_string(), "/a".to_string()),
        ("extra-user-roles".to_string(), "rw".to_string()),
    ]
    .into();
    w.clients.insert(
        1,
        Client {
            relation: RelationId(1),
            app: "a".into(),
            request: request::parse(RelationId(1), "a", &bag),
        },
    );
    let plan = w.hook();
    assert_eq!(plan.steps.len(), 1);
    assert!(
        matches!(&plan.steps[0].op, Op::SetRoles { path, roles, .. } if path == "/a" && roles.as_str() == "rw")
    );
    assert_eq!(w.record.chroots["/a"].roles, "rw");
    assert_eq!(w.tree["/a/child"], Acl::Creator(1));
}

#[test]
fn conflicts_wait_for_the_operator_then_the_survivor_is_served() {
    // As the repair sweep leaves it: two live relations claiming nested paths.
    let mut w = World::new();
    w.tree.insert("/nest".into(), Acl::Client(3));
    w.tree.insert("/nest/inner".into(), Acl::Client(4));
    w.tree.insert("/nest/other".into(), Acl::Creator(3));
    for (rel, app, path) in [(3, "a", "/nest"), (4, "b", "/nest/inner")] {
        w.record.conflicts.insert(
            path.into(),
            Claim {
                app: app.into(),
                relation: rel,
            },
        );
        w.clients.insert(rel, Client::asking(rel, app, path));
    }
    w.hook();
    assert!(
        w.refused(3)
            .contains("overlaps /nest/inner of b (relation 4)"),
        "{}",
        w.refused(3)
    );
    assert!(
        w.refused(4).contains("remove all but one"),
        "{}",
        w.refused(4)
    );
    assert_eq!(
        w.tree["/nest/inner"],
        Acl::Client(4),
        "nothing resolved by guessing"
    );
    // The operator removes the outer one: its tree is revoked around the inner claim, which
    // becomes a grant; the outer path becomes a parent.
    w.remove(3);
    assert_eq!(w.summary(), "/nest/inner=granted(b#4)");
    assert!(w.record.parents.contains("/nest"));
    assert_eq!(w.tree["/nest"], Acl::Super);
    assert_eq!(w.tree["/nest/other"], Acl::Super);
    assert_eq!(w.tree["/nest/inner"], Acl::Client(4));
    assert!(w.refusals.is_empty(), "{:?}", w.refusals);

    // The other way round: the inner claimant leaves; its nodes go to the outer one, nothing is
    // deleted even under `delete`, and nothing names the removed relation.
    let mut w = World::new();
    w.policy = ZnodePolicy::Delete;
    w.tree.insert("/nest".into(), Acl::Client(3));
    w.tree.insert("/nest/inner".into(), Acl::Client(4));
    w.tree.insert("/nest/inner/x".into(), Acl::Creator(4));
    for (rel, app, path) in [(3, "a", "/nest"), (4, "b", "/nest/inner")] {
        w.record.conflicts.insert(
            path.into(),
            Claim {
                app: app.into(),
                relation: rel,
            },
        );
        w.clients.insert(rel, Client::asking(rel, app, path));
    }
    w.hook();
    w.remove(4);
    assert_eq!(w.summary(), "/nest=granted(a#3)");
    assert_eq!(w.tree["/nest/inner/x"], Acl::Client(3));
    assert!(w.record.parents.is_empty());
}

#[test]
fn invariants_reject_a_hand_made_bad_plan() {
    let record = Ownership::default();
    let input = Input {
        clients: &[],
        record: &record,
        facts: &BTreeMap::new(),
        journal: &[],
        policy: ZnodePolicy::Keep,
        now: "t",
    };
    let revoke_unrecorded = Plan {
        steps: vec![Step {
            op: Op::Revoke {
                path: "/victim".into(),
                except: vec![],
            },
            after: record.clone(),
            if_failed: None,
            journal: None,
        }],
        record: record.clone(),
        refusals: vec![],
        needs_facts: BTreeSet::new(),
        journal_done: vec![],
    };
    assert!(check(&input, &revoke_unrecorded)
        .unwrap_err()
        .0
        .contains("neither the record nor the journal"));
    let mut granted_to_gone = record.clone();
    granted_to_gone.chroots.insert(
        "/x".into(),
        Owned::granted("a", RelationId(9), "cdrwa", "t"),
    );
    let plan = Plan {
        steps: vec![],
        record: granted_to_gone,
        refusals: vec![],
        needs_facts: BTreeSet::new(),
        journal_done: vec![],
    };
    assert!(check(&input, &plan).unwrap_err().0.contains("gone"));
}

#[test]
fn served_answers_with_the_granted_chroot() {
    let w = run("R1 a /a; R2 b /b; R1 a /b");
    let clients: Vec<Client> = w.clients.values().cloned().collect();
    let served = served(&w.record, &clients);
    let got: Vec<(u32, &str)> = served
        .iter()
        .map(|r| (r.relation.0, r.chroot.as_str()))
        .collect();
    assert_eq!(got, [(1, "/a"), (2, "/b")]);
}

/// Random histories of requests, moves, writes, removals, policy changes and hooks that die half
/// way: whatever happens, no node grants a removed relation, a live relation is granted only
/// inside its one chroot, every plan keeps the invariants, and a live relation's data is never
/// lost while it is related.
#[test]
fn random_histories_keep_tenancy() {
    let paths = ["/a", "/b", "/a/x", "/c/d", "/c", "/e"];
    let apps = ["kafka", "app", "other"];
    for seed in 1..=400u64 {
        let mut rng = Rng::new(seed);
        let mut w = World::new();
        let mut next_rel = 1u32;
        for _ in 0..40 {
            match rng.below(12) {
                0..=3 => {
                    let live: Vec<u32> = w.clients.keys().copied().collect();
                    let (rel, app) = if live.is_empty() || rng.below(3) == 0 {
                        next_rel += 1;
                        (next_rel, apps[rng.below(apps.len())].to_string())
                    } else {
                        let r = live[rng.below(live.len())];
                        (r, w.clients[&r].app.clone())
                    };
                    w.request(rel, &app, paths[rng.below(paths.len())]);
                }
                4 | 5 => {
                    let live: Vec<u32> = w.clients.keys().copied().collect();
                    if !live.is_empty() {
                        let r = live[rng.below(live.len())];
                        if let Some((chroot, _)) = w.record.granted_to(RelationId(r)) {
                            let chroot = chroot.to_string();
                            let name = format!("n{}", rng.below(3));
                            // Right after a hook that died, the repair waits for the next hook.
                            let wrote = w.write(r, &chroot, &name);
                            assert!(
                                wrote || w.died,
                                "seed {seed}: {r} cannot write in {chroot}: {:?} after {:?}",
                                w.tree,
                                w.trace
                            );
                        }
                    }
                }
                6 => {
                    let live: Vec<u32> = w.clients.keys().copied().collect();
                    if !live.is_empty() {
                        w.remove(live[rng.below(live.len())]);
                    }
                }
                7 => {
                    w.trace.push("P".into());
                    w.policy = if rng.below(2) == 0 {
                        ZnodePolicy::Keep
                    } else {
                        ZnodePolicy::Delete
                    }
                }
                8 => w.die_after = Some(rng.below(3)),
                _ => {
                    // After a hook that finished, a hook with nothing new does nothing: every
                    // client's data stays as it is.
                    let settled = !w.died && w.die_after.is_none();
                    let before = w.tree.clone();
                    let plan = w.hook();
                    if settled {
                        assert!(plan.steps.is_empty(), "seed {seed}: {:?}", plan.steps);
                        assert_eq!(w.tree, before, "seed {seed}");
                    }
                }
            }
        }
        // Heal: a few hooks with nothing dying converge to a fixed point.
        w.die_after = None;
        w.hook();
        w.hook();
        let last = w.hook();
        assert!(last.steps.is_empty(), "seed {seed}: still {:?}", last.steps);
    }
}
