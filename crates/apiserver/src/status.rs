//! API errors and their `metav1.Status` form: one table from error to (code, reason).

use serde_json::{Value, json};

/// A field-level cause, as in `details.causes`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Cause {
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) field: String,
}

impl Cause {
    pub(crate) fn new(
        reason: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Cause {
        Cause {
            reason,
            message: message.into(),
            field: field.into(),
        }
    }
    /// `FieldValueRequired`.
    pub(crate) fn required(field: impl Into<String>) -> Cause {
        Cause::new("FieldValueRequired", field, "Required value")
    }
    /// The same cause with another message.
    pub(crate) fn with_message(mut self, message: impl Into<String>) -> Cause {
        self.message = message.into();
        self
    }
    /// `FieldValueInvalid` with upstream's message shape: `Invalid value: "x": why`.
    pub(crate) fn invalid(field: impl Into<String>, value: &Value, why: &str) -> Cause {
        let shown = match value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        Cause::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {shown}: {why}"),
        )
    }
}

/// Which object an error is about (`details.name/group/kind`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) group: String,
    /// The resource's plural (upstream puts the resource in `details.kind` for most errors).
    pub(crate) kind: String,
    pub(crate) name: String,
}

impl Target {
    pub(crate) fn new(group: &str, kind: &str, name: &str) -> Target {
        Target {
            group: group.to_owned(),
            kind: kind.to_owned(),
            name: name.to_owned(),
        }
    }
    /// `deployments.apps` or `pods`: how upstream names a resource in messages.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }
}

/// Everything a request can fail with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ApiError {
    BadRequest(String),
    Unauthorized,
    Forbidden {
        message: String,
        target: Target,
    },
    NotFound(Target),
    NotFoundMessage(String),
    AlreadyExists(Target),
    Conflict {
        target: Target,
        message: String,
    },
    Gone(String),
    Invalid {
        target: Target,
        kind: String,
        causes: Vec<Cause>,
    },
    MethodNotAllowed(String),
    NotAcceptable(String),
    UnsupportedMediaType(String),
    TooLarge(String),
    TooManyRequests,
    InsufficientStorage(String),
    Timeout(String),
    Unavailable(String),
    Internal(String),
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// HTTP status code.
    pub(crate) fn code(&self) -> u16 {
        match self {
            ApiError::BadRequest(_) => 400,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::NotFound(_) | ApiError::NotFoundMessage(_) => 404,
            ApiError::MethodNotAllowed(_) => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::AlreadyExists(_) | ApiError::Conflict { .. } => 409,
            ApiError::Gone(_) => 410,
            ApiError::TooLarge(_) => 413,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::Invalid { .. } => 422,
            ApiError::TooManyRequests => 429,
            ApiError::Internal(_) => 500,
            ApiError::Unavailable(_) => 503,
            ApiError::Timeout(_) => 504,
            ApiError::InsufficientStorage(_) => 507,
        }
    }

    fn reason(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::NotFound(_) | ApiError::NotFoundMessage(_) => "NotFound",
            ApiError::MethodNotAllowed(_) => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::AlreadyExists(_) => "AlreadyExists",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::Gone(_) => "Expired",
            ApiError::TooLarge(_) => "RequestEntityTooLarge",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::Invalid { .. } => "Invalid",
            ApiError::TooManyRequests => "TooManyRequests",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unavailable(_) => "ServiceUnavailable",
            ApiError::Timeout(_) => "Timeout",
            ApiError::InsufficientStorage(_) => "InsufficientStorage",
        }
    }

    fn message(&self) -> String {
        match self {
            ApiError::BadRequest(m)
            | ApiError::NotFoundMessage(m)
            | ApiError::MethodNotAllowed(m)
            | ApiError::NotAcceptable(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::TooLarge(m)
            | ApiError::Gone(m)
            | ApiError::Internal(m)
            | ApiError::Unavailable(m)
            | ApiError::Timeout(m)
            | ApiError::InsufficientStorage(m) => m.clone(),
            ApiError::Conflict { message, .. } | ApiError::Forbidden { message, .. } => {
                message.clone()
            }
            ApiError::Unauthorized => "Unauthorized".to_owned(),
            ApiError::NotFound(t) => format!("{} {:?} not found", t.qualified(), t.name),
            ApiError::AlreadyExists(t) => format!("{} {:?} already exists", t.qualified(), t.name),
            ApiError::Invalid {
                target,
                kind,
                causes,
            } => {
                let list: Vec<String> = causes
                    .iter()
                    .map(|c| {
                        if c.field.is_empty() {
                            c.message.clone()
                        } else {
                            format!("{}: {}", c.field, c.message)
                        }
                    })
                    .collect();
                let joined = if list.len() == 1 {
                    list[0].clone()
                } else {
                    format!("[{}]", list.join(", "))
                };
                format!("{kind} {:?} is invalid: {joined}", target.name)
            }
            ApiError::TooManyRequests => "Too many requests, please try again later.".to_owned(),
        }
    }

    fn details(&self) -> Option<Value> {
        let target = match self {
            ApiError::NotFound(t)
            | ApiError::AlreadyExists(t)
            | ApiError::Conflict { target: t, .. }
            | ApiError::Forbidden { target: t, .. } => t,
            ApiError::Invalid {
                target,
                causes,
                kind,
            } => {
                let causes: Vec<Value> = causes
                    .iter()
                    .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                    .collect();
                return Some(json!({
                    "name": target.name, "group": target.group, "kind": kind, "causes": causes
                }));
            }
            ApiError::TooManyRequests => return Some(json!({"retryAfterSeconds": 1})),
            _ => return None,
        };
        let mut d = serde_json::Map::new();
        if !target.name.is_empty() {
            d.insert("name".into(), target.name.clone().into());
        }
        if !target.group.is_empty() {
            d.insert("group".into(), target.group.clone().into());
        }
        if !target.kind.is_empty() {
            d.insert("kind".into(), target.kind.clone().into());
        }
        Some(Value::Object(d))
    }

    /// The `metav1.Status` object for this error.
    pub(crate) fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message(),
            "reason": self.reason(),
            "code": self.code(),
        });
        if let Some(d) = self.details() {
            s["details"] = d;
        }
        s
    }

    pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

impl From<drover_store::Error> for ApiError {
    fn from(e: drover_store::Error) -> ApiError {
        use drover_store::Error as E;
        match e {
            E::Compacted {
                requested,
                compacted,
            } => ApiError::Gone(format!(
                "The resourceVersion for the provided list is too old (requested {requested}, oldest available {compacted})."
            )),
            E::FutureRevision { requested, current } => ApiError::Timeout(format!(
                "Too large resource version: {requested}, current resource version: {current}"
            )),
            E::NoSpace { detail } => ApiError::InsufficientStorage(format!(
                "the datastore cannot take this write: no space left on device ({detail})"
            )),
            E::Unavailable(m) => {
                ApiError::Unavailable(format!("the datastore is unavailable: {m}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// A `Success` Status (for deletes of collections and similar).
pub(crate) fn success_status(details: Option<Value>) -> Value {
    let mut s = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"});
    if let Some(d) = details {
        s["details"] = d;
    }
    s
}
