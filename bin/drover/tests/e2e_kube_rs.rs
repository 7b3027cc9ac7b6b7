//! kube-rs (the client and controller runtime our own controllers are modelled on) against the
//! real `drover` binary: ConfigMap and custom-resource CRUD, watch, merge/strategic/apply
//! patches, and a `reflector` whose store survives a restart and a forced 410 and ends equal
//! to a fresh list.
mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::Server;
use futures_util::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, VersionMatch,
    WatchEvent, WatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::GroupVersionKind;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use kube::{Client, Config, ResourceExt};
use serde_json::{Value, json};

const RETENTION_FLAGS: [&str; 4] = [
    "--datastore-history-retention",
    "1s",
    "--datastore-max-history",
    "50",
];

/// A kube-rs client from the server's generated kubeconfig (client certificate + CA).
async fn client(s: &Server) -> Client {
    let kubeconfig = Kubeconfig::read_from(s.kubeconfig()).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config from drover's kubeconfig");
    Client::try_from(config).expect("kube client")
}

/// Runs `fut`, failing the test with `what` if it takes longer than `secs`.
async fn within<T>(secs: u64, what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(secs), fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {secs}s: {what}"))
}

fn from_json<T: k8s_openapi::serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).expect("valid object")
}

fn configmap(name: &str, labels: Value, data: Value) -> ConfigMap {
    from_json(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": data}),
    )
}

async fn create_namespace(client: &Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    api.create(
        &PostParams::default(),
        &from_json(json!({"metadata": {"name": name}})),
    )
    .await
    .expect("create namespace");
}

/// The API status code of a failed call (panics on success or a non-API error).
fn code<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> u16 {
    match r {
        Err(kube::Error::Api(status)) => status.code,
        other => panic!("expected an API error status, got {other:?}"),
    }
}

fn rv_of(o: &impl ResourceExt) -> u64 {
    o.resource_version()
        .expect("resourceVersion")
        .parse()
        .expect("numeric resourceVersion")
}

