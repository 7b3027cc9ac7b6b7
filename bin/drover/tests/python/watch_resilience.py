"""An informer-style list + watch loop over ConfigMaps in one namespace, written the way a
Python controller does it: list, watch from the list's resourceVersion, on 410 relist, on a
connection error retry from the last resourceVersion. The scenario survives a server restart
and a forced 410, and the loop's state must end equal to a fresh list (names + resourceVersions).

Protocol with the Rust test (tests/e2e_python.rs): this script prints `{"request": "restart"}`
on stdout and waits for a line on stdin once the server has been restarted on the same port.
The last stdout line is the JSON summary.
"""

import json
import os
import sys
import threading
import time

from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from e2e_util import api_client, check, create_namespace, emit, eventually, log

NS = "py-informer"
NOISE_NS = "py-noise"
# Negative control: a naive loop that retries the same resourceVersion after a 410 instead of
# relisting. The convergence check must flag it (tests/e2e_python.rs runs both).
BROKEN = os.environ.get("DROVER_E2E_BROKEN_INFORMER") == "ignore-410"
CONVERGE_TIMEOUT = 5 if BROKEN else 30


class Informer:
    """list → watch → (410 → relist | connection error → rewatch from last RV)."""

    def __init__(self, core):
        self.core = core
        self.lock = threading.Lock()
        self.state = {}  # name -> resourceVersion
        self.rv = None  # last resourceVersion seen; None = must (re)list
        self.stats = {"lists": 0, "watches": 0, "gone": 0, "gone_events": 0, "gone_http": 0, "conn_errors": 0, "events": 0}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                if self.rv is None:
                    self.relist()
                self.watch_once()
            except ApiException as e:
                if e.status == 410:
                    # ERROR event (raised by Watch.stream because timeout_seconds disables its own
                    # single retry) or an HTTP 410: our resourceVersion is compacted away.
                    with self.lock:
                        self.stats["gone"] += 1
                        self.stats["gone_events" if e.reason and "Expired" in e.reason else "gone_http"] += 1
                        if not BROKEN:
                            self.rv = None
                    log(f"informer: 410 ({e.reason}); {'retrying the same resourceVersion' if BROKEN else 'relisting'}")
                    if BROKEN:
                        time.sleep(0.2)
                else:
                    self.connection_error(e)
            except Exception as e:  # noqa: BLE001 - server restarting: refused, reset, broken chunk
                self.connection_error(e)

    def connection_error(self, e):
        with self.lock:
            self.stats["conn_errors"] += 1
        log(f"informer: {type(e).__name__}: {str(e)[:200]}; retrying")
        time.sleep(0.2)

    def relist(self):
        got = self.core.list_namespaced_config_map(NS, _request_timeout=10)
        with self.lock:
            self.state = {i.metadata.name: i.metadata.resource_version for i in got.items}
            self.rv = got.metadata.resource_version
            self.stats["lists"] += 1

    def watch_once(self):
        w = watch.Watch()
        with self.lock:
            self.stats["watches"] += 1
            rv = self.rv
        # timeout_seconds: the server ends the watch (so we notice `stop`), and Watch.stream
        # raises 410 instead of retrying it silently; the read timeout catches a dead socket.
        for ev in w.stream(
            self.core.list_namespaced_config_map, NS, resource_version=rv, timeout_seconds=5, _request_timeout=(5, 15)
        ):
            md = ev["object"].metadata
            with self.lock:
                self.stats["events"] += 1
                if ev["type"] in ("ADDED", "MODIFIED"):
                    self.state[md.name] = md.resource_version
                elif ev["type"] == "DELETED":
                    self.state.pop(md.name, None)
                self.rv = md.resource_version
            if self.stop.is_set():
                w.stop()

    def snapshot(self):
        with self.lock:
            return dict(self.state), self.rv, dict(self.stats)


def fresh(core):
    return {i.metadata.name: i.metadata.resource_version for i in core.list_namespaced_config_map(NS).items}


