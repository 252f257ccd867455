//! Installing integrations through their plugins, and their configuration.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::resources::Body;
use super::{ApiError, AppState};
use crate::plugins::config_schema::InputError;
use crate::plugins::contract::provider_types::StatusModel;
use crate::plugins::http_gate::{host_matches_pattern, url_field_hosts};
use crate::store::{ConfigUpdate, NewIntegration, StatusMapping};

#[derive(Deserialize)]
pub struct InstallInput {
    provider: String,
    input: Value,
}

/// Install: the plugin turns the operator's input into integration data (calling
/// its tracker where needed); only then is anything stored.
pub async fn install(
    State(s): State<AppState>,
    Path(org): Path<i64>,
    Body(body): Body<InstallInput>,
) -> Result<impl IntoResponse, ApiError> {
    s.store.organization(org).await?;
    let plugin = s
        .registry
        .plugin(&body.provider)
        .ok_or_else(|| ApiError::BadRequest(format!("unknown provider `{}`", body.provider)))?;
    let info = plugin.info().clone();
    let Value::Object(_) = &body.input else {
        return Err(ApiError::BadRequest("`input` must be a JSON object".into()));
    };
    crate::plugins::config_schema::check_input(&info.config_schema, &body.input).map_err(|e| {
        match e {
            InputError::Invalid(_) => ApiError::BadRequest(e.to_string()),
            InputError::Schema(_) => ApiError::Unavailable(format!("plugin {}: {e}", info.name)),
        }
    })?;
    // The plugin may reach only the hosts of the URLs the operator typed.
    let mut hosts = url_field_hosts(&info.url_fields, &body.input).map_err(ApiError::BadRequest)?;
    let data = plugin
        .build_integration(body.input.to_string(), hosts.clone())
        .await?;
    for extra in &data.extra_hosts {
        if !info
            .allowed_host_patterns
            .iter()
            .any(|p| host_matches_pattern(extra, p))
        {
            return Err(ApiError::Unavailable(format!(
                "plugin {} asked for host `{extra}`, which its allowed-host-patterns {:?} do not cover",
                info.name, info.allowed_host_patterns
            )));
        }
        hosts.push(extra.to_ascii_lowercase());
    }
    for (what, json) in [("metadata", &data.metadata), ("secrets", &data.secrets)] {
        if !matches!(serde_json::from_str::<Value>(json), Ok(Value::Object(_))) {
            return Err(ApiError::Unavailable(format!(
                "plugin {} returned {what} that is not a JSON object",
                info.name
            )));
        }
    }
    let integration = s
        .store
        .install_integration(
            org,
            NewIntegration {
                provider: &info.name,
                external_id: &data.external_id,
                name: &data.name,
                metadata: &data.metadata,
                secrets: &data.secrets,
                allowed_hosts: &hosts,
            },
        )
        .await?;
    tracing::info!(
        org,
        integration = integration.id,
        provider = info.name,
        "integration installed"
    );
    let view = s.store.integration_view(org, integration.id).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[derive(Deserialize)]
pub struct UninstallQuery {
    #[serde(default)]
    force: bool,
}

/// Uninstall: when the last organization removes an integration, its plugin first
/// removes what it created at the tracker. If the tracker cannot be reached the
/// operator is told and can retry, or pass `?force=true` to delete anyway.
pub async fn uninstall(
    State(s): State<AppState>,
    Path((org, id)): Path<(i64, i64)>,
    Query(query): Query<UninstallQuery>,
) -> Result<StatusCode, ApiError> {
    s.store.integration_view(org, id).await?;
    let integration = s.store.integration(id).await?;
    let last = s.store.integration_orgs(id).await? == vec![org];
    if last {
        let result = match s.registry.plugin(&integration.provider) {
            Some(plugin) => plugin
                .uninstall(integration.clone())
                .await
                .map_err(|e| e.to_string()),
            None => Err(format!(
                "no plugin for provider `{}` is loaded",
                integration.provider
            )),
        };
        if let Err(reason) = result {
            if !query.force {
                return Err(ApiError::Upstream(format!(
                    "could not remove the integration at the tracker: {reason}; retry, or pass ?force=true to delete it anyway"
                )));
            }
            tracing::warn!(org, integration = id, %reason, "uninstall forced past a tracker failure");
        }
    }
    s.store.uninstall_integration(org, id).await?;
    tracing::info!(org, integration = id, "integration uninstalled");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list(
    State(s): State<AppState>,
    Path(org): Path<i64>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.org_integration_views(org).await?))
}

pub async fn get(
    State(s): State<AppState>,
    Path((org, id)): Path<(i64, i64)>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.store.integration_view(org, id).await?))
}

const BOOL_KEYS: &[&str] = &[
    "sync_status_reverse",
    "sync_forward_assignment",
    "sync_reverse_assignment",
    "sync_comments",
];
const STRATEGIES: &[&str] = &["resolve", "resolve_current_release", "resolve_next_release"];

