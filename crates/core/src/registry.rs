//! The resource registry: one table of every built-in resource Drover serves.
//!
//! Discovery documents, URL routing, storage keys, OpenAPI paths and the version conversions
//! of kinds served in several versions are all generated from [`BUILTIN`]; nothing is written
//! per kind elsewhere. Custom resources are added at run time as [`Resource`] values built from
//! their CustomResourceDefinition.

use std::borrow::Cow;

/// A group and version, e.g. `apps/v1` (core is group `""`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupVersion {
    /// API group; empty for the core (legacy) group.
    pub group: Cow<'static, str>,
    /// Version, e.g. `v1`.
    pub version: Cow<'static, str>,
}

impl GroupVersion {
    /// `apiVersion` as written in objects: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Parses an `apiVersion` string.
    pub fn parse(api_version: &str) -> GroupVersion {
        match api_version.split_once('/') {
            Some((g, v)) => GroupVersion {
                group: g.to_owned().into(),
                version: v.to_owned().into(),
            },
            None => GroupVersion {
                group: "".into(),
                version: api_version.to_owned().into(),
            },
        }
    }

    /// The URL prefix under which this group-version is served: `/api/v1` or `/apis/G/V`.
    pub fn url_prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }
}

/// The verbs a resource supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbs {
    /// create, delete, deletecollection, get, list, patch, update, watch.
    All,
    /// Only `create` (reviews, bindings).
    CreateOnly,
    /// get and list (component statuses).
    ReadOnly,
    /// Everything but deletecollection (namespaces: one DELETE must never remove them all).
    NoDeleteCollection,
}

impl Verbs {
    /// The discovery verb list.
    pub fn names(self) -> &'static [&'static str] {
        match self {
            Verbs::All => &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            Verbs::CreateOnly => &["create"],
            Verbs::ReadOnly => &["get", "list"],
            Verbs::NoDeleteCollection => &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
        }
    }

    /// True when objects of this resource are persisted (not virtual like reviews).
    pub fn stored(self) -> bool {
        !matches!(self, Verbs::CreateOnly)
    }
}

/// A subresource of a resource, e.g. `deployments/scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subresource {
    /// Its name, e.g. `status`.
    pub name: &'static str,
    /// The kind it answers with as (group, version, kind); `None` means the parent's kind.
    pub kind: Option<(&'static str, &'static str, &'static str)>,
    /// Discovery verbs.
    pub verbs: &'static [&'static str],
}

const GPU: &[&str] = &["get", "patch", "update"];
const CREATE: &[&str] = &["create"];
const GET: &[&str] = &["get"];
const CONNECT: &[&str] = &["create", "get"];

const STATUS: Subresource = Subresource {
    name: "status",
    kind: None,
    verbs: GPU,
};
const SCALE: Subresource = Subresource {
    name: "scale",
    kind: Some(("autoscaling", "v1", "Scale")),
    verbs: GPU,
};

/// One resource in one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    /// Group and version served.
    pub gv: GroupVersion,
    /// Kind, e.g. `Deployment`.
    pub kind: Cow<'static, str>,
    /// Plural resource name used in URLs, e.g. `deployments`.
    pub plural: Cow<'static, str>,
    /// Singular name, e.g. `deployment`.
    pub singular: Cow<'static, str>,
    /// True for namespaced resources.
    pub namespaced: bool,
    /// Short names for kubectl (`deploy`).
    pub short_names: Cow<'static, [Cow<'static, str>]>,
    /// Categories (`all`).
    pub categories: Cow<'static, [Cow<'static, str>]>,
    /// Verbs.
    pub verbs: Verbs,
    /// Subresources.
    pub subresources: Cow<'static, [Subresource]>,
    /// Where objects are stored: (group, plural). Kinds served in several versions share one.
    pub storage_group: Cow<'static, str>,
    /// The version objects are stored in; requests in other versions are converted.
    pub storage_version: Cow<'static, str>,
    /// True for the preferred version of the group (listed first in discovery).
    pub preferred: bool,
    /// For custom resources: what their CustomResourceDefinition says about this version.
    pub custom: Option<std::sync::Arc<CustomResourceInfo>>,
}

