"""Fixtures of the jubilant suite (issue 16), written against jubilant's public API only.

The same files run against jujusim and against a real Juju 3.6 controller:

- jujusim (what ``cargo xtask test`` does through ``tests/jubilant.rs``): ``JUJU`` names the
  jujusim binary under the name ``juju`` (a symlink) and ``JUJUSIM_ROOT`` a scratch directory
  for its models.
- a real controller: leave ``JUJU`` unset (jubilant then runs ``juju`` from ``PATH``), bootstrap
  or select a machine controller, and run ``pytest tests/jubilant`` from the repository root
  with ``ZK_CHARM_PACKED`` naming a packed charm (``cargo xtask pack`` writes
  ``target/charm/zookeeper.charm``). Nothing in the tests changes.
"""

import os
import pathlib
import secrets
import zipfile

import jubilant
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _cli_binary():
    return os.environ.get("JUJU") or None


@pytest.fixture(scope="session")
def zookeeper_charm() -> pathlib.Path:
    path = pathlib.Path(
        os.environ.get("ZK_CHARM_PACKED") or ROOT / "target/charm/zookeeper.charm"
    )
    assert path.is_file(), f"{path} missing: run `cargo xtask pack` or set ZK_CHARM_PACKED"
    return path.resolve()


@pytest.fixture(scope="session")
def client_charm(tmp_path_factory) -> pathlib.Path:
    """The client test charm packed as a .charm (a zip keeping the executable bits)."""
    src = pathlib.Path(__file__).parent / "client-charm"
    out = tmp_path_factory.mktemp("charms") / "jubilant-client.charm"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(src.rglob("*")):
            if f.is_file():
                info = zipfile.ZipInfo(str(f.relative_to(src)))
                info.external_attr = (f.stat().st_mode & 0o777) << 16
                z.writestr(info, f.read_bytes())
    return out


@pytest.fixture(scope="module")
def juju(request):
    """A fresh model for the module, destroyed afterwards (also when a test failed)."""
    juju = jubilant.Juju(cli_binary=_cli_binary(), wait_timeout=300)
    name = "jubilant-" + secrets.token_hex(4)
    juju.add_model(name)
    try:
        yield juju
    finally:
        if request.session.testsfailed:
            print(juju.debug_log(limit=300))
        if juju.model is not None:
            juju.destroy_model(name, destroy_storage=True, force=True)
