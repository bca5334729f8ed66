#!/usr/bin/env python3
"""A ZooKeeper client nobody on this team wrote (kazoo), driven by the end-to-end tests.

Usage: zkclient.py '<json>' where json is
  {"hosts": "h1:2181,h2:2181", "chroot": "/app1" (optional),
   "auth": {"sasl": ["user", "pw"]} | {"digest": ["user", "pw"]} | {},
   "timeout": 10,
   "ops": [["create", "/x", "data", "creator"|"open"|"kafka"], ["get", "/x"], ["set", "/x", "d"],
           ["children", "/"], ["delete", "/x"], ["exists", "/x"], ["get_acls", "/x"],
           ["ensure", "/x"], ["write_seq", "/w", N],
           ["tree_acls", "/"]                      -> {path: ["scheme:id:perms", ...]} of the
                                                     whole tree below (and with) it, /zookeeper
                                                     left out unless asked for,
           ["set_acls", "/x", ACLS], ["create_acl", "/x", "data", ACLS] (makepath)
           where ACLS is [["sasl", "user", "cdrwa"], ["digest_pw", "user", "pw", "rw"],
                          ["world", "anyone", "r"]]]}
"creator" is the session's own identities with all permissions; "kafka" is what Kafka uses
with zookeeper.set.acl=true: the creator with all permissions and everyone with read.
Prints one JSON object: {"connected": bool, "error": str|null, "results": [{"ok": value} | {"error": "NoAuthError"}]}.
Each op is independent: an error in one is recorded and the next runs.
"""
import json
import sys

from kazoo.client import KazooClient
from kazoo.security import ACL, Id, Permissions, make_digest_acl_credential


def check_many(entries):
    """Logs in with each [hosts, chroot, user, password] over SASL; counts the ones that work."""
    ok, failed = 0, []
    for hosts, chroot, user, pw in entries:
        zk = KazooClient(hosts=f"{hosts}{chroot}", timeout=10,
                         sasl_options={"mechanism": "DIGEST-MD5", "username": user, "password": pw})
        try:
            zk.start(timeout=10)
            zk.exists("/")
            ok += 1
        except Exception as e:  # noqa: BLE001
            failed.append([user, type(e).__name__])
        finally:
            try:
                zk.stop()
                zk.close()
            except Exception:  # noqa: BLE001
                pass
    print(json.dumps({"ok": ok, "failed": failed}))


PERMS = {"c": Permissions.CREATE, "d": Permissions.DELETE, "r": Permissions.READ,
         "w": Permissions.WRITE, "a": Permissions.ADMIN}


def perms(letters):
    bits = 0
    for ch in letters:
        bits |= PERMS[ch]
    return bits


def acls_from(spec):
    out = []
    for entry in spec:
        if entry[0] == "digest_pw":
            _, user, pw, letters = entry
            out.append(ACL(perms(letters), Id("digest", make_digest_acl_credential(user, pw))))
        else:
            scheme, ident, letters = entry
            out.append(ACL(perms(letters), Id(scheme, ident)))
    return out


def letters(bits):
    return "".join(ch for ch, b in PERMS.items() if bits & b)


def tree_acls(zk, root):
    out, todo = {}, [root]
    while todo:
        path = todo.pop()
        try:
            acls = zk.get_acls(path)[0]
            kids = zk.get_children(path)
        except Exception:  # noqa: BLE001 - deleted meanwhile
            continue
        out[path] = [f"{a.id.scheme}:{a.id.id}:{letters(a.perms)}" for a in acls]
        for k in kids:
            child = ("" if path == "/" else path) + "/" + k
            if child == "/zookeeper" and root != "/zookeeper":
                continue
            todo.append(child)
    return out


def auth_kwargs(auth):
    """KazooClient arguments for {"sasl": [user, pw]} or {"digest": [user, pw]} (or {}), plus
    {"tls_ca": "/path/ca.pem"} for TLS."""
    kwargs = {}
    if "sasl" in auth:
        user, pw = auth["sasl"]
        kwargs["sasl_options"] = {"mechanism": "DIGEST-MD5", "username": user, "password": pw}
    if "digest" in auth:
        user, pw = auth["digest"]
        kwargs["auth_data"] = [("digest", f"{user}:{pw}")]
    if "tls_ca" in auth:
        # TLS with the CA file the client relation delivered: the server's certificate must
        # chain to it and name the address dialled.
        kwargs.update(use_ssl=True, verify_certs=True, check_hostname=True, ca=auth["tls_ca"])
    return kwargs


