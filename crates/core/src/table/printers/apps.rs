//! Printers for workloads: apps, batch, autoscaling and policy.

use serde_json::Value;

use super::{AGE, CONTAINERS, IMAGES, NAME, Printer, col, wide};
use crate::table::descriptions as d;
use crate::table::json::{
    age, arr_at, bool_ptr, condition, container_cells, deleting, format_label_selector,
    format_labels, get, int_at, int_or_string, name, opt_bool, opt_int, opt_str, quantity_ptr,
    selector_string, str_at,
};
use crate::table::time::{human_duration, parse_rfc3339, seconds_between, since};

// === Deployment, ReplicaSet, StatefulSet, DaemonSet ===

pub(super) static DEPLOYMENT: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        col("Up-to-date", "string", d::DEPLOY_UPDATED),
        col("Available", "string", d::DEPLOY_AVAILABLE),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::DEPLOY_SELECTOR),
    ],
    cells: |deploy, now| {
        let (names, images) = template_containers(deploy);
        // Unlike the other workloads, upstream prints the raw selector string here: empty
        // rather than `<none>`, `<invalid>` rather than `<error>`.
        let selector = selector_string(get(deploy, &["spec", "selector"]))
            .unwrap_or_else(|_| "<invalid>".to_owned());
        vec![
            name(deploy),
            Value::from(format!(
                "{}/{}",
                int_at(deploy, &["status", "readyReplicas"]),
                replicas(deploy)
            )),
            Value::from(int_at(deploy, &["status", "updatedReplicas"])),
            Value::from(int_at(deploy, &["status", "availableReplicas"])),
            age(deploy, now),
            names,
            images,
            Value::from(selector),
        ]
    },
};

pub(super) static REPLICA_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", d::RS_SPEC_REPLICAS),
        col("Current", "integer", d::RS_STATUS_REPLICAS),
        col("Ready", "integer", d::RS_STATUS_READY),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::RS_SPEC_SELECTOR),
    ],
    cells: |rs, now| {
        let (names, images) = template_containers(rs);
        vec![
            name(rs),
            Value::from(replicas(rs)),
            Value::from(int_at(rs, &["status", "replicas"])),
            Value::from(int_at(rs, &["status", "readyReplicas"])),
            age(rs, now),
            names,
            images,
            Value::from(format_label_selector(get(rs, &["spec", "selector"]))),
        ]
    },
};

pub(super) static STATEFUL_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Ready", "string", "Number of the pod with ready state"),
        AGE,
        CONTAINERS,
        IMAGES,
    ],
    cells: |sts, now| {
        let (names, images) = template_containers(sts);
        let ready = format!(
            "{}/{}",
            int_at(sts, &["status", "readyReplicas"]),
            replicas(sts)
        );
        vec![name(sts), Value::from(ready), age(sts, now), names, images]
    },
};

pub(super) static DAEMON_SET: Printer = Printer {
    columns: &[
        NAME,
        col("Desired", "integer", d::DS_DESIRED),
        col("Current", "integer", d::DS_CURRENT),
        col("Ready", "integer", d::DS_READY),
        col("Up-to-date", "integer", d::DS_UPDATED),
        col("Available", "integer", d::DS_AVAILABLE),
        col("Node Selector", "string", d::POD_NODE_SELECTOR),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::DS_SELECTOR),
    ],
    cells: |ds, now| {
        let (names, images) = template_containers(ds);
        let status = |f: &str| Value::from(int_at(ds, &["status", f]));
        vec![
            name(ds),
            status("desiredNumberScheduled"),
            status("currentNumberScheduled"),
            status("numberReady"),
            status("updatedNumberScheduled"),
            status("numberAvailable"),
            Value::from(format_labels(get(
                ds,
                &["spec", "template", "spec", "nodeSelector"],
            ))),
            age(ds, now),
            names,
            images,
            Value::from(format_label_selector(get(ds, &["spec", "selector"]))),
        ]
    },
};

/// `spec.replicas`, which upstream defaults to 1.
fn replicas(obj: &Value) -> i64 {
    opt_int(obj, &["spec", "replicas"]).unwrap_or(1)
}

fn template_containers(obj: &Value) -> (Value, Value) {
    container_cells(arr_at(obj, &["spec", "template", "spec", "containers"]))
}

