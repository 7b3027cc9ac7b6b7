//! Server-side printing for the registry's resources (built-in printers from
//! `drover_core::table`; custom resources use their printer columns once CRDs are served).

use drover_core::registry::Resource;
use drover_core::table::{self, IncludeObject};
use serde_json::Value;

/// The Table for `items` (one object for GET, many for LIST).
pub(crate) fn table(res: &Resource, items: &[Value], list_meta: Value, include: &str, v1beta1: bool) -> Value {
    let include = IncludeObject::parse(include).unwrap_or_default();
    let mut t = table::table(&res.gv.group, &res.kind, items, crate::meta::now_secs(), include, &list_meta);
    if v1beta1 {
        t["apiVersion"] = "meta.k8s.io/v1beta1".into();
    }
    t
}
