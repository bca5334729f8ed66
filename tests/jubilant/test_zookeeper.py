"""The ZooKeeper charm driven through jubilant's public API only (issue 16).

One model for the module; the tests run in order and build on each other, as a charm's
integration tests usually do. Assertions read real behaviour: Juju's status and unit data, an
action's results, and ZooKeeper itself through kazoo with the credentials the charm handed out.
"""

import jubilant
import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, SessionClosedRequireSaslError

APP = "zookeeper"
CLIENT = "client"


def quorum(n):
    return lambda s: (
        jubilant.all_active(s, APP)
        and len(s.apps[APP].units) == n
        and s.apps[APP].app_status.message == f"{n}/{n} members in quorum"
        and jubilant.all_agents_idle(s, APP)
    )


def leader_of(status, app):
    leaders = [n for n, u in status.apps[app].units.items() if u.leader]
    assert len(leaders) == 1, status.apps[app].units
    return leaders[0]


def test_deploy_three_units_reach_quorum(juju: jubilant.Juju, zookeeper_charm):
    juju.deploy(zookeeper_charm, APP, num_units=3)
    status = juju.wait(quorum(3), error=jubilant.any_error)
    app = status.apps[APP]
    assert app.charm_name == "zookeeper"
    assert app.app_status.current == "active"
    assert app.version.startswith("3.8"), app.version
    assert "cluster" in app.relations, app.relations
    assert app.relations["cluster"][0].related_app == APP
    addresses = set()
    for name, unit in app.units.items():
        assert unit.workload_status.current == "active", (name, unit)
        assert unit.juju_status.current == "idle", (name, unit)
        assert unit.machine in status.machines, (name, status.machines)
        addresses.add(unit.public_address)
    assert len(addresses) == 3, addresses
    leader_of(status, APP)
    assert status.model.type == "iaas"


def test_action_through_run(juju: jubilant.Juju):
    task = juju.run(f"{APP}/leader", "get-super-password")
    assert task.success, task
    assert task.status == "completed"
    assert len(task.results["super-password"]) >= 16, task.results
    # The same password from every unit's view: the secret is shared.
    assert juju.run(f"{APP}/0", "get-super-password").results == task.results
    status = juju.run(f"{APP}/0", "get-quorum-status")
    assert status.success, status


def test_run_errors_are_reported_as_juju_does(juju: jubilant.Juju):
    with pytest.raises(ValueError):
        juju.run(f"{APP}/0", "no-such-action")
    with pytest.raises(ValueError):
        juju.run(f"{APP}/9", "get-super-password")


def test_exec_in_a_hook_context(juju: jubilant.Juju):
    task = juju.exec("echo", "bar", "baz", unit=f"{APP}/0")
    assert task.success and task.stdout == "bar baz\n", task
    leader = leader_of(juju.status(), APP)
    assert juju.exec("is-leader", unit=leader).stdout.strip() == "True"
    assert juju.exec("relation-ids cluster", unit=leader).stdout.startswith("cluster:")
    with pytest.raises(jubilant.TaskError) as failed:
        juju.exec("sleep x", unit=f"{APP}/1")
    assert "invalid time" in failed.value.task.stderr
    assert failed.value.task.return_code != 0


def test_config_set_and_read(juju: jubilant.Juju):
    config = juju.config(APP)
    assert config["tick-time"] == 2000, config
    assert config["client-znode-policy"] == "keep", config
    juju.config(APP, {"client-znode-policy": "delete"})
    assert juju.config(APP)["client-znode-policy"] == "delete"
    with pytest.raises(jubilant.CLIError):
        juju.config(APP, {"tick-time": "not-a-number"})
    assert juju.config(APP)["tick-time"] == 2000
    juju.config(APP, reset=["client-znode-policy"])
    assert juju.config(APP)["client-znode-policy"] == "keep"
    juju.wait(quorum(3), error=jubilant.any_error)