fn data(cm: &ConfigMap) -> BTreeMap<String, String> {
    cm.data.clone().unwrap_or_default()
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn names<K: ResourceExt>(items: &[K]) -> Vec<String> {
    let mut n: Vec<String> = items.iter().map(ResourceExt::name_any).collect();
    n.sort();
    n
}

/// Collects `(type, name, resourceVersion)` from a watch until `name` is deleted.
async fn collect_until_deleted<K: ResourceExt>(
    stream: impl futures_util::Stream<Item = kube::Result<WatchEvent<K>>>,
    name: &str,
) -> Vec<(&'static str, String, u64)> {
    let mut stream = std::pin::pin!(stream);
    let mut seen = Vec::new();
    while let Some(ev) = stream.try_next().await.expect("watch stream") {
        let (kind, obj) = match ev {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch error event: {e:?}"),
        };
        let done = kind == "DELETED" && obj.name_any() == name;
        seen.push((kind, obj.name_any(), rv_of(&obj)));
        if done {
            return seen;
        }
    }
    panic!("watch ended before {name} was deleted: {seen:?}");
}

// === ConfigMap CRUD ===

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_configmap_create_list_watch_patch_apply_delete() {
    let s = Server::start();
    let client = client(&s).await;
    within(
        120,
        "ConfigMap CRUD through kube-rs (a request that never answers?)",
        async {
            create_namespace(&client, "rs-crud").await;
            let api: Api<ConfigMap> = Api::namespaced(client.clone(), "rs-crud");
            let start = api
                .list(&ListParams::default())
                .await
                .expect("list")
                .metadata
                .resource_version
                .expect("list RV");

            // A watch from the list's resourceVersion, collected until `web` is deleted.
            let stream = api
                .watch(&WatchParams::default().timeout(60), &start)
                .await
                .expect("watch");
            let collector = tokio::spawn(collect_until_deleted(stream, "web"));

            let web = api
                .create(
                    &PostParams::default(),
                    &configmap(
                        "web",
                        json!({"app": "web", "tier": "front"}),
                        json!({"a": "1"}),
                    ),
                )
                .await
                .expect("create web");
            assert!(
                web.uid().is_some() && web.resource_version().is_some(),
                "{web:?}"
            );
            // The resourceVersion each write to `web` returned, to match against the watch.
            let mut writes = vec![rv_of(&web)];
            api.create(
                &PostParams::default(),
                &configmap("db", json!({"app": "db"}), json!({"b": "2"})),
            )
            .await
            .expect("create db");
            api.create(
                &PostParams::default(),
                &configmap("web-canary", json!({"app": "web"}), json!({})),
            )
            .await
            .expect("create canary");
            assert_eq!(
                code(
                    api.create(
                        &PostParams::default(),
                        &configmap("web", json!({}), json!({}))
                    )
                    .await
                ),
                409
            );

            assert_eq!(
                names(
                    &api.list(&ListParams::default().labels("app=web"))
                        .await
                        .expect("list")
                        .items
                ),
                ["web", "web-canary"]
            );
            assert_eq!(
                names(
                    &api.list(&ListParams::default().labels("app notin (web),app"))
                        .await
                        .expect("list")
                        .items
                ),
                ["db"]
            );
            assert_eq!(
                names(
                    &api.list(&ListParams::default().fields("metadata.name=db"))
                        .await
                        .expect("list")
                        .items
                ),
                ["db"]
            );
            // Paginated list (3 objects plus the namespace's kube-root-ca.crt): every one exactly once.
            let all = names(&api.list(&ListParams::default()).await.expect("list").items);
            let mut paged = Vec::new();
            let mut token = None::<String>;
            loop {
                let lp = ListParams::default().limit(2);
                let lp = match &token {
                    Some(t) => lp.continue_token(t),
                    None => lp,
                };
                let page = api.list(&lp).await.expect("page");
                assert!(
                    page.items.len() <= 2,
                    "limit 2 returned {}",
                    page.items.len()
                );
                paged.extend(page.items.iter().map(ResourceExt::name_any));
                match page.metadata.continue_.filter(|t| !t.is_empty()) {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            paged.sort();
            assert_eq!(paged, all);
            assert!(all.len() >= 3, "{all:?}");

            // JSON merge patch: null deletes a key.
            let got = api
                .patch(
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"a": null, "m": "1"}})),
                )
                .await
                .expect("merge patch");
            writes.push(rv_of(&got));
            assert_eq!(data(&got), map(&[("m", "1")]));
            // Strategic merge patch.
            let got = api
                .patch(
                    "web",
                    &PatchParams::default(),
                    &Patch::Strategic(
                        json!({"data": {"s": "1"}, "metadata": {"labels": {"tier": null}}}),
                    ),
                )
                .await
                .expect("strategic patch");
            writes.push(rv_of(&got));
            assert_eq!(data(&got), map(&[("m", "1"), ("s", "1")]));
            assert_eq!(got.labels(), &map(&[("app", "web")]));

            // Server-side apply: the field manager owns what it applied; a second manager that
            // applies the same field without force gets 409, with force takes it over.
            let ssa = PatchParams::apply("kube-rs-e2e");
            let applied = api
                .patch(
                    "web",
                    &ssa,
                    &Patch::Apply(configmap(
                        "web",
                        json!({"app": "web"}),
                        json!({"owned": "rs"}),
                    )),
                )
                .await
                .expect("apply");
            writes.push(rv_of(&applied));
            assert_eq!(data(&applied).get("owned").map(String::as_str), Some("rs"));
            let managers: Vec<(String, String)> = applied
                .managed_fields()
                .iter()
                .map(|m| {
                    (
                        m.manager.clone().unwrap_or_default(),
                        m.operation.clone().unwrap_or_default(),
                    )
                })
                .collect();
            assert!(
                managers.contains(&("kube-rs-e2e".into(), "Apply".into())),
                "managedFields: {managers:?}"
            );
            let other = PatchParams::apply("kube-rs-other");
            let conflict = api
                .patch(
                    "web",
                    &other,
                    &Patch::Apply(configmap("web", json!({}), json!({"owned": "other"}))),
                )
                .await;
            match conflict {
                Err(kube::Error::Api(st)) => {
                    assert_eq!(st.code, 409, "{st:?}");
                    assert!(
                        st.message.contains("kube-rs-e2e"),
                        "conflict should name the owner: {st:?}"
                    );
                }
                other => panic!("conflicting apply should be 409, got {other:?}"),
            }
            let forced = api
                .patch(
                    "web",
                    &other.clone().force(),
                    &Patch::Apply(configmap("web", json!({}), json!({"owned": "other"}))),
                )
                .await
                .expect("forced apply");
            writes.push(rv_of(&forced));
            assert_eq!(
                data(&forced).get("owned").map(String::as_str),
                Some("other")
            );
            // Re-applying the first manager's config without the field gives it up (but the field
            // now belongs to kube-rs-other, so it stays).
            let reapplied = api
                .patch(
                    "web",
                    &ssa,
                    &Patch::Apply(configmap("web", json!({"app": "web"}), json!({}))),
                )
                .await
                .expect("re-apply");
            writes.push(rv_of(&reapplied));
            assert_eq!(
                data(&reapplied).get("owned").map(String::as_str),
                Some("other")
            );

            // Replace with a stale resourceVersion: 409; with the current one: accepted.
            let stale = api.get("web").await.expect("get");
            writes.push(rv_of(
                &api.patch(
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"data": {"bump": "1"}})),
                )
                .await
                .expect("bump"),
            ));
            assert_eq!(
                code(api.replace("web", &PostParams::default(), &stale).await),
                409
            );
            let mut fresh = api.get("web").await.expect("get");
            fresh
                .data
                .get_or_insert_default()
                .insert("x".into(), "y".into());
            let replaced = api
                .replace("web", &PostParams::default(), &fresh)
                .await
                .expect("replace");
            writes.push(rv_of(&replaced));
            assert_eq!(data(&replaced).get("x").map(String::as_str), Some("y"));

            api.delete("web", &DeleteParams::default())
                .await
                .expect("delete");
            assert_eq!(code(api.get("web").await), 404);
            assert!(api.get_opt("web").await.expect("get_opt").is_none());

            let seen = within(
                30,
                "the watch to deliver web's DELETED event (watch stream stalled?)",
                collector,
            )
            .await
            .expect("collector");
            // Every committed write to `web` is one event carrying that write's resourceVersion. A
            // write that changes nothing commits nothing and returns the unchanged resourceVersion
            // (drover treats the re-apply of `data: {}` that way; upstream may record ownership of
            // the empty map in managedFields and commit), so repeated resourceVersions fold.
            writes.dedup();
            let web_events: Vec<(&str, u64)> = seen
                .iter()
                .filter(|(_, n, _)| n == "web")
                .map(|(k, _, rv)| (*k, *rv))
                .collect();
            let mut want: Vec<(&str, u64)> = writes
                .iter()
                .enumerate()
                .map(|(i, rv)| (if i == 0 { "ADDED" } else { "MODIFIED" }, *rv))
                .collect();
            assert_eq!(
                web_events.len(),
                want.len() + 1,
                "{seen:?} vs writes {writes:?}"
            );
            want.push(("DELETED", web_events.last().map_or(0, |e| e.1)));
            assert_eq!(
                web_events, want,
                "watch events for web vs the writes' resourceVersions"
            );
            assert!(
                writes.len() >= 7,
                "at least 7 of the 8 writes change the object: {writes:?}"
            );
            let rvs: Vec<u64> = seen.iter().map(|(_, _, rv)| *rv).collect();
            assert!(
                rvs.windows(2).all(|w| w[0] < w[1]),
                "watch RVs must strictly increase: {seen:?}"
            );
        },
    )
    .await;
}

