#!/usr/bin/env python3
"""Acknowledged writes, and a per-server read-back check of them (kazoo).

Usage:
  writes.py write '<json>'  {"hosts": "h1:2181,...", "auth": {"sasl": [user, pw]}, "root": "/it",
                             "acked": "/path/acked.txt", "stop": "/path/stop-file"}
                             (auth may add {"tls_ca": "/path/ca.pem"}: TLS)
      Until the stop file exists: one multi-operation transaction per write,
      set_data(<root>/counter, n, version=v) + create(<root>/counter/<n>). Each write whose
      commit() succeeded is appended to the acked file (one number per line, flushed) before the
      next one starts. A write whose outcome is unknown (the connection was lost) is looked up
      once the session is back (after a sync); if it landed it is counted too, and written as
      "<n> landed". (A transaction's version conflict comes back in its results, not as an
      exception: the counter is read again.) Prints {"acked": N, "landed": M, "retries": K,
      "max_gap_s": G} at the end (G: the longest time between two acknowledged writes).
  writes.py check '<json>'  {"hosts": ["h1:2181", ...], "auth": ..., "root": "/it",
                             "acked": "/path/acked.txt"}
      Reads each server on its own (a session to that server only, after a sync) and reports,
      per server: acknowledged writes it lacks (as ranges), the counter's value and version, the
      number of children, and gaps in 1..counter. Prints one JSON object.
"""
import json
import os
import socket
import sys
import time

from kazoo.client import KazooClient
from kazoo.exceptions import (ConnectionClosedError, ConnectionLoss, NodeExistsError,
                              NoNodeError, OperationTimeoutError, SessionExpiredError)
from kazoo.retry import KazooRetry

from zkclient import auth_kwargs

LOST = (ConnectionLoss, ConnectionClosedError, OperationTimeoutError, SessionExpiredError)


def client(hosts, auth, timeout=10.0):
    kwargs = {"hosts": hosts, "timeout": timeout,
              "connection_retry": KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0)}
    kwargs.update(auth_kwargs(auth))
    zk = KazooClient(**kwargs)
    zk.start(timeout=60)
    return zk


def settled(zk, fn, *args):
    """Runs fn until it does not fail on a lost connection (waiting for the session)."""
    while True:
        try:
            return fn(*args)
        except LOST:
            time.sleep(0.1)


def write(spec):
    root = spec["root"]
    counter = f"{root}/counter"
    zk = client(spec["hosts"], spec.get("auth") or {})
    settled(zk, zk.ensure_path, root)
    try:
        settled(zk, zk.create, counter, b"0")
    except NodeExistsError:
        pass
    acked, landed, retries = 0, 0, 0
    # The longest time between two acknowledged writes (what an outage costs a client).
    last_ack, max_gap = None, 0.0
    out = open(spec["acked"], "a", buffering=1)

    def resync():
        settled(zk, zk.sync, counter)
        data, stat = settled(zk, zk.get, counter)
        return int(data.decode() or 0), stat.version

    n, v = resync()
    while not os.path.exists(spec["stop"]):
        nxt = n + 1
        child = f"{counter}/{nxt:08d}"
        try:
            t = zk.transaction()
            t.set_data(counter, str(nxt).encode(), version=v)
            t.create(child, b"x")
            results = t.commit()
            if any(isinstance(r, Exception) for r in results):
                retries += 1
                n, v = resync()
                continue
            out.write(f"{nxt}\n")
            acked += 1
            now = time.monotonic()
            if last_ack is not None:
                max_gap = max(max_gap, now - last_ack)
            last_ack = now
            n, v = nxt, v + 1
        except LOST:
            retries += 1
            # Unknown outcome: look once the session is back.
            n, v = resync()
            try:
                there = settled(zk, zk.exists, child) is not None
            except NoNodeError:
                there = False
            if there and n >= nxt:
                out.write(f"{nxt} landed\n")
                landed += 1
    out.close()
    zk.stop()
    zk.close()
    print(json.dumps({"acked": acked, "landed": landed, "retries": retries,
                      "max_gap_s": round(max_gap, 3)}))


def ranges(nums):
    out, start, prev = [], None, None
    for x in sorted(nums):
        if start is None:
            start = prev = x
        elif x == prev + 1:
            prev = x
        else:
            out.append([start, prev])
            start = prev = x
    if start is not None:
        out.append([start, prev])
    return out


def mntr(host, key):
    """One value of a server's `mntr` (None if it does not answer)."""
    h, p = host.rsplit(":", 1)
    try:
        with socket.create_connection((h, int(p)), timeout=3) as s:
            s.sendall(b"mntr")
            s.shutdown(socket.SHUT_WR)
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    for line in data.decode(errors="replace").splitlines():
        k, _, v = line.partition("\t")
        if k == key:
            return v.strip()
    return None


def check(spec):
    counter = f"{spec['root']}/counter"
    acked = set()
    with open(spec["acked"]) as f:
        for line in f:
            if line.strip():
                acked.add(int(line.split()[0]))
    report = {"acked": len(acked), "servers": {}}
    for host in spec["hosts"]:
        entry = {}
        try:
            zk = client(host, spec.get("auth") or {}, timeout=15.0)
            zk.sync(counter)
            data, stat = zk.get(counter)
            present = {int(c) for c in zk.get_children(counter)}
            value = int(data.decode() or 0)
            missing = sorted(acked - present)
            entry = {
                "counter": value,
                "counter_version": stat.version,
                "children": len(present),
                "missing_acked": len(missing),
                "missing_ranges": ranges(missing),
                "gaps": ranges(set(range(1, value + 1)) - present),
                "consistent": stat.version == len(present) == value,
                "digest_mismatches": mntr(host, "zk_digest_mismatches_count"),
            }
            zk.stop()
            zk.close()
        except Exception as e:  # noqa: BLE001 - report, never crash
            entry = {"error": f"{type(e).__name__}: {e}"}
        report["servers"][host] = entry
    print(json.dumps(report))


def main():
    mode, spec = sys.argv[1], json.loads(sys.argv[2])
    {"write": write, "check": check}[mode](spec)


if __name__ == "__main__":
    main()
