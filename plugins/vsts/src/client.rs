//! An Azure DevOps REST client over the SDK's HTTP client: the headers every
//! call carries (sentry-flows §7.1), the credential, and the calls the
//! provider makes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use trackbridge_plugin_sdk::http::{Method, Request, Response};
use trackbridge_plugin_sdk::integration::Integration;
use trackbridge_plugin_sdk::secrets::{self, HeaderFormat};
use trackbridge_plugin_sdk::url::encode_component;
use trackbridge_plugin_sdk::{Error, Result, json as j};

/// The API version of released calls, sent in `Accept`.
pub const API_VERSION: &str = "4.1";
/// The API version of preview calls (work item type states, graph users,
/// connection data).
pub const PREVIEW_API_VERSION: &str = "4.1-preview.1";

/// The header carrying the service hook's shared secret.
pub const SHARED_SECRET_HEADER: &str = "shared-secret";

/// How the plugin authenticates to Azure DevOps.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A personal access token: HTTP Basic with an empty user name.
    Pat { token: String },
    /// An OAuth access token: `Bearer`.
    OAuth { access_token: String },
}

// Secrets stay out of debug output.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credential::{}", self.kind())
    }
}

impl Credential {
    /// Parses the `credential` object; errors name the offending field.
    pub fn parse(value: &Value) -> Result<Credential> {
        let obj = value
            .as_object()
            .ok_or_else(|| Error::invalid_input("credential must be an object"))?;
        let field = |name: &str| -> Result<String> {
            match obj.get(name) {
                Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                Some(Value::String(_)) | None | Some(Value::Null) => Err(Error::invalid_input(
                    format!("credential.{name} is required"),
                )),
                Some(_) => Err(Error::invalid_input(format!(
                    "credential.{name} must be a string"
                ))),
            }
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("pat") => Ok(Credential::Pat {
                token: field("token")?,
            }),
            Some("oauth") => Ok(Credential::OAuth {
                access_token: field("access_token")?,
            }),
            _ => Err(Error::invalid_input(
                "credential.type must be one of \"pat\", \"oauth\"",
            )),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Credential::Pat { .. } => "pat",
            Credential::OAuth { .. } => "oauth",
        }
    }

    /// The stored form.
    pub fn to_value(&self) -> Value {
        match self {
            Credential::Pat { token } => json!({"type": "pat", "token": token}),
            Credential::OAuth { access_token } => {
                json!({"type": "oauth", "access_token": access_token})
            }
        }
    }

    /// The `Authorization` header value.
    pub fn authorization(&self) -> String {
        match self {
            Credential::Pat { token } => format!("Basic {}", STANDARD.encode(format!(":{token}"))),
            Credential::OAuth { access_token } => format!("Bearer {access_token}"),
        }
    }
}

/// A stand-in for the current integration's `Authorization` header. Which
/// kind of credential it stored is told by the secret that exists, so
/// installations from before contract 0.2.0 (which kept the kind with the
/// secret only) work unchanged.
fn stored_authorization() -> Result<String> {
    if let Some(token) = secrets::get("credential.token") {
        // A PAT is HTTP Basic with an empty user name.
        return Ok(token.stand_in(&HeaderFormat::Basic(String::new())));
    }
    if let Some(token) = secrets::get("credential.access_token") {
        return Ok(token.stand_in(&HeaderFormat::Prefixed("Bearer ".into())));
    }
    Err(Error::internal(
        "the integration has no stored credential (credential.token or credential.access_token)",
    ))
}

/// The client of one organization (and the graph service that goes with it).
#[derive(Clone)]
pub struct Client {
    /// The organization (collection) URL, ending with `/`.
    org_url: String,
    /// The graph service's base URL, ending with `/`.
    graph_url: String,
    /// The `Authorization` header: the operator's credential at installation,
    /// a stand-in for the stored one afterwards.
    authorization: String,
}

