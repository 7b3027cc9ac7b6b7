"""ConfigMap create / list (label selector) / watch / patch (strategic, merge, JSON, apply) /
update conflict / delete, through the Python `kubernetes` client."""

import sys
import threading

from kubernetes import client, watch

from e2e_util import api_client, check, create_namespace, emit, expect_status

NS = "py-crud"


def cm(name, labels, data):
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": data}


def main():
    core = client.CoreV1Api(api_client(sys.argv[1]))
    create_namespace(core, NS)
    start_rv = core.list_namespaced_config_map(NS).metadata.resource_version
    check(start_rv, "an empty list still carries a resourceVersion")

    # A watch from the list's resourceVersion sees every change that follows, in order.
    events = []
    watch_done = threading.Event()
    watch_error = []

    def watch_loop():
        w = watch.Watch()
        try:
            for ev in w.stream(core.list_namespaced_config_map, NS, resource_version=start_rv, timeout_seconds=30):
                obj = ev["object"]
                events.append((ev["type"], obj.metadata.name, int(obj.metadata.resource_version)))
                if ev["type"] == "DELETED" and obj.metadata.name == "web":
                    w.stop()
                    break
        except Exception as e:  # noqa: BLE001 - re-raised in the main thread
            watch_error.append(e)
        finally:
            watch_done.set()

    watcher = threading.Thread(target=watch_loop, daemon=True)
    watcher.start()

    web = core.create_namespaced_config_map(NS, cm("web", {"app": "web", "tier": "front"}, {"a": "1"}))
    core.create_namespaced_config_map(NS, cm("db", {"app": "db"}, {"b": "2"}))
    core.create_namespaced_config_map(NS, cm("web-canary", {"app": "web"}, {"c": "3"}))
    check(web.metadata.uid and web.metadata.resource_version, "create returns uid and resourceVersion", web=web.metadata)
    expect_status(409, core.create_namespaced_config_map, NS, cm("web", {}, {}))

    names = sorted(i.metadata.name for i in core.list_namespaced_config_map(NS, label_selector="app=web").items)
    check(names == ["web", "web-canary"], "label selector app=web", names=names)
    names = sorted(i.metadata.name for i in core.list_namespaced_config_map(NS, label_selector="app!=web,app").items)
    check(names == ["db"], "label selector app!=web,app", names=names)
    names = sorted(i.metadata.name for i in core.list_namespaced_config_map(NS, label_selector="app in (db, web),tier").items)
    check(names == ["web"], "set-based selector with existence", names=names)
    names = sorted(i.metadata.name for i in core.list_namespaced_config_map(NS, field_selector="metadata.name=db").items)
    check(names == ["db"], "field selector metadata.name=db", names=names)

    # Paginated list (our 3 plus the namespace's kube-root-ca.crt): each object exactly once.
    everything = sorted(i.metadata.name for i in core.list_namespaced_config_map(NS).items)
    seen, token = [], None
    while True:
        page = core.list_namespaced_config_map(NS, limit=2, _continue=token) if token else core.list_namespaced_config_map(NS, limit=2)
        check(len(page.items) <= 2, "limit 2", n=len(page.items))
        seen += [i.metadata.name for i in page.items]
        token = page.metadata._continue
        if not token:
            break
    check(sorted(seen) == everything and len(everything) >= 3, "pages cover every object once", seen=seen, all=everything)

    # Strategic merge patch (the client's default for a dict body on a built-in kind).
    got = core.patch_namespaced_config_map("web", NS, {"data": {"b": "2"}, "metadata": {"labels": {"tier": None}}})
    check(got.data == {"a": "1", "b": "2"}, "strategic merge adds a key", data=got.data)
    check(got.metadata.labels == {"app": "web"}, "strategic merge null deletes a label", labels=got.metadata.labels)

    # JSON merge patch: null deletes.
    got = core.patch_namespaced_config_map(
        "web", NS, {"data": {"a": None, "c": "3"}}, _content_type="application/merge-patch+json"
    )
    check(got.data == {"b": "2", "c": "3"}, "merge patch null deletes a key", data=got.data)

    # JSON patch (a list body) with a failing test op: 422 and no change.
    expect_status(
        422, core.patch_namespaced_config_map, "web", NS, [{"op": "test", "path": "/data/b", "value": "nope"}]
    )
    got = core.patch_namespaced_config_map("web", NS, [{"op": "replace", "path": "/data/b", "value": "22"}])
    check(got.data == {"b": "22", "c": "3"}, "JSON patch replace", data=got.data)

    # Server-side apply with a field manager, then a conflicting apply by another manager.
    applied = core.patch_namespaced_config_map(
        "web",
        NS,
        cm("web", {"app": "web"}, {"owned": "by-py"}),
        field_manager="py-e2e",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    check(applied.data.get("owned") == "by-py", "apply sets the field", data=applied.data)
    managers = {(m.manager, m.operation) for m in applied.metadata.managed_fields or []}
    check(("py-e2e", "Apply") in managers, "managedFields records the applier", managers=sorted(managers))
    conflict = expect_status(
        409,
        core.patch_namespaced_config_map,
        "web",
        NS,
        cm("web", {}, {"owned": "by-other"}),
        field_manager="other-e2e",
        _content_type="application/apply-patch+yaml",
    )
    check("py-e2e" in (conflict.body or ""), "apply conflict names the owning manager", body=conflict.body)

    # Update with a stale resourceVersion: 409 Conflict; with the current one: accepted.
    stale = core.read_namespaced_config_map("web", NS)
    core.patch_namespaced_config_map("web", NS, {"data": {"bump": "1"}})
    stale.data["x"] = "y"
    expect_status(409, core.replace_namespaced_config_map, "web", NS, stale)
    fresh = core.read_namespaced_config_map("web", NS)
    fresh.data["x"] = "y"
    replaced = core.replace_namespaced_config_map("web", NS, fresh)
    check(int(replaced.metadata.resource_version) > int(fresh.metadata.resource_version), "update bumps RV")

    core.delete_namespaced_config_map("web", NS)
    expect_status(404, core.read_namespaced_config_map, "web", NS)
    expect_status(404, core.delete_namespaced_config_map, "web", NS)

    check(watch_done.wait(30), "watch saw the delete of web within 30s (watch stream stalled?)", events=events)
    if watch_error:
        raise watch_error[0]
    web_events = [t for (t, n, _) in events if n == "web"]
    # Six successful writes after the create (strategic, merge, JSON, apply, bump, replace).
    check(web_events[0] == "ADDED" and web_events[-1] == "DELETED", "web's events start ADDED, end DELETED", ev=web_events)
    check(all(t == "MODIFIED" for t in web_events[1:-1]) and len(web_events) == 2 + 6, "one MODIFIED per write", ev=web_events)
    rvs = [rv for (_, _, rv) in events]
    check(rvs == sorted(rvs) and len(set(rvs)) == len(rvs), "watch resourceVersions strictly increase", rvs=rvs)
    ours = {n for (_, n, _) in events} - {"kube-root-ca.crt"}
    check(ours == {"web", "db", "web-canary"}, "watch saw every object", ev=events)

    emit({"ok": True, "events": len(events)})


if __name__ == "__main__":
    main()
