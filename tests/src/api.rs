//! A client for the host's HTTP API (see the README's table).

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::{Value, json};

/// An answer from the host.
#[derive(Clone, Debug)]
pub struct ApiResponse {
    pub status: u16,
    /// The body as text.
    pub text: String,
    /// The body as JSON (`Value::Null` when it is empty or not JSON).
    pub body: Value,
}

impl ApiResponse {
    async fn read(response: reqwest::Response) -> anyhow::Result<ApiResponse> {
        let status = response.status().as_u16();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(ApiResponse { status, text, body })
    }

    /// The JSON body when the status is `expected`, else an error showing both.
    pub fn expect(self, expected: u16) -> anyhow::Result<Value> {
        if self.status != expected {
            bail!(
                "expected HTTP {expected}, got {}: {}",
                self.status,
                self.text
            );
        }
        Ok(self.body)
    }
}

/// The integer `id` of an API object.
pub fn id_of(value: &Value) -> anyhow::Result<i64> {
    value["id"]
        .as_i64()
        .with_context(|| format!("no integer id in {value}"))
}

/// The organization most tests start from: "Acme" with project "backend", and
/// a team "core" on it whose one active member is a user with a verified email.
#[derive(Clone, Copy, Debug)]
pub struct OrgWithMember {
    pub org: i64,
    pub project: i64,
    pub team: i64,
    pub user: i64,
}

/// An HTTP client bound to one host, optionally with the admin token.
#[derive(Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