/// What a CustomResourceDefinition declares for one served version of a custom resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomResourceInfo {
    /// The version's `openAPIV3Schema` (`{}` when absent).
    pub schema: serde_json::Value,
    /// The version's `additionalPrinterColumns`.
    pub printer_columns: Vec<serde_json::Value>,
    /// The scale subresource's paths, when it has one.
    pub scale: Option<ScalePaths>,
    /// Extra fields selectable with field selectors (`selectableFields[].jsonPath`).
    pub selectable_fields: Vec<String>,
    /// The CRD's name (`<plural>.<group>`).
    pub crd_name: String,
}

/// JSON paths of a custom resource's scale subresource (`.spec.replicas` style).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScalePaths {
    /// Where the desired replica count lives.
    pub spec_replicas: String,
    /// Where the observed replica count lives.
    pub status_replicas: String,
    /// Where the label selector string lives, if declared.
    pub label_selector: Option<String>,
}

impl Resource {
    /// `apiVersion` of objects of this resource.
    pub fn api_version(&self) -> String {
        self.gv.api_version()
    }

    /// The storage key prefix of all objects of this resource (ends with `/`), shared by every
    /// version of the resource.
    pub fn key_prefix(&self) -> String {
        let group = if self.storage_group.is_empty() {
            "core"
        } else {
            &self.storage_group
        };
        format!("/registry/{group}/{}/", self.plural)
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => format!("{}{ns}/{name}", self.key_prefix()),
            None => format!("{}{name}", self.key_prefix()),
        }
    }

    /// Finds a subresource by name.
    pub fn subresource(&self, name: &str) -> Option<&Subresource> {
        self.subresources.iter().find(|s| s.name == name)
    }

    /// True when `version` is the storage version (no conversion needed).
    pub fn is_storage_version(&self) -> bool {
        self.gv.group == self.storage_group && self.gv.version == self.storage_version
    }
}

struct Row {
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    verbs: Verbs,
    sub: &'static [Subresource],
}

const fn row(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    namespaced: bool,
) -> Row {
    Row {
        group,
        version,
        kind,
        plural,
        namespaced,
        short: &[],
        all: false,
        verbs: Verbs::All,
        sub: &[],
    }
}

impl Row {
    const fn short(mut self, short: &'static [&'static str]) -> Row {
        self.short = short;
        self
    }
    const fn all(mut self) -> Row {
        self.all = true;
        self
    }
    const fn verbs(mut self, verbs: Verbs) -> Row {
        self.verbs = verbs;
        self
    }
    const fn sub(mut self, sub: &'static [Subresource]) -> Row {
        self.sub = sub;
        self
    }
}

const NS: bool = true;
const CLUSTER: bool = false;

