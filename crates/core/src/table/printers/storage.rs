//! Printers for persistent volumes (core) and storage.k8s.io.

use serde_json::Value;

use super::{AGE, NAME, Printer, col, wide};
use crate::table::Column;
use crate::table::descriptions as d;
use crate::table::json::{age, arr_at, deleting, get, name, opt_bool, opt_str, quantity, str_at};

// === Persistent volumes ===

pub(super) static PERSISTENT_VOLUME: Printer = Printer {
    columns: &[
        NAME,
        col("Capacity", "string", d::PV_CAPACITY),
        col("Access Modes", "string", d::PV_ACCESS_MODES),
        col("Reclaim Policy", "string", d::PV_RECLAIM),
        col("Status", "string", d::PV_PHASE),
        col("Claim", "string", d::PV_CLAIM_REF),
        col("StorageClass", "string", "StorageClass of the pv"),
        col(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pv",
        ),
        col("Reason", "string", d::PV_REASON),
        AGE,
        wide("VolumeMode", "string", d::PV_VOLUME_MODE),
    ],
    cells: persistent_volume,
};

fn persistent_volume(pv: &Value, now: i64) -> Vec<Value> {
    let claim = match get(pv, &["spec", "claimRef"]) {
        Some(r) => format!("{}/{}", str_at(r, &["namespace"]), str_at(r, &["name"])),
        None => String::new(),
    };
    let phase = if deleting(pv) {
        "Terminating"
    } else {
        str_at(pv, &["status", "phase"])
    };
    vec![
        name(pv),
        Value::from(quantity(get(pv, &["spec", "capacity", "storage"]))),
        Value::from(access_modes(arr_at(pv, &["spec", "accessModes"]))),
        Value::from(str_at(pv, &["spec", "persistentVolumeReclaimPolicy"])),
        Value::from(phase),
        Value::from(claim),
        Value::from(storage_class(pv)),
        Value::from(opt_str(pv, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        Value::from(str_at(pv, &["status", "reason"])),
        age(pv, now),
        Value::from(opt_str(pv, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
}

pub(super) static PERSISTENT_VOLUME_CLAIM: Printer = Printer {
    columns: &[
        NAME,
        col("Status", "string", d::PVC_PHASE),
        col("Volume", "string", d::PVC_VOLUME_NAME),
        col("Capacity", "string", d::PVC_CAPACITY),
        col("Access Modes", "string", d::PVC_ACCESS_MODES),
        col("StorageClass", "string", "StorageClass of the pvc"),
        col(
            "VolumeAttributesClass",
            "string",
            "VolumeAttributesClass of the pvc",
        ),
        AGE,
        wide("VolumeMode", "string", d::PVC_VOLUME_MODE),
    ],
    cells: persistent_volume_claim,
};

fn persistent_volume_claim(pvc: &Value, now: i64) -> Vec<Value> {
    let phase = if deleting(pvc) {
        "Terminating"
    } else {
        str_at(pvc, &["status", "phase"])
    };
    let volume = str_at(pvc, &["spec", "volumeName"]);
    // Capacity and access modes are only shown once the claim is bound to a volume.
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            quantity(get(pvc, &["status", "capacity", "storage"])),
            access_modes(arr_at(pvc, &["status", "accessModes"])),
        )
    };
    vec![
        name(pvc),
        Value::from(phase),
        Value::from(volume),
        Value::from(capacity),
        Value::from(modes),
        Value::from(storage_class(pvc)),
        Value::from(opt_str(pvc, &["spec", "volumeAttributesClassName"]).unwrap_or("<unset>")),
        age(pvc, now),
        Value::from(opt_str(pvc, &["spec", "volumeMode"]).unwrap_or("<unset>")),
    ]
}

/// Upstream's `GetAccessModesAsString`: abbreviations in a fixed order.
fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The storage class of a PV or PVC: the beta annotation wins over `spec.storageClassName`.
fn storage_class(obj: &Value) -> &str {
    opt_str(
        obj,
        &[
            "metadata",
            "annotations",
            "volume.beta.kubernetes.io/storage-class",
        ],
    )
    .unwrap_or_else(|| str_at(obj, &["spec", "storageClassName"]))
}

// === storage.k8s.io ===

pub(super) static STORAGE_CLASS: Printer = Printer {
    columns: &[
        NAME,
        col("Provisioner", "string", d::SC_PROVISIONER),
        col("ReclaimPolicy", "string", d::SC_RECLAIM),
        col("VolumeBindingMode", "string", d::SC_BINDING_MODE),
        col("AllowVolumeExpansion", "string", d::SC_EXPANSION),
        AGE,
    ],
    cells: |sc, now| {
        let default = [
            "storageclass.kubernetes.io/is-default-class",
            "storageclass.beta.kubernetes.io/is-default-class",
        ]
        .iter()
        .any(|a| str_at(sc, &["metadata", "annotations", a]) == "true");
        let mut sc_name = str_at(sc, &["metadata", "name"]).to_owned();
        if default {
            sc_name.push_str(" (default)");
        }
        vec![
            Value::from(sc_name),
            Value::from(str_at(sc, &["provisioner"])),
            Value::from(opt_str(sc, &["reclaimPolicy"]).unwrap_or("Delete")),
            Value::from(opt_str(sc, &["volumeBindingMode"]).unwrap_or("Immediate")),
            Value::from(opt_bool(sc, &["allowVolumeExpansion"]).unwrap_or(false)),
            age(sc, now),
        ]
    },
};

pub(super) static VOLUME_ATTACHMENT: Printer = Printer {
    columns: &[
        NAME,
        Column::new_static("Attacher", "string", "name", d::VA_ATTACHER, 0),
        col("PV", "string", d::VA_PV),
        col("Node", "string", d::VA_NODE),
        col("Attached", "boolean", d::VA_ATTACHED),
        AGE,
    ],
    cells: |va, now| {
        vec![
            name(va),
            Value::from(str_at(va, &["spec", "attacher"])),
            Value::from(str_at(va, &["spec", "source", "persistentVolumeName"])),
            Value::from(str_at(va, &["spec", "nodeName"])),
            Value::from(opt_bool(va, &["status", "attached"]).unwrap_or(false)),
            age(va, now),
        ]
    },
};

pub(super) static CSI_DRIVER: Printer = Printer {
    columns: &[
        NAME,
        col("AttachRequired", "boolean", d::CSID_ATTACH),
        col("PodInfoOnMount", "boolean", d::CSID_POD_INFO),
        col("StorageCapacity", "boolean", d::CSID_CAPACITY),
        col("TokenRequests", "string", d::CSID_TOKENS),
        col("RequiresRepublish", "boolean", d::CSID_REPUBLISH),
        col("Modes", "string", d::CSID_MODES),
        AGE,
    ],
    cells: |drv, now| {
        let flag =
            |f: &str, default: bool| Value::from(opt_bool(drv, &["spec", f]).unwrap_or(default));
        let tokens = match get(drv, &["spec", "tokenRequests"]).and_then(Value::as_array) {
            None => "<unset>".to_owned(),
            Some(t) => t
                .iter()
                .map(|t| str_at(t, &["audience"]))
                .collect::<Vec<_>>()
                .join(","),
        };
        let modes: Vec<&str> = arr_at(drv, &["spec", "volumeLifecycleModes"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let modes = if modes.is_empty() {
            "<none>".to_owned()
        } else {
            modes.join(",")
        };
        vec![
            name(drv),
            flag("attachRequired", true),
            flag("podInfoOnMount", false),
            flag("storageCapacity", false),
            Value::from(tokens),
            flag("requiresRepublish", false),
            Value::from(modes),
            age(drv, now),
        ]
    },
};

pub(super) static CSI_NODE: Printer = Printer {
    columns: &[
        NAME,
        col(
            "Drivers",
            "integer",
            "Drivers indicates the number of CSI drivers registered on the node",
        ),
        AGE,
    ],
    cells: |n, now| {
        vec![
            name(n),
            Value::from(arr_at(n, &["spec", "drivers"]).len()),
            age(n, now),
        ]
    },
};

pub(super) static CSI_STORAGE_CAPACITY: Printer = Printer {
    columns: &[
        NAME,
        col("StorageClassName", "string", d::CSISC_CLASS),
        col("Capacity", "string", d::CSISC_CAPACITY),
    ],
    cells: |c, _| {
        let capacity = match get(c, &["capacity"]) {
            Some(q) => quantity(Some(q)),
            None => "<unset>".to_owned(),
        };
        vec![
            name(c),
            Value::from(str_at(c, &["storageClassName"])),
            Value::from(capacity),
        ]
    },
};
