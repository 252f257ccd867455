//! The OpenAPI document of the admin API, served at `/openapi.json`.

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str, body: Option<&str>, ok: (&str, &str)) -> Value {
    let mut op = json!({
        "summary": summary,
        "security": [{"adminToken": []}],
        "responses": {
            ok.0: {"description": ok.1, "content": {"application/json": {}}},
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "404": {"$ref": "#/components/responses/Error"},
        }
    });
    if let Some(schema) = body {
        op["requestBody"] = json!({
            "required": true,
            "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
        });
    }
    op
}

fn id_param(name: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "integer"}})
}

pub async fn document() -> Json<Value> {
    Json(json!({
        "openapi": "3.1.0",
        "info": {
            "title": "trackbridge admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Organizations, projects, users, teams, issue groups and tracker integrations. Every /api request needs `Authorization: Bearer <admin token>`. Errors are {\"error\": \"...\"}."
        },
        "paths": {
            "/api/organizations": {"post": op("Create an organization", Some("Named"), ("201", "the organization"))},
            "/api/organizations/{org}": {"parameters": [id_param("org")], "get": op("Get an organization", None, ("200", "the organization"))},
            "/api/organizations/{org}/projects": {"parameters": [id_param("org")], "post": op("Create a project", Some("Named"), ("201", "the project"))},
            "/api/organizations/{org}/members": {"parameters": [id_param("org")], "post": op("Add a user to the organization", Some("UserRef"), ("201", "the membership"))},
            "/api/organizations/{org}/teams": {"parameters": [id_param("org")], "post": op("Create a team", Some("Named"), ("201", "the team"))},
            "/api/organizations/{org}/identities": {
                "parameters": [id_param("org"), {"name": "integration_id", "in": "query", "required": false, "schema": {"type": "integer"}}, {"name": "user_id", "in": "query", "required": false, "schema": {"type": "integer"}}],
                "post": op("Map a tracker's user (its stable id at an integration installed here) to a member of the organization", Some("NewIdentity"), ("201", "the mapping")),
                "get": op("List the organization's identity mappings", None, ("200", "mappings")),
            },
            "/api/organizations/{org}/identities/{id}": {"parameters": [id_param("org"), id_param("id")], "delete": op("Forget an identity mapping", None, ("204", "deleted"))},
            "/api/organizations/{org}/integrations": {
                "parameters": [id_param("org")],
                "post": op("Install an integration through its provider plugin", Some("Install"), ("201", "the integration, without secrets")),
                "get": op("List the organization's integrations", None, ("200", "integrations")),
            },
            "/api/organizations/{org}/integrations/{id}": {
                "parameters": [id_param("org"), id_param("id"), {"name": "force", "in": "query", "required": false, "schema": {"type": "boolean"}}],
                "get": op("Get an integration", None, ("200", "the integration")),
                "delete": op("Uninstall: the plugin removes its webhook or subscription at the tracker first (force=true deletes even when that fails)", None, ("204", "uninstalled")),
            },
            "/api/organizations/{org}/integrations/{id}/config": {"parameters": [id_param("org"), id_param("id")], "put": op("Save the sync configuration", Some("Config"), ("200", "the configuration"))},
            "/api/users": {"post": op("Create a user", Some("User"), ("201", "the user"))},
            "/api/teams/{team}/projects": {"parameters": [id_param("team")], "post": op("Give a team access to a project", Some("ProjectRef"), ("204", "done"))},
            "/api/teams/{team}/members": {"parameters": [id_param("team")], "post": op("Add an organization member to a team", Some("UserRef"), ("204", "done"))},
            "/api/projects/{project}": {"parameters": [id_param("project")], "delete": op("Delete a project and everything that hangs off it", None, ("204", "deleted"))},
            "/api/groups/{group}/subscriptions": {"parameters": [id_param("group")], "get": op("Who is subscribed to the group", None, ("200", "subscriptions"))},
            "/api/projects/{project}/groups": {"parameters": [id_param("project")], "post": op("Create an issue group", Some("NewGroup"), ("201", "the group"))},
            "/api/groups/{group}": {
                "parameters": [id_param("group")],
                "get": op("Get a group", None, ("200", "the group")),
                "put": op("Change status and/or assignee; linked trackers are updated in the background", Some("GroupUpdate"), ("200", "the group")),
            },
            "/api/groups/{group}/activity": {"parameters": [id_param("group")], "get": op("The group's activity, oldest first", None, ("200", "activity"))},
            "/api/groups/{group}/history": {"parameters": [id_param("group")], "get": op("The group's history, oldest first", None, ("200", "history"))},
            "/api/groups/{group}/external-issues": {"parameters": [id_param("group")], "post": op("Link an external issue", Some("Link"), ("201", "the link"))},
            "/api/plugins": {
                "get": op("The version of each plugin serving in this process", None, ("200", "plugins")),
                "post": {
                    "summary": "Install a plugin version: the body is the .wasm module; checked (compiled, world, describe), recorded, then switched to atomically. X-Trackbridge-Operator names who did it.",
                    "security": [{"adminToken": []}],
                    "requestBody": {"required": true, "content": {"application/wasm": {"schema": {"type": "string", "format": "binary"}}}},
                    "responses": {
                        "201": {"description": "installed and serving", "content": {"application/json": {}}},
                        "200": {"description": "that module serves already", "content": {"application/json": {}}},
                        "400": {"$ref": "#/components/responses/Error"},
                        "401": {"$ref": "#/components/responses/Error"},
                        "409": {"$ref": "#/components/responses/Error"},
                    },
                },
            },
            "/api/plugins/{name}/versions": {"parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "get": op("Every recorded version of a plugin and every switch", None, ("200", "versions and switches"))},
            "/api/plugins/{name}/rollback": {"parameters": [{"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}], "post": op("Switch back to an earlier version (`to`: version id, version, or sha256 prefix; default: the one installed before)", Some("Rollback"), ("200", "the version switched to"))},
            "/api/queue": {"get": op("Queue figures per integration: depth, oldest pending job, failures in the last hour, dead letters", None, ("200", "figures"))},
            "/api/integrations/{id}/queue": {"parameters": [id_param("id")], "get": op("One integration's queue figures", None, ("200", "figures"))},
            "/api/jobs": {"get": op("Jobs, newest first; query state=pending|running|done|dead, integration, kind, limit (payloads are never shown)", None, ("200", "jobs"))},
            "/api/jobs/{id}": {"parameters": [id_param("id")], "get": op("One job with its last error", None, ("200", "the job"))},
            "/api/jobs/{id}/replay": {"parameters": [id_param("id")], "post": op("Put a dead job, or a done webhook, back in line", None, ("200", "the job"))},
            "/api/jobs/replay": {"post": op("Replay every dead letter, optionally of one integration", Some("BulkReplay"), ("200", "the replayed job ids"))},
        },
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer"}},
            "responses": {"Error": {"description": "an error", "content": {"application/json": {"schema": {"type": "object", "properties": {"error": {"type": "string"}}}}}}},
            "schemas": {
                "Named": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "slug": {"type": "string"}}},
                "NewIdentity": {"type": "object", "required": ["integration_id", "external_id", "user_id"], "properties": {"integration_id": {"type": "integer"}, "external_id": {"type": "string", "description": "the tracker's stable id of its user (GitHub's numeric id, say)"}, "user_id": {"type": "integer"}, "login": {"type": "string"}, "name": {"type": "string"}}},
                "UserRef": {"type": "object", "required": ["user_id"], "properties": {"user_id": {"type": "integer"}, "active": {"type": "boolean"}}},
                "ProjectRef": {"type": "object", "required": ["project_id"], "properties": {"project_id": {"type": "integer"}}},
                "User": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "emails": {"type": "array", "items": {"type": "object", "required": ["email"], "properties": {"email": {"type": "string"}, "verified": {"type": "boolean"}}}}}},
                "NewGroup": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}},
                "GroupUpdate": {"type": "object", "properties": {"status": {"enum": ["resolved", "unresolved"]}, "assignedTo": {"type": ["string", "null"], "description": "user:ID, team:ID or null"}, "createOnly": {"type": "boolean", "description": "never replace an existing assignee"}}},
                "Rollback": {"type": "object", "properties": {"to": {"type": "string"}}},
                "BulkReplay": {"type": "object", "properties": {"integration": {"type": "integer"}}},
                "Link": {"type": "object", "required": ["integration_id", "key"], "properties": {"integration_id": {"type": "integer"}, "key": {"type": "string"}}},
                "Install": {"type": "object", "required": ["provider", "input"], "properties": {"provider": {"type": "string"}, "input": {"type": "object", "description": "the provider's installation input; its JSON Schema is the plugin's config-schema"}}},
                "Config": {"type": "object", "properties": {
                    "sync_status_forward": {"type": "object", "additionalProperties": {"type": "object", "required": ["on_resolve", "on_unresolve"], "properties": {"on_resolve": {"type": "string"}, "on_unresolve": {"type": "string"}}}},
                    "sync_status_reverse": {"type": "boolean"},
                    "sync_forward_assignment": {"type": "boolean"},
                    "sync_reverse_assignment": {"type": "boolean"},
                    "sync_comments": {"type": "boolean"},
                    "resolution_strategy": {"enum": ["resolve", "resolve_current_release", "resolve_next_release"]},
                    "issues_ignored_fields": {"type": ["string", "array"]}
                }}
            }
        }
    }))
}