/// Every built-in resource of Kubernetes 1.33 that Drover serves, in discovery order (groups in
/// upstream's preference order; within a group the preferred version first).
///
/// Source for names, scopes, short names, categories and subresources: the Kubernetes API
/// reference for v1.33 (<https://kubernetes.io/docs/reference/kubernetes-api/>) and
/// `kubectl api-resources` on an upstream 1.33 cluster.
const TABLE: &[Row] = &[
    // core/v1
    row("", "v1", "Binding", "bindings", NS).verbs(Verbs::CreateOnly),
    row("", "v1", "ComponentStatus", "componentstatuses", CLUSTER)
        .short(&["cs"])
        .verbs(Verbs::ReadOnly),
    row("", "v1", "ConfigMap", "configmaps", NS).short(&["cm"]),
    row("", "v1", "Endpoints", "endpoints", NS).short(&["ep"]),
    row("", "v1", "Event", "events", NS).short(&["ev"]),
    row("", "v1", "LimitRange", "limitranges", NS).short(&["limits"]),
    row("", "v1", "Namespace", "namespaces", CLUSTER)
        .short(&["ns"])
        .verbs(Verbs::NoDeleteCollection)
        .sub(&[
            Subresource {
                name: "finalize",
                kind: None,
                verbs: &["update"],
            },
            STATUS,
        ]),
    row("", "v1", "Node", "nodes", CLUSTER)
        .short(&["no"])
        .sub(&[
            Subresource {
                name: "proxy",
                kind: Some(("", "v1", "NodeProxyOptions")),
                verbs: CONNECT,
            },
            STATUS,
        ]),
    row(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        NS,
    )
    .short(&["pvc"])
    .sub(&[STATUS]),
    row("", "v1", "PersistentVolume", "persistentvolumes", CLUSTER)
        .short(&["pv"])
        .sub(&[STATUS]),
    row("", "v1", "Pod", "pods", NS).short(&["po"]).all().sub(&[
        Subresource {
            name: "attach",
            kind: Some(("", "v1", "PodAttachOptions")),
            verbs: CONNECT,
        },
        Subresource {
            name: "binding",
            kind: Some(("", "v1", "Binding")),
            verbs: CREATE,
        },
        Subresource {
            name: "ephemeralcontainers",
            kind: None,
            verbs: GPU,
        },
        Subresource {
            name: "eviction",
            kind: Some(("policy", "v1", "Eviction")),
            verbs: CREATE,
        },
        Subresource {
            name: "exec",
            kind: Some(("", "v1", "PodExecOptions")),
            verbs: CONNECT,
        },
        Subresource {
            name: "log",
            kind: None,
            verbs: GET,
        },
        Subresource {
            name: "portforward",
            kind: Some(("", "v1", "PodPortForwardOptions")),
            verbs: CONNECT,
        },
        Subresource {
            name: "proxy",
            kind: Some(("", "v1", "PodProxyOptions")),
            verbs: CONNECT,
        },
        Subresource {
            name: "resize",
            kind: None,
            verbs: GPU,
        },
        STATUS,
    ]),
    row("", "v1", "PodTemplate", "podtemplates", NS),
    row(
        "",
        "v1",
        "ReplicationController",
        "replicationcontrollers",
        NS,
    )
    .short(&["rc"])
    .all()
    .sub(&[SCALE, STATUS]),
    row("", "v1", "ResourceQuota", "resourcequotas", NS)
        .short(&["quota"])
        .sub(&[STATUS]),
    row("", "v1", "Secret", "secrets", NS),
    row("", "v1", "ServiceAccount", "serviceaccounts", NS)
        .short(&["sa"])
        .sub(&[Subresource {
            name: "token",
            kind: Some(("authentication.k8s.io", "v1", "TokenRequest")),
            verbs: CREATE,
        }]),
    row("", "v1", "Service", "services", NS)
        .short(&["svc"])
        .all()
        .sub(&[
            Subresource {
                name: "proxy",
                kind: Some(("", "v1", "ServiceProxyOptions")),
                verbs: CONNECT,
            },
            STATUS,
        ]),
    // apiregistration.k8s.io
    row(
        "apiregistration.k8s.io",
        "v1",
        "APIService",
        "apiservices",
        CLUSTER,
    )
    .sub(&[STATUS]),
    // apps
    row(
        "apps",
        "v1",
        "ControllerRevision",
        "controllerrevisions",
        NS,
    ),
    row("apps", "v1", "DaemonSet", "daemonsets", NS)
        .short(&["ds"])
        .all()
        .sub(&[STATUS]),
    row("apps", "v1", "Deployment", "deployments", NS)
        .short(&["deploy"])
        .all()
        .sub(&[SCALE, STATUS]),
    row("apps", "v1", "ReplicaSet", "replicasets", NS)
        .short(&["rs"])
        .all()
        .sub(&[SCALE, STATUS]),
    row("apps", "v1", "StatefulSet", "statefulsets", NS)
        .short(&["sts"])
        .all()
        .sub(&[SCALE, STATUS]),
    // events.k8s.io
    row("events.k8s.io", "v1", "Event", "events", NS).short(&["ev"]),
    // authentication.k8s.io
    row(
        "authentication.k8s.io",
        "v1",
        "SelfSubjectReview",
        "selfsubjectreviews",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    row(
        "authentication.k8s.io",
        "v1",
        "TokenReview",
        "tokenreviews",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    // authorization.k8s.io
    row(
        "authorization.k8s.io",
        "v1",
        "LocalSubjectAccessReview",
        "localsubjectaccessreviews",
        NS,
    )
    .verbs(Verbs::CreateOnly),
    row(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectAccessReview",
        "selfsubjectaccessreviews",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    row(
        "authorization.k8s.io",
        "v1",
        "SelfSubjectRulesReview",
        "selfsubjectrulesreviews",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    row(
        "authorization.k8s.io",
        "v1",
        "SubjectAccessReview",
        "subjectaccessreviews",
        CLUSTER,
    )
    .verbs(Verbs::CreateOnly),
    // autoscaling: v2 is preferred; v1 is the same stored resource, converted per request.
    row(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        NS,
    )
    .short(&["hpa"])
    .all()
    .sub(&[STATUS]),
    row(
        "autoscaling",
        "v1",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        NS,
    )
    .short(&["hpa"])
    .all()
    .sub(&[STATUS]),
    // batch
    row("batch", "v1", "CronJob", "cronjobs", NS)
        .short(&["cj"])
        .all()
        .sub(&[STATUS]),
    row("batch", "v1", "Job", "jobs", NS).all().sub(&[STATUS]),
    // certificates.k8s.io
    row(
        "certificates.k8s.io",
        "v1",
        "CertificateSigningRequest",
        "certificatesigningrequests",
        CLUSTER,
    )
    .short(&["csr"])
    .sub(&[
        Subresource {
            name: "approval",
            kind: None,
            verbs: GPU,
        },
        STATUS,
    ]),
    // networking.k8s.io
    row(
        "networking.k8s.io",
        "v1",
        "IPAddress",
        "ipaddresses",
        CLUSTER,
    )
    .short(&["ip"]),
    row(
        "networking.k8s.io",
        "v1",
        "IngressClass",
        "ingressclasses",
        CLUSTER,
    ),
    row("networking.k8s.io", "v1", "Ingress", "ingresses", NS)
        .short(&["ing"])
        .sub(&[STATUS]),
    row(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        NS,
    )
    .short(&["netpol"]),
    row(
        "networking.k8s.io",
        "v1",
        "ServiceCIDR",
        "servicecidrs",
        CLUSTER,
    )
    .sub(&[STATUS]),
    // policy
    row(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        NS,
    )
    .short(&["pdb"])
    .sub(&[STATUS]),
    // rbac.authorization.k8s.io
    row(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        CLUSTER,
    ),
    row(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        CLUSTER,
    ),
    row(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        NS,
    ),
    row("rbac.authorization.k8s.io", "v1", "Role", "roles", NS),
    // storage.k8s.io
    row("storage.k8s.io", "v1", "CSIDriver", "csidrivers", CLUSTER),
    row("storage.k8s.io", "v1", "CSINode", "csinodes", CLUSTER),
    row(
        "storage.k8s.io",
        "v1",
        "CSIStorageCapacity",
        "csistoragecapacities",
        NS,
    ),
    row(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        CLUSTER,
    )
    .short(&["sc"]),
    row(
        "storage.k8s.io",
        "v1",
        "VolumeAttachment",
        "volumeattachments",
        CLUSTER,
    )
    .sub(&[STATUS]),
    // admissionregistration.k8s.io
    row(
        "admissionregistration.k8s.io",
        "v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        CLUSTER,
    ),
    row(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicy",
        "validatingadmissionpolicies",
        CLUSTER,
    )
    .sub(&[STATUS]),
    row(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
        CLUSTER,
    ),
    row(
        "admissionregistration.k8s.io",
        "v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        CLUSTER,
    ),
    // apiextensions.k8s.io
    row(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        CLUSTER,
    )
    .short(&["crd", "crds"])
    .sub(&[STATUS]),
    // scheduling.k8s.io
    row(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        CLUSTER,
    )
    .short(&["pc"]),
    // coordination.k8s.io
    row("coordination.k8s.io", "v1", "Lease", "leases", NS),
    // node.k8s.io
    row(
        "node.k8s.io",
        "v1",
        "RuntimeClass",
        "runtimeclasses",
        CLUSTER,
    ),
    // discovery.k8s.io
    row(
        "discovery.k8s.io",
        "v1",
        "EndpointSlice",
        "endpointslices",
        NS,
    ),
    // flowcontrol.apiserver.k8s.io
    row(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "FlowSchema",
        "flowschemas",
        CLUSTER,
    )
    .sub(&[STATUS]),
    row(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        "PriorityLevelConfiguration",
        "prioritylevelconfigurations",
        CLUSTER,
    )
    .sub(&[STATUS]),
];

/// Kinds served in several versions or groups that share one stored resource:
/// (group, plural) of the served row → (storage group, storage version).
const SHARED_STORAGE: &[(&str, &str, &str, &str)] = &[
    // HPA autoscaling/v1 is stored as autoscaling/v2.
    (
        "autoscaling",
        "horizontalpodautoscalers",
        "autoscaling",
        "v2",
    ),
    // events.k8s.io/v1 Event and core/v1 Event are one resource, stored as core/v1.
    ("events.k8s.io", "events", "", "v1"),
];

fn build(row: &Row) -> Resource {
    let (storage_group, storage_version) = SHARED_STORAGE
        .iter()
        .find(|(g, p, _, _)| *g == row.group && *p == row.plural)
        .map(|(_, _, sg, sv)| (*sg, *sv))
        .unwrap_or((row.group, row.version));
    // The first row of a group is its preferred version.
    let preferred = TABLE
        .iter()
        .find(|r| r.group == row.group)
        .map(|r| r.version)
        == Some(row.version);
    Resource {
        gv: GroupVersion {
            group: row.group.into(),
            version: row.version.into(),
        },
        kind: row.kind.into(),
        plural: row.plural.into(),
        singular: row.kind.to_ascii_lowercase().into(),
        namespaced: row.namespaced,
        short_names: row
            .short
            .iter()
            .map(|s| Cow::Borrowed(*s))
            .collect::<Vec<_>>()
            .into(),
        categories: if row.all {
            Cow::Borrowed(&[Cow::Borrowed("all")])
        } else {
            Cow::Borrowed(&[])
        },
        verbs: row.verbs,
        subresources: Cow::Borrowed(row.sub),
        storage_group: storage_group.into(),
        storage_version: storage_version.into(),
        preferred,
        custom: None,
    }
}

/// Every built-in resource, in discovery order.
pub fn builtin() -> &'static [Resource] {
    static BUILTIN: std::sync::OnceLock<Vec<Resource>> = std::sync::OnceLock::new();
    BUILTIN.get_or_init(|| TABLE.iter().map(build).collect())
}

/// The built-in group-versions in discovery order (core first), each once.
pub fn builtin_group_versions() -> Vec<GroupVersion> {
    let mut out: Vec<GroupVersion> = Vec::new();
    for r in builtin() {
        if !out.contains(&r.gv) {
            out.push(r.gv.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_per_group_version() {
        let all = builtin();
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert!(
                    !(a.gv == b.gv && a.plural == b.plural),
                    "{}/{} listed twice",
                    a.api_version(),
                    a.plural
                );
                assert!(
                    !(a.gv == b.gv && a.kind == b.kind),
                    "{} {} listed twice",
                    a.api_version(),
                    a.kind
                );
            }
        }
    }

    #[test]
    fn shared_kinds_store_in_one_place() {
        let hpa: Vec<_> = builtin()
            .iter()
            .filter(|r| r.plural == "horizontalpodautoscalers")
            .collect();
        assert_eq!(hpa.len(), 2);
        assert_eq!(hpa[0].key_prefix(), hpa[1].key_prefix());
        assert!(hpa[0].preferred && hpa[0].gv.version == "v2" && !hpa[1].preferred);
        let events: Vec<_> = builtin().iter().filter(|r| r.plural == "events").collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].key_prefix(), "/registry/core/events/");
        assert_eq!(events[1].key_prefix(), "/registry/core/events/");
        assert!(!events[1].is_storage_version());
    }

    #[test]
    fn keys_follow_scope() {
        let pods = builtin().iter().find(|r| r.plural == "pods").expect("pods");
        assert_eq!(
            pods.key(Some("default"), "web"),
            "/registry/core/pods/default/web"
        );
        let ns = builtin()
            .iter()
            .find(|r| r.plural == "namespaces")
            .expect("namespaces");
        assert_eq!(
            ns.key(Some("ignored"), "prod"),
            "/registry/core/namespaces/prod"
        );
        let deploy = builtin()
            .iter()
            .find(|r| r.plural == "deployments")
            .expect("deployments");
        assert_eq!(deploy.key(Some("a"), "b"), "/registry/apps/deployments/a/b");
    }
}
