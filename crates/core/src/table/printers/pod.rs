//! Pods: upstream's `printPod`, the most intricate printer (READY, STATUS, RESTARTS).

use serde_json::{Value, json};

use super::{AGE, NAME, col, wide};
use crate::table::Column;
use crate::table::descriptions as d;
use crate::table::json::{arr_at, condition, deleting, get, int_at, name, opt_bool, str_at};
use crate::table::time::{human_duration, parse_rfc3339, seconds_between};

pub(super) static COLUMNS: &[Column] = &[
    NAME,
    col(
        "Ready",
        "string",
        "The aggregate readiness state of this pod for accepting traffic.",
    ),
    col(
        "Status",
        "string",
        "The aggregate status of the containers in this pod.",
    ),
    col(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    wide("IP", "string", d::POD_IP),
    wide("Node", "string", d::POD_NODE),
    wide("Nominated Node", "string", d::POD_NOMINATED),
    wide("Readiness Gates", "string", d::POD_READINESS_GATES),
];

/// Restarts counted over a set of container statuses.
#[derive(Default)]
struct Tally {
    restarts: i64,
    /// Latest `lastState.terminated.finishedAt`, in microseconds.
    last_restart: Option<i64>,
}

impl Tally {
    fn add_restarts(&mut self, status: &Value) {
        self.restarts += int_at(status, &["restartCount"]);
        if get(status, &["lastState", "terminated"]).is_some() {
            let finished = str_at(status, &["lastState", "terminated", "finishedAt"]);
            if let Some(t) = parse_rfc3339(finished) {
                self.last_restart = Some(self.last_restart.map_or(t, |l| l.max(t)));
            }
        }
    }
}

/// The cells of one pod, in column order.
pub(super) fn cells(pod: &Value, now: i64) -> Vec<Value> {
    let status = get(pod, &["status"]).unwrap_or(&Value::Null);
    let phase = str_at(status, &["phase"]);
    let mut reason = if str_at(status, &["reason"]).is_empty() {
        phase
    } else {
        str_at(status, &["reason"])
    }
    .to_owned();
    let conditions = arr_at(status, &["conditions"]);
    let gated = conditions.iter().any(|c| {
        str_at(c, &["type"]) == "PodScheduled" && str_at(c, &["reason"]) == "SchedulingGated"
    });
    if gated {
        reason = "SchedulingGated".to_owned();
    }

    let init_specs = arr_at(pod, &["spec", "initContainers"]);
    // Init containers with `restartPolicy: Always` are sidecars: they count as pod containers.
    let is_sidecar = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_at(c, &["name"]) == name && str_at(c, &["restartPolicy"]) == "Always")
    };
    let sidecars = init_specs
        .iter()
        .filter(|c| str_at(c, &["restartPolicy"]) == "Always")
        .count();
    let total = arr_at(pod, &["spec", "containers"]).len() + sidecars;

    let mut all = Tally::default();
    let mut sidecar = Tally::default();
    let mut ready = 0;
    let mut initializing = false;
    for (i, cs) in arr_at(status, &["initContainerStatuses"])
        .iter()
        .enumerate()
    {
        all.add_restarts(cs);
        let restartable = is_sidecar(str_at(cs, &["name"]));
        if restartable {
            sidecar.add_restarts(cs);
        }
        let terminated = get(cs, &["state", "terminated"]);
        let waiting_reason = str_at(cs, &["state", "waiting", "reason"]);
        if terminated.is_some_and(|t| int_at(t, &["exitCode"]) == 0) {
            continue;
        }
        if restartable && opt_bool(cs, &["started"]) == Some(true) {
            if opt_bool(cs, &["ready"]) == Some(true) {
                ready += 1;
            }
            continue;
        }
        reason = match terminated {
            Some(t) => init_terminated_reason(t),
            None if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" => {
                format!("Init:{waiting_reason}")
            }
            None => format!("Init:{i}/{}", init_specs.len()),
        };
        initializing = true;
        break;
    }

    let mut tally = all;
    if !initializing || initialized(conditions) {
        tally = sidecar;
        let mut has_running = false;
        for cs in arr_at(status, &["containerStatuses"]).iter().rev() {
            tally.add_restarts(cs);
            let waiting = str_at(cs, &["state", "waiting", "reason"]);
            let terminated = get(cs, &["state", "terminated"]);
            if !waiting.is_empty() {
                reason = waiting.to_owned();
            } else if let Some(t) = terminated {
                reason = match str_at(t, &["reason"]) {
                    "" => terminated_code(t, ""),
                    r => r.to_owned(),
                };
            } else if opt_bool(cs, &["ready"]) == Some(true)
                && get(cs, &["state", "running"]).is_some()
            {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last-listed container completed but another still runs is not Completed.
        if reason == "Completed" && has_running {
            let pod_ready =
                condition(conditions, "Ready").is_some_and(|c| str_at(c, &["status"]) == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_owned();
        }
    }

    if deleting(pod) && str_at(status, &["reason"]) == "NodeLost" {
        reason = "Unknown".to_owned();
    } else if deleting(pod) && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_owned();
    }

    let restarts = match tally.last_restart {
        Some(t) if tally.restarts != 0 => {
            format!(
                "{} ({} ago)",
                tally.restarts,
                human_duration(seconds_between(t, now * 1_000_000))
            )
        }
        _ => tally.restarts.to_string(),
    };

    vec![
        name(pod),
        Value::from(format!("{ready}/{total}")),
        Value::from(reason),
        Value::from(restarts),
        crate::table::json::age(pod, now),
        Value::from(or_none(pod_ip(status))),
        Value::from(or_none(str_at(pod, &["spec", "nodeName"]))),
        Value::from(or_none(str_at(status, &["nominatedNodeName"]))),
        Value::from(readiness_gates(pod, conditions)),
    ]
}

/// Row conditions upstream attaches to finished pods (kubectl uses them to dim/hide rows).
pub(super) fn row_conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match str_at(pod, &["status", "phase"]) {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

fn init_terminated_reason(t: &Value) -> String {
    match str_at(t, &["reason"]) {
        "" => terminated_code(t, "Init:"),
        r => format!("Init:{r}"),
    }
}

/// `Signal:N` or `ExitCode:N` for a container that terminated without a reason.
fn terminated_code(t: &Value, prefix: &str) -> String {
    match int_at(t, &["signal"]) {
        0 => format!("{prefix}ExitCode:{}", int_at(t, &["exitCode"])),
        s => format!("{prefix}Signal:{s}"),
    }
}

fn initialized(conditions: &[Value]) -> bool {
    condition(conditions, "Initialized").is_some_and(|c| str_at(c, &["status"]) == "True")
}

/// The first pod IP. Upstream reads only `status.podIPs`; `status.podIP` is a fallback for
/// objects written before `podIPs` was filled in.
fn pod_ip(status: &Value) -> &str {
    match arr_at(status, &["podIPs"]).first() {
        Some(ip) => str_at(ip, &["ip"]),
        None => str_at(status, &["podIP"]),
    }
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

fn readiness_gates(pod: &Value, conditions: &[Value]) -> String {
    let gates = arr_at(pod, &["spec", "readinessGates"]);
    if gates.is_empty() {
        return "<none>".to_owned();
    }
    let satisfied = gates
        .iter()
        .filter(|g| {
            condition(conditions, str_at(g, &["conditionType"]))
                .is_some_and(|c| str_at(c, &["status"]) == "True")
        })
        .count();
    format!("{satisfied}/{}", gates.len())
}
