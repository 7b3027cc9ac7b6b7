//! Query and path parameters of the operations, with short descriptions of our own.

use serde_json::{Value, json};

pub(super) fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name,
        "in": "path",
        "description": description,
        "required": true,
        "schema": { "type": "string", "uniqueItems": true },
    })
}

pub(super) fn query(name: &str, description: &str, ty: &str) -> Value {
    json!({
        "name": name,
        "in": "query",
        "description": description,
        "schema": { "type": ty, "uniqueItems": true },
    })
}

/// Parameters of create, update and patch. The query-parameter verifier in kubectl looks for
/// `fieldValidation` (and `dryRun`) here before it trusts server-side validation.
pub(super) fn write_params(patch: bool) -> Vec<Value> {
    let mut p = vec![
        query(
            "dryRun",
            "When present, the request is validated and admitted but not persisted. The only valid value is All.",
            "string",
        ),
        query(
            "fieldManager",
            "The name of the actor making the change, recorded in managedFields. Required for apply patches.",
            "string",
        ),
        query(
            "fieldValidation",
            "How to treat unknown or duplicate fields in the body: Ignore, Warn (the default) or Strict.",
            "string",
        ),
    ];
    if patch {
        p.push(query("force", "Apply patches only: take ownership of fields other managers own instead of failing with a conflict.", "boolean"));
    }
    p
}

pub(super) fn delete_params() -> Vec<Value> {
    vec![
        query(
            "dryRun",
            "When present, the deletion is validated but not persisted. The only valid value is All.",
            "string",
        ),
        query(
            "gracePeriodSeconds",
            "Seconds to wait before the object is deleted; zero means immediately.",
            "integer",
        ),
        query(
            "ignoreStoreReadErrorWithClusterBreakingPotential",
            "Delete objects that cannot be read from storage. Dangerous.",
            "boolean",
        ),
        query(
            "orphanDependents",
            "Deprecated: use propagationPolicy. Whether dependents are orphaned.",
            "boolean",
        ),
        query(
            "propagationPolicy",
            "How dependents are garbage collected: Orphan, Background or Foreground.",
            "string",
        ),
    ]
}

pub(super) fn list_params() -> Vec<Value> {
    vec![
        query(
            "allowWatchBookmarks",
            "Request BOOKMARK events in a watch.",
            "boolean",
        ),
        query(
            "continue",
            "The continue token of the previous page of a paginated list.",
            "string",
        ),
        query(
            "fieldSelector",
            "Restrict the result to objects whose fields match this selector.",
            "string",
        ),
        query(
            "labelSelector",
            "Restrict the result to objects whose labels match this selector.",
            "string",
        ),
        query(
            "limit",
            "The maximum number of objects in one page.",
            "integer",
        ),
        query(
            "resourceVersion",
            "The resource version the result must be at least as new as.",
            "string",
        ),
        query(
            "resourceVersionMatch",
            "How resourceVersion applies: Exact or NotOlderThan.",
            "string",
        ),
        query(
            "sendInitialEvents",
            "Start a watch with synthetic ADDED events for the current state.",
            "boolean",
        ),
        query(
            "timeoutSeconds",
            "Limit the duration of the call.",
            "integer",
        ),
        query(
            "watch",
            "Stream changes as watch events instead of returning a list.",
            "boolean",
        ),
    ]
}

pub(super) fn log_params() -> Vec<Value> {
    vec![
        query(
            "container",
            "The container to read logs of; optional when the pod has one container.",
            "string",
        ),
        query("follow", "Stream the log as it is written.", "boolean"),
        query("limitBytes", "Stop after this many bytes.", "integer"),
        query(
            "previous",
            "Logs of the previous terminated instance of the container.",
            "boolean",
        ),
        query(
            "sinceSeconds",
            "Only logs newer than this many seconds.",
            "integer",
        ),
        query("tailLines", "Only the last lines of the log.", "integer"),
        query(
            "timestamps",
            "Prefix every line with an RFC3339 timestamp.",
            "boolean",
        ),
    ]
}

pub(super) fn connect_params(sub: &str) -> Vec<Value> {
    let stream = |n: &str| query(n, "Attach this stream.", "boolean");
    match sub {
        "exec" => vec![
            query(
                "command",
                "The command to run, one argument per parameter.",
                "string",
            ),
            query(
                "container",
                "The container to run the command in.",
                "string",
            ),
            stream("stderr"),
            stream("stdin"),
            stream("stdout"),
            query("tty", "Allocate a terminal.", "boolean"),
        ],
        "attach" => vec![
            query("container", "The container to attach to.", "string"),
            stream("stderr"),
            stream("stdin"),
            stream("stdout"),
            query("tty", "Allocate a terminal.", "boolean"),
        ],
        "portforward" => vec![query("ports", "The ports to forward.", "integer")],
        "proxy" => vec![query("path", "The path to proxy to.", "string")],
        _ => vec![],
    }
}
