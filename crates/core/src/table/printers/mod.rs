//! The per-kind printers: column definitions plus a function computing one row's cells.
//!
//! Sources (Kubernetes 1.33):
//! - `pkg/printers/internalversion/printers.go` (`AddHandlers` and the `print*` functions) for
//!   every built-in kind with a dedicated printer;
//! - `staging/src/k8s.io/kube-aggregator/pkg/registry/apiservice/etcd/etcd.go` for APIService;
//! - `staging/src/k8s.io/apiserver/pkg/registry/rest/table.go` (the default table convertor:
//!   Name, Created At) for every other kind (Role, ClusterRole, LimitRange, CRDs, reviews, …).
//!
//! The server always prints with `Wide: true`, so every row carries all cells, priority-1
//! ones included; kubectl hides those unless `-o wide`.

mod apps;
mod cluster;
mod core_group;
mod networking;
mod pod;
mod storage;

use std::borrow::Cow;

use serde_json::Value;

use super::Column;
use super::descriptions::{OM_CREATED, OM_NAME};

/// Computes one row's cells from the object and the current time (Unix seconds).
pub(crate) type CellsFn = fn(&Value, i64) -> Vec<Value>;

/// Columns and cells for one kind.
pub(crate) struct Printer {
    pub(crate) columns: &'static [Column],
    pub(crate) cells: CellsFn,
}

/// A priority-0 column.
pub(crate) const fn col(name: &'static str, ty: &'static str, description: &'static str) -> Column {
    Column::new_static(name, ty, "", description, 0)
}

/// A priority-1 column (shown by kubectl only with `-o wide`).
pub(crate) const fn wide(
    name: &'static str,
    ty: &'static str,
    description: &'static str,
) -> Column {
    Column::new_static(name, ty, "", description, 1)
}

/// The NAME column every printer starts with.
pub(crate) const NAME: Column = Column::new_static("Name", "string", "name", OM_NAME, 0);
/// The AGE column.
pub(crate) const AGE: Column = col("Age", "string", OM_CREATED);
/// Wide CONTAINERS column of workload printers.
pub(crate) const CONTAINERS: Column = wide(
    "Containers",
    "string",
    "Names of each container in the template.",
);
/// Wide IMAGES column of workload printers.
pub(crate) const IMAGES: Column = wide(
    "Images",
    "string",
    "Images referenced by each container in the template.",
);

/// Upstream's default table convertor (`rest.NewDefaultTableConvertor`), used for every kind
/// without a printer: the name and the creation time in RFC 3339.
pub(crate) static DEFAULT: Printer = Printer {
    columns: &[
        NAME,
        Column::new_static("Created At", "date", "", OM_CREATED, 0),
    ],
    cells: default_cells,
};

fn default_cells(obj: &Value, _now: i64) -> Vec<Value> {
    let created = super::json::str_at(obj, &["metadata", "creationTimestamp"]);
    let created = match super::time::parse_rfc3339(created) {
        Some(micros) => super::time::format_rfc3339(micros.div_euclid(1_000_000)),
        None => super::time::go_zero_rfc3339(),
    };
    vec![super::json::name(obj), Value::from(created)]
}

