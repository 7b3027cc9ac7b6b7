//! Kubernetes protobuf encoding (the `k8s\0` envelope around `runtime.Unknown`) to and from the
//! JSON form of objects that the rest of Drover works with.
//!
//! # Model
//!
//! Kubernetes clients (kubectl, helm, client-go) send and accept
//! `application/vnd.kubernetes.protobuf`: the 4 magic bytes `k8s\0`, then a `runtime.Unknown`
//! message `{1: TypeMeta{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}`
//! whose `raw` is the object's own message. Drover keeps objects as [`serde_json::Value`] in
//! their Kubernetes JSON form, so this crate transcodes between the two without generated Rust
//! types: a table of every Kubernetes 1.33 message (k8s.io/api, apimachinery meta/v1,
//! apiextensions, apiregistration, metrics) — field numbers, wire types and exact JSON names —
//! drives one generic decoder and one generic encoder. The table (`src/table.rs`) is generated
//! by `tools/protogen/protogen.py` from the k8s-pb and k8s-openapi crates' sources.
//!
//! Messages whose JSON is not an object of their fields are transcoded by hand: meta/v1 `Time`,
//! `MicroTime`, `Duration`, `FieldsV1`, `Verbs`; `Quantity`; `IntOrString`; `RawExtension`
//! (JSON, or a nested envelope inside protobuf watch events); apiextensions `JSON` and the
//! `JSONSchemaPropsOr*` unions; `ExtraValue`. Go embedded structs (`json:",inline"`, such as
//! `Volume.VolumeSource`) are nested messages on the wire and flattened in JSON.
//!
//! Encoding matches Go's marshallers byte for byte for objects whose fields are all present:
//! fields in number order, map keys sorted, repeated scalars unpacked. A JSON field that is
//! absent or `null` is not written; one that is present is written even when empty or zero.
//! Unknown JSON fields are ignored (Go drops them too). Decoding skips unknown protobuf fields,
//! never panics, bounds nesting, and reports the message, field number and byte offset of
//! anything malformed.
//!
//! # Entry points
//!
//! ```
//! let pod = serde_json::json!({
//!     "apiVersion": "v1",
//!     "kind": "Pod",
//!     "metadata": {"name": "web", "labels": {"app": "web"}},
//!     "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]},
//! });
//! let bytes = drover_codec::encode(&pod)?;
//! assert!(bytes.starts_with(&drover_codec::MAGIC));
//! assert_eq!(drover_codec::decode(&bytes)?, pod);
//! # Ok::<(), drover_codec::Error>(())
//! ```

mod decode;
mod desc;
mod encode;
mod envelope;
mod omit;
#[rustfmt::skip]
mod table;
use drover_core::time;
mod wire;

use serde_json::Value;

/// The 4 bytes every Kubernetes protobuf body starts with.
pub const MAGIC: [u8; 4] = *b"k8s\0";

/// Media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Media type of a protobuf watch stream (see [`encode_watch_frame`]).
pub const WATCH_CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// Messages may nest at most this deep (in either direction) before transcoding fails; the same
/// limit as Go's protobuf decoder, and shallow enough for a 2 MiB thread stack in debug builds.
pub const MAX_DEPTH: usize = 100;

/// Largest watch frame [`next_watch_frame`] accepts (Go's limit is also 16 MiB per object).
pub const MAX_FRAME_LEN: usize = 64 << 20;

