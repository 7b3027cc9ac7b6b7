//! Field selectors (`metadata.name=web,status.phase!=Running`), as upstream's
//! `fields.ParseSelector`.

use std::fmt;
use std::str::FromStr;

use super::SelectorError;

/// A field selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `field=value` or `field==value`: the field has this value (a missing field reads as
    /// the empty string).
    Equals,
    /// `field!=value`.
    NotEquals,
}

/// One term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRequirement {
    /// The field path, verbatim: upstream neither trims nor validates it, so
    /// `a=b, c=d` selects on the field `" c"` (which the server then rejects as unsupported).
    pub field: String,
    /// The operator.
    pub operator: FieldOperator,
    /// The value, unescaped.
    pub value: String,
}

impl FieldRequirement {
    /// Whether a field with value `actual` (`None` when absent, which compares as `""`)
    /// satisfies this term.
    pub fn matches(&self, actual: Option<&str>) -> bool {
        let equal = actual.unwrap_or("") == self.value;
        match self.operator {
            FieldOperator::Equals => equal,
            FieldOperator::NotEquals => !equal,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// A field selector: a conjunction of [`FieldRequirement`]s. The empty selector matches
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

// === impl FieldSelector ===

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses the string form: comma-separated `field=value`, `field==value` or
    /// `field!=value` terms, where `\` escapes `\`, `,` and `=` in values.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let invalid = |reason: String| SelectorError::InvalidFieldSelector {
            selector: selector.to_string(),
            reason,
        };
        let mut terms = split_terms(selector);
        // Upstream sorts the raw terms, which fixes the canonical order.
        terms.sort_unstable();
        let mut requirements = Vec::with_capacity(terms.len());
        for term in terms.into_iter().filter(|t| !t.is_empty()) {
            let (field, operator, raw) = split_term(term).ok_or_else(|| {
                invalid(format!(
                    "invalid selector: '{selector}'; can't understand '{term}'"
                ))
            })?;
            let value = unescape_value(raw).map_err(invalid)?;
            requirements.push(FieldRequirement {
                field: field.to_string(),
                operator,
                value,
            });
        }
        Ok(FieldSelector { requirements })
    }

    /// A selector requiring `field=value` for every pair (upstream's `SelectorFromSet`).
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        FieldSelector {
            requirements: pairs
                .into_iter()
                .map(|(k, v)| FieldRequirement {
                    field: k.into(),
                    operator: FieldOperator::Equals,
                    value: v.into(),
                })
                .collect(),
        }
    }

    /// The terms, in canonical order.
    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    /// Whether this selector matches everything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether every term holds, looking field paths (such as `metadata.name`) up through
    /// `get`. An absent field (`None`) compares as the empty string, as upstream.
    pub fn matches<F, V>(&self, mut get: F) -> bool
    where
        F: FnMut(&str) -> Option<V>,
        V: AsRef<str>,
    {
        self.requirements.iter().all(|r| {
            let actual = get(&r.field);
            r.matches(actual.as_ref().map(AsRef::as_ref))
        })
    }

    /// The field paths this selector uses, in order (with repeats).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.requirements.iter().map(|r| r.field.as_str())
    }

    /// Checks that every field is one the resource supports, answering upstream's
    /// `field label not supported: X` for the first one that is not.
    pub fn check_supported(&self, supported: impl Fn(&str) -> bool) -> Result<(), SelectorError> {
        match self.fields().find(|f| !supported(f)) {
            Some(field) => Err(SelectorError::FieldLabelNotSupported {
                field: field.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// The value `field` must equal, if a `field=value` term requires one (upstream's
    /// `RequiresExactMatch`).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.operator == FieldOperator::Equals && r.field == field)
            .map(|r| r.value.as_str())
    }

    /// The object name an exact `metadata.name=X` term requires, if any: lets the server
    /// turn a list into a single lookup.
    pub fn exact_name(&self) -> Option<&str> {
        self.requires_exact_match("metadata.name")
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Escapes `\`, `,` and `=` in a value with a backslash.
fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Splits on commas that are not backslash-escaped; escapes stay in the terms.
fn split_terms(selector: &str) -> Vec<&str> {
    if selector.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in selector.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&selector[start..i]);
            start = i + 1;
        }
    }
    terms.push(&selector[start..]);
    terms
}

/// Splits a term at the first operator (`!=` and `==` win over `=`); the field part
/// has no escaping.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                ));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            ',' | '=' => {
                // Upstream prints the rune with %v, i.e. as its code point number.
                return Err(format!(
                    "invalid field selector: unescaped character in value: {}",
                    u32::from(c)
                ));
            }
            _ => out.push(c),
        }
    }
    if in_slash {
        return Err("invalid field selector: invalid escape sequence: \\".to_string());
    }
    Ok(out)
}
