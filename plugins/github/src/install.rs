//! Installation (spec §2): the credential is checked, the repository read,
//! and for a token the repository webhook created (or adopted); for an App,
//! the installation token minted. Uninstall deletes the webhook.

use serde_json::{Value, json};
use trackbridge_plugin_sdk::http::Method;
use trackbridge_plugin_sdk::provider::IntegrationData;
use trackbridge_plugin_sdk::url::Url;
use trackbridge_plugin_sdk::{Error, Result, integration, json as j, random, secrets};

use crate::api::{Client, check};
use crate::app_auth::{app_jwt, mint};
use crate::config::{Credential, DEFAULT_API_HOST, Input};
use crate::webhook::external_id;

/// What `build` learned about the repository.
struct Repository {
    id: u64,
    full_name: String,
    admin: bool,
}

fn read_repository(client: &Client, input: &Input) -> Result<Repository> {
    let full = input.full_name();
    let response = client.send(Method::Get, &format!("/repos/{full}"), None)?;
    let response = match response.status {
        404 => {
            return Err(Error::invalid_input(format!(
                "repository {full} was not found at {}, or the credential cannot see it (a classic token needs the repo scope for a private repository; a fine-grained token or an App installation must include the repository)",
                input.api_url
            )));
        }
        _ => check(response, &format!("reading repository {full}"))?,
    };
    let body: Value = response.json()?;
    if body.get("has_issues") == Some(&Value::Bool(false)) {
        return Err(Error::invalid_input(format!(
            "repository {full} has issues turned off"
        )));
    }
    Ok(Repository {
        id: j::u64_at(&body, &["id"])
            .ok_or_else(|| Error::upstream(200, "the repository has no id"))?,
        full_name: j::str_at(&body, &["full_name"])
            .unwrap_or(&full)
            .to_string(),
        admin: j::get(&body, &["permissions", "admin"]) == Some(&Value::Bool(true)),
    })
}

pub fn webhook_url() -> String {
    format!("{}{}", integration::public_url(), crate::WEBHOOK_PATH)
}

