//! Printers for RBAC, admission, flow control, scheduling, coordination, node, certificates
//! and API registration.

use serde_json::Value;

use super::{AGE, NAME, Printer, col, wide};
use crate::table::Column;
use crate::table::descriptions as d;
use crate::table::json::{
    age, arr_at, condition, get, int_at, name, opt_bool, opt_int, opt_str, str_at,
};
use crate::table::time::human_duration;

// === rbac.authorization.k8s.io ===

const fn binding_columns(
    role_ref: &'static str,
    users: &'static str,
    groups: &'static str,
    sas: &'static str,
) -> [Column; 6] {
    [
        NAME,
        col("Role", "string", role_ref),
        AGE,
        wide("Users", "string", users),
        wide("Groups", "string", groups),
        wide("ServiceAccounts", "string", sas),
    ]
}

static ROLE_BINDING_COLUMNS: [Column; 6] = binding_columns(
    d::RB_ROLE_REF,
    "Users in the roleBinding",
    "Groups in the roleBinding",
    "ServiceAccounts in the roleBinding",
);
static CLUSTER_ROLE_BINDING_COLUMNS: [Column; 6] = binding_columns(
    d::CRB_ROLE_REF,
    "Users in the clusterRoleBinding",
    "Groups in the clusterRoleBinding",
    "ServiceAccounts in the clusterRoleBinding",
);

pub(super) static ROLE_BINDING: Printer = Printer {
    columns: &ROLE_BINDING_COLUMNS,
    cells: binding,
};
pub(super) static CLUSTER_ROLE_BINDING: Printer = Printer {
    columns: &CLUSTER_ROLE_BINDING_COLUMNS,
    cells: binding,
};

fn binding(rb: &Value, now: i64) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(rb, &["roleRef", "kind"]),
        str_at(rb, &["roleRef", "name"])
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in arr_at(rb, &["subjects"]) {
        match str_at(s, &["kind"]) {
            "User" => users.push(str_at(s, &["name"]).to_owned()),
            "Group" => groups.push(str_at(s, &["name"]).to_owned()),
            "ServiceAccount" => {
                sas.push(format!(
                    "{}/{}",
                    str_at(s, &["namespace"]),
                    str_at(s, &["name"])
                ));
            }
            _ => {}
        }
    }
    vec![
        name(rb),
        Value::from(role),
        age(rb, now),
        Value::from(users.join(", ")),
        Value::from(groups.join(", ")),
        Value::from(sas.join(", ")),
    ]
}

// === admissionregistration.k8s.io ===

const WEBHOOK_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Webhooks",
        "integer",
        "Webhooks indicates the number of webhooks registered in this configuration",
    ),
    AGE,
];

fn webhooks(cfg: &Value, now: i64) -> Vec<Value> {
    vec![
        name(cfg),
        Value::from(arr_at(cfg, &["webhooks"]).len()),
        age(cfg, now),
    ]
}

pub(super) static MUTATING_WEBHOOK: Printer = Printer {
    columns: WEBHOOK_COLUMNS,
    cells: webhooks,
};
pub(super) static VALIDATING_WEBHOOK: Printer = Printer {
    columns: WEBHOOK_COLUMNS,
    cells: webhooks,
};

pub(super) static VAP: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Validations",
            "integer",
            "Validations indicates the number of validation rules defined in this configuration",
        ),
        col(
            "ParamKind",
            "string",
            "ParamKind specifies the kind of resources used to parameterize this policy",
        ),
        AGE,
    ],
    cells: |p, now| {
        let param_kind = match get(p, &["spec", "paramKind"]) {
            Some(k) => format!("{}/{}", str_at(k, &["apiVersion"]), str_at(k, &["kind"])),
            None => "<unset>".to_owned(),
        };
        vec![
            name(p),
            Value::from(arr_at(p, &["spec", "validations"]).len()),
            Value::from(param_kind),
            age(p, now),
        ]
    },
};

pub(super) static VAP_BINDING: Printer = Printer {
    columns: &[
        NAME,
        col(
            "PolicyName",
            "string",
            "PolicyName indicates the policy definition which the policy binding binded to",
        ),
        col(
            "ParamRef",
            "string",
            "ParamRef indicates the param resource which sets the configration param",
        ),
        AGE,
    ],
    cells: |b, now| {
        let param = match get(b, &["spec", "paramRef"]) {
            None => "<unset>".to_owned(),
            Some(r) => match (str_at(r, &["name"]), str_at(r, &["namespace"])) {
                ("", _) => get(r, &["selector"]).map_or("<unset>".to_owned(), go_label_selector),
                (n, "") => format!("*/{n}"),
                (n, ns) => format!("{ns}/{n}"),
            },
        };
        vec![
            name(b),
            Value::from(str_at(b, &["spec", "policyName"])),
            Value::from(param),
            age(b, now),
        ]
    },
};

/// Go's generated `(*metav1.LabelSelector).String()`, which upstream prints for a selector
/// `paramRef`.
fn go_label_selector(sel: &Value) -> String {
    let mut labels: Vec<(&String, &str)> = get(sel, &["matchLabels"])
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    labels.sort_unstable();
    let labels: String = labels.iter().map(|(k, v)| format!("{k}: {v},")).collect();
    let exprs: String = arr_at(sel, &["matchExpressions"])
        .iter()
        .map(|e| {
            let values: Vec<&str> = arr_at(e, &["values"])
                .iter()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "LabelSelectorRequirement{{Key:{},Operator:{},Values:[{}],}},",
                str_at(e, &["key"]),
                str_at(e, &["operator"]),
                values.join(" ")
            )
        })
        .collect();
    format!(
        "&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{{exprs}}},}}"
    )
}

// === flowcontrol.apiserver.k8s.io ===