// The header may hold the credential itself (at installation).
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("org_url", &self.org_url)
            .field("graph_url", &self.graph_url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Both URLs are normalized to end with `/`.
    pub fn new(org_url: &str, graph_url: &str, credential: Credential) -> Client {
        Client::with_authorization(org_url, graph_url, credential.authorization())
    }

    fn with_authorization(org_url: &str, graph_url: &str, authorization: String) -> Client {
        Client {
            org_url: with_slash(org_url),
            graph_url: with_slash(graph_url),
            authorization,
        }
    }

    /// The client for a stored integration.
    pub fn for_integration(integration: &Integration) -> Result<Client> {
        let org_url = integration
            .metadata_str("domain_name")
            .ok_or_else(|| Error::internal("the integration has no domain_name"))?;
        let graph_url = integration.metadata_str("graph_url").unwrap_or(org_url);
        Ok(Client::with_authorization(
            org_url,
            graph_url,
            stored_authorization()?,
        ))
    }

    pub fn org_url(&self) -> &str {
        &self.org_url
    }

    pub fn graph_url(&self) -> &str {
        &self.graph_url
    }

    /// Builds `method url` with the headers of every Azure DevOps call.
    pub fn request(&self, method: Method, url: String, preview: bool) -> Request {
        let version = if preview {
            PREVIEW_API_VERSION
        } else {
            API_VERSION
        };
        let content_type = if method == Method::Patch {
            "application/json-patch+json"
        } else {
            "application/json"
        };
        Request::new(method, url)
            .header("Accept", format!("application/json; api-version={version}"))
            .header("Content-Type", content_type)
            .header("X-HTTP-Method-Override", method.as_str())
            .header("X-TFS-FedAuthRedirect", "Suppress")
            .header("Authorization", &self.authorization)
    }

    /// Sends `request` with `body` (JSON, keeping the request's content type),
    /// without mapping error statuses.
    pub fn send_raw(&self, request: Request, body: Option<&Value>) -> Result<Response> {
        let request = match body {
            Some(body) => {
                let content_type = request
                    .header_value("content-type")
                    .unwrap_or("application/json")
                    .to_string();
                request.body(serde_json::to_vec(body)?, &content_type)
            }
            None => request,
        };
        request.send()
    }

    fn get_json(&self, url: String, preview: bool) -> Result<Value> {
        self.send_raw(self.request(Method::Get, url, preview), None)?
            .error_for_status()?
            .json()
    }

    /// The collection's id: `instanceId` of `GET {org}_apis/connectionData`.
    pub fn collection_id(&self) -> Result<String> {
        let data = self.get_json(format!("{}_apis/connectionData", self.org_url), true)?;
        j::non_empty_str_at(&data, &["instanceId"])
            .map(str::to_string)
            .ok_or_else(|| Error::upstream(200, "connectionData has no instanceId"))
    }

    /// Creates the `workitem.updated` service hook posting to `url` with the
    /// `shared-secret` header; returns the raw answer for the caller to judge.
    pub fn create_subscription(&self, url: &str, secret: &str) -> Result<Response> {
        let body = subscription_body(url, secret);
        self.send_raw(
            self.request(
                Method::Post,
                format!("{}_apis/hooks/subscriptions", self.org_url),
                false,
            ),
            Some(&body),
        )
    }

    /// Replaces service hook subscription `id` with one sending `secret`
    /// (Azure DevOps' "Replace Subscription"); the raw answer, 404 when the
    /// subscription is gone.
    pub fn replace_subscription(&self, id: &str, url: &str, secret: &str) -> Result<Response> {
        let body = subscription_body(url, secret);
        self.send_raw(
            self.request(
                Method::Put,
                format!(
                    "{}_apis/hooks/subscriptions/{}",
                    self.org_url,
                    encode_component(id)
                ),
                false,
            ),
            Some(&body),
        )
    }

    /// Deletes a service hook subscription; one that is already gone is fine.
    pub fn delete_subscription(&self, id: &str) -> Result<()> {
        let url = format!(
            "{}_apis/hooks/subscriptions/{}",
            self.org_url,
            encode_component(id)
        );
        let response = self.send_raw(self.request(Method::Delete, url, false), None)?;
        if response.status == 404 {
            return Ok(());
        }
        response.error_for_status()?;
        Ok(())
    }

    /// The work item; a 404 means it does not exist or is not visible.
    pub fn work_item(&self, id: &str) -> Result<Value> {
        self.get_json(self.work_item_url(id), false)
            .map_err(|e| match e.status() {
                Some(404) => Error::rejected(format!(
                    "Azure DevOps work item {id} does not exist or is not visible"
                )),
                _ => e,
            })
    }

    /// `PATCH` a work item with a JSON Patch document; the raw answer.
    pub fn patch_work_item(&self, id: &str, ops: &Value) -> Result<Response> {
        self.send_raw(
            self.request(Method::Patch, self.work_item_url(id), false),
            Some(ops),
        )
    }

    fn work_item_url(&self, id: &str) -> String {
        format!(
            "{}_apis/wit/workitems/{}",
            self.org_url,
            encode_component(id)
        )
    }

    /// `GET {org}{project}/_apis/wit/workitemtypes/{type}/states` (preview).
    pub fn work_item_type_states(&self, project: &str, work_item_type: &str) -> Result<Value> {
        self.get_json(
            format!(
                "{}{}/_apis/wit/workitemtypes/{}/states",
                self.org_url,
                encode_component(project),
                encode_component(work_item_type)
            ),
            true,
        )
    }

    /// One page of well-formed projects.
    pub fn projects(&self, top: usize, skip: usize) -> Result<Value> {
        let request = self
            .request(
                Method::Get,
                format!("{}_apis/projects", self.org_url),
                false,
            )
            .query("stateFilter", "WellFormed")
            .query("$top", top.to_string())
            .query("$skip", skip.to_string());
        self.send_raw(request, None)?.error_for_status()?.json()
    }

    /// One page of graph users and the continuation token of the next one.
    pub fn graph_users(&self, continuation: Option<&str>) -> Result<(Value, Option<String>)> {
        let mut request = self.request(
            Method::Get,
            format!("{}_apis/graph/users", self.graph_url),
            true,
        );
        if let Some(token) = continuation {
            request = request.query("continuationToken", token);
        }
        let response = self.send_raw(request, None)?.error_for_status()?;
        let next = response
            .header("x-ms-continuationtoken")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        Ok((response.json()?, next))
    }
}

