//! `cargo xtask <task>`:
//!   demo   build everything, install ZooKeeper if missing, deploy a 3-unit model and a client
//!          application under jujusim, print the status and how to connect
//!   pack   build the release charm binary and write target/charm/zookeeper.charm
//!          [--workload <debian version>] pins a ZooKeeper build (its jars in the charm),
//!          [--label <text>] names the release, [--out <file>] writes elsewhere
//!   bench  [all|quick|tenancy|convergence|hooks|juju|tls] the benchmarks (table + target/bench/report-<mode>.json)
//!   test   everything the tests need (packed charm, release jujusim, ZooKeeper, a Python venv
//!          with kazoo), then `cargo test --workspace`; extra arguments go to cargo test

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    eprintln!("==> {what}");
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn pack(root: &Path) -> Result<PathBuf, String> {
    pack_pinned(root, &xtask::Pin::default(), None)
}

/// `cargo xtask pack [--workload <debian version>] [--label <text>] [--out <file>]`.
fn pack_command(root: &Path, args: &[String]) -> Result<(), String> {
    let mut pin = xtask::Pin::default();
    let mut out = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--workload" => {
                let v = value()?;
                let dir = workload_jars(&v)?;
                pin.workload = Some((v, dir));
            }
            "--label" => pin.label = Some(value()?),
            "--out" => out = Some(PathBuf::from(value()?)),
            other => {
                return Err(format!(
                    "unknown pack argument {other:?}: cargo xtask pack [--workload <debian version>] [--label <text>] [--out <file>]"
                ))
            }
        }
    }
    pack_pinned(root, &pin, out.as_deref()).map(drop)
}

/// The jars of a Debian build of ZooKeeper (`libzookeeper-java=<version>`), cached per
/// machine under `$XDG_CACHE_HOME` (or `~/.cache`)`/zookeeper-charm/dist/<version>/`; fetched
/// with `apt-get download` and unpacked with `dpkg -x` the first time.
fn workload_jars(version: &str) -> Result<PathBuf, String> {
    if version.is_empty() || version.contains('/') || version.starts_with('.') {
        return Err(format!("{version:?} is not a Debian version"));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("zookeeper-charm/dist");
    let dir = cache.join(version);
    if xtask::WORKLOAD_JARS.iter().all(|j| dir.join(j).is_file()) {
        return Ok(dir);
    }
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(&cache)
        .map_err(|e| format!("{}: {e}", cache.display()))?;
    let pkg = format!("libzookeeper-java={version}");
    let download = |quiet: bool| {
        let mut cmd = Command::new("apt-get");
        cmd.args(["download", &pkg]).current_dir(scratch.path());
        if quiet {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
        }
        cmd.status().map(|s| s.success()).unwrap_or(false)
    };
    if !download(true) {
        // The package lists may predate the build: refresh them once (as root or through sudo).
        let _ = run(apt().arg("update"), "apt-get update");
        if !download(false) {
            return Err(format!(
                "cannot download ZooKeeper {version} (apt-get download {pkg} failed)"
            ));
        }
    }
    let deb = std::fs::read_dir(scratch.path())
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {pkg} wrote no .deb"))?;
    let x = scratch.path().join("x");
    run(
        Command::new("dpkg").arg("-x").arg(&deb).arg(&x),
        &format!("unpacking {}", deb.display()),
    )?;
    let got = scratch.path().join("jars");
    std::fs::create_dir_all(&got).map_err(|e| e.to_string())?;
    for j in xtask::WORKLOAD_JARS {
        let src = x.join("usr/share/java").join(j);
        std::fs::copy(&src, got.join(j)).map_err(|e| format!("{}: {e}", src.display()))?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&got, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    eprintln!("==> ZooKeeper {version} cached in {}", dir.display());
    Ok(dir)
}

fn pack_pinned(root: &Path, pin: &xtask::Pin, out: Option<&Path>) -> Result<PathBuf, String> {
    build_release(root, &["zookeeper-charm"], "building the charm (release)")?;
    let target = target_dir(root);
    let binary = target.join("release/zookeeper-charm");
    let out_zip = out
        .map(Path::to_path_buf)
        .unwrap_or_else(|| target.join("charm/zookeeper.charm"));
    let out_dir = match out {
        None => target.join("charm/zookeeper"),
        Some(o) => {
            let stem = o
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "charm".into());
            target.join("charm/dirs").join(stem)
        }
    };
    xtask::write_charm_pinned(root, &binary, &out_dir, &out_zip, pin)
        .map_err(|e| format!("packing failed: {e}"))?;
    let size = std::fs::metadata(&out_zip).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "==> wrote {} ({} KiB) and {}",
        out_zip.display(),
        size / 1024,
        out_dir.display()
    );
    Ok(out_zip)
}

