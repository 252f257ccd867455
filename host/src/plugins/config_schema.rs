//! The JSON Schema a plugin declares for its installation input
//! (`describe`'s `config-schema`): checked to be a schema when the plugin
//! loads, and applied to an operator's input before `build-integration` runs,
//! so a missing or mistyped field is refused by the host, naming the field,
//! whatever the plugin's own checks.

use serde_json::Value;

/// Why a `config-schema` is not a JSON Schema the host can apply.
pub fn check_schema(schema: &str) -> Result<(), String> {
    let schema: Value = serde_json::from_str(schema)
        .map_err(|e| format!("`describe` config-schema is not JSON: {e}"))?;
    if !matches!(schema, Value::Object(_) | Value::Bool(_)) {
        return Err("`describe` config-schema must be a JSON object (a JSON Schema)".into());
    }
    jsonschema::validator_for(&schema)
        .map(drop)
        .map_err(|e| format!("`describe` config-schema is not a valid JSON Schema: {e}"))
}

/// Why `input` does not match `schema`: every failing field, each with the
/// rule it breaks. The values themselves are never repeated (the input holds
/// tokens and passwords), only where they are and what is wrong with them.
pub fn check_input(schema: &str, input: &Value) -> Result<(), InputError> {
    let schema: Value =
        serde_json::from_str(schema).map_err(|e| InputError::Schema(e.to_string()))?;
    let validator =
        jsonschema::validator_for(&schema).map_err(|e| InputError::Schema(e.to_string()))?;
    let problems: Vec<String> = validator
        .iter_errors(input)
        .take(10)
        .map(|e| describe(&e))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InputError::Invalid(problems.join("; ")))
    }
}

/// One failure, placed at its field. For `oneOf` / `anyOf`, what each
/// alternative lacked: "matches none of" alone names no field.
fn describe(e: &jsonschema::ValidationError<'_>) -> String {
    use jsonschema::error::ValidationErrorKind;
    let message = match e.kind() {
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            let alternatives: Vec<String> = context
                .iter()
                .enumerate()
                .map(|(i, errors)| {
                    let why: Vec<String> = errors.iter().take(3).map(describe).collect();
                    format!("{}. {}", i + 1, why.join(", "))
                })
                .collect();
            format!(
                "matches none of the alternatives: {}",
                alternatives.join("; ")
            )
        }
        _ => e.masked_with("the value").to_string(),
    };
    let at = e.instance_path().to_string();
    if at.is_empty() {
        message
    } else {
        format!("`{}`: {message}", field_name(&at))
    }
}

/// Every property name the schema declares, in its alternatives and
/// combinations too (`oneOf`, `anyOf`, `allOf`), top level only.
pub fn declared_fields(schema: &Value) -> Vec<String> {
    let mut fields = Vec::new();
    collect_fields(schema, &mut fields, 0);
    fields
}

fn collect_fields(schema: &Value, fields: &mut Vec<String>, depth: usize) {
    if depth > 8 {
        return;
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for name in properties.keys() {
            if !fields.contains(name) {
                fields.push(name.clone());
            }
        }
    }
    for combination in ["oneOf", "anyOf", "allOf"] {
        for sub in schema
            .get(combination)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            collect_fields(sub, fields, depth + 1);
        }
    }
}

/// A JSON pointer (`/jira/url`) as a field name (`jira.url`).
fn field_name(pointer: &str) -> String {
    pointer
        .trim_start_matches('/')
        .split('/')
        .map(|part| part.replace("~1", "/").replace("~0", "~"))
        .collect::<Vec<_>>()
        .join(".")
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The operator's input breaks the schema: a 400 naming the fields.
    #[error("the installation input does not match the plugin's schema: {0}")]
    Invalid(String),
    /// The plugin's schema itself cannot be applied (refused at load, so only
    /// a plugin that changed underneath us gets here).
    #[error("the plugin's config-schema cannot be applied: {0}")]
    Schema(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCHEMA: &str = r#"{
        "type": "object",
        "required": ["url", "token"],
        "properties": {
            "url": {"type": "string", "format": "uri"},
            "token": {"type": "string", "minLength": 8},
            "project": {"type": "object", "properties": {"key": {"type": "string"}}}
        }
    }"#;

    #[test]
    fn a_missing_field_is_named() {
        let err = check_input(SCHEMA, &json!({"url": "https://x.example"})).unwrap_err();
        assert!(matches!(err, InputError::Invalid(_)));
        assert!(
            err.to_string().contains("\"token\" is a required property"),
            "{err}"
        );
    }

    #[test]
    fn a_wrong_value_is_named_by_its_path_without_repeating_it() {
        let input = json!({"url": "https://x.example", "token": "s3cr", "project": {"key": 5}});
        let err = check_input(SCHEMA, &input).unwrap_err().to_string();
        assert!(err.contains("`token`"), "{err}");
        assert!(err.contains("`project.key`"), "{err}");
        assert!(!err.contains("s3cr"), "the value leaked: {err}");
    }

    #[test]
    fn alternatives_say_what_each_lacked() {
        let schema = r#"{"oneOf": [
            {"type": "object", "required": ["bot_token", "channel_id"], "properties": {"bot_token": {}, "channel_id": {}}},
            {"type": "object", "required": ["webhook_url"], "properties": {"webhook_url": {}}}
        ]}"#;
        let err = check_input(schema, &json!({})).unwrap_err().to_string();
        assert!(
            err.contains("\"bot_token\" is a required property"),
            "{err}"
        );
        assert!(
            err.contains("\"webhook_url\" is a required property"),
            "{err}"
        );
        let fields = declared_fields(&serde_json::from_str(schema).unwrap());
        assert_eq!(fields, ["bot_token", "channel_id", "webhook_url"]);
    }

    #[test]
    fn matching_input_passes() {
        let input = json!({"url": "https://x.example", "token": "long enough"});
        assert!(check_input(SCHEMA, &input).is_ok());
    }

    #[test]
    fn schemas_are_checked_when_loaded() {
        assert!(check_schema(SCHEMA).is_ok());
        assert!(check_schema("{\"type\": \"object\"}").is_ok());
        assert!(check_schema("not json").is_err());
        assert!(check_schema("[1]").is_err());
        let err = check_schema(r#"{"type": "colour"}"#).unwrap_err();
        assert!(err.contains("not a valid JSON Schema"), "{err}");
    }
}