/// Every (group, kind) with a dedicated printer.
static PRINTERS: &[(&str, &str, &Printer)] = &[
    ("", "ComponentStatus", &core_group::COMPONENT_STATUS),
    ("", "ConfigMap", &core_group::CONFIG_MAP),
    ("", "Endpoints", &core_group::ENDPOINTS),
    ("", "Event", &core_group::EVENT),
    ("", "Namespace", &core_group::NAMESPACE),
    ("", "Node", &core_group::NODE),
    ("", "PersistentVolume", &storage::PERSISTENT_VOLUME),
    (
        "",
        "PersistentVolumeClaim",
        &storage::PERSISTENT_VOLUME_CLAIM,
    ),
    ("", "Pod", &POD),
    ("", "PodTemplate", &core_group::POD_TEMPLATE),
    (
        "",
        "ReplicationController",
        &core_group::REPLICATION_CONTROLLER,
    ),
    ("", "ResourceQuota", &core_group::RESOURCE_QUOTA),
    ("", "Secret", &core_group::SECRET),
    ("", "Service", &core_group::SERVICE),
    ("", "ServiceAccount", &core_group::SERVICE_ACCOUNT),
    (
        "apiregistration.k8s.io",
        "APIService",
        &cluster::API_SERVICE,
    ),
    ("apps", "ControllerRevision", &apps::CONTROLLER_REVISION),
    ("apps", "DaemonSet", &apps::DAEMON_SET),
    ("apps", "Deployment", &apps::DEPLOYMENT),
    ("apps", "ReplicaSet", &apps::REPLICA_SET),
    ("apps", "StatefulSet", &apps::STATEFUL_SET),
    ("events.k8s.io", "Event", &core_group::EVENTS_V1_EVENT),
    ("autoscaling", "HorizontalPodAutoscaler", &apps::HPA),
    ("batch", "CronJob", &apps::CRON_JOB),
    ("batch", "Job", &apps::JOB),
    (
        "certificates.k8s.io",
        "CertificateSigningRequest",
        &cluster::CSR,
    ),
    ("networking.k8s.io", "IPAddress", &networking::IP_ADDRESS),
    (
        "networking.k8s.io",
        "IngressClass",
        &networking::INGRESS_CLASS,
    ),
    ("networking.k8s.io", "Ingress", &networking::INGRESS),
    (
        "networking.k8s.io",
        "NetworkPolicy",
        &networking::NETWORK_POLICY,
    ),
    (
        "networking.k8s.io",
        "ServiceCIDR",
        &networking::SERVICE_CIDR,
    ),
    ("policy", "PodDisruptionBudget", &apps::PDB),
    (
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        &cluster::CLUSTER_ROLE_BINDING,
    ),
    (
        "rbac.authorization.k8s.io",
        "RoleBinding",
        &cluster::ROLE_BINDING,
    ),
    ("storage.k8s.io", "CSIDriver", &storage::CSI_DRIVER),
    ("storage.k8s.io", "CSINode", &storage::CSI_NODE),
    (
        "storage.k8s.io",
        "CSIStorageCapacity",
        &storage::CSI_STORAGE_CAPACITY,
    ),
    ("storage.k8s.io", "StorageClass", &storage::STORAGE_CLASS),
    (
        "storage.k8s.io",
        "VolumeAttachment",
        &storage::VOLUME_ATTACHMENT,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        &cluster::MUTATING_WEBHOOK,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        &cluster::VAP,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        &cluster::VAP_BINDING,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        &cluster::VALIDATING_WEBHOOK,
    ),
    (
        "scheduling.k8s.io",
        "PriorityClass",
        &cluster::PRIORITY_CLASS,
    ),
    ("coordination.k8s.io", "Lease", &cluster::LEASE),
    ("node.k8s.io", "RuntimeClass", &cluster::RUNTIME_CLASS),
    (
        "discovery.k8s.io",
        "EndpointSlice",
        &networking::ENDPOINT_SLICE,
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "FlowSchema",
        &cluster::FLOW_SCHEMA,
    ),
    (
        "flowcontrol.apiserver.k8s.io",
        "PriorityLevelConfiguration",
        &cluster::PRIORITY_LEVEL,
    ),
];

static POD: Printer = Printer {
    columns: pod::COLUMNS,
    cells: pod::cells,
};

/// The printer for a built-in (group, kind); [`DEFAULT`] when upstream has none.
pub(crate) fn lookup(group: &str, kind: &str) -> &'static Printer {
    PRINTERS
        .iter()
        .find(|(g, k, _)| *g == group && *k == kind)
        .map_or(&DEFAULT, |(_, _, p)| *p)
}

/// Row conditions for kinds that have them (finished pods).
pub(crate) fn row_conditions(group: &str, kind: &str, obj: &Value) -> Option<Value> {
    (group.is_empty() && kind == "Pod")
        .then(|| pod::row_conditions(obj))
        .flatten()
}

/// Whether upstream's list printer sorts this kind's rows: only FlowSchema
/// (`printFlowSchemaList` sorts with `FlowSchemaSequence`); `printPriorityLevelConfigurationList`
/// and every other list printer keep list order.
pub(crate) fn sorts_rows(group: &str, kind: &str) -> bool {
    group == "flowcontrol.apiserver.k8s.io" && kind == "FlowSchema"
}

/// Upstream sorts FlowSchema lists by matching precedence, then name, before printing.
pub(crate) fn sort_key(group: &str, kind: &str, obj: &Value) -> Option<(i64, String)> {
    sorts_rows(group, kind).then(|| {
        (
            super::json::int_at(obj, &["spec", "matchingPrecedence"]),
            super::json::str_at(obj, &["metadata", "name"]).to_owned(),
        )
    })
}

impl Column {
    /// A column from static strings (usable in `const` tables).
    pub(crate) const fn new_static(
        name: &'static str,
        ty: &'static str,
        format: &'static str,
        description: &'static str,
        priority: i32,
    ) -> Column {
        Column {
            name: Cow::Borrowed(name),
            r#type: Cow::Borrowed(ty),
            format: Cow::Borrowed(format),
            description: Cow::Borrowed(description),
            priority,
        }
    }
}