pub(super) static CONTROLLER_REVISION: Printer = Printer {
    columns: &[
        NAME,
        col("Controller", "string", "Controller of the object"),
        col("Revision", "string", d::CR_REVISION),
        AGE,
    ],
    cells: |cr, now| {
        let owner = arr_at(cr, &["metadata", "ownerReferences"])
            .iter()
            .find(|o| opt_bool(o, &["controller"]) == Some(true));
        let controller = match owner {
            None => "<none>".to_owned(),
            Some(o) => {
                let group = str_at(o, &["apiVersion"])
                    .split_once('/')
                    .map_or("", |(g, _)| g);
                let kind = str_at(o, &["kind"]);
                let owner_name = str_at(o, &["name"]);
                match (group, kind) {
                    ("", "") => owner_name.to_owned(),
                    ("", k) => format!("{}/{owner_name}", k.to_lowercase()),
                    (g, k) => format!("{}.{}/{owner_name}", k.to_lowercase(), g.to_lowercase()),
                }
            }
        };
        vec![
            name(cr),
            Value::from(controller),
            Value::from(int_at(cr, &["revision"])),
            age(cr, now),
        ]
    },
};

// === Job, CronJob ===

pub(super) static JOB: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", "Status of the job."),
        col("Completions", "string", d::JOB_SUCCEEDED),
        col("Duration", "string", "Time required to complete the job."),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::JOB_SELECTOR),
    ],
    cells: job,
};

