//! [`TABLE`] against the markers of the Kubernetes 1.33 Go types.
//!
//! `tests/data/k8s-v1.33-field-markers.tsv` holds every `+patchStrategy`, `+patchMergeKey`,
//! `+listType`, `+listMapKey`, `+mapType` and `+structType` comment marker of the upstream API
//! types, extracted by `tools/patchmeta/extract_markers.py`. The test below requires the table
//! to agree with it in both directions for every definition Drover serves: no upstream marker
//! missing from the table, no table entry upstream lacks, no value different. Upstream rows for
//! definitions Drover does not serve (alpha and beta versions, internal types) are ignored, and
//! the test says how many.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::{FieldMeta, TABLE};

const FACTS: &str = include_str!("../../tests/data/k8s-v1.33-field-markers.tsv");

/// The markers of one field (or, with an empty field name, one type), as strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Markers {
    strategy: Option<String>,
    merge_key: Option<String>,
    list_type: Option<String>,
    map_keys: Vec<String>,
    /// `+mapType` on a map field, `+structType` on a type: both become `x-kubernetes-map-type`.
    map_type: Option<String>,
}

impl Markers {
    fn describe(&self) -> String {
        let keys = (!self.map_keys.is_empty()).then(|| format!("[{}]", self.map_keys.join(",")));
        let parts: Vec<String> = [
            ("patchStrategy", &self.strategy),
            ("patchMergeKey", &self.merge_key),
            ("listType", &self.list_type),
            ("listMapKeys", &keys),
            ("mapType", &self.map_type),
        ]
        .into_iter()
        .filter_map(|(name, v)| v.as_ref().map(|v| format!("{name}={v}")))
        .collect();
        if parts.is_empty() {
            "(none)".to_owned()
        } else {
            parts.join(" ")
        }
    }
}

/// (definition, field; empty for the type itself).
type Key = (String, String);

/// Parses the fact file.
fn upstream(text: &str) -> BTreeMap<Key, Markers> {
    let opt = |s: &str| (s != "-").then(|| s.to_owned());
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [
            ty,
            field,
            strategy,
            merge_key,
            list_type,
            map_keys,
            map_type,
            struct_type,
        ] = cols[..]
        else {
            panic!("fact file line {}: expected 8 columns: {line:?}", n + 1);
        };
        assert!(
            map_type == "-" || struct_type == "-",
            "fact file line {}: both mapType and structType",
            n + 1
        );
        let markers = Markers {
            strategy: opt(strategy),
            merge_key: opt(merge_key),
            list_type: opt(list_type),
            map_keys: opt(map_keys)
                .map(|k| k.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
            map_type: opt(map_type).or_else(|| opt(struct_type)),
        };
        let field = if field == "-" { "" } else { field };
        let prev = out.insert((ty.to_owned(), field.to_owned()), markers);
        assert!(prev.is_none(), "fact file line {}: duplicate row", n + 1);
    }
    out
}

/// The table in the same shape.
fn ours(table: &[FieldMeta]) -> BTreeMap<Key, Markers> {
    table
        .iter()
        .map(|m| {
            let markers = Markers {
                strategy: m.strategy.map(str::to_owned),
                merge_key: m.merge_key.map(str::to_owned),
                list_type: m.list_type.map(str::to_owned),
                map_keys: m.map_keys.iter().map(|k| (*k).to_owned()).collect(),
                map_type: m.map_type.map(str::to_owned),
            };
            ((m.ty.to_owned(), m.field.to_owned()), markers)
        })
        .collect()
}

/// Whether Drover serves a definition, and whether that definition has a field.
struct Served<'a>(&'a Map<String, Value>);

impl Served<'_> {
    fn has_type(&self, ty: &str) -> bool {
        self.0.contains_key(ty)
    }

    fn has_field(&self, ty: &str, field: &str) -> bool {
        field.is_empty()
            || self
                .0
                .get(ty)
                .and_then(|d| d.get("properties"))
                .and_then(|p| p.get(field))
                .is_some()
    }
}

/// The outcome of a comparison: readable differences, and the upstream rows left aside because
/// Drover does not serve their definition.
#[derive(Debug, Default)]
struct Comparison {
    differences: Vec<String>,
    ignored_types: BTreeSet<String>,
    ignored_rows: usize,
}

fn compare(
    ours: &BTreeMap<Key, Markers>,
    upstream: &BTreeMap<Key, Markers>,
    served: &Served<'_>,
) -> Comparison {
    let mut c = Comparison::default();
    let name = |(ty, field): &Key| {
        if field.is_empty() {
            format!("{ty} (type)")
        } else {
            format!("{ty}.{field}")
        }
    };
    for (key, up) in upstream {
        if !served.has_type(&key.0) {
            c.ignored_types.insert(key.0.clone());
            c.ignored_rows += 1;
            continue;
        }
        if !served.has_field(&key.0, &key.1) {
            c.differences.push(format!(
                "{}: upstream has {}, but our definition has no such field",
                name(key),
                up.describe()
            ));
            continue;
        }
        match ours.get(key) {
            None => c.differences.push(format!(
                "{}: missing from the table; upstream has {}",
                name(key),
                up.describe()
            )),
            Some(o) if o != up => c.differences.push(format!(
                "{}: table has {}; upstream has {}",
                name(key),
                o.describe(),
                up.describe()
            )),
            Some(_) => {}
        }
    }
    for (key, o) in ours {
        if !upstream.contains_key(key) {
            c.differences.push(format!(
                "{}: table has {}; upstream declares no marker",
                name(key),
                o.describe()
            ));
        }
    }
    c
}