pub async fn save_config(
    State(s): State<AppState>,
    Path((org, id)): Path<(i64, i64)>,
    Body(body): Body<Map<String, Value>>,
) -> Result<impl IntoResponse, ApiError> {
    let open_closed = match body.get("sync_status_forward") {
        None => false,
        Some(_) => {
            let integration = s.store.integration(id).await?;
            s.registry
                .provider(&integration.provider)
                .is_some_and(|p| p.info.status_model == StatusModel::OpenClosed)
        }
    };
    let update = parse_config(body, open_closed)?;
    Ok(Json(s.store.save_config(org, id, update).await?))
}

/// `open_closed`: the provider's issues are open or closed, so outbound
/// status sync is a switch (`true` / `false`) instead of a mapping table.
pub(crate) fn parse_config(
    body: Map<String, Value>,
    open_closed: bool,
) -> Result<ConfigUpdate, ApiError> {
    let mut update = ConfigUpdate::default();
    for (key, value) in body {
        match key.as_str() {
            "sync_status_forward" if open_closed => match value {
                Value::Bool(on) => update.status_forward = Some(on),
                Value::Null => update.status_forward = Some(false),
                _ => {
                    return Err(ApiError::BadRequest(
                        "`sync_status_forward` must be true or false: this tracker's issues are open or closed, so there are no statuses to map".into(),
                    ));
                }
            },
            "sync_status_forward" => update.mappings = Some(parse_mappings(&value)?),
            k if BOOL_KEYS.contains(&k) => {
                if !value.is_boolean() {
                    return Err(ApiError::BadRequest(format!("`{k}` must be true or false")));
                }
                update.rest.insert(key, value);
            }
            "resolution_strategy" => {
                if !value.as_str().is_some_and(|v| STRATEGIES.contains(&v)) {
                    return Err(ApiError::BadRequest(format!(
                        "`resolution_strategy` must be one of {STRATEGIES:?}"
                    )));
                }
                update.rest.insert(key, value);
            }
            "issues_ignored_fields" => {
                let fields: Vec<Value> = match &value {
                    Value::String(s) => s
                        .split([',', '\n', '\r'])
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(|f| Value::String(f.into()))
                        .collect(),
                    Value::Array(a) if a.iter().all(Value::is_string) => a.clone(),
                    _ => {
                        return Err(ApiError::BadRequest(
                            "`issues_ignored_fields` must be text or a list of strings".into(),
                        ));
                    }
                };
                update.rest.insert(key, Value::Array(fields));
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown configuration key `{other}`"
                )));
            }
        }
    }
    Ok(update)
}

/// `{"<external project>": {"on_resolve": S1, "on_unresolve": S2}}`; `false` or
/// `{}` removes every mapping.
fn parse_mappings(value: &Value) -> Result<Vec<StatusMapping>, ApiError> {
    let required = || ApiError::BadRequest("Resolve and unresolve status are required.".into());
    match value {
        Value::Bool(false) | Value::Null => Ok(Vec::new()),
        Value::Object(map) => map
            .iter()
            .map(|(project, m)| {
                let get = |k: &str| {
                    m.get(k)
                        .and_then(|v| match v {
                            Value::String(s) => Some(s.trim().to_owned()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        })
                        .filter(|s| !s.is_empty())
                };
                Ok(StatusMapping {
                    external_project: project.clone(),
                    on_resolve: get("on_resolve").ok_or_else(required)?,
                    on_unresolve: get("on_unresolve").ok_or_else(required)?,
                })
            })
            .collect(),
        _ => Err(ApiError::BadRequest(
            "`sync_status_forward` must map external project ids to {on_resolve, on_unresolve}"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_mapping_without_both_statuses_is_refused() {
        let body =
            json!({"sync_status_forward": {"10100": {"on_resolve": "10101", "on_unresolve": ""}}});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let err = parse_config(body, false).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("Resolve and unresolve status are required.")
        );
    }

    #[test]
    fn mappings_and_flags_parse() {
        let body = json!({
            "sync_status_forward": {"10100": {"on_resolve": "10101", "on_unresolve": "3"}},
            "sync_reverse_assignment": true,
            "issues_ignored_fields": "a, b\nc",
        });
        let Value::Object(body) = body else {
            unreachable!()
        };
        let update = parse_config(body, false).unwrap();
        assert_eq!(
            update.mappings,
            Some(vec![StatusMapping {
                external_project: "10100".into(),
                on_resolve: "10101".into(),
                on_unresolve: "3".into()
            }])
        );
        assert_eq!(update.rest["issues_ignored_fields"], json!(["a", "b", "c"]));
    }

    #[test]
    fn an_open_closed_tracker_takes_a_switch_and_refuses_mappings() {
        let parse = |v: Value| {
            let Value::Object(body) = json!({"sync_status_forward": v}) else {
                unreachable!()
            };
            parse_config(body, true)
        };
        let on = parse(json!(true)).unwrap();
        assert_eq!((on.status_forward, on.mappings), (Some(true), None));
        assert_eq!(parse(json!(false)).unwrap().status_forward, Some(false));
        let refused = parse(json!({"10100": {"on_resolve": "1", "on_unresolve": "2"}}));
        assert!(refused.is_err_and(|e| e.to_string().contains("open or closed")));
        // A workflow tracker still wants mappings, not a switch.
        let Value::Object(body) = json!({"sync_status_forward": true}) else {
            unreachable!()
        };
        assert!(parse_config(body, false).is_err());
    }
}