/// The two builds the upgrade tests go between: Debian bookworm's two builds of 3.8.0.
pub const UPGRADE_FROM: &str = "3.8.0-11+deb12u1";
pub const UPGRADE_TO: &str = "3.8.0-11+deb12u2";

struct UpgradePair {
    a: PathBuf,
    b: PathBuf,
    /// Why the pair carries no workload change (the older build could not be downloaded).
    fallback: Option<String>,
}

/// Charm A pinned to the older build, charm B to the newer; when a build cannot be
/// downloaded, two charms that differ in release only (and the tests say so).
fn pack_upgrade_pair(root: &Path) -> Result<UpgradePair, String> {
    let target = target_dir(root);
    let a = target.join("charm/upgrade-a.charm");
    let b = target.join("charm/upgrade-b.charm");
    let jars = workload_jars(UPGRADE_FROM).and_then(|ja| Ok((ja, workload_jars(UPGRADE_TO)?)));
    let (pa, pb, fallback) = match jars {
        Ok((ja, jb)) => (
            xtask::Pin {
                label: None,
                workload: Some((UPGRADE_FROM.into(), ja)),
            },
            xtask::Pin {
                label: None,
                workload: Some((UPGRADE_TO.into(), jb)),
            },
            None,
        ),
        Err(e) => {
            eprintln!("==> WARNING: {e}: the upgrade tests fall back to a charm-only upgrade");
            (
                xtask::Pin {
                    label: Some("upgrade-a".into()),
                    workload: None,
                },
                xtask::Pin {
                    label: Some("upgrade-b".into()),
                    workload: None,
                },
                Some(e),
            )
        }
    };
    pack_pinned(root, &pa, Some(&a))?;
    pack_pinned(root, &pb, Some(&b))?;
    Ok(UpgradePair { a, b, fallback })
}

/// ZooKeeper and java for the servers, openssl for the TLS tests' certificate authority.
fn have_zookeeper() -> bool {
    [
        "/usr/share/java/zookeeper.jar",
        "/usr/bin/java",
        "/usr/bin/openssl",
    ]
    .iter()
    .all(|p| Path::new(p).exists())
}

/// apt-get, through sudo unless we are root.
fn apt() -> Command {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    cmd.env("DEBIAN_FRONTEND", "noninteractive");
    cmd
}

fn ensure_zookeeper() -> Result<(), String> {
    if have_zookeeper() {
        return Ok(());
    }
    let install = || {
        let mut cmd = apt();
        cmd.args(["install", "-y", "zookeeper", "netcat-openbsd", "openssl"]);
        cmd
    };
    if run(
        &mut install(),
        "installing ZooKeeper from the distribution (apt-get install zookeeper)",
    )
    .is_err()
    {
        run(apt().arg("update"), "apt-get update")?;
        run(&mut install(), "installing ZooKeeper")?;
    }
    if have_zookeeper() {
        Ok(())
    } else {
        Err("still missing after apt-get: /usr/share/java/zookeeper.jar, /usr/bin/java and /usr/bin/openssl are needed".into())
    }
}

