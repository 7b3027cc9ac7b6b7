//! Label and field selectors, with the syntax and semantics of Kubernetes'
//! `k8s.io/apimachinery` (`labels.Parse`, `metav1.LabelSelectorAsSelector`,
//! `fields.ParseSelector`).
//!
//! - [`Selector`] is a label selector: a conjunction of [`Requirement`]s parsed from the
//!   string form (`app=web,tier in (a,b),!canary`) or built from the structured
//!   `LabelSelector` JSON (`matchLabels` + `matchExpressions`). It matches anything that
//!   implements [`Labels`] (a JSON label map, a `BTreeMap`, …).
//! - [`FieldSelector`] is a field selector (`metadata.name=web,status.phase!=Running`) that
//!   matches through a closure resolving a field path to its value.
//!
//! Both render back to the canonical string upstream produces (`Display`), and parsing
//! that string again gives an equal selector. Errors carry the messages a kubectl user
//! knows from upstream, e.g. `unable to parse requirement: <nil>: Invalid value: "a b": …`.
//!
//! The API server receives selectors form-decoded from the query string; decoding (`+` to
//! space, `%xx`) is the caller's job.
//!
//! ```
//! use drover_core::selector::{FieldSelector, Selector};
//! use serde_json::json;
//!
//! let sel: Selector = "app=web,tier notin (cache)".parse().unwrap();
//! assert!(sel.matches(&json!({"app": "web", "tier": "frontend"})));
//! assert_eq!(sel.to_string(), "app=web,tier notin (cache)");
//!
//! let fields = FieldSelector::parse("metadata.name=web,status.phase!=Failed").unwrap();
//! assert_eq!(fields.exact_name(), Some("web"));
//! assert!(fields.matches(|path| match path {
//!     "metadata.name" => Some("web"),
//!     _ => None,
//! }));
//! ```

mod field;
mod label;
mod lexer;
pub mod validation;

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use serde_json::{Map, Value};

pub use field::{FieldOperator, FieldRequirement, FieldSelector};
pub use label::{Operator, Requirement, Selector};

/// Why a selector could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector string is malformed or names an invalid key or value. The message
    /// is upstream's (`unable to parse requirement: …`, `found 'x', expected: …`).
    #[error("{reason}")]
    InvalidLabelSelector {
        /// The selector as given.
        selector: String,
        /// What was wrong, worded as upstream words it.
        reason: String,
    },
    /// A requirement (from a structured `LabelSelector` or built in code) is invalid, e.g. an
    /// invalid key, or an `In` operator without values.
    #[error("{reason}")]
    InvalidRequirement {
        /// The label key of the requirement.
        key: String,
        /// What was wrong, worded as upstream words it.
        reason: String,
    },
    /// A `matchExpressions` entry uses an operator other than In, NotIn, Exists, DoesNotExist.
    #[error("{operator:?} is not a valid label selector operator")]
    InvalidOperator {
        /// The operator as given.
        operator: String,
    },
    /// A structured `LabelSelector` is not shaped like one (e.g. `matchLabels` is a list).
    #[error("invalid label selector: {reason}")]
    MalformedLabelSelector {
        /// What was wrong.
        reason: String,
    },
    /// A field selector string is malformed. The message is upstream's.
    #[error("{reason}")]
    InvalidFieldSelector {
        /// The selector as given.
        selector: String,
        /// What was wrong, worded as upstream words it.
        reason: String,
    },
    /// A field selector uses a field the resource does not support selecting on.
    #[error("field label not supported: {field}")]
    FieldLabelNotSupported {
        /// The unsupported field path, verbatim (including any stray whitespace).
        field: String,
    },
}

/// A set of labels a [`Selector`] can be matched against.
///
/// Implemented for JSON label maps (`serde_json::Map` and `Value`, where anything that is
/// not an object counts as "no labels", so `&obj["metadata"]["labels"]` works directly),
/// string maps, and slices of pairs.
pub trait Labels {
    /// The value of the label `key`, or `None` if the label is not set.
    fn label(&self, key: &str) -> Option<&str>;
}

impl Labels for Map<String, Value> {
    fn label(&self, key: &str) -> Option<&str> {
        // Label values are strings by schema; anything else is treated as not set.
        self.get(key).and_then(Value::as_str)
    }
}

impl Labels for Value {
    fn label(&self, key: &str) -> Option<&str> {
        self.as_object().and_then(|m| m.label(key))
    }
}

impl Labels for BTreeMap<String, String> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<S: BuildHasher> Labels for HashMap<String, String, S> {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key).map(String::as_str)
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Labels for [(K, V)] {
    fn label(&self, key: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref() == key)
            .map(|(_, v)| v.as_ref())
    }
}

impl<T: Labels + ?Sized> Labels for &T {
    fn label(&self, key: &str) -> Option<&str> {
        (**self).label(key)
    }
}