#[test]
fn table_matches_kubernetes_1_33_markers_in_both_directions() {
    let defs = crate::defs::generate();
    let up = upstream(FACTS);
    let c = compare(&ours(TABLE), &up, &Served(&defs));
    assert!(
        c.differences.is_empty(),
        "patch_meta::TABLE differs from the Kubernetes 1.33 markers in {} place(s):\n  {}\n",
        c.differences.len(),
        c.differences.join("\n  ")
    );
    // Upstream rows are ignored only for definitions we do not serve at all; say how many, and
    // make sure the served part is not empty (a broken fact file would compare nothing).
    let compared = up.len() - c.ignored_rows;
    eprintln!(
        "compared {compared} upstream rows; ignored {} rows of {} definitions Drover does not serve",
        c.ignored_rows,
        c.ignored_types.len()
    );
    assert!(compared > 250, "only {compared} upstream rows compared");
    for ty in &c.ignored_types {
        assert!(!defs.contains_key(ty));
    }
}

#[test]
fn comparison_catches_altered_missing_and_extra_rows() {
    let defs = crate::defs::generate();
    let served = Served(&defs);
    let up = upstream(FACTS);
    let key = |ty: &str, f: &str| (ty.to_owned(), f.to_owned());

    // A changed merge key.
    let mut altered = ours(TABLE);
    let containers = key("io.k8s.api.core.v1.PodSpec", "containers");
    altered.get_mut(&containers).unwrap().merge_key = Some("image".into());
    let c = compare(&altered, &up, &served);
    assert_eq!(c.differences.len(), 1, "{:#?}", c.differences);
    assert!(
        c.differences[0].starts_with("io.k8s.api.core.v1.PodSpec.containers: table has")
            && c.differences[0].contains("patchMergeKey=image")
            && c.differences[0].contains("upstream has patchStrategy=merge patchMergeKey=name"),
        "{}",
        c.differences[0]
    );

    // A missing entry, an extra entry and a changed list type, reported together.
    let mut altered = ours(TABLE);
    altered.remove(&key("io.k8s.api.core.v1.PodSpec", "tolerations"));
    altered.insert(
        key("io.k8s.api.core.v1.PodSpec", "hostname"),
        Markers {
            list_type: Some("atomic".into()),
            ..Markers::default()
        },
    );
    altered
        .get_mut(&key("io.k8s.api.core.v1.NodeSelector", ""))
        .unwrap()
        .map_type = Some("granular".into());
    let c = compare(&altered, &up, &served);
    assert_eq!(c.differences.len(), 3, "{:#?}", c.differences);
    let all = c.differences.join("\n");
    assert!(
        all.contains("PodSpec.tolerations: missing from the table; upstream has listType=atomic")
    );
    assert!(
        all.contains("PodSpec.hostname: table has listType=atomic; upstream declares no marker")
    );
    assert!(
        all.contains(
            "NodeSelector (type): table has mapType=granular; upstream has mapType=atomic"
        )
    );

    // An upstream row for a definition we do not serve is ignored, not reported.
    let mut more = up.clone();
    more.insert(
        key("io.k8s.api.example.v1alpha1.Widget", "parts"),
        Markers {
            list_type: Some("atomic".into()),
            ..Markers::default()
        },
    );
    let base = compare(&ours(TABLE), &up, &served);
    let c = compare(&ours(TABLE), &more, &served);
    assert_eq!(c.differences, base.differences);
    assert_eq!(c.ignored_rows, base.ignored_rows + 1);
}

#[test]
fn fact_file_agrees_with_hand_checked_rows() {
    // Rows checked by hand against the Kubernetes 1.33 sources, so a broken extractor (wrong JSON
    // names, markers attached to the wrong field) cannot produce a file the table then follows.
    let up = upstream(FACTS);
    let get = |ty: &str, f: &str| {
        up.get(&(ty.to_owned(), f.to_owned()))
            .unwrap_or_else(|| panic!("no row for {ty}.{f}"))
            .describe()
    };
    let core = |t: &str| format!("io.k8s.api.core.v1.{t}");
    assert_eq!(
        get(&core("PodSpec"), "containers"),
        "patchStrategy=merge patchMergeKey=name listType=map listMapKeys=[name]"
    );
    assert_eq!(
        get(&core("Container"), "ports"),
        "patchStrategy=merge patchMergeKey=containerPort listType=map \
         listMapKeys=[containerPort,protocol]"
    );
    assert_eq!(
        get(&core("PodSpec"), "volumes"),
        "patchStrategy=merge,retainKeys patchMergeKey=name listType=map listMapKeys=[name]"
    );
    assert_eq!(
        get(&core("ServiceSpec"), "ports"),
        "patchStrategy=merge patchMergeKey=port listType=map listMapKeys=[port,protocol]"
    );
    assert_eq!(get(&core("PodSpec"), "tolerations"), "listType=atomic");
    assert_eq!(get(&core("NodeSelector"), ""), "mapType=atomic");
    assert_eq!(
        get(&core("NodeSelector"), "nodeSelectorTerms"),
        "listType=atomic"
    );
    assert_eq!(
        get(&core("NodeSelectorTerm"), "matchExpressions"),
        "listType=atomic"
    );
    assert_eq!(get(&core("PodSpec"), "nodeSelector"), "mapType=atomic");
    // Embedded EphemeralContainerCommon is flattened into EphemeralContainer.
    assert_eq!(
        get(&core("EphemeralContainer"), "env"),
        "patchStrategy=merge patchMergeKey=name listType=map listMapKeys=[name]"
    );
    // prost's lossy names (pod_i_ps) come back as the JSON names.
    assert!(up.contains_key(&(core("PodStatus"), "podIPs".to_owned())));
}
