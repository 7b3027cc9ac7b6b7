//! Server-side printing for the registry's resources (built-in printers from
//! `drover_core::table`; custom resources use their printer columns once CRDs are served).

use drover_core::registry::Resource;
use drover_core::table::{self, IncludeObject};
use serde_json::Value;

/// The Table for `items` (one object for GET, many for LIST).
pub(crate) fn table(
    res: &Resource,
    items: &[Value],
    list_meta: Value,
    include: &str,
    v1beta1: bool,
) -> Value {
    let include = IncludeObject::parse(include).unwrap_or_default();
    let now = crate::meta::now_secs();
    let mut t = match &res.custom {
        Some(c) => match table::CustomPrinter::new(&c.printer_columns) {
            Ok(p) => p.table(items, now, include, &list_meta),
            Err(_) => table::CustomPrinter::new(&[])
                .expect("no columns is valid")
                .table(items, now, include, &list_meta),
        },
        None => table::table(&res.gv.group, &res.kind, items, now, include, &list_meta),
    };
    if v1beta1 {
        t["apiVersion"] = "meta.k8s.io/v1beta1".into();
    }
    t
}
