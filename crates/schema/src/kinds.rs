//! The Rust types behind every built-in kind, so schemas are generated from `k8s-openapi`.
//!
//! Group, version and kind come from each type's `k8s_openapi::Resource` constants, so the
//! table cannot drift from the types; a test checks that every registry kind is listed.

use k8s_openapi::Resource as K8sResource;
use k8s_openapi::api;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
use k8s_openapi::schemars::{JsonSchema, Schema, SchemaGenerator};

/// One top-level kind and how to generate its schema.
pub(crate) struct KindType {
    pub(crate) group: &'static str,
    pub(crate) version: &'static str,
    pub(crate) kind: &'static str,
    /// Adds the kind's schema (and everything it reaches) to the generator's definitions.
    pub(crate) generate: fn(&mut SchemaGenerator) -> Schema,
    /// The upstream OpenAPI definition name, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub(crate) name: fn() -> std::borrow::Cow<'static, str>,
}

fn generate<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

const fn kind<T: JsonSchema + K8sResource>() -> KindType {
    KindType {
        group: T::GROUP,
        version: T::VERSION,
        kind: T::KIND,
        generate: generate::<T>,
        name: T::schema_name,
    }
}

/// Every built-in kind with a schema: the registry's kinds plus the kinds subresources answer
/// with (Scale, Eviction, TokenRequest). Connect options (`PodExecOptions`, ...) have none.
pub(crate) const KINDS: &[KindType] = &[
    kind::<api::core::v1::Binding>(),
    kind::<api::core::v1::ComponentStatus>(),
    kind::<api::core::v1::ConfigMap>(),
    kind::<api::core::v1::Endpoints>(),
    kind::<api::core::v1::Event>(),
    kind::<api::core::v1::LimitRange>(),
    kind::<api::core::v1::Namespace>(),
    kind::<api::core::v1::Node>(),
    kind::<api::core::v1::PersistentVolumeClaim>(),
    kind::<api::core::v1::PersistentVolume>(),
    kind::<api::core::v1::Pod>(),
    kind::<api::core::v1::PodTemplate>(),
    kind::<api::core::v1::ReplicationController>(),
    kind::<api::core::v1::ResourceQuota>(),
    kind::<api::core::v1::Secret>(),
    kind::<api::core::v1::ServiceAccount>(),
    kind::<api::core::v1::Service>(),
    kind::<apiregistration::v1::APIService>(),
    kind::<api::apps::v1::ControllerRevision>(),
    kind::<api::apps::v1::DaemonSet>(),
    kind::<api::apps::v1::Deployment>(),
    kind::<api::apps::v1::ReplicaSet>(),
    kind::<api::apps::v1::StatefulSet>(),
    kind::<api::events::v1::Event>(),
    kind::<api::authentication::v1::SelfSubjectReview>(),
    kind::<api::authentication::v1::TokenReview>(),
    kind::<api::authentication::v1::TokenRequest>(),
    kind::<api::authorization::v1::LocalSubjectAccessReview>(),
    kind::<api::authorization::v1::SelfSubjectAccessReview>(),
    kind::<api::authorization::v1::SelfSubjectRulesReview>(),
    kind::<api::authorization::v1::SubjectAccessReview>(),
    kind::<api::autoscaling::v2::HorizontalPodAutoscaler>(),
    kind::<api::autoscaling::v1::HorizontalPodAutoscaler>(),
    kind::<api::autoscaling::v1::Scale>(),
    kind::<api::batch::v1::CronJob>(),
    kind::<api::batch::v1::Job>(),
    kind::<api::certificates::v1::CertificateSigningRequest>(),
    kind::<api::networking::v1::IPAddress>(),
    kind::<api::networking::v1::IngressClass>(),
    kind::<api::networking::v1::Ingress>(),
    kind::<api::networking::v1::NetworkPolicy>(),
    kind::<api::networking::v1::ServiceCIDR>(),
    kind::<api::policy::v1::PodDisruptionBudget>(),
    kind::<api::policy::v1::Eviction>(),
    kind::<api::rbac::v1::ClusterRoleBinding>(),
    kind::<api::rbac::v1::ClusterRole>(),
    kind::<api::rbac::v1::RoleBinding>(),
    kind::<api::rbac::v1::Role>(),
    kind::<api::storage::v1::CSIDriver>(),
    kind::<api::storage::v1::CSINode>(),
    kind::<api::storage::v1::CSIStorageCapacity>(),
    kind::<api::storage::v1::StorageClass>(),
    kind::<api::storage::v1::VolumeAttachment>(),
    kind::<api::admissionregistration::v1::MutatingWebhookConfiguration>(),
    kind::<api::admissionregistration::v1::ValidatingAdmissionPolicy>(),
    kind::<api::admissionregistration::v1::ValidatingAdmissionPolicyBinding>(),
    kind::<api::admissionregistration::v1::ValidatingWebhookConfiguration>(),
    kind::<apiextensions::v1::CustomResourceDefinition>(),
    kind::<api::scheduling::v1::PriorityClass>(),
    kind::<api::coordination::v1::Lease>(),
    kind::<api::node::v1::RuntimeClass>(),
    kind::<api::discovery::v1::EndpointSlice>(),
    kind::<api::flowcontrol::v1::FlowSchema>(),
    kind::<api::flowcontrol::v1::PriorityLevelConfiguration>(),
];

/// Finds the type of a built-in kind.
pub(crate) fn find(group: &str, version: &str, kind: &str) -> Option<&'static KindType> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}