/// What went wrong while transcoding.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body is not a Kubernetes protobuf envelope.
    #[error("not a Kubernetes protobuf body: it does not start with the magic bytes \"k8s\\0\"")]
    MissingMagic,
    /// No protobuf message is known for this apiVersion and kind (custom resources, for
    /// example, have none); the caller should use JSON instead.
    #[error(
        "no protobuf message is known for apiVersion {api_version:?} kind {kind:?}; \
         custom resources and unknown kinds must be sent as application/json"
    )]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// [`decode_message`] or [`encode_message`] was given a type name not in the table.
    #[error(
        "unknown protobuf message type {0:?}; expected a full name like k8s.io.api.core.v1.Pod"
    )]
    UnknownMessage(String),
    /// The protobuf input is malformed.
    #[error("invalid protobuf in {message} field {field} at byte {offset}: {reason}")]
    Decode {
        /// Full name of the message being read.
        message: &'static str,
        /// Field number being read (0 when the field key itself is bad).
        field: u32,
        /// Byte offset in the input where the bad field starts.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
    /// A JSON value does not fit the message it must be encoded as.
    #[error("cannot encode {path} as protobuf ({message}): {reason}")]
    Encode {
        /// Full name of the message being written.
        message: &'static str,
        /// JSON path of the offending value, e.g. `$.spec.containers[0].ports[0].containerPort`.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A watch frame's length prefix is larger than [`MAX_FRAME_LEN`].
    #[error("protobuf watch frame of {0} bytes exceeds the {MAX_FRAME_LEN}-byte limit")]
    FrameTooLarge(usize),
}

impl Error {
    pub(crate) fn decode(message: &'static str, field: u32, offset: usize, reason: String) -> Self {
        Error::Decode {
            message,
            field,
            offset,
            reason,
        }
    }
}

/// Decodes a protobuf body (`k8s\0` envelope) into the object's JSON form, with `kind` and
/// `apiVersion` set from the envelope.
pub fn decode(bytes: &[u8]) -> Result<Value, Error> {
    envelope::decode_at(bytes, 0, None, 0)
}

/// Removes the empty string fields of a decoded object (by its `apiVersion` and `kind`), as Go's
/// `omitempty` does after upstream decodes a protobuf body into its structs: `generateName: ""`,
/// `strategy: {type: ""}` and the like are then absent, so defaulting fills them. Map values
/// and list items are kept, as is `storageClassName: ""` (a pointer whose empty value matters).
/// Objects of kinds the table does not know are left unchanged.
pub fn omit_empty_strings(obj: &mut Value) {
    let Ok((api_version, kind)) = envelope::type_meta(obj) else {
        return;
    };
    let Some(msg) = desc::message_for_kind(api_version, kind) else {
        return;
    };
    if let Value::Object(m) = obj {
        omit::strip(msg, m);
    }
}

/// Decodes an envelope reading its payload as message `type_name`, whatever its TypeMeta says.
/// For Go types that are serialized with an empty TypeMeta, such as a bare meta/v1 WatchEvent.
pub fn decode_as(bytes: &[u8], type_name: &str) -> Result<Value, Error> {
    let msg = desc::Message::by_name(type_name)
        .ok_or_else(|| Error::UnknownMessage(type_name.to_owned()))?;
    envelope::decode_at(bytes, 0, Some(msg), 0)
}

/// Encodes an object (which must carry `apiVersion` and `kind`) as a protobuf body.
pub fn encode(obj: &Value) -> Result<Vec<u8>, Error> {
    envelope::encode_object(obj)
}

/// Encodes `obj` as message `type_name` inside an envelope whose TypeMeta is the object's
/// `apiVersion` and `kind`, empty when absent. The inverse of [`decode_as`].
pub fn encode_as(obj: &Value, type_name: &str) -> Result<Vec<u8>, Error> {
    let msg = desc::Message::by_name(type_name)
        .ok_or_else(|| Error::UnknownMessage(type_name.to_owned()))?;
    envelope::encode_as(msg, obj, 0)
}

/// The `apiVersion` and `kind` in an envelope's TypeMeta, without decoding the object.
pub fn peek_type(bytes: &[u8]) -> Result<(String, String), Error> {
    let env = envelope::parse(bytes, 0)?;
    Ok((env.api_version, env.kind))
}

/// Decodes a bare message (no envelope) of type `type_name`, e.g. `k8s.io.api.core.v1.PodSpec`.
pub fn decode_message(type_name: &str, bytes: &[u8]) -> Result<Value, Error> {
    let msg = desc::Message::by_name(type_name)
        .ok_or_else(|| Error::UnknownMessage(type_name.to_owned()))?;
    decode::message(msg, bytes, 0, 0)
}

/// Encodes `value` as a bare message (no envelope) of type `type_name`.
pub fn encode_message(type_name: &str, value: &Value) -> Result<Vec<u8>, Error> {
    let msg = desc::Message::by_name(type_name)
        .ok_or_else(|| Error::UnknownMessage(type_name.to_owned()))?;
    let mut out = Vec::new();
    encode::message(msg, value, &mut out, &encode::Path::Root, 0)?;
    Ok(out)
}

/// The full protobuf message name for an `apiVersion` and `kind`, e.g. `("apps/v1",
/// "Deployment")` -> `k8s.io.api.apps.v1.Deployment`. Kinds apimachinery adds to every group
/// version (Status, DeleteOptions, ListOptions, WatchEvent, ...) resolve to meta/v1. `None` for
/// custom resources and other kinds without a protobuf form.
pub fn message_for(api_version: &str, kind: &str) -> Option<&'static str> {
    desc::message_for_kind(api_version, kind).map(|m| m.name)
}

/// Encodes a watch event (`{"type": "ADDED", "object": {...}}`) as one frame of a protobuf watch
/// stream ([`WATCH_CONTENT_TYPE`]): a 4-byte big-endian length, then a meta/v1 `WatchEvent`
/// whose `object` holds the object's own envelope.
pub fn encode_watch_frame(event: &Value) -> Result<Vec<u8>, Error> {
    envelope::encode_watch_frame(event)
}

/// Splits the first frame off a protobuf watch stream buffer: `Ok(Some((payload, consumed)))`
/// when a whole frame is buffered, `Ok(None)` when more bytes are needed.
pub fn next_watch_frame(buf: &[u8]) -> Result<Option<(&[u8], usize)>, Error> {
    let Some(prefix) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = u32::from_be_bytes(*prefix) as usize;
    if len > MAX_FRAME_LEN {
        return Err(Error::FrameTooLarge(len));
    }
    Ok(buf.get(4..4 + len).map(|payload| (payload, 4 + len)))
}

/// Decodes one watch frame's payload (as returned by [`next_watch_frame`]) into
/// `{"type": ..., "object": {...}}`.
pub fn decode_watch_frame(payload: &[u8]) -> Result<Value, Error> {
    envelope::decode_watch_payload(payload)
}
