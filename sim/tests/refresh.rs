//! `refresh` (Juju 3.6's `juju refresh --path`): a new charm revision for the application,
//! deployed into each unit's charm directory with Juju's manifest semantics, then
//! `upgrade-charm` and `config-changed` (and the relations of new endpoints after them); units
//! in hook error wait unless `--force-units`; a refresh Juju would refuse changes nothing.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

fn edit(root: &Path, rel: &str, from: &str, to: &str) {
    let p = root.join(rel);
    let text = std::fs::read_to_string(&p).expect("read");
    assert!(text.contains(from), "{rel} has no {from:?}");
    std::fs::write(p, text.replace(from, to)).expect("write");
}

/// Three revisions of the probe charm, beside the model:
/// - A: the probe plus `data/old.txt`, `data/keep.txt` ("A") and `bin/tool`;
/// - B: `data/old.txt` and `bin/` gone, `data/keep.txt` ("B"), `data/new.txt` and a symlink
///   `current`; config option `ratio` gone, `fresh` (default "new-default") added; a new peer
///   endpoint `extra`;
/// - C: B plus `data/c.txt`.
struct Charms {
    a: String,
    b: String,
    c: String,
}

fn charms(sim: &Sim) -> Charms {
    let probe = PathBuf::from(fixture("probe"));
    let (a, b, c) = (
        sim.dir().join("a"),
        sim.dir().join("b"),
        sim.dir().join("c"),
    );
    copy_tree(&probe, &a);
    write(&a, "data/old.txt", "old");
    write(&a, "data/keep.txt", "A");
    write(&a, "bin/tool", "#!/bin/sh\n");
    copy_tree(&probe, &b);
    write(&b, "data/keep.txt", "B");
    write(&b, "data/new.txt", "new");
    std::os::unix::fs::symlink("data/keep.txt", b.join("current")).expect("symlink");
    edit(
        &b,
        "config.yaml",
        "  ratio:\n    type: float\n",
        "  fresh:\n    type: string\n    default: new-default\n",
    );
    edit(
        &b,
        "metadata.yaml",
        "    interface: probe-cluster\n",
        "    interface: probe-cluster\n  extra:\n    interface: probe-extra\n",
    );
    copy_tree(&b, &c);
    std::fs::remove_file(c.join("current")).expect("rm");
    std::os::unix::fs::symlink("data/keep.txt", c.join("current")).expect("symlink");
    write(&c, "data/c.txt", "c");
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    Charms {
        a: s(a),
        b: s(b),
        c: s(c),
    }
}

/// Every hook: the charm writes its own files in install; each hook records which revision's
/// files it ran with (`seen`); config-changed records `fresh`; config-changed fails while the
/// unit's workload dir has a `fail` file.
const SCRIPT: &str = r#"
if [ "$JUJU_HOOK_NAME" = install ]; then
  echo mine > "$JUJU_CHARM_DIR/.probe-state"
  echo cache > "$JUJU_CHARM_DIR/data/cache.txt"
fi
if [ -f "$JUJU_CHARM_DIR/data/c.txt" ]; then c=C; elif [ -f "$JUJU_CHARM_DIR/data/new.txt" ]; then c=B; else c=A; fi
[ -n "$JUJU_HOOK_NAME" ] && echo "$JUJU_HOOK_NAME $c" >> "$JUJUSIM_WORKLOAD_DIR/seen"
if [ "$JUJU_HOOK_NAME" = config-changed ]; then
  config-get fresh > "$JUJUSIM_WORKLOAD_DIR/fresh" 2>/dev/null || echo none > "$JUJUSIM_WORKLOAD_DIR/fresh"
  [ -f "$JUJUSIM_WORKLOAD_DIR/fail" ] && exit 1
fi
true
"#;

/// Hooks `unit` ran after the first `from` timeline entries.
fn hooks_since(sim: &Sim, from: usize, unit: &str) -> Vec<String> {
    sim.events()[from..]
        .iter()
        .filter(|(u, _)| u == unit)
        .map(|(_, h)| h.clone())
        .collect()
}

/// The last `n` lines of what `unit`'s hooks recorded in `seen`.
fn seen_tail(sim: &Sim, unit: &str, n: usize) -> Vec<String> {
    let text = sim.read_workload(unit, "seen");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

fn charm_files(sim: &Sim, unit: &str) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, rel: &str, out: &mut Vec<String>) {
        for e in std::fs::read_dir(root.join(rel))
            .expect("read_dir")
            .flatten()
        {
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let dir = e.file_type().is_ok_and(|t| t.is_dir());
            out.push(path.clone());
            if dir {
                walk(root, &path, out);
            }
        }
    }
    walk(&sim.charm_dir(unit), "", &mut out);
    out.sort();
    out
}