// === Custom resources ===

fn widget_crd() -> CustomResourceDefinition {
    from_json(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.e2e.drover.dev"},
        "spec": {
            "group": "e2e.drover.dev",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {
                        "size": {"type": "integer", "minimum": 1},
                        "color": {"type": "string", "default": "grey"}
                    }},
                    "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
                }}}
            }]
        }
    }))
}

fn established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_custom_resource_crd_established_then_dynamic_crud_watch_patch_delete() {
    let s = Server::start();
    let client = client(&s).await;
    within(
        120,
        "custom resource CRUD through kube-rs (CRD never Established, or a stalled request?)",
        async {
            create_namespace(&client, "rs-cr").await;
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            crds.patch(
                "gadgets.e2e.drover.dev",
                &PatchParams::apply("kube-rs-e2e"),
                &Patch::Apply(widget_crd()),
            )
            .await
            .expect("apply CRD");
            loop {
                if established(&crds.get("gadgets.e2e.drover.dev").await.expect("get CRD")) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }

            // Discovery must find the new kind (kube-rs resolves it from /apis).
            let gvk = GroupVersionKind::gvk("e2e.drover.dev", "v1", "Gadget");
            let (ar, caps) = loop {
                match kube::discovery::pinned_kind(&client, &gvk).await {
                    Ok(found) => break found,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            assert_eq!(ar.plural, "gadgets");
            assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);

            let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "rs-cr", &ar);
            let start = api
                .list(&ListParams::default())
                .await
                .expect("list gadgets")
                .metadata
                .resource_version
                .expect("RV");
            let stream = api
                .watch(&WatchParams::default().timeout(60), &start)
                .await
                .expect("watch gadgets");
            let collector = tokio::spawn(collect_until_deleted(stream, "g1"));

            let gadget = |name: &str, team: &str, spec: Value| -> DynamicObject {
                from_json(json!({"apiVersion": "e2e.drover.dev/v1", "kind": "Gadget",
                "metadata": {"name": name, "labels": {"team": team}}, "spec": spec}))
            };
            let g1 = api
                .create(
                    &PostParams::default(),
                    &gadget("g1", "a", json!({"size": 1, "junk": true})),
                )
                .await
                .expect("create g1");
            assert_eq!(
                g1.data["spec"],
                json!({"size": 1, "color": "grey"}),
                "pruned and defaulted"
            );
            api.create(
                &PostParams::default(),
                &gadget("g2", "b", json!({"size": 2})),
            )
            .await
            .expect("create g2");
            assert_eq!(
                code(
                    api.create(
                        &PostParams::default(),
                        &gadget("bad", "b", json!({"size": 0}))
                    )
                    .await
                ),
                422
            );
            assert_eq!(
                code(
                    api.create(
                        &PostParams::default(),
                        &gadget("g1", "a", json!({"size": 1}))
                    )
                    .await
                ),
                409
            );

            assert_eq!(api.get("g1").await.expect("get").uid(), g1.uid());
            assert_eq!(
                names(
                    &api.list(&ListParams::default().labels("team=a"))
                        .await
                        .expect("list")
                        .items
                ),
                ["g1"]
            );

            let got = api
                .patch(
                    "g1",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"size": 3}})),
                )
                .await
                .expect("merge");
            assert_eq!(got.data["spec"]["size"], 3);
            // Custom resources have no strategic merge: 415.
            assert_eq!(
                code(
                    api.patch(
                        "g1",
                        &PatchParams::default(),
                        &Patch::Strategic(json!({"spec": {"size": 4}}))
                    )
                    .await
                ),
                415
            );
            let got = api
                .patch(
                    "g1",
                    &PatchParams::apply("kube-rs-e2e").force(),
                    &Patch::Apply(gadget("g1", "a", json!({"color": "blue"}))),
                )
                .await
                .expect("apply");
            assert_eq!(got.data["spec"]["color"], "blue");
            let got = api
                .patch_status(
                    "g1",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"ready": true}})),
                )
                .await
                .expect("status");
            assert_eq!(got.data["status"], json!({"ready": true}));

            api.delete("g1", &DeleteParams::default())
                .await
                .expect("delete");
            assert_eq!(code(api.get("g1").await), 404);
            let seen = within(30, "the watch to deliver g1's DELETED event", collector)
                .await
                .expect("collector");
            let kinds: Vec<&str> = seen
                .iter()
                .filter(|(_, n, _)| n == "g1")
                .map(|(k, _, _)| *k)
                .collect();
            // create, merge, apply, status; the refused strategic patch commits nothing.
            assert_eq!(
                kinds,
                ["ADDED", "MODIFIED", "MODIFIED", "MODIFIED", "DELETED"],
                "{seen:?}"
            );

            // Deleting the CRD removes its instances, and the resource stops being served.
            crds.delete("gadgets.e2e.drover.dev", &DeleteParams::default())
                .await
                .expect("delete CRD");
            loop {
                if crds
                    .get_opt("gadgets.e2e.drover.dev")
                    .await
                    .expect("get CRD")
                    .is_none()
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(code(api.list(&ListParams::default()).await), 404);
        },
    )
    .await;
}

