//! JSON helpers. `serde_json` is re-exported so providers use the same version.

pub use serde_json::{self, Map, Value, json};

/// The value at a path of object keys, e.g. `get(&v, &["issue", "fields", "assignee"])`.
/// `None` when a step is missing or not an object; a JSON `null` at the end is returned as is.
pub fn get<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_object()?.get(*key))
}

/// The string at `path`, if it is a string.
pub fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(value, path)?.as_str()
}

/// The string at `path`, ignoring empty strings.
pub fn non_empty_str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    str_at(value, path).filter(|s| !s.is_empty())
}

/// The unsigned integer at `path`.
pub fn u64_at(value: &Value, path: &[&str]) -> Option<u64> {
    get(value, path)?.as_u64()
}

/// Python-style truthiness, as webhook senders' reference implementations use it:
/// `null`, `false`, `0`, `""`, `[]` and `{}` are false.
pub fn is_truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let v = json!({"a": {"b": {"c": "x", "n": 5, "e": ""}}, "l": [1]});
        assert_eq!(str_at(&v, &["a", "b", "c"]), Some("x"));
        assert_eq!(u64_at(&v, &["a", "b", "n"]), Some(5));
        assert_eq!(non_empty_str_at(&v, &["a", "b", "e"]), None);
        assert_eq!(get(&v, &["l", "0"]), None);
        assert_eq!(get(&v, &[]), Some(&v));
    }

    #[test]
    fn truthiness() {
        for falsy in [
            json!(null),
            json!(false),
            json!(0),
            json!(""),
            json!([]),
            json!({}),
        ] {
            assert!(!is_truthy(&falsy), "{falsy}");
        }
        for truthy in [
            json!(true),
            json!(1),
            json!("x"),
            json!([0]),
            json!({"a": null}),
        ] {
            assert!(is_truthy(&truthy), "{truthy}");
        }
    }
}
