//! The JSON that upstream's API server would see after decoding a protobuf body into Go
//! structs: there an empty string field is the zero value, and `omitempty` leaves it out.
//!
//! Go's protobuf marshaller writes every non-pointer string field, empty or not, so a decoded
//! body carries `generateName: ""`, `strategy: {type: ""}`, `restartPolicy: ""` and so on. Kept
//! as they are, those empty strings read as "set" to defaulting and show up in every GET.

use serde_json::{Map, Value};

use crate::desc::{Label, Message, Special, Ty};

/// String fields whose empty value means something: Go `*string` pointers where `""` differs
/// from nil (`storageClassName: ""` asks for no storage class, not the default one).
const KEEP_EMPTY: &[&str] = &["storageClassName"];

/// Removes the empty string fields of `obj` (a JSON object of message `msg`), recursively.
/// Map values and list items are left alone: an empty string there is data.
pub(crate) fn strip(msg: &'static Message, obj: &mut Map<String, Value>) {
    for field in msg.fields {
        match (field.label, field.ty) {
            (Label::Optional, Ty::Str) => {
                let empty = obj.get(field.json).and_then(Value::as_str) == Some("");
                if empty && !KEEP_EMPTY.contains(&field.json) {
                    obj.remove(field.json);
                }
            }
            (Label::Optional, Ty::Msg(i)) => nested(Message::at(i), obj.get_mut(field.json)),
            (Label::Repeated, Ty::Msg(i)) => {
                if let Some(Value::Array(items)) = obj.get_mut(field.json) {
                    items
                        .iter_mut()
                        .for_each(|item| nested(Message::at(i), Some(item)));
                }
            }
            (Label::Map, Ty::Msg(i)) => {
                if let Some(Value::Object(entries)) = obj.get_mut(field.json) {
                    entries
                        .values_mut()
                        .for_each(|v| nested(Message::at(i), Some(v)));
                }
            }
            // A Go embedded struct: its fields sit in this same JSON object.
            (Label::Inline, Ty::Msg(i)) => strip(Message::at(i), obj),
            _ => {}
        }
    }
}

fn nested(msg: &'static Message, value: Option<&mut Value>) {
    if msg.special != Special::None {
        return;
    }
    if let Some(Value::Object(m)) = value {
        strip(msg, m);
    }
}