// === Reflector resilience ===

/// What the reflector's consumer saw.
#[derive(Default)]
struct Seen {
    events: AtomicU64,
    gone: AtomicU64,
    other_errors: AtomicU64,
}

/// name → resourceVersion, from the reflector's store.
fn store_state(store: &Store<ConfigMap>) -> BTreeMap<String, String> {
    store
        .state()
        .iter()
        .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
        .collect()
}

/// name → resourceVersion, from a fresh (quorum) list.
async fn fresh_state(api: &Api<ConfigMap>) -> BTreeMap<String, String> {
    let list = api.list(&ListParams::default()).await.expect("fresh list");
    list.items
        .iter()
        .map(|o| (o.name_any(), o.resource_version().unwrap_or_default()))
        .collect()
}

async fn converge(api: &Api<ConfigMap>, store: &Store<ConfigMap>, seen: &Seen, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let want = fresh_state(api).await;
        let got = store_state(store);
        if got == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "reflector store did not converge to a fresh list within 30s {what} (watcher stuck after a \
             reconnect or 410?):\nstore: {got:?}\nfresh: {want:?}\nevents {} gone {} other errors {}",
            seen.events.load(Ordering::Relaxed),
            seen.gone.load(Ordering::Relaxed),
            seen.other_errors.load(Ordering::Relaxed),
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Retries a write until the server answers (it may still be coming up after a restart).
async fn retry<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e @ kube::Error::Api(_)) => panic!("{what}: {e}"),
            Err(e) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{what}: server not answering after 30s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_reflector_survives_restart_and_forced_410_and_equals_a_fresh_list() {
    let mut s = Server::start_with(&RETENTION_FLAGS);
    let client = client(&s).await;
    create_namespace(&client, "rs-refl").await;
    create_namespace(&client, "rs-noise").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "rs-refl");
    let noise: Api<ConfigMap> = Api::namespaced(client.clone(), "rs-noise");

    // Bookmarks off: a bookmark would move the reflector's resourceVersion past the noise
    // writes below, and the point is to watch from a revision the datastore has compacted.
    let (store, writer) = reflector::store::<ConfigMap>();
    let stream = reflector::reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().disable_bookmarks()),
    );
    let seen = Arc::new(Seen::default());
    let consumer = {
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                match item {
                    Ok(_) => {
                        seen.events.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                        seen.gone.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        // Connection refused/reset while the server restarts: back off a little.
                        seen.other_errors.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        })
    };
    let pp = PostParams::default();
    let merge = |v: &str| Patch::Merge(json!({"data": {"v": v}}));

    within(
        60,
        "phase 1: reflector follows creates, updates and deletes",
        async {
            store.wait_until_ready().await.expect("reflector ready");
            for i in 0..5 {
                api.create(
                    &pp,
                    &configmap(&format!("cm-{i}"), json!({}), json!({"v": "0"})),
                )
                .await
                .expect("create");
            }
            api.patch("cm-0", &PatchParams::default(), &merge("1"))
                .await
                .expect("patch");
            api.delete("cm-1", &DeleteParams::default())
                .await
                .expect("delete");
            converge(&api, &store, &seen, "after creates, an update and a delete").await;
        },
    )
    .await;

    let errors_before = seen.other_errors.load(Ordering::Relaxed);
    tokio::task::block_in_place(|| s.restart());
    within(60, "phase 2: reflector reconnects after a restart", async {
        let (patch, params) = (merge("2"), PatchParams::default());
        retry("patch after restart", || api.patch("cm-2", &params, &patch)).await;
        api.create(&pp, &configmap("cm-after-restart", json!({}), json!({})))
            .await
            .expect("create");
        api.delete("cm-3", &DeleteParams::default())
            .await
            .expect("delete");
        converge(&api, &store, &seen, "after a restart").await;
    })
    .await;
    assert!(
        seen.other_errors.load(Ordering::Relaxed) > errors_before,
        "the restart should have broken the watch at least once"
    );

    // Forced 410: the reflector's namespace stays quiet while >50 writes elsewhere move the
    // datastore past its resourceVersion (--datastore-max-history 50). A restart then empties
    // the watch cache, so the reflector's rewatch is served from the compacted store: 410.
    let gone_before = seen.gone.load(Ordering::Relaxed);
    within(
        90,
        "phase 3: forcing compaction past the reflector's resourceVersion",
        async {
            let stale_rv = store
                .state()
                .iter()
                .filter_map(|o| o.resource_version()?.parse::<u64>().ok())
                .max()
                .expect("objects in the store")
                .to_string();
            noise
                .create(&pp, &configmap("noise", json!({}), json!({"n": "0"})))
                .await
                .expect("noise");
            for n in 1..120 {
                noise
                    .patch(
                        "noise",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"data": {"n": n.to_string()}})),
                    )
                    .await
                    .expect("noise");
            }
            // An exact-revision list from the store answers 410 once the revision is compacted.
            loop {
                let exact = ListParams::default()
                    .at(&stale_rv)
                    .matching(VersionMatch::Exact);
                match api.list(&exact).await {
                    Err(kube::Error::Api(st)) if st.code == 410 => break,
                    Ok(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                    Err(e) => panic!("exact list at {stale_rv}: {e}"),
                }
            }
        },
    )
    .await;
    tokio::task::block_in_place(|| s.restart());
    within(60, "phase 4: reflector relists after a 410", async {
        let cm = configmap("cm-after-410", json!({}), json!({}));
        retry("create after restart", || api.create(&pp, &cm)).await;
        api.patch("cm-4", &PatchParams::default(), &merge("4"))
            .await
            .expect("patch");
        converge(&api, &store, &seen, "after a forced 410").await;
    })
    .await;
    assert!(
        seen.gone.load(Ordering::Relaxed) > gone_before,
        "the reflector never saw a 410, so the relist path is unproven (events {}, other errors {})",
        seen.events.load(Ordering::Relaxed),
        seen.other_errors.load(Ordering::Relaxed)
    );

    eprintln!(
        "reflector: {} events, {} x 410, {} other errors (reconnects)",
        seen.events.load(Ordering::Relaxed),
        seen.gone.load(Ordering::Relaxed),
        seen.other_errors.load(Ordering::Relaxed)
    );
    consumer.abort();
    let final_store = store_state(&store);
    assert_eq!(final_store, fresh_state(&api).await);
    let ours: Vec<&str> = final_store
        .keys()
        .map(String::as_str)
        .filter(|n| *n != "kube-root-ca.crt")
        .collect();
    assert_eq!(
        ours,
        ["cm-0", "cm-2", "cm-4", "cm-after-410", "cm-after-restart"]
    );

    // Negative control: with the reflector stopped, one more write must make the same
    // comparison fail, or the convergence checks above prove nothing.
    api.create(&pp, &configmap("cm-unseen", json!({}), json!({})))
        .await
        .expect("create");
    assert_ne!(
        store_state(&store),
        fresh_state(&api).await,
        "a stopped reflector still compares equal to a fresh list"
    );
}