def converged(core, inf, what):
    def equal():
        want = fresh(core)
        got, _, _ = inf.snapshot()
        return got == want

    try:
        eventually(f"the informer to equal a fresh list ({what})", equal, timeout=CONVERGE_TIMEOUT)
    except AssertionError:
        got, rv, stats = inf.snapshot()
        raise AssertionError(f"not converged {what}: informer {got} (rv {rv}, {stats}) != fresh list {fresh(core)}")


def retrying(what, fn):
    """A write right after a restart: retry connection errors (not API errors) for a while."""
    return eventually(what, lambda: fn() or True, timeout=30, interval=0.2)


def request_restart():
    print(json.dumps({"request": "restart"}), flush=True)
    line = sys.stdin.readline()
    check(line.strip() == "restarted", "the test restarted the server", line=line)


def cm(name, data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def main():
    core = client.CoreV1Api(api_client(sys.argv[1]))  # the writer
    create_namespace(core, NS)
    create_namespace(core, NOISE_NS)
    inf = Informer(client.CoreV1Api(api_client(sys.argv[1])))
    thread = threading.Thread(target=inf.run, daemon=True)
    thread.start()

    for i in range(5):
        core.create_namespaced_config_map(NS, cm(f"cm-{i}", {"v": "0"}))
    core.patch_namespaced_config_map("cm-0", NS, {"data": {"v": "1"}})
    core.delete_namespaced_config_map("cm-1", NS)
    converged(core, inf, "after creates, an update and a delete")

    # 1. A restart: the watch breaks, the loop reconnects and resumes (or relists).
    _, _, before = inf.snapshot()
    request_restart()
    retrying("a write after the restart", lambda: core.patch_namespaced_config_map("cm-2", NS, {"data": {"v": "2"}}))
    core.create_namespaced_config_map(NS, cm("cm-after-restart", {"v": "0"}))
    core.delete_namespaced_config_map("cm-3", NS)
    converged(core, inf, "after a restart")
    _, _, after = inf.snapshot()
    check(after["conn_errors"] + after["watches"] > before["conn_errors"] + before["watches"], "the loop reconnected")

    # 2. A forced 410: the informer's namespace is quiet while >50 writes elsewhere move the
    # datastore past it (--datastore-max-history 50), so its resourceVersion is compacted away.
    # A restart empties the watch cache, so the rewatch from that resourceVersion must be 410.
    _, stale_rv, before = inf.snapshot()
    core.create_namespaced_config_map(NOISE_NS, cm("noise", {"n": "0"}))
    for n in range(1, 120):
        core.patch_namespaced_config_map("noise", NOISE_NS, {"data": {"n": str(n)}})

    def compacted():
        try:
            core.list_namespaced_config_map(NS, resource_version=stale_rv, resource_version_match="Exact")
            return False
        except ApiException as e:
            return e.status == 410

    eventually(f"the datastore to compact past resourceVersion {stale_rv}", compacted, timeout=30, interval=0.25)
    request_restart()
    retrying("a write after the second restart", lambda: core.create_namespaced_config_map(NS, cm("cm-after-410", {"v": "0"})))
    core.patch_namespaced_config_map("cm-4", NS, {"data": {"v": "4"}})
    converged(core, inf, "after a forced 410")
    state, rv, stats = inf.snapshot()
    check(stats["gone"] > before["gone"], "the rewatch from a compacted resourceVersion got 410", stats=stats, stale=stale_rv)
    check(stats["lists"] > before["lists"], "a 410 made the loop relist", stats=stats)

    inf.stop.set()
    thread.join(timeout=20)
    check(not thread.is_alive(), "the informer loop stopped within 20s (watch not honouring timeoutSeconds?)")
    want = fresh(core)
    check(state == want, "final state equals a fresh list", state=state, fresh=want)
    emit({"ok": True, "stats": stats, "objects": len(state), "stale_rv": stale_rv, "rv": rv})


if __name__ == "__main__":
    main()
