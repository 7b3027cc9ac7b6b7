//! The shape of the generated message table (`table.rs`) and lookups over it.

use crate::table::{GROUP_VERSIONS, MESSAGES};

/// Wire type of a field's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    Str,
    Bytes,
    Int32,
    Int64,
    Bool,
    Double,
    /// A nested message: index into [`MESSAGES`].
    Msg(u16),
}

/// How a field holds its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Label {
    /// At most one value (proto2 `optional`).
    Optional,
    /// A JSON array.
    Repeated,
    /// `map<string, ty>`: a JSON object; on the wire, repeated `{1: key, 2: value}` entries.
    Map,
    /// A Go embedded struct (`json:",inline"`): a nested message on the wire whose fields are
    /// flattened into the enclosing JSON object.
    Inline,
}

/// Messages whose JSON form is not simply an object of their fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Special {
    None,
    /// meta/v1 Time: RFC 3339 string, second precision.
    Time,
    /// meta/v1 MicroTime: RFC 3339 string, microsecond precision.
    MicroTime,
    /// meta/v1 Duration: Go duration string.
    Duration,
    /// meta/v1 FieldsV1: embedded JSON.
    FieldsV1,
    /// api/resource Quantity: string.
    Quantity,
    /// util/intstr IntOrString: number or string.
    IntOrString,
    /// runtime RawExtension: embedded JSON (or a nested protobuf envelope).
    RawExtension,
    /// apiextensions JSON: embedded JSON.
    Json,
    /// JSONSchemaPropsOrArray: a schema object or an array of schemas.
    SchemaOrArray,
    /// JSONSchemaPropsOrBool: a schema object or a boolean.
    SchemaOrBool,
    /// JSONSchemaPropsOrStringArray: a schema object or an array of strings.
    SchemaOrStringArray,
    /// A Go named `[]string` (metav1.Verbs, ExtraValue): `{repeated string items = 1}` on the wire.
    StringList,
}

/// One field of a message.
#[derive(Debug)]
pub(crate) struct Field {
    pub(crate) json: &'static str,
    pub(crate) number: u32,
    pub(crate) ty: Ty,
    pub(crate) label: Label,
}

/// Builds a [`Field`]; keeps the generated table short.
pub(crate) const fn f(json: &'static str, number: u32, ty: Ty, label: Label) -> Field {
    Field {
        json,
        number,
        ty,
        label,
    }
}

/// One protobuf message type; `fields` are sorted by field number.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) name: &'static str,
    pub(crate) special: Special,
    pub(crate) fields: &'static [Field],
}

// === impl Message ===

impl Message {
    /// The message called `name` (a full protobuf name such as `k8s.io.api.core.v1.Pod`).
    pub(crate) fn by_name(name: &str) -> Option<&'static Message> {
        MESSAGES
            .binary_search_by(|m| m.name.cmp(name))
            .ok()
            .map(|i| &MESSAGES[i])
    }

    /// The message at `index` in the table (as referenced by [`Ty::Msg`]).
    pub(crate) fn at(index: u16) -> &'static Message {
        &MESSAGES[usize::from(index)]
    }

    /// The field with wire number `number`.
    pub(crate) fn field(&self, number: u32) -> Option<&'static Field> {
        self.fields
            .binary_search_by_key(&number, |f| f.number)
            .ok()
            .map(|i| &self.fields[i])
    }

    /// The message type of field `number`, for the hand-written special messages.
    pub(crate) fn field_msg(&self, number: u32) -> Option<&'static Message> {
        match self.field(number)?.ty {
            Ty::Msg(i) => Some(Message::at(i)),
            _ => None,
        }
    }
}

const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// The protobuf package that holds the types of `api_version` (`apps/v1` -> `k8s.io.api.apps.v1`).
pub(crate) fn package_for(api_version: &str) -> Option<&'static str> {
    GROUP_VERSIONS
        .binary_search_by(|(gv, _)| (*gv).cmp(api_version))
        .ok()
        .map(|i| GROUP_VERSIONS[i].1)
}

/// The message for `kind` in `api_version`. Kinds that apimachinery registers into every group
/// version (Status, DeleteOptions, ListOptions, WatchEvent, APIResourceList, ...) fall back to
/// meta/v1.
pub(crate) fn message_for_kind(api_version: &str, kind: &str) -> Option<&'static Message> {
    if kind.is_empty() || kind.contains('.') {
        return None;
    }
    let package = package_for(api_version)?;
    Message::by_name(&format!("{package}.{kind}"))
        .or_else(|| Message::by_name(&format!("{META_V1}.{kind}")))
        .filter(|m| m.special == Special::None)
}
