//! Reading and writing objects in the store: the encoded form, keys, and the
//! read-modify-write loop every update goes through.

use std::sync::Arc;

use bytes::Bytes;
use drover_core::registry::Resource;
use drover_store::{AnyStore, KeyValue, Revision, Store};
use serde_json::Value;

use crate::status::{ApiError, ApiResult, Target};

/// Times a store call into the `drover_store_request_duration_seconds` histogram.
async fn timed<T>(
    metrics: &crate::metrics::Metrics,
    op: &'static str,
    fut: impl Future<Output = T>,
) -> T {
    let start = std::time::Instant::now();
    let out = fut.await;
    metrics.store_call(op, start.elapsed().as_secs_f64());
    out
}

/// Largest encoded object the store accepts (etcd's default request limit is 1.5 MiB).
pub(crate) const MAX_OBJECT_BYTES: usize = 1536 * 1024;

/// Encodes an object for storage: compact JSON without `metadata.resourceVersion` (the
/// store's `mod_revision` is the resource version).
pub(crate) fn encode_stored(obj: &Value) -> ApiResult<Bytes> {
    let mut obj = obj.clone();
    if let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    let mut bytes = serde_json::to_vec(&obj).map_err(ApiError::internal)?;
    // The watch cache keeps these bytes for the object's lifetime: give back the growth
    // headroom serde left (up to half the allocation).
    bytes.shrink_to_fit();
    if bytes.len() > MAX_OBJECT_BYTES {
        return Err(ApiError::TooLarge(format!(
            "the object is too large to store: its encoding is {} bytes and the limit is {MAX_OBJECT_BYTES} bytes (1.5 MiB)",
            bytes.len()
        )));
    }
    Ok(Bytes::from(bytes))
}

/// Decodes a stored object and sets its resource version.
pub(crate) fn decode_stored(value: &[u8], revision: Revision) -> ApiResult<Value> {
    let mut obj: Value = serde_json::from_slice(value)
        .map_err(|e| ApiError::Internal(format!("stored object is not valid JSON: {e}")))?;
    set_resource_version(&mut obj, revision);
    Ok(obj)
}

pub(crate) fn set_resource_version(obj: &mut Value, revision: Revision) {
    crate::meta::metadata_mut(obj).insert(
        "resourceVersion".into(),
        Value::String(revision.to_string()),
    );
}

/// Parses a `resourceVersion` string.
pub(crate) fn parse_rv(rv: &str) -> ApiResult<Revision> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {rv:?}")))
}

/// The error target for an object of `res`.
pub(crate) fn target(res: &Resource, name: &str) -> Target {
    Target::new(&res.gv.group, &res.plural, name)
}

/// The upstream conflict message.
pub(crate) fn conflict(res: &Resource, name: &str) -> ApiError {
    let t = target(res, name);
    ApiError::Conflict {
        message: format!(
            "Operation cannot be fulfilled on {} {:?}: the object has been modified; please apply your changes to the latest version and try again",
            t.qualified(),
            name
        ),
        target: t,
    }
}

/// What an update closure decided.
pub(crate) enum Decision {
    /// Write this object (expected revision is the one read).
    Write(Value),
    /// Delete the object (finalizers done).
    Delete(Value),
    /// Nothing changed; answer with the current object.
    Unchanged(Value),
}

/// Typed access to the store for objects.
#[derive(Clone)]
pub(crate) struct Objects {
    pub(crate) store: Arc<AnyStore>,
    pub(crate) metrics: Arc<crate::metrics::Metrics>,
}

impl Objects {
    /// Reads one object with its resource version.
    pub(crate) async fn get(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<Option<(Value, KeyValue)>> {
        let key = res.key(ns, name);
        match timed(&self.metrics, "get", self.store.get(&key)).await? {
            Some(kv) => Ok(Some((decode_stored(&kv.value, kv.mod_revision)?, kv))),
            None => Ok(None),
        }
    }

    /// Creates an object; returns it with its resource version.
    pub(crate) async fn create(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        obj: Value,
    ) -> ApiResult<Value> {
        let bytes = encode_stored(&obj)?;
        match timed(
            &self.metrics,
            "create",
            self.store.create(&res.key(ns, name), bytes),
        )
        .await
        {
            Ok(rev) => {
                let mut obj = obj;
                set_resource_version(&mut obj, rev);
                Ok(obj)
            }
            Err(drover_store::Error::AlreadyExists { .. }) => {
                Err(ApiError::AlreadyExists(target(res, name)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Read-modify-write with compare-and-swap, retried on conflicts when the caller did not
    /// pin a resource version. `f` sees the current object (or `None`) and decides.
    pub(crate) async fn update<F>(
        &self,
        res: &Resource,
        ns: Option<&str>,
        name: &str,
        mut f: F,
    ) -> ApiResult<(Value, bool)>
    where
        F: FnMut(Option<Value>) -> ApiResult<Decision>,
    {
        let key = res.key(ns, name);
        for _ in 0..64 {
            let current = timed(&self.metrics, "get", self.store.get(&key)).await?;
            let (decision, expected) = match &current {
                Some(kv) => (
                    f(Some(decode_stored(&kv.value, kv.mod_revision)?))?,
                    Some(kv.mod_revision),
                ),
                None => (f(None)?, None),
            };
            let result = match (decision, expected) {
                (Decision::Unchanged(obj), _) => return Ok((obj, false)),
                (Decision::Write(obj), None) => {
                    let bytes = encode_stored(&obj)?;
                    timed(&self.metrics, "create", self.store.create(&key, bytes))
                        .await
                        .map(|rev| (obj, rev))
                }
                (Decision::Write(obj), Some(exp)) => {
                    let bytes = encode_stored(&obj)?;
                    self.store
                        .update(&key, exp, bytes)
                        .await
                        .map(|rev| (obj, rev))
                }
                (Decision::Delete(obj), Some(exp)) => self
                    .store
                    .delete(&key, exp)
                    .await
                    .map(|(rev, _)| (obj, rev)),
                (Decision::Delete(_), None) => return Err(ApiError::NotFound(target(res, name))),
            };
            match result {
                Ok((mut obj, rev)) => {
                    set_resource_version(&mut obj, rev);
                    return Ok((obj, true));
                }
                Err(
                    drover_store::Error::Conflict { .. }
                    | drover_store::Error::AlreadyExists { .. }
                    | drover_store::Error::NotFound { .. },
                ) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(conflict(res, name))
    }
}