fn hook_body(url: &str, secret: &str) -> Value {
    json!({
        "name": "web",
        "active": true,
        "events": ["issues"],
        "config": {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
    })
}

/// Creates the repository hook, or, when GitHub refuses a duplicate (422),
/// takes over the hook with the same URL under the new secret.
fn create_hook(client: &Client, full: &str, url: &str, secret: &str) -> Result<u64> {
    let hooks = format!("/repos/{full}/hooks");
    let response = client.send(Method::Post, &hooks, Some(&hook_body(url, secret)))?;
    let created: Value = match response.status {
        201 => response.json()?,
        404 => {
            return Err(Error::unauthorized(format!(
                "the token may not create webhooks on {full}: a classic token needs the admin:repo_hook scope, a fine-grained one Webhooks (read and write)"
            )));
        }
        403 => {
            return Err(Error::unauthorized(format!(
                "GitHub forbade creating the webhook on {full}: {} (an organization policy or SSO authorization may block the token)",
                response.error_reason()
            )));
        }
        422 => {
            let listed = client.get(&format!("{hooks}?per_page=100"))?;
            let Some(id) = listed.as_array().and_then(|list| {
                list.iter()
                    .find(|h| j::str_at(h, &["config", "url"]) == Some(url))
                    .and_then(|h| j::u64_at(h, &["id"]))
            }) else {
                return Err(Error::invalid_input(format!(
                    "GitHub refused the webhook on {full} (HTTP 422): {}",
                    response.error_reason()
                )));
            };
            client.call(
                Method::Patch,
                &format!("{hooks}/{id}"),
                Some(&hook_body(url, secret)),
            )?;
            return Ok(id);
        }
        _ => check(response, "creating the webhook")?.json()?,
    };
    j::u64_at(&created, &["id"]).ok_or_else(|| Error::upstream(201, "the new webhook has no id"))
}

fn login(user: &Value, what: &str) -> Result<String> {
    j::non_empty_str_at(user, &["login"])
        .or_else(|| j::non_empty_str_at(user, &["slug"]))
        .map(str::to_string)
        .ok_or_else(|| Error::upstream(200, format!("GitHub named no {what}")))
}

pub fn build(input: &Value) -> Result<IntegrationData> {
    let input = Input::parse(input)?;
    let authority = Url::parse(&input.api_url)?.authority;
    let full = input.full_name();
    let url = webhook_url();
    let (repository, metadata, stored) = match &input.credential {
        Credential::Token { token } => {
            // Before the integration exists the host swaps no stand-ins, so
            // installation uses the operator's token as given.
            let client = Client::new(&input.api_url, format!("Bearer {token}"));
            let user = client.get("/user").map_err(|e| match e {
                Error::Unauthorized(m) => {
                    Error::unauthorized(format!("GitHub refused the token: {m}"))
                }
                other => other,
            })?;
            let actor = login(&user, "token owner")?;
            let repository = read_repository(&client, &input)?;
            if !repository.admin {
                return Err(Error::unauthorized(format!(
                    "@{actor} is not an admin of {full}: creating its webhook needs admin access"
                )));
            }
            let secret = random::hex(32);
            let hook_id = create_hook(&client, &repository.full_name, &url, &secret)?;
            let metadata = json!({"auth": "token", "actor_login": actor, "hook_id": hook_id});
            (
                repository,
                metadata,
                json!({"token": token, "webhook_secret": secret}),
            )
        }
        Credential::App {
            app_id,
            private_key,
            webhook_secret,
            installation_id,
        } => {
            // Serves this call only: there is no integration to keep it for yet.
            let key = secrets::remember("private_key", private_key.as_bytes(), 60);
            let jwt = Client::new(&input.api_url, format!("Bearer {}", app_jwt(app_id, &key)?));
            let app = jwt.get("/app").map_err(|e| match e {
                Error::Unauthorized(m) => Error::unauthorized(format!(
                    "GitHub refused the App's JWT (check app_id and private_key): {m}"
                )),
                other => other,
            })?;
            let slug = login(&app, "App slug")?;
            let installation = match installation_id {
                Some(id) => *id,
                None => {
                    let response =
                        jwt.send(Method::Get, &format!("/repos/{full}/installation"), None)?;
                    if response.status == 404 {
                        return Err(Error::invalid_input(format!(
                            "the App {slug} is not installed on {full}"
                        )));
                    }
                    let found: Value = check(response, "finding the App's installation")?.json()?;
                    j::u64_at(&found, &["id"])
                        .ok_or_else(|| Error::upstream(200, "the installation has no id"))?
                }
            };
            let token = mint(&jwt, installation)?;
            let client = Client::new(&input.api_url, format!("Bearer {}", token.token));
            let repository = read_repository(&client, &input)?;
            let metadata = json!({
                "auth": "app",
                "app_id": app_id,
                "installation_id": installation,
                "actor_login": format!("{slug}[bot]"),
            });
            (
                repository,
                metadata,
                json!({"private_key": private_key, "webhook_secret": webhook_secret}),
            )
        }
    };
    let mut metadata = metadata;
    if let Some(m) = metadata.as_object_mut() {
        m.insert("api_url".into(), json!(input.api_url));
        m.insert("repository".into(), json!(repository.full_name));
        m.insert("repository_id".into(), json!(repository.id));
        m.insert("webhook_url".into(), json!(url));
    }
    let mut data = IntegrationData::new(
        external_id(&authority, repository.id),
        repository.full_name,
        &metadata,
        &stored,
    );
    if !input.api_url_given {
        data.extra_hosts = vec![DEFAULT_API_HOST.to_string()];
    }
    Ok(data)
}

/// Deletes the repository webhook; one already gone is fine. An App's hook
/// belongs to the App, not to this integration.
pub fn uninstall(repo: &crate::Repo) -> Result<()> {
    let Some(hook_id) = repo.hook_id else {
        return Ok(());
    };
    let path = format!("/repos/{}/hooks/{hook_id}", repo.full_name);
    let response = repo.client.send(Method::Delete, &path, None)?;
    if response.status == 404 {
        return Ok(());
    }
    check(response, "deleting the webhook").map(drop)
}
