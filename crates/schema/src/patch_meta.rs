//! Patch and list metadata of every built-in list field: the one table both the OpenAPI
//! extensions (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`, `x-kubernetes-map-type`) and the
//! strategic-merge-patch navigation ([`crate::SchemaNode`]) are generated from.
//!
//! `k8s-openapi` carries no patch metadata, so it is restated here, from the comment markers of
//! the Kubernetes 1.33 Go types (`+patchStrategy`, `+patchMergeKey`, `+listType`, `+listMapKey`,
//! `+mapType`, `+structType`), which are what upstream's openapi-gen publishes (it logs markers
//! on the wrong kind of field, such as `+listType=atomic` on `Status.details` or
//! `+patchStrategy=replace` on a struct, and publishes them anyway; so does this table). The test
//! module `upstream` compares the table with those markers, extracted by
//! `tools/patchmeta/extract_markers.py` into `tests/data/k8s-v1.33-field-markers.tsv`, in both
//! directions for every definition Drover serves. Another test checks that every (type, field)
//! below exists in the generated definitions, so a typo fails the build.

/// The metadata declared on one field (or, with an empty `field`, on a type itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FieldMeta {
    /// OpenAPI definition name of the type owning the field.
    pub(crate) ty: &'static str,
    /// JSON field name; empty for metadata on the type itself (`x-kubernetes-map-type`).
    pub(crate) field: &'static str,
    /// `x-kubernetes-patch-strategy`: `merge`, `retainKeys`, `merge,retainKeys` or `replace`.
    pub(crate) strategy: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`.
    pub(crate) merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub(crate) list_type: Option<&'static str>,
    /// `x-kubernetes-list-map-keys` (only with list type `map`).
    pub(crate) map_keys: &'static [&'static str],
    /// `x-kubernetes-map-type`: `atomic` or `granular`.
    pub(crate) map_type: Option<&'static str>,
}

impl FieldMeta {
    const fn new(ty: &'static str, field: &'static str) -> FieldMeta {
        FieldMeta {
            ty,
            field,
            strategy: None,
            merge_key: None,
            list_type: None,
            map_keys: &[],
            map_type: None,
        }
    }

    /// True when the patch strategy includes `merge`.
    #[cfg(test)]
    pub(crate) fn merges(&self) -> bool {
        self.strategy
            .is_some_and(|s| s.split(',').any(|p| p == "merge"))
    }
}

/// `listType=atomic`.
const fn atomic(ty: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        list_type: Some("atomic"),
        ..FieldMeta::new(ty, field)
    }
}

/// `listType=set`.
const fn set(ty: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        list_type: Some("set"),
        ..FieldMeta::new(ty, field)
    }
}

/// `patchStrategy=merge` + `listType=set` (lists of scalars merged as sets).
const fn merge_set(ty: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        strategy: Some("merge"),
        list_type: Some("set"),
        ..FieldMeta::new(ty, field)
    }
}

/// `listType=map` + `listMapKeys`, without a strategic-merge-patch strategy.
const fn list_map(
    ty: &'static str,
    field: &'static str,
    keys: &'static [&'static str],
) -> FieldMeta {
    FieldMeta {
        list_type: Some("map"),
        map_keys: keys,
        ..FieldMeta::new(ty, field)
    }
}

/// `patchStrategy=merge` + `patchMergeKey=key` + `listType=map` + `listMapKeys=keys`.
const fn merge_map(
    ty: &'static str,
    field: &'static str,
    key: &'static str,
    keys: &'static [&'static str],
) -> FieldMeta {
    FieldMeta {
        strategy: Some("merge"),
        merge_key: Some(key),
        list_type: Some("map"),
        map_keys: keys,
        ..FieldMeta::new(ty, field)
    }
}

/// As [`merge_map`] with `patchStrategy=merge,retainKeys`.
const fn merge_retain_map(
    ty: &'static str,
    field: &'static str,
    key: &'static str,
    keys: &'static [&'static str],
) -> FieldMeta {
    FieldMeta {
        strategy: Some("merge,retainKeys"),
        ..merge_map(ty, field, key, keys)
    }
}

/// `patchStrategy=merge` + `patchMergeKey=key` on a list whose `listType` is atomic.
const fn merge_atomic(ty: &'static str, field: &'static str, key: &'static str) -> FieldMeta {
    FieldMeta {
        strategy: Some("merge"),
        merge_key: Some(key),
        list_type: Some("atomic"),
        ..FieldMeta::new(ty, field)
    }
}

/// `patchStrategy=retainKeys` on a struct field (union types such as a deployment strategy).
const fn retain_keys(ty: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        strategy: Some("retainKeys"),
        ..FieldMeta::new(ty, field)
    }
}

/// `patchStrategy=replace` on a struct field: a patch replaces the whole object instead of
/// merging into it (policy/v1 `PodDisruptionBudgetSpec.selector`).
const fn replace(ty: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        strategy: Some("replace"),
        ..FieldMeta::new(ty, field)
    }
}

/// `mapType=granular` (or `structType=granular`) on a field whose type would otherwise be atomic.
const fn granular(ty: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        map_type: Some("granular"),
        ..FieldMeta::new(ty, field)
    }
}

/// `mapType=atomic` on a map field.
const fn atomic_map(ty: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        map_type: Some("atomic"),
        ..FieldMeta::new(ty, field)
    }
}

/// `structType=atomic` on a type (published as `x-kubernetes-map-type: atomic`).
const fn atomic_struct(ty: &'static str) -> FieldMeta {
    FieldMeta {
        map_type: Some("atomic"),
        ..FieldMeta::new(ty, "")
    }
}

macro_rules! core {
    ($t:literal) => {
        concat!("io.k8s.api.core.v1.", $t)
    };
}
macro_rules! meta {
    ($t:literal) => {
        concat!("io.k8s.apimachinery.pkg.apis.meta.v1.", $t)
    };
}
macro_rules! api {
    ($g:literal, $t:literal) => {
        concat!("io.k8s.api.", $g, ".", $t)
    };
}

const NAME: &[&str] = &["name"];
const TYPE: &[&str] = &["type"];
const IP: &[&str] = &["ip"];
const JSON_SCHEMA_PROPS: &str =
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";

/// The table. Conditions lists are keyed by `type` throughout.
pub(crate) const TABLE: &[FieldMeta] = &[
    // --- meta/v1
    merge_set(meta!("ObjectMeta"), "finalizers"),
    merge_map(meta!("ObjectMeta"), "ownerReferences", "uid", &["uid"]),
    atomic(meta!("ObjectMeta"), "managedFields"),
    atomic_struct(meta!("OwnerReference")),
    atomic_struct(meta!("LabelSelector")),
    atomic(meta!("LabelSelector"), "matchExpressions"),
    atomic(meta!("LabelSelectorRequirement"), "values"),
    atomic(meta!("StatusDetails"), "causes"),
    atomic(meta!("APIResourceList"), "resources"),
    atomic(meta!("APIResource"), "categories"),
    atomic(meta!("APIResource"), "shortNames"),
    atomic(meta!("DeleteOptions"), "dryRun"),
    atomic(meta!("FieldSelectorRequirement"), "values"),
    // Upstream marks this struct field `+listType=atomic` (meaningless on an object, but published).
    atomic(meta!("Status"), "details"),
    // --- core/v1 Pod
    merge_map(core!("PodSpec"), "containers", "name", NAME),
    merge_map(core!("PodSpec"), "initContainers", "name", NAME),
    merge_map(core!("PodSpec"), "ephemeralContainers", "name", NAME),
    merge_retain_map(core!("PodSpec"), "volumes", "name", NAME),
    merge_map(core!("PodSpec"), "imagePullSecrets", "name", NAME),
    merge_map(core!("PodSpec"), "hostAliases", "ip", IP),
    atomic(core!("PodSpec"), "tolerations"),
    atomic(core!("PodSpec"), "readinessGates"),
    merge_map(
        core!("PodSpec"),
        "topologySpreadConstraints",
        "topologyKey",
        &["topologyKey", "whenUnsatisfiable"],
    ),
    merge_map(core!("PodSpec"), "schedulingGates", "name", NAME),
    merge_retain_map(core!("PodSpec"), "resourceClaims", "name", NAME),
    atomic_map(core!("PodSpec"), "nodeSelector"),
    atomic(core!("PodSecurityContext"), "supplementalGroups"),
    atomic(core!("PodSecurityContext"), "sysctls"),
    atomic(core!("LinuxContainerUser"), "supplementalGroups"),
    atomic(core!("Capabilities"), "add"),
    atomic(core!("Capabilities"), "drop"),
    atomic(core!("PodDNSConfig"), "nameservers"),
    atomic(core!("PodDNSConfig"), "options"),
    atomic(core!("PodDNSConfig"), "searches"),
    atomic(core!("HostAlias"), "hostnames"),
    atomic(core!("TopologySpreadConstraint"), "matchLabelKeys"),
    // Containers (regular and ephemeral declare the same markers).
    atomic(core!("Container"), "args"),
    atomic(core!("Container"), "command"),
    merge_map(core!("Container"), "env", "name", NAME),
    atomic(core!("Container"), "envFrom"),
    merge_map(
        core!("Container"),
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    merge_map(
        core!("Container"),
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merge_map(
        core!("Container"),
        "volumeDevices",
        "devicePath",
        &["devicePath"],
    ),
    atomic(core!("Container"), "resizePolicy"),
    atomic(core!("EphemeralContainer"), "args"),
    atomic(core!("EphemeralContainer"), "command"),
    merge_map(core!("EphemeralContainer"), "env", "name", NAME),
    atomic(core!("EphemeralContainer"), "envFrom"),
    merge_map(
        core!("EphemeralContainer"),
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
    merge_map(
        core!("EphemeralContainer"),
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merge_map(
        core!("EphemeralContainer"),
        "volumeDevices",
        "devicePath",
        &["devicePath"],
    ),
    atomic(core!("EphemeralContainer"), "resizePolicy"),
    list_map(core!("ResourceRequirements"), "claims", NAME),
    atomic(core!("ExecAction"), "command"),
    atomic(core!("HTTPGetAction"), "httpHeaders"),
    // Pod status.
    merge_map(core!("PodStatus"), "conditions", "type", TYPE),
    merge_map(core!("PodStatus"), "podIPs", "ip", IP),
    merge_atomic(core!("PodStatus"), "hostIPs", "ip"),
    atomic(core!("PodStatus"), "containerStatuses"),
    atomic(core!("PodStatus"), "initContainerStatuses"),
    atomic(core!("PodStatus"), "ephemeralContainerStatuses"),
    merge_retain_map(core!("PodStatus"), "resourceClaimStatuses", "name", NAME),
    merge_map(
        core!("ContainerStatus"),
        "volumeMounts",
        "mountPath",
        &["mountPath"],
    ),
    merge_map(
        core!("ContainerStatus"),
        "allocatedResourcesStatus",
        "name",
        NAME,
    ),
    list_map(core!("ResourceStatus"), "resources", &["resourceID"]),
    // Scheduling constraints.
    atomic(
        core!("NodeAffinity"),
        "preferredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic_struct(core!("NodeSelector")),
    atomic(core!("NodeSelector"), "nodeSelectorTerms"),
    atomic_struct(core!("NodeSelectorTerm")),
    atomic(core!("NodeSelectorTerm"), "matchExpressions"),
    atomic(core!("NodeSelectorTerm"), "matchFields"),
    atomic(core!("NodeSelectorRequirement"), "values"),
    atomic(
        core!("PodAffinity"),
        "requiredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic(
        core!("PodAffinity"),
        "preferredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic(
        core!("PodAntiAffinity"),
        "requiredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic(
        core!("PodAntiAffinity"),
        "preferredDuringSchedulingIgnoredDuringExecution",
    ),
    atomic(core!("PodAffinityTerm"), "namespaces"),
    atomic(core!("PodAffinityTerm"), "matchLabelKeys"),
    atomic(core!("PodAffinityTerm"), "mismatchLabelKeys"),
    atomic_struct(core!("TopologySelectorTerm")),
    atomic(core!("TopologySelectorTerm"), "matchLabelExpressions"),
    atomic(core!("TopologySelectorLabelRequirement"), "values"),
    // Volumes.
    atomic(core!("ConfigMapVolumeSource"), "items"),
    atomic(core!("SecretVolumeSource"), "items"),
    atomic(core!("ConfigMapProjection"), "items"),
    atomic(core!("SecretProjection"), "items"),
    atomic(core!("DownwardAPIVolumeSource"), "items"),
    atomic(core!("DownwardAPIProjection"), "items"),
    atomic(core!("ProjectedVolumeSource"), "sources"),
    atomic(core!("CephFSVolumeSource"), "monitors"),
    atomic(core!("CephFSPersistentVolumeSource"), "monitors"),
    atomic(core!("RBDVolumeSource"), "monitors"),
    atomic(core!("RBDPersistentVolumeSource"), "monitors"),
    atomic(core!("ISCSIVolumeSource"), "portals"),
    atomic(core!("ISCSIPersistentVolumeSource"), "portals"),
    atomic(core!("FCVolumeSource"), "targetWWNs"),
    atomic(core!("FCVolumeSource"), "wwids"),
    // References declared atomic as a whole.
    atomic_struct(core!("LocalObjectReference")),
    atomic_struct(core!("ObjectReference")),
    atomic_struct(core!("ConfigMapKeySelector")),
    atomic_struct(core!("SecretKeySelector")),
    atomic_struct(core!("ObjectFieldSelector")),
    atomic_struct(core!("ResourceFieldSelector")),
    atomic_struct(core!("TypedLocalObjectReference")),
    atomic_struct(core!("SecretReference")),
    // Services and endpoints.
    merge_map(core!("ServiceSpec"), "ports", "port", &["port", "protocol"]),
    atomic(core!("ServiceSpec"), "externalIPs"),
    atomic(core!("ServiceSpec"), "loadBalancerSourceRanges"),
    atomic(core!("ServiceSpec"), "clusterIPs"),
    atomic(core!("ServiceSpec"), "ipFamilies"),
    atomic_map(core!("ServiceSpec"), "selector"),
    merge_map(core!("ServiceStatus"), "conditions", "type", TYPE),
    atomic(core!("LoadBalancerStatus"), "ingress"),
    atomic(core!("LoadBalancerIngress"), "ports"),
    atomic(core!("Endpoints"), "subsets"),
    atomic(core!("EndpointSubset"), "addresses"),
    atomic(core!("EndpointSubset"), "notReadyAddresses"),
    atomic(core!("EndpointSubset"), "ports"),
    atomic_struct(core!("EndpointAddress")),
    atomic_struct(core!("EndpointPort")),
    // Nodes and namespaces.
    atomic(core!("NodeSpec"), "taints"),
    merge_set(core!("NodeSpec"), "podCIDRs"),
    merge_map(core!("NodeStatus"), "addresses", "type", TYPE),
    merge_map(core!("NodeStatus"), "conditions", "type", TYPE),
    atomic(core!("NodeStatus"), "images"),
    atomic(core!("ContainerImage"), "names"),
    atomic(core!("NodeStatus"), "volumesInUse"),
    atomic(core!("NodeStatus"), "volumesAttached"),
    atomic(core!("NodeStatus"), "runtimeHandlers"),
    atomic(core!("NamespaceSpec"), "finalizers"),
    merge_map(core!("NamespaceStatus"), "conditions", "type", TYPE),
    // Storage, quota, accounts, controllers.
    atomic(core!("LimitRangeSpec"), "limits"),
    atomic(core!("PersistentVolumeClaimSpec"), "accessModes"),
    atomic(core!("PersistentVolumeClaimStatus"), "accessModes"),
    merge_map(
        core!("PersistentVolumeClaimStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    atomic(core!("PersistentVolumeSpec"), "accessModes"),
    atomic(core!("PersistentVolumeSpec"), "mountOptions"),
    // ObjectReference is atomic, but a volume's claimRef is patched field by field.
    granular(core!("PersistentVolumeSpec"), "claimRef"),
    granular(
        core!("PersistentVolumeClaimStatus"),
        "allocatedResourceStatuses",
    ),
    atomic(core!("ResourceQuotaSpec"), "scopes"),
    atomic_struct(core!("ScopeSelector")),
    atomic(core!("ScopeSelector"), "matchExpressions"),
    atomic(core!("ScopedResourceSelectorRequirement"), "values"),
    merge_map(core!("ServiceAccount"), "secrets", "name", NAME),
    atomic(core!("ServiceAccount"), "imagePullSecrets"),
    atomic_map(core!("ReplicationControllerSpec"), "selector"),
    merge_map(
        core!("ReplicationControllerStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    merge_map(core!("ComponentStatus"), "conditions", "type", TYPE),
    // --- apps/v1
    retain_keys(api!("apps.v1", "DeploymentSpec"), "strategy"),
    merge_map(
        api!("apps.v1", "DeploymentStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    merge_map(
        api!("apps.v1", "DaemonSetStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    merge_map(
        api!("apps.v1", "ReplicaSetStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    merge_map(
        api!("apps.v1", "StatefulSetStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    atomic(api!("apps.v1", "StatefulSetSpec"), "volumeClaimTemplates"),
    // --- batch/v1
    merge_atomic(api!("batch.v1", "JobStatus"), "conditions", "type"),
    atomic(api!("batch.v1", "CronJobStatus"), "active"),
    atomic(api!("batch.v1", "PodFailurePolicy"), "rules"),
    atomic(api!("batch.v1", "PodFailurePolicyRule"), "onPodConditions"),
    set(
        api!("batch.v1", "PodFailurePolicyOnExitCodesRequirement"),
        "values",
    ),
    atomic(api!("batch.v1", "SuccessPolicy"), "rules"),
    set(api!("batch.v1", "UncountedTerminatedPods"), "succeeded"),
    set(api!("batch.v1", "UncountedTerminatedPods"), "failed"),
    // --- autoscaling/v1
    atomic_struct(api!("autoscaling.v1", "CrossVersionObjectReference")),
    // --- autoscaling/v2
    atomic(
        api!("autoscaling.v2", "HorizontalPodAutoscalerSpec"),
        "metrics",
    ),
    merge_map(
        api!("autoscaling.v2", "HorizontalPodAutoscalerStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    atomic(
        api!("autoscaling.v2", "HorizontalPodAutoscalerStatus"),
        "currentMetrics",
    ),
    atomic(api!("autoscaling.v2", "HPAScalingRules"), "policies"),
    // --- policy/v1
    replace(api!("policy.v1", "PodDisruptionBudgetSpec"), "selector"),
    merge_map(
        api!("policy.v1", "PodDisruptionBudgetStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    // --- networking.k8s.io/v1
    atomic(api!("networking.v1", "IngressSpec"), "rules"),
    atomic(api!("networking.v1", "IngressSpec"), "tls"),
    atomic(api!("networking.v1", "IngressTLS"), "hosts"),
    atomic(api!("networking.v1", "HTTPIngressRuleValue"), "paths"),
    atomic_struct(api!("networking.v1", "ServiceBackendPort")),
    atomic(
        api!("networking.v1", "IngressLoadBalancerStatus"),
        "ingress",
    ),
    atomic(api!("networking.v1", "IngressLoadBalancerIngress"), "ports"),
    atomic(api!("networking.v1", "NetworkPolicySpec"), "ingress"),
    atomic(api!("networking.v1", "NetworkPolicySpec"), "egress"),
    atomic(api!("networking.v1", "NetworkPolicySpec"), "policyTypes"),
    atomic(api!("networking.v1", "NetworkPolicyIngressRule"), "ports"),
    atomic(api!("networking.v1", "NetworkPolicyIngressRule"), "from"),
    atomic(api!("networking.v1", "NetworkPolicyEgressRule"), "ports"),
    atomic(api!("networking.v1", "NetworkPolicyEgressRule"), "to"),
    atomic(api!("networking.v1", "IPBlock"), "except"),
    atomic(api!("networking.v1", "ServiceCIDRSpec"), "cidrs"),
    merge_map(
        api!("networking.v1", "ServiceCIDRStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    // --- rbac.authorization.k8s.io/v1 (rules and subjects replace as a whole)
    atomic(api!("rbac.v1", "Role"), "rules"),
    atomic(api!("rbac.v1", "ClusterRole"), "rules"),
    atomic(api!("rbac.v1", "RoleBinding"), "subjects"),
    atomic(api!("rbac.v1", "ClusterRoleBinding"), "subjects"),
    atomic(api!("rbac.v1", "AggregationRule"), "clusterRoleSelectors"),
    atomic(api!("rbac.v1", "PolicyRule"), "verbs"),
    atomic(api!("rbac.v1", "PolicyRule"), "apiGroups"),
    atomic(api!("rbac.v1", "PolicyRule"), "resources"),
    atomic(api!("rbac.v1", "PolicyRule"), "resourceNames"),
    atomic(api!("rbac.v1", "PolicyRule"), "nonResourceURLs"),
    atomic_struct(api!("rbac.v1", "RoleRef")),
    atomic_struct(api!("rbac.v1", "Subject")),
    // --- discovery.k8s.io/v1
    atomic(api!("discovery.v1", "EndpointSlice"), "endpoints"),
    atomic(api!("discovery.v1", "EndpointSlice"), "ports"),
    set(api!("discovery.v1", "Endpoint"), "addresses"),
    atomic(api!("discovery.v1", "EndpointHints"), "forZones"),
    atomic(api!("discovery.v1", "EndpointHints"), "forNodes"),
    atomic_struct(api!("discovery.v1", "EndpointPort")),
    // --- storage.k8s.io/v1
    atomic(api!("storage.v1", "StorageClass"), "mountOptions"),
    atomic(api!("storage.v1", "StorageClass"), "allowedTopologies"),
    merge_map(api!("storage.v1", "CSINodeSpec"), "drivers", "name", NAME),
    atomic(api!("storage.v1", "CSINodeDriver"), "topologyKeys"),
    set(api!("storage.v1", "CSIDriverSpec"), "volumeLifecycleModes"),
    atomic(api!("storage.v1", "CSIDriverSpec"), "tokenRequests"),
    // --- certificates.k8s.io/v1
    atomic(
        api!("certificates.v1", "CertificateSigningRequestSpec"),
        "usages",
    ),
    atomic(
        api!("certificates.v1", "CertificateSigningRequestSpec"),
        "groups",
    ),
    list_map(
        api!("certificates.v1", "CertificateSigningRequestStatus"),
        "conditions",
        TYPE,
    ),
    // Upstream marks these []byte fields (base64 strings in JSON) `+listType=atomic`.
    atomic(
        api!("certificates.v1", "CertificateSigningRequestSpec"),
        "request",
    ),
    atomic(
        api!("certificates.v1", "CertificateSigningRequestStatus"),
        "certificate",
    ),
    // --- authentication / authorization
    atomic(api!("authentication.v1", "UserInfo"), "groups"),
    atomic(api!("authentication.v1", "TokenReviewSpec"), "audiences"),
    atomic(api!("authentication.v1", "TokenReviewStatus"), "audiences"),
    atomic(api!("authentication.v1", "TokenRequestSpec"), "audiences"),
    atomic(
        api!("authorization.v1", "SubjectAccessReviewSpec"),
        "groups",
    ),
    atomic(
        api!("authorization.v1", "SubjectRulesReviewStatus"),
        "resourceRules",
    ),
    atomic(
        api!("authorization.v1", "SubjectRulesReviewStatus"),
        "nonResourceRules",
    ),
    atomic(api!("authorization.v1", "ResourceRule"), "verbs"),
    atomic(api!("authorization.v1", "ResourceRule"), "apiGroups"),
    atomic(api!("authorization.v1", "ResourceRule"), "resources"),
    atomic(api!("authorization.v1", "ResourceRule"), "resourceNames"),
    atomic(api!("authorization.v1", "NonResourceRule"), "verbs"),
    atomic(
        api!("authorization.v1", "NonResourceRule"),
        "nonResourceURLs",
    ),
    atomic(
        api!("authorization.v1", "FieldSelectorAttributes"),
        "requirements",
    ),
    atomic(
        api!("authorization.v1", "LabelSelectorAttributes"),
        "requirements",
    ),
    // --- admissionregistration.k8s.io/v1
    merge_map(
        api!("admissionregistration.v1", "MutatingWebhookConfiguration"),
        "webhooks",
        "name",
        NAME,
    ),
    merge_map(
        api!("admissionregistration.v1", "ValidatingWebhookConfiguration"),
        "webhooks",
        "name",
        NAME,
    ),
    atomic(api!("admissionregistration.v1", "MutatingWebhook"), "rules"),
    atomic(
        api!("admissionregistration.v1", "MutatingWebhook"),
        "admissionReviewVersions",
    ),
    merge_map(
        api!("admissionregistration.v1", "MutatingWebhook"),
        "matchConditions",
        "name",
        NAME,
    ),
    atomic(
        api!("admissionregistration.v1", "ValidatingWebhook"),
        "rules",
    ),
    atomic(
        api!("admissionregistration.v1", "ValidatingWebhook"),
        "admissionReviewVersions",
    ),
    merge_map(
        api!("admissionregistration.v1", "ValidatingWebhook"),
        "matchConditions",
        "name",
        NAME,
    ),
    atomic(
        api!("admissionregistration.v1", "ValidatingAdmissionPolicySpec"),
        "validations",
    ),
    atomic(
        api!("admissionregistration.v1", "ValidatingAdmissionPolicySpec"),
        "auditAnnotations",
    ),
    merge_map(
        api!("admissionregistration.v1", "ValidatingAdmissionPolicySpec"),
        "matchConditions",
        "name",
        NAME,
    ),
    merge_map(
        api!("admissionregistration.v1", "ValidatingAdmissionPolicySpec"),
        "variables",
        "name",
        NAME,
    ),
    atomic_struct(api!("admissionregistration.v1", "Variable")),
    atomic_struct(api!("admissionregistration.v1", "ParamKind")),
    atomic_struct(api!("admissionregistration.v1", "ParamRef")),
    atomic(
        api!("admissionregistration.v1", "TypeChecking"),
        "expressionWarnings",
    ),
    list_map(
        api!(
            "admissionregistration.v1",
            "ValidatingAdmissionPolicyStatus"
        ),
        "conditions",
        TYPE,
    ),
    set(
        api!(
            "admissionregistration.v1",
            "ValidatingAdmissionPolicyBindingSpec"
        ),
        "validationActions",
    ),
    atomic_struct(api!("admissionregistration.v1", "MatchResources")),
    atomic(
        api!("admissionregistration.v1", "MatchResources"),
        "resourceRules",
    ),
    atomic(
        api!("admissionregistration.v1", "MatchResources"),
        "excludeResourceRules",
    ),
    atomic(
        api!("admissionregistration.v1", "RuleWithOperations"),
        "operations",
    ),
    atomic(
        api!("admissionregistration.v1", "RuleWithOperations"),
        "apiGroups",
    ),
    atomic(
        api!("admissionregistration.v1", "RuleWithOperations"),
        "apiVersions",
    ),
    atomic(
        api!("admissionregistration.v1", "RuleWithOperations"),
        "resources",
    ),
    atomic_struct(api!("admissionregistration.v1", "NamedRuleWithOperations")),
    atomic(
        api!("admissionregistration.v1", "NamedRuleWithOperations"),
        "resourceNames",
    ),
    atomic(
        api!("admissionregistration.v1", "NamedRuleWithOperations"),
        "operations",
    ),
    atomic(
        api!("admissionregistration.v1", "NamedRuleWithOperations"),
        "apiGroups",
    ),
    atomic(
        api!("admissionregistration.v1", "NamedRuleWithOperations"),
        "apiVersions",
    ),
    atomic(
        api!("admissionregistration.v1", "NamedRuleWithOperations"),
        "resources",
    ),
    // --- flowcontrol.apiserver.k8s.io/v1
    merge_map(
        api!("flowcontrol.v1", "FlowSchemaStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    merge_map(
        api!("flowcontrol.v1", "PriorityLevelConfigurationStatus"),
        "conditions",
        "type",
        TYPE,
    ),
    atomic(api!("flowcontrol.v1", "FlowSchemaSpec"), "rules"),
    atomic(
        api!("flowcontrol.v1", "PolicyRulesWithSubjects"),
        "subjects",
    ),
    atomic(
        api!("flowcontrol.v1", "PolicyRulesWithSubjects"),
        "resourceRules",
    ),
    atomic(
        api!("flowcontrol.v1", "PolicyRulesWithSubjects"),
        "nonResourceRules",
    ),
    set(api!("flowcontrol.v1", "ResourcePolicyRule"), "verbs"),
    set(api!("flowcontrol.v1", "ResourcePolicyRule"), "apiGroups"),
    set(api!("flowcontrol.v1", "ResourcePolicyRule"), "resources"),
    set(api!("flowcontrol.v1", "ResourcePolicyRule"), "namespaces"),
    set(api!("flowcontrol.v1", "NonResourcePolicyRule"), "verbs"),
    set(
        api!("flowcontrol.v1", "NonResourcePolicyRule"),
        "nonResourceURLs",
    ),
    // --- node.k8s.io/v1
    atomic(api!("node.v1", "Scheduling"), "tolerations"),
    atomic_map(api!("node.v1", "Scheduling"), "nodeSelector"),
    // --- apiextensions.k8s.io/v1 and apiregistration.k8s.io/v1
    list_map(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "conditions",
        TYPE,
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec",
        "versions",
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames",
        "shortNames",
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames",
        "categories",
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        "storedVersions",
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion",
        "additionalPrinterColumns",
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion",
        "selectableFields",
    ),
    atomic(
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookConversion",
        "conversionReviewVersions",
    ),
    atomic(JSON_SCHEMA_PROPS, "allOf"),
    atomic(JSON_SCHEMA_PROPS, "anyOf"),
    atomic(JSON_SCHEMA_PROPS, "oneOf"),
    atomic(JSON_SCHEMA_PROPS, "enum"),
    atomic(JSON_SCHEMA_PROPS, "required"),
    atomic(JSON_SCHEMA_PROPS, "x-kubernetes-list-map-keys"),
    merge_map(
        JSON_SCHEMA_PROPS,
        "x-kubernetes-validations",
        "rule",
        &["rule"],
    ),
    atomic(
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceSpec",
        "caBundle",
    ),
    merge_map(
        "io.k8s.kube-aggregator.pkg.apis.apiregistration.v1.APIServiceStatus",
        "conditions",
        "type",
        TYPE,
    ),
];

#[cfg(test)]
mod upstream;
