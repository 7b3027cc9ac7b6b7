// Shared with tests (included via #[path]), where not every helper is used.
#![allow(dead_code, unreachable_pub)]

//! A small hand-made [`MergeSchema`] for tests and fuzzing: a tree of nodes, plus a
//! Pod/Deployment-shaped schema with the patch strategies Kubernetes declares.

use std::rc::Rc;

use drover_core::patch::{MergeSchema, PatchStrategy};

/// A schema node: object fields, list items or map values, and a patch strategy.
#[derive(Clone, Debug, Default)]
pub struct TestSchema(Rc<Node>);

#[derive(Debug, Default)]
struct Node {
    fields: Vec<(String, TestSchema)>,
    items: Option<TestSchema>,
    strategy: PatchStrategy,
}

impl TestSchema {
    /// A scalar (or unknown) value.
    pub fn scalar() -> Self {
        Self::default()
    }

    /// An object with the given fields.
    pub fn object<'a>(fields: impl IntoIterator<Item = (&'a str, TestSchema)>) -> Self {
        TestSchema(Rc::new(Node {
            fields: fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            ..Node::default()
        }))
    }

    /// A map with values described by `values`.
    pub fn map(values: TestSchema) -> Self {
        TestSchema(Rc::new(Node {
            items: Some(values),
            ..Node::default()
        }))
    }

    /// A list (replaced by patches unless a strategy is added).
    pub fn list(items: TestSchema) -> Self {
        Self::map(items)
    }

    /// The same node with `patchStrategy: merge` (for lists of primitives).
    pub fn merge(self) -> Self {
        self.with(|s| s.merge = true)
    }

    /// The same node with `patchStrategy: merge` and `patchMergeKey: key`.
    pub fn merge_by(self, key: &str) -> Self {
        self.with(|s| {
            s.merge = true;
            s.merge_key = Some(key.to_string());
        })
    }

    /// The same node with the `retainKeys` strategy.
    pub fn retain_keys(self) -> Self {
        self.with(|s| s.retain_keys = true)
    }

    /// The same node with the `replace` strategy (an object the patch replaces whole).
    pub fn replace(self) -> Self {
        self.with(|s| s.replace = true)
    }

    fn with(self, f: impl FnOnce(&mut PatchStrategy)) -> Self {
        let mut strategy = self.0.strategy.clone();
        f(&mut strategy);
        TestSchema(Rc::new(Node {
            fields: self.0.fields.clone(),
            items: self.0.items.clone(),
            strategy,
        }))
    }
}

impl MergeSchema for TestSchema {
    fn field(&self, name: &str) -> Option<Self> {
        self.0
            .fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }

    fn items(&self) -> Option<Self> {
        self.0.items.clone()
    }

    fn strategy(&self) -> PatchStrategy {
        self.0.strategy.clone()
    }
}

/// Object metadata: labels and annotations are maps, finalizers a merging primitive list,
/// ownerReferences merge by `uid`.
pub fn object_meta() -> TestSchema {
    let s = TestSchema::scalar;
    TestSchema::object([
        ("name", s()),
        ("namespace", s()),
        ("labels", TestSchema::map(s())),
        ("annotations", TestSchema::map(s())),
        ("finalizers", TestSchema::list(s()).merge()),
        (
            "ownerReferences",
            TestSchema::list(TestSchema::object([
                ("uid", s()),
                ("kind", s()),
                ("name", s()),
            ]))
            .merge_by("uid"),
        ),
    ])
}

/// A container: `env` merges by `name`, `ports` by `containerPort`, `volumeMounts` by
/// `mountPath`; `args` and `command` are replaced.
pub fn container() -> TestSchema {
    let s = TestSchema::scalar;
    TestSchema::object([
        ("name", s()),
        ("image", s()),
        ("command", TestSchema::list(s())),
        ("args", TestSchema::list(s())),
        (
            "env",
            TestSchema::list(TestSchema::object([("name", s()), ("value", s())])).merge_by("name"),
        ),
        (
            "ports",
            TestSchema::list(TestSchema::object([
                ("containerPort", s()),
                ("name", s()),
                ("protocol", s()),
            ]))
            .merge_by("containerPort"),
        ),
        (
            "volumeMounts",
            TestSchema::list(TestSchema::object([("name", s()), ("mountPath", s())]))
                .merge_by("mountPath"),
        ),
        (
            "resources",
            TestSchema::object([
                ("limits", TestSchema::map(s())),
                ("requests", TestSchema::map(s())),
            ]),
        ),
    ])
}

/// A pod spec: containers merge by `name`, volumes by `name` with `retainKeys`,
/// tolerations have no strategy (replaced).
pub fn pod_spec_fields() -> Vec<(&'static str, TestSchema)> {
    let s = TestSchema::scalar;
    let volume = TestSchema::object([
        ("name", s()),
        ("emptyDir", TestSchema::object([("medium", s())])),
        ("hostPath", TestSchema::object([("path", s())])),
        ("configMap", TestSchema::object([("name", s())])),
    ]);
    vec![
        ("containers", TestSchema::list(container()).merge_by("name")),
        (
            "initContainers",
            TestSchema::list(container()).merge_by("name"),
        ),
        (
            "volumes",
            TestSchema::list(volume).merge_by("name").retain_keys(),
        ),
        (
            "tolerations",
            TestSchema::list(TestSchema::object([
                ("key", s()),
                ("operator", s()),
                ("effect", s()),
            ])),
        ),
        (
            "imagePullSecrets",
            TestSchema::list(TestSchema::object([("name", s())])).merge_by("name"),
        ),
        ("nodeSelector", TestSchema::map(s())),
    ]
}

/// A schema that fits both a Pod (`spec` is a pod spec) and a Deployment (`spec` has
/// `replicas`, `selector`, `strategy` with `retainKeys`, and `template`).
pub fn workload() -> TestSchema {
    let s = TestSchema::scalar;
    let template = TestSchema::object([
        ("metadata", object_meta()),
        ("spec", TestSchema::object(pod_spec_fields())),
    ]);
    let strategy = TestSchema::object([
        ("type", s()),
        (
            "rollingUpdate",
            TestSchema::object([("maxSurge", s()), ("maxUnavailable", s())]),
        ),
    ])
    .retain_keys();
    let mut spec = pod_spec_fields();
    spec.extend([
        ("replicas", s()),
        (
            "selector",
            TestSchema::object([("matchLabels", TestSchema::map(s()))]),
        ),
        ("strategy", strategy),
        ("template", template),
    ]);
    TestSchema::object([
        ("apiVersion", s()),
        ("kind", s()),
        ("metadata", object_meta()),
        ("spec", TestSchema::object(spec)),
    ])
}
