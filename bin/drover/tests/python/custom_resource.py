"""A CustomResourceDefinition (apiextensions.k8s.io/v1) applied, Established, then a custom
resource created / listed / watched / patched / replaced / deleted through `CustomObjectsApi`."""

import sys
import threading

from kubernetes import client, watch

from e2e_util import api_client, check, create_namespace, emit, eventually, expect_status

NS = "py-cr"
GROUP, VERSION, PLURAL = "e2e.drover.dev", "v1", "widgets"


def crd():
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "spec": {
                                    "type": "object",
                                    "properties": {
                                        "size": {"type": "integer", "minimum": 1},
                                        "color": {"type": "string"},
                                    },
                                },
                                "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
                            },
                        }
                    },
                }
            ],
        },
    }


def widget(name, labels, spec):
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Widget",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    }


def established(ext):
    got = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    conds = {c.type: c.status for c in (got.status.conditions or [])} if got.status else {}
    return conds.get("Established") == "True" and conds.get("NamesAccepted") == "True"


def main():
    api = api_client(sys.argv[1])
    core, ext, co = client.CoreV1Api(api), client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    create_namespace(core, NS)
    ext.create_custom_resource_definition(crd())
    eventually("the Widget CRD to be Established and NamesAccepted", lambda: established(ext))

    args = (GROUP, VERSION, NS, PLURAL)
    start_rv = eventually("widgets to be served", lambda: co.list_namespaced_custom_object(*args))["metadata"][
        "resourceVersion"
    ]

    events = []
    done = threading.Event()
    errors = []

    def watch_loop():
        w = watch.Watch()
        try:
            for ev in w.stream(co.list_namespaced_custom_object, *args, resource_version=start_rv, timeout_seconds=30):
                md = ev["object"]["metadata"]
                events.append((ev["type"], md["name"], int(md["resourceVersion"])))
                if ev["type"] == "DELETED" and md["name"] == "w1":
                    w.stop()
                    break
        except Exception as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)
        finally:
            done.set()

    threading.Thread(target=watch_loop, daemon=True).start()

    w1 = co.create_namespaced_custom_object(*args, widget("w1", {"team": "a"}, {"size": 1, "color": "red", "junk": 1}))
    check(w1["spec"] == {"size": 1, "color": "red"}, "unknown fields are pruned", spec=w1["spec"])
    co.create_namespaced_custom_object(*args, widget("w2", {"team": "b"}, {"size": 2}))
    expect_status(422, co.create_namespaced_custom_object, *args, widget("bad", {}, {"size": 0}))
    expect_status(409, co.create_namespaced_custom_object, *args, widget("w1", {}, {"size": 1}))

    got = co.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w1")
    check(got["metadata"]["uid"] == w1["metadata"]["uid"], "get returns the created object")
    names = [i["metadata"]["name"] for i in co.list_namespaced_custom_object(*args, label_selector="team=a")["items"]]
    check(names == ["w1"], "label selector team=a", names=names)
    everywhere = co.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
    check(sorted(i["metadata"]["name"] for i in everywhere) == ["w1", "w2"], "cluster-wide list")

    # Merge patch is CustomObjectsApi's default; strategic merge is refused for custom resources.
    got = co.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w1", {"spec": {"color": None, "size": 3}})
    check(got["spec"] == {"size": 3}, "merge patch on a custom resource", spec=got["spec"])
    expect_status(
        415,
        co.patch_namespaced_custom_object,
        GROUP,
        VERSION,
        NS,
        PLURAL,
        "w1",
        {"spec": {"size": 4}},
        _content_type="application/strategic-merge-patch+json",
    )
    # Server-side apply with a field manager.
    got = co.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        NS,
        PLURAL,
        "w1",
        widget("w1", {"team": "a"}, {"color": "blue"}),
        field_manager="py-e2e",
        force=True,
        _content_type="application/apply-patch+yaml",
    )
    check(got["spec"].get("color") == "blue", "apply on a custom resource", spec=got["spec"])
    # The status subresource: the main resource ignores status, /status ignores spec.
    got = co.patch_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "w1", {"status": {"ready": True}})
    check(got.get("status") == {"ready": True}, "status subresource patch", got=got)

    # Replace with a stale resourceVersion: 409.
    stale = co.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w2")
    co.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w2", {"spec": {"size": 5}})
    stale["spec"]["size"] = 6
    expect_status(409, co.replace_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "w2", stale)

    co.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "w1")
    expect_status(404, co.get_namespaced_custom_object, GROUP, VERSION, NS, PLURAL, "w1")

    check(done.wait(30), "watch saw the delete of w1 within 30s (watch stream stalled?)", events=events)
    if errors:
        raise errors[0]
    w1_events = [t for (t, n, _) in events if n == "w1"]
    check(w1_events == ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"], "w1 watch events", ev=w1_events)
    rvs = [rv for (_, _, rv) in events]
    check(rvs == sorted(rvs), "watch resourceVersions increase", rvs=rvs)

    # Deleting the CRD deletes its instances, then the resource stops being served.
    ext.delete_custom_resource_definition(f"{PLURAL}.{GROUP}")
    eventually(
        "the Widget CRD and its instances to be gone",
        lambda: not any(c.metadata.name == f"{PLURAL}.{GROUP}" for c in ext.list_custom_resource_definition().items),
    )
    expect_status(404, co.list_namespaced_custom_object, *args)
    emit({"ok": True, "events": len(events)})


if __name__ == "__main__":
    main()
