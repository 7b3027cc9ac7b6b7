//! Conversion between the served version of a kind and its storage version, for the kinds
//! served in several versions: HorizontalPodAutoscaler (autoscaling/v1 ↔ v2, stored as v2)
//! and Event (events.k8s.io/v1 ↔ core/v1, stored as core/v1). Everything else is identity.

use drover_core::registry::Resource;
use serde_json::{Map, Value, json};

const CPU_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";

/// Served version → storage version.
pub(crate) fn to_storage(res: &Resource, obj: Value) -> Value {
    if res.is_storage_version() {
        return obj;
    }
    if res.custom.is_some() {
        return with_api_version(
            obj,
            &format!("{}/{}", res.storage_group, res.storage_version),
        );
    }
    match (
        res.gv.group.as_ref(),
        res.gv.version.as_ref(),
        res.kind.as_ref(),
    ) {
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v1_to_v2(obj),
        ("events.k8s.io", "v1", "Event") => event_v1_to_core(obj),
        _ => obj,
    }
}

/// Storage version → served version.
pub(crate) fn from_storage(res: &Resource, obj: Value) -> Value {
    if res.is_storage_version() {
        return obj;
    }
    if res.custom.is_some() {
        // Conversion strategy None: only apiVersion changes.
        return with_api_version(obj, &res.api_version());
    }
    match (
        res.gv.group.as_ref(),
        res.gv.version.as_ref(),
        res.kind.as_ref(),
    ) {
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v2_to_v1(obj),
        ("events.k8s.io", "v1", "Event") => event_core_to_v1(obj),
        _ => obj,
    }
}

fn with_api_version(mut obj: Value, api_version: &str) -> Value {
    if obj.is_object() {
        obj["apiVersion"] = api_version.into();
    }
    obj
}

fn rename(src: &mut Map<String, Value>, dst: &mut Map<String, Value>, from: &str, to: &str) {
    if let Some(v) = src.remove(from) {
        dst.insert(to.to_owned(), v);
    }
}

/// Field renames between core/v1 Event and events.k8s.io/v1 Event (the latter's names first).
const EVENT_FIELDS: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

fn event_v1_to_core(obj: Value) -> Value {
    let Value::Object(mut src) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for (new, old) in EVENT_FIELDS {
        rename(&mut src, &mut out, new, old);
    }
    out.extend(src);
    out.insert("apiVersion".into(), "v1".into());
    out.insert("kind".into(), "Event".into());
    Value::Object(out)
}

fn event_core_to_v1(obj: Value) -> Value {
    let Value::Object(mut src) = obj else {
        return obj;
    };
    let mut out = Map::new();
    for (new, old) in EVENT_FIELDS {
        rename(&mut src, &mut out, old, new);
    }
    out.extend(src);
    out.insert("apiVersion".into(), "events.k8s.io/v1".into());
    out.insert("kind".into(), "Event".into());
    Value::Object(out)
}

fn is_cpu_utilization(m: &Value) -> bool {
    m["type"] == "Resource"
        && m["resource"]["name"] == "cpu"
        && m["resource"]["target"]["type"] == "Utilization"
}

fn hpa_v2_to_v1(mut obj: Value) -> Value {
    obj["apiVersion"] = "autoscaling/v1".into();
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let metrics = spec
        .get("metrics")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut v1_spec = Map::new();
    for f in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(f) {
            v1_spec.insert(f.into(), v.clone());
        }
    }
    let (cpu, others): (Vec<Value>, Vec<Value>) = metrics.into_iter().partition(is_cpu_utilization);
    if let Some(c) = cpu.first() {
        v1_spec.insert(
            "targetCPUUtilizationPercentage".into(),
            c["resource"]["target"]["averageUtilization"].clone(),
        );
    }
    if !others.is_empty() {
        let annotations = crate::meta::metadata_mut(&mut obj)
            .entry("annotations")
            .or_insert_with(|| json!({}));
        annotations[CPU_ANNOTATION] = Value::String(Value::Array(others).to_string());
    }
    obj["spec"] = Value::Object(v1_spec);
    if let Some(status) = obj.get("status").cloned() {
        let mut s = Map::new();
        for f in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            if let Some(v) = status.get(f) {
                s.insert(f.into(), v.clone());
            }
        }
        let current_cpu = status
            .get("currentMetrics")
            .and_then(Value::as_array)
            .and_then(|ms| {
                ms.iter()
                    .find(|m| m["type"] == "Resource" && m["resource"]["name"] == "cpu")
                    .map(|m| m["resource"]["current"]["averageUtilization"].clone())
            });
        if let Some(c) = current_cpu.filter(|c| !c.is_null()) {
            s.insert("currentCPUUtilizationPercentage".into(), c);
        }
        obj["status"] = Value::Object(s);
    }
    obj
}

fn hpa_v1_to_v2(mut obj: Value) -> Value {
    obj["apiVersion"] = "autoscaling/v2".into();
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let mut v2 = Map::new();
    for f in ["scaleTargetRef", "minReplicas", "maxReplicas"] {
        if let Some(v) = spec.get(f) {
            v2.insert(f.into(), v.clone());
        }
    }
    let mut metrics: Vec<Value> = Vec::new();
    if let Some(p) = spec
        .get("targetCPUUtilizationPercentage")
        .filter(|p| !p.is_null())
    {
        metrics.push(json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": p}}}));
    }
    let extra = obj
        .pointer(&format!(
            "/metadata/annotations/{}",
            CPU_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .and_then(|s| serde_json::from_str::<Vec<Value>>(s).ok());
    if let Some(extra) = extra {
        metrics.extend(extra);
        if let Some(a) = obj
            .pointer_mut("/metadata/annotations")
            .and_then(Value::as_object_mut)
        {
            a.remove(CPU_ANNOTATION);
        }
    }
    if !metrics.is_empty() {
        v2.insert("metrics".into(), Value::Array(metrics));
    }
    obj["spec"] = Value::Object(v2);
    if let Some(status) = obj.get("status").cloned() {
        let mut s = Map::new();
        for f in [
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ] {
            if let Some(v) = status.get(f) {
                s.insert(f.into(), v.clone());
            }
        }
        if let Some(c) = status.get("currentCPUUtilizationPercentage") {
            s.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": c}}}]),
            );
        }
        obj["status"] = Value::Object(s);
    }
    obj
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_core::registry::builtin;

    fn res(group: &str, version: &str, plural: &str) -> &'static Resource {
        builtin()
            .iter()
            .find(|r| r.gv.group == group && r.gv.version == version && r.plural == plural)
            .expect("resource")
    }

    #[test]
    fn hpa_v1_round_trips_through_v2() {
        let v1 = json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web", "apiVersion": "apps/v1"},
                     "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70}
        });
        let r = res("autoscaling", "v1", "horizontalpodautoscalers");
        let stored = to_storage(r, v1.clone());
        assert_eq!(
            stored["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            70
        );
        assert_eq!(from_storage(r, stored), v1);
    }

    #[test]
    fn events_v1_maps_onto_core_fields() {
        let ev = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
                        "regarding": {"kind": "Pod", "name": "p"}, "note": "hi", "reason": "Started",
                        "reportingController": "drover"});
        let r = res("events.k8s.io", "v1", "events");
        let core = to_storage(r, ev.clone());
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(from_storage(r, core), ev);
    }
}