impl ApiClient {
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> ApiClient {
        ApiClient {
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .expect("reqwest client"),
            base_url: base_url.into(),
            token,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The same client without any `Authorization` header.
    pub fn without_token(&self) -> ApiClient {
        ApiClient {
            token: None,
            ..self.clone()
        }
    }

    /// The same client with `token` as bearer token.
    pub fn with_token(&self, token: &str) -> ApiClient {
        ApiClient {
            token: Some(token.to_string()),
            ..self.clone()
        }
    }

    /// Send `method path` with an optional JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<ApiResponse> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let what = format!("{method} {path}");
        ApiResponse::read(request.send().await.context(what)?).await
    }

    /// POST raw bytes (a plugin module) to `path`.
    pub async fn post_bytes(&self, path: &str, bytes: Vec<u8>) -> anyhow::Result<ApiResponse> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base_url))
            .header("content-type", "application/wasm")
            .header("x-trackbridge-operator", "e2e-operator")
            .body(bytes);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let what = format!("POST {path}");
        ApiResponse::read(request.send().await.context(what)?).await
    }

    /// `POST /api/plugins` with the module at `path`.
    pub async fn install_plugin(&self, path: &std::path::Path) -> anyhow::Result<ApiResponse> {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        self.post_bytes("/api/plugins", bytes).await
    }

    /// The version of plugin `name` serving in this host (`GET /api/plugins`).
    pub async fn serving_version(&self, name: &str) -> anyhow::Result<String> {
        let plugins = self.get("/api/plugins").await?.expect(200)?;
        plugins
            .as_array()
            .and_then(|all| all.iter().find(|p| p["name"] == name))
            .and_then(|p| p["version"].as_str())
            .map(str::to_owned)
            .with_context(|| format!("no plugin `{name}` serves: {plugins}"))
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self.get("/metrics").await?.text)
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<ApiResponse> {
        self.request(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<ApiResponse> {
        self.request(Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> anyhow::Result<ApiResponse> {
        self.request(Method::PUT, path, Some(body)).await
    }

    async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        status: u16,
    ) -> anyhow::Result<Value> {
        let what = format!("{method} {path}");
        self.request(method, path, body)
            .await?
            .expect(status)
            .context(what)
    }

    /// `POST /api/organizations` → the organization.
    pub async fn create_organization(&self, name: &str) -> anyhow::Result<Value> {
        self.expect(
            Method::POST,
            "/api/organizations",
            Some(&json!({"name": name})),
            201,
        )
        .await
    }

    /// [`OrgWithMember`] for the user `name` with verified `email`.
    pub async fn org_with_member(&self, name: &str, email: &str) -> anyhow::Result<OrgWithMember> {
        let org = id_of(&self.create_organization("Acme").await?)?;
        let project = id_of(&self.create_project(org, "backend").await?)?;
        let user = id_of(&self.create_user(name, &[(email, true)]).await?)?;
        self.add_member(org, user).await?;
        let team = id_of(&self.create_team(org, "core").await?)?;
        self.add_team_project(team, project).await?;
        self.add_team_member(team, user, true).await?;
        Ok(OrgWithMember {
            org,
            project,
            team,
            user,
        })
    }

    /// `POST /api/organizations/{org}/projects` → the project.
    pub async fn create_project(&self, org: i64, name: &str) -> anyhow::Result<Value> {
        self.expect(
            Method::POST,
            &format!("/api/organizations/{org}/projects"),
            Some(&json!({"name": name})),
            201,
        )
        .await
    }

    /// `POST /api/users` with `(email, verified)` pairs → the user.
    pub async fn create_user(&self, name: &str, emails: &[(&str, bool)]) -> anyhow::Result<Value> {
        let emails: Vec<Value> = emails
            .iter()
            .map(|(email, verified)| json!({"email": email, "verified": verified}))
            .collect();
        self.expect(
            Method::POST,
            "/api/users",
            Some(&json!({"name": name, "emails": emails})),
            201,
        )
        .await
    }

    /// `POST /api/organizations/{org}/members` → the membership.
    pub async fn add_member(&self, org: i64, user: i64) -> anyhow::Result<Value> {
        self.expect(
            Method::POST,
            &format!("/api/organizations/{org}/members"),
            Some(&json!({"user_id": user})),
            201,
        )
        .await
    }

    /// `POST /api/organizations/{org}/teams` → the team.
    pub async fn create_team(&self, org: i64, name: &str) -> anyhow::Result<Value> {
        self.expect(
            Method::POST,
            &format!("/api/organizations/{org}/teams"),
            Some(&json!({"name": name})),
            201,
        )
        .await
    }

    /// `POST /api/teams/{team}/projects`.
    pub async fn add_team_project(&self, team: i64, project: i64) -> anyhow::Result<()> {
        self.expect(
            Method::POST,
            &format!("/api/teams/{team}/projects"),
            Some(&json!({"project_id": project})),
            204,
        )
        .await
        .map(drop)
    }

    /// `POST /api/teams/{team}/members`.
    pub async fn add_team_member(&self, team: i64, user: i64, active: bool) -> anyhow::Result<()> {
        self.expect(
            Method::POST,
            &format!("/api/teams/{team}/members"),
            Some(&json!({"user_id": user, "active": active})),
            204,
        )
        .await
        .map(drop)
    }

    /// `POST /api/projects/{project}/groups` → the group.
    pub async fn create_group(&self, project: i64, title: &str) -> anyhow::Result<Value> {
        self.expect(
            Method::POST,
            &format!("/api/projects/{project}/groups"),
            Some(&json!({"title": title})),
            201,
        )
        .await
    }

    /// `POST /api/organizations/{org}/integrations` → the integration.
    pub async fn install_integration(
        &self,
        org: i64,
        provider: &str,
        input: &Value,
    ) -> anyhow::Result<Value> {
        self.expect(
            Method::POST,
            &format!("/api/organizations/{org}/integrations"),
            Some(&json!({"provider": provider, "input": input})),
            201,
        )
        .await
    }

    /// `PUT /api/organizations/{org}/integrations/{id}/config` → the stored config.
    pub async fn set_config(
        &self,
        org: i64,
        integration: i64,
        config: &Value,
    ) -> anyhow::Result<Value> {
        self.expect(
            Method::PUT,
            &format!("/api/organizations/{org}/integrations/{integration}/config"),
            Some(config),
            200,
        )
        .await
    }

    /// `POST /api/groups/{group}/external-issues` → the link.
    pub async fn link_external_issue(
        &self,
        group: i64,
        integration: i64,
        key: &str,
    ) -> anyhow::Result<Value> {
        self.expect(
            Method::POST,
            &format!("/api/groups/{group}/external-issues"),
            Some(&json!({"integration_id": integration, "key": key})),
            201,
        )
        .await
    }

    /// `GET /api/groups/{group}`.
    pub async fn group(&self, group: i64) -> anyhow::Result<Value> {
        self.expect(Method::GET, &format!("/api/groups/{group}"), None, 200)
            .await
    }

    /// `PUT /api/groups/{group}` → the raw answer.
    pub async fn update_group(&self, group: i64, body: &Value) -> anyhow::Result<ApiResponse> {
        self.put(&format!("/api/groups/{group}"), body).await
    }

    /// `GET /api/groups/{group}/activity`, oldest first.
    pub async fn activity(&self, group: i64) -> anyhow::Result<Vec<Value>> {
        let body = self
            .expect(
                Method::GET,
                &format!("/api/groups/{group}/activity"),
                None,
                200,
            )
            .await?;
        serde_json::from_value(body).context("activity is not a list")
    }

    /// The `type` of every activity of `group`, oldest first.
    pub async fn activity_types(&self, group: i64) -> anyhow::Result<Vec<String>> {
        Ok(self
            .activity(group)
            .await?
            .iter()
            .map(|a| a["type"].as_str().unwrap_or("?").to_string())
            .collect())
    }

    /// `GET /api/groups/{group}/history`, oldest first.
    pub async fn history(&self, group: i64) -> anyhow::Result<Vec<Value>> {
        let body = self
            .expect(
                Method::GET,
                &format!("/api/groups/{group}/history"),
                None,
                200,
            )
            .await?;
        serde_json::from_value(body).context("history is not a list")
    }

    /// The `status` of every history row of `group`, oldest first.
    pub async fn history_statuses(&self, group: i64) -> anyhow::Result<Vec<String>> {
        Ok(self
            .history(group)
            .await?
            .iter()
            .map(|h| h["status"].as_str().unwrap_or("?").to_string())
            .collect())
    }

    /// Wait (up to `timeout`) until group `group` satisfies `pred`; returns it.
    pub async fn wait_for_group(
        &self,
        group: i64,
        what: &str,
        timeout: std::time::Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let current = self.group(group).await?;
            if pred(&current) {
                return Ok(current);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "timed out after {timeout:?} waiting for group {group} to be {what}; it is {current}"
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}