const AFTER_UPGRADE: [&str; 5] = [
    "upgrade-charm",
    "config-changed",
    "extra-relation-created",
    "extra-relation-joined",
    "extra-relation-changed",
];

#[test]
fn refresh_upgrades_every_unit_with_jujus_files_and_hooks() {
    let sim = Sim::new();
    sim.script(SCRIPT);
    let ch = charms(&sim);
    sim.ok(&[
        "deploy",
        &ch.a,
        "probe",
        "-n",
        "2",
        "--config",
        "count=5",
        "--config",
        "ratio=1.5",
    ]);
    let leader = sim.leader_of("probe");
    assert_eq!(sim.status()["applications"]["probe"]["charm-rev"], 0);
    let before = sim.log().len();
    // A reader of the old file: the upgrade must replace the file, not rewrite it in place.
    let mut reader =
        std::fs::File::open(sim.charm_dir("probe/0").join("data/keep.txt")).expect("open");

    let out = sim.ok(&["refresh", "probe", "--path", &ch.b]);
    assert!(
        out.contains("Added local charm \"probe\", revision 1, to the model"),
        "{out}"
    );
    check_invariants(&sim.log());
    // Each unit: upgrade-charm (with the new files), the config-changed Juju queues after it,
    // then the new peer endpoint's relation (Juju enters relations only once no hook is
    // queued: after config-changed), joined and changed for the other unit.
    for u in ["probe/0", "probe/1"] {
        assert_eq!(hooks_since(&sim, before, u), AFTER_UPGRADE, "{u}");
        assert_eq!(
            seen_tail(&sim, u, 5),
            [
                "upgrade-charm B",
                "config-changed B",
                "extra-relation-created B",
                "extra-relation-joined B",
                "extra-relation-changed B"
            ],
            "{u}"
        );
        let e = sim.last_entry(u, "upgrade-charm");
        assert_eq!(e["env"]["JUJU_DISPATCH_PATH"], "hooks/upgrade-charm");
        assert_eq!(e["env"]["JUJU_HOOK_NAME"], "upgrade-charm");
        // Files: the old charm's that B lacks are gone (bin/ with it), B's are there, the
        // charm's own (.probe-state, data/cache.txt) stay.
        let files = charm_files(&sim, u);
        for want in [
            ".probe-state",
            "data/cache.txt",
            "data/new.txt",
            "data/keep.txt",
            "current",
            "dispatch",
        ] {
            assert!(
                files.contains(&want.to_string()),
                "{u}: {want} in {files:?}"
            );
        }
        for gone in ["data/old.txt", "bin", "bin/tool"] {
            assert!(
                !files.contains(&gone.to_string()),
                "{u}: {gone} in {files:?}"
            );
        }
        let dir = sim.charm_dir(u);
        assert_eq!(
            std::fs::read_to_string(dir.join("data/keep.txt")).unwrap(),
            "B"
        );
        assert!(std::fs::symlink_metadata(dir.join("current"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(sim.read_workload(u, "fresh"), "new-default\n", "{u}");
        let manifest = std::fs::read_to_string(sim.unit_dir(u).join("charm.manifest")).unwrap();
        assert!(
            manifest.lines().any(|l| l == "data/new.txt") && !manifest.contains("bin"),
            "{manifest}"
        );
    }
    let mut was = String::new();
    reader.read_to_string(&mut was).unwrap();
    assert_eq!(was, "A", "data/keep.txt was rewritten in place");
    // Settings: the operator's count stays, ratio is gone, fresh has its default.
    let cfg = sim.json(&["config", "probe"]);
    assert_eq!(
        cfg,
        json!({"count": 5, "flag": false, "fresh": "new-default", "greeting": "hi"})
    );
    // Status: revision 1, nobody upgrading, the same leader, the new peer relation.
    let st = sim.status();
    let app = &st["applications"]["probe"];
    assert_eq!(app["charm-rev"], 1);
    assert_eq!(sim.leader_of("probe"), leader);
    assert_eq!(app["relations"]["extra"], json!(["probe"]));
    for u in ["probe/0", "probe/1"] {
        assert!(app["units"][u].get("upgrading-from").is_none(), "{app}");
        assert_eq!(app["units"][u]["workload-status"]["current"], "active");
    }
    let unit = sim.json(&["show-unit", "probe/1"]);
    assert_eq!(unit["probe/1"]["charm"], "local:probe-1");
    // Actions keep working, with the new charm's actions.yaml.
    sim.ok(&["run", "probe/0", "typed", "n=1"]);
    // A unit added now runs revision 1 from its install: no upgrade-charm.
    let before = sim.log().len();
    sim.ok(&["add-unit", "probe"]);
    let mine = hooks_since(&sim, before, "probe/2");
    assert_eq!(mine[0], "install", "{mine:?}");
    assert!(!mine.contains(&"upgrade-charm".to_string()), "{mine:?}");
    assert!(
        mine.contains(&"extra-relation-created".to_string()),
        "{mine:?}"
    );
    assert_eq!(seen_tail(&sim, "probe/2", 100)[0], "install B");
    check_invariants(&sim.log());
}

#[test]
fn a_unit_in_error_upgrades_once_resolved_or_at_once_with_force_units() {
    let sim = Sim::new();
    sim.script(SCRIPT);
    let ch = charms(&sim);
    sim.ok(&["deploy", &ch.a, "probe", "-n", "2"]);
    // probe/1 fails its config-changed.
    std::fs::write(sim.workload_dir("probe/1").join("fail"), "").unwrap();
    sim.ok(&["config", "probe", "count=9"]);
    assert_eq!(
        sim.unit_status("probe/1")["workload-status"]["message"],
        "hook failed: \"config-changed\""
    );

    // Without --force-units the unit in error waits on the old charm; the other upgrades.
    let before = sim.log().len();
    sim.ok(&["refresh", "probe", "--path", &ch.b]);
    assert_eq!(hooks_since(&sim, before, "probe/0"), AFTER_UPGRADE[..3]);
    assert_eq!(hooks_since(&sim, before, "probe/1"), Vec::<String>::new());
    let u1 = sim.unit_status("probe/1");
    assert_eq!(u1["upgrading-from"], "local:probe-0", "{u1}");
    assert_eq!(u1["workload-status"]["current"], "error");
    assert!(sim.charm_dir("probe/1").join("data/old.txt").is_file());
    assert_eq!(
        sim.json(&["show-unit", "probe/1"])["probe/1"]["charm"],
        "local:probe-0"
    );
    // Resolved: the failed hook runs again (old charm), then the upgrade.
    std::fs::remove_file(sim.workload_dir("probe/1").join("fail")).unwrap();
    let before = sim.log().len();
    sim.ok(&["resolve", "probe/1"]);
    let mut want = vec!["config-changed".to_string()];
    want.extend(AFTER_UPGRADE.iter().map(|s| s.to_string()));
    assert_eq!(hooks_since(&sim, before, "probe/1"), want);
    assert_eq!(
        seen_tail(&sim, "probe/1", 6)[..2],
        ["config-changed A", "upgrade-charm B"]
    );
    assert!(sim.unit_status("probe/1").get("upgrading-from").is_none());
    check_invariants(&sim.log());

    // --force-units: the unit in error gets the new charm's files at once, and stays in error
    // on the same hook (Juju restores the interrupted hook; no upgrade-charm); its retry runs
    // the new charm.
    std::fs::write(sim.workload_dir("probe/1").join("fail"), "").unwrap();
    sim.ok(&["config", "probe", "count=10"]);
    let before = sim.log().len();
    sim.ok(&["refresh", "probe", "--path", &ch.c, "--force-units"]);
    assert_eq!(
        hooks_since(&sim, before, "probe/0"),
        ["upgrade-charm", "config-changed"]
    );
    assert_eq!(hooks_since(&sim, before, "probe/1"), Vec::<String>::new());
    let u1 = sim.unit_status("probe/1");
    assert!(u1.get("upgrading-from").is_none(), "{u1}");
    assert_eq!(
        u1["workload-status"]["message"],
        "hook failed: \"config-changed\""
    );
    assert!(sim.charm_dir("probe/1").join("data/c.txt").is_file());
    assert_eq!(
        sim.json(&["show-unit", "probe/1"])["probe/1"]["charm"],
        "local:probe-2"
    );
    std::fs::remove_file(sim.workload_dir("probe/1").join("fail")).unwrap();
    let before = sim.log().len();
    sim.ok(&["resolve", "probe/1"]);
    assert_eq!(hooks_since(&sim, before, "probe/1"), ["config-changed"]);
    assert_eq!(seen_tail(&sim, "probe/1", 1), ["config-changed C"]);
    assert_eq!(
        sim.unit_status("probe/1")["workload-status"]["current"],
        "active"
    );
    assert_eq!(sim.status()["applications"]["probe"]["charm-rev"], 2);
}

#[test]
fn a_refresh_juju_would_refuse_changes_nothing() {
    let sim = Sim::new();
    let ch = charms(&sim);
    sim.ok(&["deploy", &ch.a, "probe", "-n", "2"]);
    sim.ok(&["deploy-stub", "client", "--requires", "db:probedb"]);
    sim.ok(&["integrate", "client", "probe"]);
    let other = sim.dir().join("other");
    copy_tree(Path::new(&ch.b), &other);
    edit(&other, "metadata.yaml", "name: probe", "name: other");
    let no_db = sim.dir().join("no-db");
    copy_tree(Path::new(&ch.b), &no_db);
    edit(
        &no_db,
        "metadata.yaml",
        "provides:\n  db:\n    interface: probedb\n",
        "",
    );
    let model = sim.model_json();
    let files = charm_files(&sim, "probe/0");
    let app_charm = std::fs::read_dir(sim.model().join("charms/probe"))
        .unwrap()
        .count();
    let (other, no_db) = (
        other.to_string_lossy().into_owned(),
        no_db.to_string_lossy().into_owned(),
    );
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["refresh", "probe", "--path", &other],
            1,
            "cannot refresh \"probe\" to \"other\"",
        ),
        (
            &["refresh", "probe", "--path", &no_db],
            1,
            "cannot upgrade application \"probe\" to charm \"local:probe-1\": would break relation \"probe:db client:db\"",
        ),
        (&["refresh", "client", "--path", &ch.b], 1, "stub"),
        (
            &["refresh", "nope", "--path", &ch.b],
            1,
            "application \"nope\" not found",
        ),
        (&["refresh", "probe"], 2, "needs --path"),
        (&["refresh", "probe", "--path", "/nonexistent"], 1, "not found"),
        (
            &["refresh", "probe", "--path", &ch.b, "--channel", "edge"],
            2,
            "unknown option \"--channel\"",
        ),
    ];
    for (args, code, says) in cases {
        let (got, err) = sim.fails(args);
        assert_eq!(got, *code, "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    assert_eq!(
        sim.model_json(),
        model,
        "a refused refresh changed the model"
    );
    assert_eq!(charm_files(&sim, "probe/0"), files);
    assert_eq!(
        std::fs::read_dir(sim.model().join("charms/probe"))
            .unwrap()
            .count(),
        app_charm
    );
    let st: Value = sim.status();
    assert_eq!(st["applications"]["probe"]["charm-rev"], 0);
}

#[test]
fn a_failed_upgrade_charm_keeps_the_new_files_and_runs_again_when_resolved() {
    let sim = Sim::new();
    sim.script(
        "[ \"$JUJU_HOOK_NAME\" = upgrade-charm ] && [ -f \"$JUJUSIM_WORKLOAD_DIR/fail\" ] && exit 1\ntrue\n",
    );
    let ch = charms(&sim);
    sim.ok(&["deploy", &ch.a, "probe"]);
    std::fs::write(sim.workload_dir("probe/0").join("fail"), "").unwrap();
    let before = sim.log().len();
    sim.ok(&["refresh", "probe", "--path", &ch.b]);
    assert_eq!(hooks_since(&sim, before, "probe/0"), ["upgrade-charm"]);
    let u = sim.unit_status("probe/0");
    assert_eq!(
        u["workload-status"]["message"], "hook failed: \"upgrade-charm\"",
        "{u}"
    );
    // The files are deployed: the unit runs revision 1, its upgrade-charm failed.
    assert!(u.get("upgrading-from").is_none(), "{u}");
    assert!(sim.charm_dir("probe/0").join("data/new.txt").is_file());
    std::fs::remove_file(sim.workload_dir("probe/0").join("fail")).unwrap();
    let before = sim.log().len();
    sim.ok(&["resolve", "probe/0"]);
    assert_eq!(
        hooks_since(&sim, before, "probe/0"),
        ["upgrade-charm", "config-changed", "extra-relation-created"]
    );
}
