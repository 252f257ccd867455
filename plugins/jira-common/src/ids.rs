//! Jira ids as strings.

use serde_json::Value;

/// Jira ids are strings, but tolerate numbers.
pub fn id_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_numbers() {
        assert_eq!(id_string(&json!("10")).as_deref(), Some("10"));
        assert_eq!(id_string(&json!(10)).as_deref(), Some("10"));
        assert_eq!(id_string(&json!(null)), None);
    }
}
