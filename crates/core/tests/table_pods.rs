//! Pod rows: READY, STATUS and RESTARTS computed as upstream's `printPod` does.

use drover_core::table::{IncludeObject, row_cells, table};
use serde_json::{Value, json};

/// 2024-05-01T10:00:00Z.
const NOW: i64 = 1_714_557_600;

fn pod(spec: Value, status: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-05-01T09:55:00Z"},
        "spec": spec,
        "status": status,
    })
}

fn one_container() -> Value {
    json!({"containers": [{"name": "app", "image": "nginx:1.26"}], "nodeName": "node-1"})
}

/// (READY, STATUS, RESTARTS)
fn summary(p: &Value) -> (String, String, String) {
    let cells = row_cells("", "Pod", p, NOW);
    let s = |i: usize| cells[i].as_str().unwrap().to_owned();
    (s(1), s(2), s(3))
}

fn expect(p: &Value, ready: &str, status: &str, restarts: &str) {
    assert_eq!(
        summary(p),
        (ready.to_owned(), status.to_owned(), restarts.to_owned())
    );
}

#[test]
fn running_pod_prints_every_wide_cell() {
    let p = pod(
        json!({
            "containers": [{"name": "app", "image": "nginx"}, {"name": "log", "image": "fluent"}],
            "nodeName": "node-1",
        }),
        json!({
            "phase": "Running",
            "podIP": "10.244.0.5",
            "podIPs": [{"ip": "10.244.0.5"}],
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-05-01T09:55:03Z"}}},
                {"name": "log", "ready": true, "restartCount": 0, "state": {"running": {"startedAt": "2024-05-01T09:55:04Z"}}},
            ],
        }),
    );
    assert_eq!(
        row_cells("", "Pod", &p, NOW),
        vec![
            json!("web"),
            json!("2/2"),
            json!("Running"),
            json!("0"),
            json!("5m"),
            json!("10.244.0.5"),
            json!("node-1"),
            json!("<none>"),
            json!("<none>"),
        ]
    );
}

#[test]
fn crash_looping_container_shows_reason_and_time_since_last_restart() {
    let p = pod(
        one_container(),
        json!({
            "phase": "Running",
            "containerStatuses": [{
                "name": "app", "ready": false, "restartCount": 5,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 2m40s"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T09:58:00Z"}},
            }],
        }),
    );
    expect(&p, "0/1", "CrashLoopBackOff", "5 (2m ago)");
}

#[test]
fn restart_age_uses_the_latest_termination_of_any_container() {
    let p = pod(
        json!({"containers": [{"name": "a"}, {"name": "b"}]}),
        json!({
            "phase": "Running",
            "containerStatuses": [
                {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-04-30T10:00:00Z"}}},
                {"name": "b", "ready": true, "restartCount": 2, "state": {"running": {}},
                 "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T09:59:30Z"}}},
            ],
        }),
    );
    expect(&p, "2/2", "Running", "3 (30s ago)");
}

#[test]
fn init_containers_report_progress_and_failures() {
    let init = json!({
        "initContainers": [{"name": "migrate", "image": "db-migrate"}],
        "containers": [{"name": "app", "image": "app"}],
    });
    let running_init = json!({
        "phase": "Pending",
        "conditions": [{"type": "Initialized", "status": "False"}],
        "initContainerStatuses": [{"name": "migrate", "ready": false, "restartCount": 0, "state": {"running": {}}}],
        "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}],
    });
    expect(&pod(init.clone(), running_init), "0/1", "Init:0/1", "0");

    let pull_backoff = json!({
        "phase": "Pending",
        "initContainerStatuses": [{"name": "migrate", "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}}],
    });
    expect(
        &pod(init.clone(), pull_backoff),
        "0/1",
        "Init:ImagePullBackOff",
        "0",
    );

    let failed = json!({
        "phase": "Pending",
        "initContainerStatuses": [{"name": "migrate", "restartCount": 3,
            "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T09:57:00Z"}}}],
    });
    expect(
        &pod(init.clone(), failed),
        "0/1",
        "Init:Error",
        "3 (3m ago)",
    );

    let killed = json!({
        "phase": "Pending",
        "initContainerStatuses": [{"name": "migrate", "restartCount": 0,
            "state": {"terminated": {"exitCode": 137, "signal": 9}}}],
    });
    expect(&pod(init, killed), "0/1", "Init:Signal:9", "0");
}