/// A Python venv with kazoo (a ZooKeeper client nobody here wrote) for the end-to-end tests.
fn ensure_venv(root: &Path) -> Result<PathBuf, String> {
    let venv = root.join(".venv");
    let python = venv.join("bin/python");
    let ok = |p: &Path| {
        Command::new(p)
            .args([
                "-c",
                "import kazoo, puresasl, ops, jubilant, pytest, charmlibs.interfaces.tls_certificates",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if python.exists() && ok(&python) {
        return Ok(python);
    }
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "creating the Python venv .venv",
    )?;
    run(
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "kazoo==2.11.0",
            "pure-sasl==0.6.2",
            "ops==3.9.0",
            "jubilant==1.14.0",
            "pytest==9.2.0",
            "charmlibs-interfaces-tls-certificates==1.12.0",
        ]),
        "installing kazoo (a client for the tests), ops (the benchmark's floor charm), jubilant and pytest (the jubilant suite in tests/jubilant, run against jujusim's juju front end) and charmlibs-interfaces-tls-certificates (the TLS provider test charm) into .venv",
    )?;
    if ok(&python) {
        Ok(python)
    } else {
        Err("kazoo is not importable from .venv after installing it".into())
    }
}

/// The end-to-end suites that `cargo xtask test` runs a second time under a seed.
/// The suites run once more under another seed. Only the quorum lifecycle (the most
/// order-sensitive): the client and operations suites ran here too until the upgrade suite
/// pushed the whole run past its 25-minute budget on 2 cores.
const SEEDED_SUITES: [&str; 1] = ["quorum_lifecycle"];

fn test(root: &Path, extra: &[String]) -> Result<(), String> {
    ensure_zookeeper()?;
    let python = ensure_venv(root)?;
    let charm = pack(root)?;
    let upgrade = pack_upgrade_pair(root)?;
    build_release(root, &["jujusim"], "building jujusim (release)")?;
    let target = target_dir(root);
    // `cargo test` with the artifacts the end-to-end tests use.
    let e2e = || {
        let mut cmd = cargo();
        cmd.current_dir(root)
            .arg("test")
            .env("ZK_CHARM_PACKED", &charm)
            .env("ZK_CHARM_A", &upgrade.a)
            .env("ZK_CHARM_B", &upgrade.b)
            .env(
                "ZK_UPGRADE_FALLBACK",
                upgrade.fallback.as_deref().unwrap_or(""),
            )
            .env("JUJUSIM_BIN", target.join("release/jujusim"))
            .env("ZK_TEST_PYTHON", &python);
        cmd
    };
    let mut cmd = e2e();
    cmd.arg("--workspace").args(extra);
    if extra.is_empty() {
        // The first pass in jujusim's unseeded order (zookeeper/0 leads); the seed is the second's.
        cmd.env_remove("ZK_TEST_SEED");
    }
    run(&mut cmd, "running the tests (cargo test --workspace)")?;
    if extra.is_empty() {
        // The end-to-end suites once more under another seed: another initial Juju leader and
        // another dispatch order of the concurrent units (ZK_TEST_SEED chooses it; 2 by default).
        let seed = std::env::var("ZK_TEST_SEED").unwrap_or_else(|_| "2".into());
        let mut cmd = e2e();
        cmd.args(SEEDED_SUITES.iter().flat_map(|t| ["--test", t]))
            .env("ZK_TEST_SEED", &seed);
        run(
            &mut cmd,
            &format!("running the quorum lifecycle suite with ZK_TEST_SEED={seed}"),
        )?;
        // jujusim's conformance tests once more in its serial mode (every unit on one machine).
        let mut cmd = cargo();
        cmd.current_dir(root)
            .args(["test", "-p", "jujusim"])
            .env("JUJUSIM_TEST_SERIAL", "1");
        run(
            &mut cmd,
            "running jujusim's tests in its serial mode (JUJUSIM_TEST_SERIAL=1)",
        )?;
    }
    Ok(())
}