def test_client_gets_its_own_znode(juju: jubilant.Juju, client_charm):
    juju.deploy(client_charm, CLIENT)
    juju.integrate(CLIENT, APP)
    status = juju.wait(
        lambda s: jubilant.all_active(s) and jubilant.all_agents_idle(s),
        error=jubilant.any_error,
    )
    assert status.apps[CLIENT].units[f"{CLIENT}/0"].workload_status.message.startswith(
        "connected as relation-"
    )
    assert status.apps[APP].relations["zookeeper"][0].related_app == CLIENT

    info = juju.show_unit(f"{CLIENT}/0")
    assert info.leader and info.charm.startswith("local:")
    rels = [r for r in info.relation_info if r.endpoint == "zookeeper"]
    assert len(rels) == 1, info.relation_info
    data = rels[0].app_data
    assert data["database"] == "/jubilant-client", data
    assert data["username"].startswith("relation-"), data
    assert set(rels[0].related_units) == set(status.apps[APP].units), rels[0].related_units
    # The requirer's own request, as the provider's unit sees it.
    zk_info = juju.show_unit(f"{APP}/0")
    request = [r for r in zk_info.relation_info if r.endpoint == "zookeeper"][0]
    assert request.app_data["database"] == "/jubilant-client"

    # The credentials work, for this client's znode only.
    hosts = data["endpoints"]
    sasl = {"mechanism": "DIGEST-MD5", "username": data["username"], "password": data["password"]}
    zk = KazooClient(hosts=hosts + "/jubilant-client", sasl_options=sasl, timeout=15)
    zk.start(timeout=30)
    try:
        zk.create("/hello", b"from jubilant", makepath=True)
        assert zk.get("/hello")[0] == b"from jubilant"
    finally:
        zk.stop()
        zk.close()
    # Without credentials: refused (the ensemble requires SASL, or the znode's ACL denies).
    anonymous = KazooClient(hosts=hosts, timeout=15)
    anonymous.start(timeout=30)
    try:
        with pytest.raises((NoAuthError, SessionClosedRequireSaslError)):
            anonymous.get_children("/jubilant-client")
    finally:
        anonymous.stop()
        anonymous.close()


def test_secrets(juju: jubilant.Juju):
    owned = [s for s in juju.secrets() if s.owner == APP]
    assert owned, juju.secrets()
    uri = juju.add_secret("backup-target", {"access-key": "ak", "secret-key": "sk"}, info="s3")
    assert str(uri).startswith("secret:")
    juju.grant_secret(uri, APP)
    shown = juju.show_secret(uri, reveal=True)
    assert shown.content == {"access-key": "ak", "secret-key": "sk"}, shown
    assert shown.name == "backup-target" and shown.revision == 1
    access = juju.show_secret(uri).access
    assert any(a.target == f"application-{APP}" for a in access), access


def test_model_config(juju: jubilant.Juju):
    assert juju.model_config()["update-status-hook-interval"] == "5m"
    juju.model_config({"update-status-hook-interval": "10s"})
    assert juju.model_config()["update-status-hook-interval"] == "10s"


def test_scale_up_and_down(juju: jubilant.Juju):
    juju.add_unit(APP)
    juju.wait(quorum(4), error=jubilant.any_error)
    juju.remove_unit(f"{APP}/3")
    status = juju.wait(quorum(3), error=jubilant.any_error)
    assert f"{APP}/3" not in status.apps[APP].units
    assert jubilant.all_active(status, CLIENT)


def test_remove_relation_and_application(juju: jubilant.Juju):
    juju.remove_relation(CLIENT, APP)
    juju.wait(lambda s: jubilant.all_blocked(s, CLIENT) and "zookeeper" not in s.apps[APP].relations)
    juju.remove_application(CLIENT)
    juju.wait(lambda s: CLIENT not in s.apps)


def test_destroy_model(juju: jubilant.Juju):
    model = juju.model
    juju.destroy_model(model, destroy_storage=True, force=True)
    assert juju.model is None
    with pytest.raises(jubilant.CLIError):
        juju.show_model(model)