def main():
    spec = json.loads(sys.argv[1])
    if "check_many" in spec:
        check_many(spec["check_many"])
        return
    auth = spec.get("auth") or {}
    kwargs = {"hosts": spec["hosts"] + spec.get("chroot", ""), "timeout": float(spec.get("timeout", 10))}
    kwargs.update(auth_kwargs(auth))
    out = {"connected": False, "error": None, "results": []}
    zk = KazooClient(**kwargs)
    try:
        zk.start(timeout=float(spec.get("timeout", 10)))
        out["connected"] = True
    except Exception as e:  # noqa: BLE001 - report, never crash
        out["error"] = type(e).__name__ + ": " + str(e)
        print(json.dumps(out))
        return
    creator = [ACL(Permissions.ALL, Id("auth", ""))]
    kafka = creator + [ACL(Permissions.READ, Id("world", "anyone"))]
    for op in spec.get("ops", []):
        try:
            kind = op[0]
            if kind == "create":
                mode = op[3] if len(op) > 3 else "creator"
                acl = {"creator": creator, "kafka": kafka, "open": None}[mode]
                value = zk.create(op[1], op[2].encode(), acl=acl, makepath=False)
            elif kind == "create_acl":
                value = zk.create(op[1], op[2].encode(), acl=acls_from(op[3]), makepath=True)
            elif kind == "set_acls":
                zk.set_acls(op[1], acls_from(op[2]))
                value = True
            elif kind == "tree_acls":
                value = tree_acls(zk, op[1])
            elif kind == "ensure":
                value = zk.ensure_path(op[1])
            elif kind == "get":
                value = zk.get(op[1])[0].decode()
            elif kind == "set":
                zk.set(op[1], op[2].encode())
                value = True
            elif kind == "children":
                value = sorted(zk.get_children(op[1]))
            elif kind == "delete":
                zk.delete(op[1], recursive=True)
                value = True
            elif kind == "exists":
                value = zk.exists(op[1]) is not None
            elif kind == "get_acls":
                value = [f"{a.id.scheme}:{a.id.id}:{a.perms}" for a in zk.get_acls(op[1])[0]]
            elif kind == "write_for":
                # Sequential writes for op[2] seconds, surviving server restarts: a write that
                # fails with a connection error is retried (after checking whether it landed).
                # Returns the acknowledged paths.
                import time
                from kazoo.exceptions import ConnectionLoss, OperationTimeoutError, SessionExpiredError, NodeExistsError
                from kazoo.retry import KazooRetry
                deadline = time.time() + float(op[2])
                acked, retried, i = [], 0, 0
                while time.time() < deadline:
                    path = f"{op[1]}/w{i:06d}"
                    try:
                        zk.create(path, b"x", acl=creator)
                        acked.append(path)
                        i += 1
                    except NodeExistsError:
                        acked.append(path)  # the earlier, unacknowledged attempt landed
                        i += 1
                    except (ConnectionLoss, OperationTimeoutError, SessionExpiredError):
                        retried += 1
                        time.sleep(0.05)
                value = {"acked": acked, "retried": retried}
            elif kind == "write_seq":
                # Sequential acknowledged writes: returns how many were acknowledged.
                n = 0
                for i in range(int(op[2])):
                    zk.create(f"{op[1]}/w{i:06d}", b"x", acl=creator)
                    n += 1
                value = n
            else:
                raise ValueError(f"unknown op {kind}")
            out["results"].append({"ok": value})
        except Exception as e:  # noqa: BLE001
            out["results"].append({"error": type(e).__name__})
    try:
        zk.stop()
        zk.close()
    except Exception:  # noqa: BLE001
        pass
    print(json.dumps(out))


if __name__ == "__main__":
    main()