/// `cargo xtask demo`: a 3-unit ZooKeeper model with a client application, on this machine.
fn demo(root: &Path) -> Result<(), String> {
    let started = std::time::Instant::now();
    ensure_zookeeper()?;
    let charm = pack(root)?;
    build_release(root, &["jujusim"], "building jujusim (release)")?;
    let jujusim = target_dir(root).join("release/jujusim");
    let model = target_dir(root).join("demo-model");
    let sim = |args: &[&str]| {
        let mut c = Command::new(&jujusim);
        c.arg("--model").arg(&model).args(args);
        c
    };
    if model.join("model.json").exists() {
        run(&mut sim(&["destroy"]), "removing the previous demo model")?;
    }
    let charm_s = charm.to_string_lossy().into_owned();
    run(
        &mut sim(&["deploy", &charm_s, "zookeeper", "-n", "3"]),
        "deploying 3 ZooKeeper units (each starts a real server; ~10 s)",
    )?;
    run(
        &mut sim(&[
            "deploy-stub",
            "demo-app",
            "--requires",
            "zookeeper:zookeeper",
        ]),
        "deploying a stub client application",
    )?;
    run(
        &mut sim(&["integrate", "demo-app", "zookeeper"]),
        "integrating it with zookeeper",
    )?;
    run(
        &mut sim(&["set-data", "demo-app", "zookeeper", "database=/demo-app"]),
        "the client asks for the znode /demo-app (a rolling restart loads its user)",
    )?;
    run(&mut sim(&["settle"]), "waiting for the model to settle")?;
    run(&mut sim(&["status"]), "status")?;
    let out = sim(&["show-data", "demo-app", "zookeeper", "--format", "json"])
        .output()
        .map_err(|e| e.to_string())?;
    let data: serde_yaml::Value =
        serde_yaml::from_slice(&out.stdout).map_err(|e| format!("show-data: {e}"))?;
    let bag = &data["zookeeper"]["application-data"];
    let field = |k: &str| bag[k].as_str().unwrap_or("?").to_string();
    let m = model.display();
    println!(
        "\nReady in {:.0?}. The client application demo-app was given:\n  endpoints  {}\n  chroot     {}\n  username   {}\n\
         Its password:      {} --model {m} show-data demo-app zookeeper\n\
         Super password:    {} --model {m} run zookeeper/leader get-super-password\n\
         Quorum status:     {} --model {m} run zookeeper/leader get-quorum-status\n\
         Connect (kazoo):   KazooClient(hosts=\"{}{}\", sasl_options={{\"mechanism\": \"DIGEST-MD5\", \"username\": \"{}\", \"password\": \"<password>\"}})\n\
         Clean up:          {} --model {m} destroy   (stops every server)",
        started.elapsed(),
        field("endpoints"),
        field("chroot"),
        field("username"),
        jujusim.display(),
        jujusim.display(),
        jujusim.display(),
        field("endpoints"),
        field("chroot"),
        field("username"),
        jujusim.display(),
    );
    Ok(())
}

/// `cargo build --release -p <package>...`, announced as `what`.
fn build_release(root: &Path, packages: &[&str], what: &str) -> Result<(), String> {
    let mut cmd = cargo();
    cmd.current_dir(root).args(["build", "--release"]);
    for p in packages {
        cmd.args(["-p", p]);
    }
    run(&mut cmd, what)
}

/// `cargo xtask bench [quick]`: everything the benchmark needs, then the benchmark.
fn bench(root: &Path, mode: &str) -> Result<(), String> {
    ensure_zookeeper()?;
    let python = ensure_venv(root)?;
    let charm = pack(root)?;
    let upgrade = pack_upgrade_pair(root)?;
    build_release(
        root,
        &["jujusim", "bench"],
        "building jujusim and the benchmark (release)",
    )?;
    let target = target_dir(root);
    let mut cmd = Command::new(target.join("release/bench"));
    cmd.arg(mode)
        .env("ZK_CHARM_PACKED", &charm)
        .env("ZK_CHARM_A", &upgrade.a)
        .env("ZK_CHARM_B", &upgrade.b)
        .env(
            "ZK_UPGRADE_FALLBACK",
            upgrade.fallback.as_deref().unwrap_or(""),
        )
        .env("JUJUSIM_BIN", target.join("release/jujusim"))
        .env("ZK_TEST_PYTHON", &python);
    run(&mut cmd, &format!("running the benchmark ({mode})"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root();
    let result = match args.first().map(String::as_str) {
        Some("pack") => pack_command(&root, &args[1..]),
        Some("test") => test(&root, &args[1..]),
        Some("demo") => demo(&root),
        Some("bench") => bench(&root, args.get(1).map(String::as_str).unwrap_or("all")),
        _ => Err(
            "usage: cargo xtask demo | pack | test [cargo test args] | bench [all|quick|tenancy|convergence|hooks|juju|tls|upgrade]"
                .into(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}