#[test]
fn second_of_two_init_containers_shows_init_1_of_2() {
    let p = pod(
        json!({"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "app"}]}),
        json!({
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
                {"name": "b", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}},
            ],
        }),
    );
    expect(&p, "0/1", "Init:1/2", "0");
}

#[test]
fn sidecar_init_containers_count_as_pod_containers() {
    let p = pod(
        json!({
            "initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}],
            "containers": [{"name": "app", "image": "app"}],
        }),
        json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
                "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T09:56:00Z"}}}],
            "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}],
        }),
    );
    expect(&p, "2/2", "Running", "1 (4m ago)");
}

#[test]
fn deleted_pods_show_terminating_or_unknown() {
    let mut p = pod(
        one_container(),
        json!({"phase": "Running", "containerStatuses": [{"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}}]}),
    );
    p["metadata"]["deletionTimestamp"] = json!("2024-05-01T09:59:50Z");
    expect(&p, "1/1", "Terminating", "0");

    p["status"]["reason"] = json!("NodeLost");
    expect(&p, "1/1", "Unknown", "0");

    // A finished pod being deleted keeps its final status.
    let mut done = pod(
        one_container(),
        json!({"phase": "Succeeded", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
    );
    done["metadata"]["deletionTimestamp"] = json!("2024-05-01T09:59:50Z");
    expect(&done, "0/1", "Completed", "0");
}

#[test]
fn completed_and_failed_pods_carry_row_conditions() {
    let done = pod(
        one_container(),
        json!({"phase": "Succeeded", "containerStatuses": [{"name": "app", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
    );
    expect(&done, "0/1", "Completed", "0");
    let failed = pod(
        one_container(),
        json!({"phase": "Failed", "containerStatuses": [{"name": "app", "restartCount": 0,
            "state": {"terminated": {"exitCode": 2}}}]}),
    );
    expect(&failed, "0/1", "ExitCode:2", "0");

    let t = table(
        "",
        "Pod",
        &[done, failed],
        NOW,
        IncludeObject::None,
        &Value::Null,
    );
    assert_eq!(
        t["rows"][0]["conditions"],
        json!([{"type": "Completed", "status": "True", "reason": "Succeeded", "message": "The pod has completed successfully."}])
    );
    assert_eq!(t["rows"][1]["conditions"][0]["reason"], "Failed");
}

#[test]
fn completed_container_beside_a_running_one_reads_running_or_not_ready() {
    let status = |ready: &str| {
        json!({
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": ready}],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "job", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            ],
        })
    };
    let spec = json!({"containers": [{"name": "app"}, {"name": "job"}]});
    expect(&pod(spec.clone(), status("True")), "1/2", "Running", "0");
    expect(&pod(spec, status("False")), "1/2", "NotReady", "0");
}

#[test]
fn pending_pods_show_waiting_reason_or_scheduling_gate() {
    let creating = pod(
        one_container(),
        json!({"phase": "Pending", "containerStatuses": [{"name": "app", "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
    );
    expect(&creating, "0/1", "ContainerCreating", "0");

    let gated = pod(
        json!({"containers": [{"name": "app"}], "schedulingGates": [{"name": "example.com/quota"}]}),
        json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}),
    );
    expect(&gated, "0/1", "SchedulingGated", "0");

    let evicted = pod(
        one_container(),
        json!({"phase": "Failed", "reason": "Evicted"}),
    );
    expect(&evicted, "0/1", "Evicted", "0");
}

#[test]
fn wide_cells_show_nominated_node_and_readiness_gates() {
    let p = pod(
        json!({
            "containers": [{"name": "app"}],
            "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}],
        }),
        json!({
            "phase": "Pending",
            "nominatedNodeName": "node-2",
            "conditions": [{"type": "example.com/lb", "status": "True"}, {"type": "example.com/dns", "status": "False"}],
        }),
    );
    let cells = row_cells("", "Pod", &p, NOW);
    assert_eq!(
        cells[5..],
        [
            json!("<none>"),
            json!("<none>"),
            json!("node-2"),
            json!("1/2")
        ]
    );
}