pub(super) static FLOW_SCHEMA: Printer = Printer {
    columns: &[
        NAME,
        col("PriorityLevel", "string", d::FS_PL_NAME),
        col("MatchingPrecedence", "string", d::FS_PRECEDENCE),
        col("DistinguisherMethod", "string", d::FS_DISTINGUISHER),
        AGE,
        col(
            "MissingPL",
            "string",
            "references a broken or non-existent PriorityLevelConfiguration",
        ),
    ],
    cells: |fs, now| {
        let dangling = condition(arr_at(fs, &["status", "conditions"]), "Dangling")
            .map_or("?", |c| str_at(c, &["status"]));
        vec![
            name(fs),
            Value::from(str_at(fs, &["spec", "priorityLevelConfiguration", "name"])),
            Value::from(int_at(fs, &["spec", "matchingPrecedence"])),
            Value::from(opt_str(fs, &["spec", "distinguisherMethod", "type"]).unwrap_or("<none>")),
            age(fs, now),
            Value::from(dangling),
        ]
    },
};

pub(super) static PRIORITY_LEVEL: Printer = Printer {
    columns: &[
        NAME,
        col("Type", "string", d::PL_TYPE),
        col("NominalConcurrencyShares", "string", d::PL_SHARES),
        col("Queues", "string", d::PL_QUEUES),
        col("HandSize", "string", d::PL_HAND_SIZE),
        col("QueueLengthLimit", "string", d::PL_QUEUE_LENGTH),
        AGE,
    ],
    cells: |pl, now| {
        let none = || Value::from("<none>");
        let limited = get(pl, &["spec", "limited"]);
        let queuing = limited.and_then(|l| get(l, &["limitResponse", "queuing"]));
        let q = |f: &str| queuing.map_or_else(none, |q| Value::from(int_at(q, &[f])));
        vec![
            name(pl),
            Value::from(str_at(pl, &["spec", "type"])),
            limited.map_or_else(none, |l| {
                Value::from(int_at(l, &["nominalConcurrencyShares"]))
            }),
            q("queues"),
            q("handSize"),
            q("queueLengthLimit"),
            age(pl, now),
        ]
    },
};

// === Other groups ===

pub(super) static PRIORITY_CLASS: Printer = Printer {
    columns: &[
        NAME,
        col("Value", "integer", d::PC_VALUE),
        col("Global-Default", "boolean", d::PC_GLOBAL_DEFAULT),
        AGE,
        col("PreemptionPolicy", "string", d::PC_PREEMPTION),
    ],
    cells: |pc, now| {
        vec![
            name(pc),
            Value::from(int_at(pc, &["value"])),
            Value::from(opt_bool(pc, &["globalDefault"]).unwrap_or(false)),
            age(pc, now),
            Value::from(str_at(pc, &["preemptionPolicy"])),
        ]
    },
};

pub(super) static LEASE: Printer = Printer {
    columns: &[NAME, col("Holder", "string", d::LEASE_HOLDER), AGE],
    cells: |l, now| {
        vec![
            name(l),
            Value::from(str_at(l, &["spec", "holderIdentity"])),
            age(l, now),
        ]
    },
};

/// Upstream describes this column with `ObjectMeta{}.SwaggerDoc()["handler"]`, which does not
/// exist, so the description is empty.
pub(super) static RUNTIME_CLASS: Printer = Printer {
    columns: &[NAME, col("Handler", "string", ""), AGE],
    cells: |rc, now| {
        vec![
            name(rc),
            Value::from(str_at(rc, &["handler"])),
            age(rc, now),
        ]
    },
};

pub(super) static CSR: Printer = Printer {
    columns: &[
        NAME,
        AGE,
        col("SignerName", "string", d::CSR_SIGNER),
        col("Requestor", "string", d::CSR_REQUEST),
        col("RequestedDuration", "string", d::CSR_EXPIRATION),
        col("Condition", "string", d::CSR_CONDITIONS),
    ],
    cells: |csr, now| {
        let conditions = arr_at(csr, &["status", "conditions"]);
        let has = |ty: &str| condition(conditions, ty).is_some();
        let mut status = if has("Denied") {
            "Denied"
        } else if has("Approved") {
            "Approved"
        } else {
            "Pending"
        }
        .to_owned();
        if has("Failed") {
            status.push_str(",Failed");
        }
        if !str_at(csr, &["status", "certificate"]).is_empty() {
            status.push_str(",Issued");
        }
        let signer = match str_at(csr, &["spec", "signerName"]) {
            "" => "<none>",
            s => s,
        };
        let duration = opt_int(csr, &["spec", "expirationSeconds"])
            .map_or("<none>".to_owned(), human_duration);
        vec![
            name(csr),
            age(csr, now),
            Value::from(signer),
            Value::from(str_at(csr, &["spec", "username"])),
            Value::from(duration),
            Value::from(status),
        ]
    },
};

pub(super) static API_SERVICE: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Service",
            "string",
            "The reference to the service that hosts this API endpoint.",
        ),
        col("Available", "string", "Whether this service is available."),
        AGE,
    ],
    cells: |svc, now| {
        let service = match get(svc, &["spec", "service"]) {
            Some(s) => format!("{}/{}", str_at(s, &["namespace"]), str_at(s, &["name"])),
            None => "Local".to_owned(),
        };
        let available = match condition(arr_at(svc, &["status", "conditions"]), "Available") {
            None => "Unknown".to_owned(),
            Some(c) => match (str_at(c, &["status"]), str_at(c, &["reason"])) {
                ("True", _) => "True".to_owned(),
                (s, "") => s.to_owned(),
                (s, r) => format!("{s} ({r})"),
            },
        };
        vec![
            name(svc),
            Value::from(service),
            Value::from(available),
            age(svc, now),
        ]
    },
};