fn job(job: &Value, now: i64) -> Vec<Value> {
    let succeeded = int_at(job, &["status", "succeeded"]);
    let completions = match opt_int(job, &["spec", "completions"]) {
        Some(c) => format!("{succeeded}/{c}"),
        None => match opt_int(job, &["spec", "parallelism"]).unwrap_or(0) {
            p if p > 1 => format!("{succeeded}/1 of {p}"),
            _ => format!("{succeeded}/1"),
        },
    };
    let start = parse_rfc3339(str_at(job, &["status", "startTime"]));
    let end = parse_rfc3339(str_at(job, &["status", "completionTime"]));
    let duration = match (start, end) {
        (None, _) => String::new(),
        (Some(s), None) => human_duration(seconds_between(s, now * 1_000_000)),
        (Some(s), Some(e)) => human_duration(seconds_between(s, e)),
    };
    let conditions = arr_at(job, &["status", "conditions"]);
    let has =
        |ty: &str| condition(conditions, ty).is_some_and(|c| str_at(c, &["status"]) == "True");
    let status = if has("Complete") {
        "Complete"
    } else if has("Failed") {
        "Failed"
    } else if deleting(job) {
        "Terminating"
    } else if has("Suspended") {
        "Suspended"
    } else if has("FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    };
    let (names, images) = template_containers(job);
    vec![
        name(job),
        Value::from(status),
        Value::from(completions),
        Value::from(duration),
        age(job, now),
        names,
        images,
        Value::from(format_label_selector(get(job, &["spec", "selector"]))),
    ]
}

pub(super) static CRON_JOB: Printer = Printer {
    columns: &[
        NAME,
        col("Schedule", "string", d::CJ_SCHEDULE),
        col("Timezone", "string", d::CJ_TIMEZONE),
        col("Suspend", "boolean", d::CJ_SUSPEND),
        col("Active", "integer", d::CJ_ACTIVE),
        col("Last Schedule", "string", d::CJ_LAST_SCHEDULE),
        AGE,
        CONTAINERS,
        IMAGES,
        wide("Selector", "string", d::JOB_SELECTOR),
    ],
    cells: |cj, now| {
        let last = match get(cj, &["status", "lastScheduleTime"]) {
            Some(t) => since(Some(t), now),
            None => "<none>".to_owned(),
        };
        let job_spec = get(cj, &["spec", "jobTemplate", "spec"]).unwrap_or(&Value::Null);
        let (names, images) =
            container_cells(arr_at(job_spec, &["template", "spec", "containers"]));
        vec![
            name(cj),
            Value::from(str_at(cj, &["spec", "schedule"])),
            Value::from(opt_str(cj, &["spec", "timeZone"]).unwrap_or("<none>")),
            Value::from(bool_ptr(opt_bool(cj, &["spec", "suspend"]))),
            Value::from(arr_at(cj, &["status", "active"]).len()),
            Value::from(last),
            age(cj, now),
            names,
            images,
            Value::from(format_label_selector(get(job_spec, &["selector"]))),
        ]
    },
};

// === HorizontalPodAutoscaler ===

pub(super) static HPA: Printer = Printer {
    columns: &[
        NAME,
        col("Reference", "string", d::HPA_REF),
        col("Targets", "string", d::HPA_METRICS),
        col("MinPods", "string", d::HPA_MIN),
        col("MaxPods", "string", d::HPA_MAX),
        col("Replicas", "string", d::HPA_CURRENT),
        AGE,
    ],
    cells: |hpa, now| {
        let reference = format!(
            "{}/{}",
            str_at(hpa, &["spec", "scaleTargetRef", "kind"]),
            str_at(hpa, &["spec", "scaleTargetRef", "name"])
        );
        let min =
            opt_int(hpa, &["spec", "minReplicas"]).map_or("<unset>".to_owned(), |m| m.to_string());
        vec![
            name(hpa),
            Value::from(reference),
            Value::from(hpa_targets(hpa)),
            Value::from(min),
            Value::from(int_at(hpa, &["spec", "maxReplicas"])),
            Value::from(int_at(hpa, &["status", "currentReplicas"])),
            age(hpa, now),
        ]
    },
};

/// Upstream's `formatHPAMetrics` over autoscaling/v2 metrics. An autoscaling/v1 object's CPU
/// target is read as the equivalent v2 resource metric.
fn hpa_targets(hpa: &Value) -> String {
    const MAX: usize = 2;
    let v1_target = opt_int(hpa, &["spec", "targetCPUUtilizationPercentage"]);
    if str_at(hpa, &["apiVersion"]) == "autoscaling/v1" || v1_target.is_some() {
        return match v1_target {
            None => "<none>".to_owned(),
            Some(t) => {
                let current = opt_int(hpa, &["status", "currentCPUUtilizationPercentage"])
                    .map_or("<unknown>".to_owned(), |c| format!("{c}%"));
                format!("cpu: {current}/{t}%")
            }
        };
    }
    let specs = arr_at(hpa, &["spec", "metrics"]);
    if specs.is_empty() {
        return "<none>".to_owned();
    }
    let statuses = arr_at(hpa, &["status", "currentMetrics"]);
    let list: Vec<String> = specs
        .iter()
        .enumerate()
        .map(|(i, spec)| hpa_metric(spec, statuses.get(i)))
        .collect();
    if list.len() > MAX {
        format!("{} + {} more...", list[..MAX].join(", "), list.len() - MAX)
    } else {
        list.join(", ")
    }
}

/// One metric, `current/target`. Upstream pairs the i-th spec with the i-th status.
fn hpa_metric(spec: &Value, status: Option<&Value>) -> String {
    // The status block of the same source kind, if the i-th status has one.
    let st = |key: &str| status.and_then(|s| get(s, &[key]));
    let unknown = || "<unknown>".to_owned();
    match str_at(spec, &["type"]) {
        ty @ ("External" | "Object") => {
            let key = if ty == "External" {
                "external"
            } else {
                "object"
            };
            let target = get(spec, &[key, "target"]).unwrap_or(&Value::Null);
            let current = st(key).and_then(|s| get(s, &["current"]));
            match get(target, &["averageValue"]) {
                Some(avg) => {
                    let cur = current
                        .and_then(|c| get(c, &["averageValue"]))
                        .map_or_else(unknown, |q| quantity_ptr(Some(q)));
                    format!("{cur}/{} (avg)", quantity_ptr(Some(avg)))
                }
                None => {
                    let cur = match st(key) {
                        Some(_) => quantity_ptr(current.and_then(|c| get(c, &["value"]))),
                        None => unknown(),
                    };
                    format!("{cur}/{}", quantity_ptr(get(target, &["value"])))
                }
            }
        }
        "Pods" => {
            let cur = match st("pods") {
                Some(s) => quantity_ptr(get(s, &["current", "averageValue"])),
                None => unknown(),
            };
            format!(
                "{cur}/{}",
                quantity_ptr(get(spec, &["pods", "target", "averageValue"]))
            )
        }
        ty @ ("Resource" | "ContainerResource") => {
            let key = if ty == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let source = get(spec, &[key]).unwrap_or(&Value::Null);
            let resource = str_at(source, &["name"]);
            let target = get(source, &["target"]).unwrap_or(&Value::Null);
            if let Some(avg) = get(target, &["averageValue"]) {
                let cur = match st(key) {
                    Some(s) => quantity_ptr(get(s, &["current", "averageValue"])),
                    None => unknown(),
                };
                return format!("{resource}: {cur}/{}", quantity_ptr(Some(avg)));
            }
            let cur = st(key)
                .and_then(|s| opt_int(s, &["current", "averageUtilization"]))
                .map_or_else(unknown, |u| format!("{u}%"));
            let tgt = opt_int(target, &["averageUtilization"])
                .map_or_else(|| "<auto>".to_owned(), |u| format!("{u}%"));
            format!("{resource}: {cur}/{tgt}")
        }
        _ => "<unknown type>".to_owned(),
    }
}

// === PodDisruptionBudget ===

pub(super) static PDB: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Min Available",
            "string",
            "The minimum number of pods that must be available.",
        ),
        col(
            "Max Unavailable",
            "string",
            "The maximum number of pods that may be unavailable.",
        ),
        col(
            "Allowed Disruptions",
            "integer",
            "Calculated number of pods that may be disrupted at this time.",
        ),
        AGE,
    ],
    cells: |pdb, now| {
        let bound = |f: &str| get(pdb, &["spec", f]).map_or("N/A".to_owned(), int_or_string);
        vec![
            name(pdb),
            Value::from(bound("minAvailable")),
            Value::from(bound("maxUnavailable")),
            Value::from(int_at(pdb, &["status", "disruptionsAllowed"])),
            age(pdb, now),
        ]
    },
};