/// The service hook subscription Sentry creates (sentry-flows §7.2), exactly.
pub fn subscription_body(url: &str, secret: &str) -> Value {
    json!({
        "publisherId": "tfs",
        "eventType": "workitem.updated",
        "resourceVersion": "1.0",
        "consumerId": "webHooks",
        "consumerActionId": "httpRequest",
        "consumerInputs": {
            "url": url,
            "resourceDetailsToSend": "all",
            "httpHeaders": format!("{SHARED_SECRET_HEADER}:{secret}"),
        }
    })
}

/// `url` with exactly one trailing `/` added when missing.
pub fn with_slash(url: &str) -> String {
    let url = url.trim();
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackbridge_plugin_sdk::testing;

    fn client() -> Client {
        Client::new(
            "https://dev.azure.com/acme",
            "https://vssps.dev.azure.com/acme",
            Credential::Pat {
                token: "pat-token".into(),
            },
        )
    }

    #[test]
    fn credentials_parse_and_authorize() {
        let pat = Credential::parse(&json!({"type": "pat", "token": " abc "})).unwrap();
        assert_eq!(pat.authorization(), "Basic OmFiYw==");
        assert_eq!(pat.to_value(), json!({"type": "pat", "token": "abc"}));
        let oauth = Credential::parse(&json!({"type": "oauth", "access_token": "t"})).unwrap();
        assert_eq!(oauth.authorization(), "Bearer t");
        assert_eq!(format!("{oauth:?}"), "Credential::oauth");
        let msg = |v: Value| Credential::parse(&v).unwrap_err().message().to_string();
        assert_eq!(msg(json!("x")), "credential must be an object");
        assert_eq!(msg(json!({"type": "pat"})), "credential.token is required");
        assert_eq!(
            msg(json!({"type": "oauth", "access_token": 1})),
            "credential.access_token must be a string"
        );
        assert_eq!(
            msg(json!({"type": "basic"})),
            "credential.type must be one of \"pat\", \"oauth\""
        );
    }

    #[test]
    fn every_call_carries_the_client_headers() {
        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(200, &json!({"count": 0, "value": []}))));
        let c = client();
        c.projects(100, 200).unwrap();
        c.work_item_type_states("p1", "Bug").unwrap();
        c.patch_work_item("31", &json!([])).unwrap();
        let sent = testing::requests();
        assert_eq!(
            sent[0].full_url(),
            "https://dev.azure.com/acme/_apis/projects?stateFilter=WellFormed&%24top=100&%24skip=200"
        );
        assert_eq!(
            sent[0].header_value("accept"),
            Some("application/json; api-version=4.1")
        );
        assert_eq!(
            sent[0].header_value("content-type"),
            Some("application/json")
        );
        assert_eq!(sent[0].header_value("x-http-method-override"), Some("GET"));
        assert_eq!(
            sent[0].header_value("x-tfs-fedauthredirect"),
            Some("Suppress")
        );
        assert_eq!(
            sent[0].header_value("authorization"),
            Some("Basic OnBhdC10b2tlbg==")
        );
        assert_eq!(
            sent[1].full_url(),
            "https://dev.azure.com/acme/p1/_apis/wit/workitemtypes/Bug/states"
        );
        assert_eq!(
            sent[1].header_value("accept"),
            Some("application/json; api-version=4.1-preview.1")
        );
        assert_eq!(sent[2].method, Method::Patch);
        assert_eq!(
            sent[2].header_value("content-type"),
            Some("application/json-patch+json")
        );
        assert_eq!(
            sent[2].header_value("x-http-method-override"),
            Some("PATCH")
        );
        assert_eq!(sent[2].body.as_deref(), Some(&b"[]"[..]));
        assert_eq!(
            sent[2]
                .headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                .count(),
            1
        );
    }

    #[test]
    fn graph_users_follow_the_continuation_header() {
        testing::reset();
        testing::on_http(|req| {
            let page = if req.full_url().contains("continuationToken=") {
                Response::json_body(200, &json!({"count": 0, "value": []}))
            } else {
                Response::json_body(200, &json!({"count": 1, "value": [{}]}))
                    .with_header("X-MS-ContinuationToken", "tok en")
            };
            Ok(page)
        });
        let c = client();
        let (_, next) = c.graph_users(None).unwrap();
        assert_eq!(next.as_deref(), Some("tok en"));
        let (_, next) = c.graph_users(next.as_deref()).unwrap();
        assert_eq!(next, None);
        let sent = testing::requests();
        assert_eq!(
            sent[1].full_url(),
            "https://vssps.dev.azure.com/acme/_apis/graph/users?continuationToken=tok%20en"
        );
        assert_eq!(
            sent[1].header_value("accept"),
            Some("application/json; api-version=4.1-preview.1")
        );
    }

    #[test]
    fn deleting_a_missing_subscription_succeeds() {
        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(404, &json!({"message": "gone"}))));
        client().delete_subscription("abc").unwrap();
        assert_eq!(
            testing::requests()[0].full_url(),
            "https://dev.azure.com/acme/_apis/hooks/subscriptions/abc"
        );
        testing::on_http(|_| Ok(Response::new(500, "boom")));
        assert_eq!(
            client().delete_subscription("abc").unwrap_err().status(),
            Some(500)
        );
    }
}
