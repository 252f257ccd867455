//! Installation (sentry-flows §7.2): the input, the collection id, the service
//! hook subscription (created, or reused from an earlier installation with a
//! new secret), and uninstallation.

use serde_json::{Value, json};
use trackbridge_plugin_sdk::http::Response;
use trackbridge_plugin_sdk::provider::IntegrationData;
use trackbridge_plugin_sdk::url::Url;
use trackbridge_plugin_sdk::{Error, Result, info, integration, json as j, random};

use crate::WEBHOOK_PATH;
use crate::client::{Client, Credential, with_slash};

/// Sentry's message when Azure DevOps refuses the subscription, with our name.
pub const CANNOT_COMMUNICATE: &str = "trackbridge cannot communicate with this Azure DevOps organization.\nPlease ensure third-party app access via OAuth is enabled \nin the organization's security policy.";

/// Hosts beyond the organization URL's that an installation may ask for: the
/// graph service of Azure DevOps Services.
pub const ALLOWED_HOST_PATTERNS: &[&str] =
    &["*.vssps.visualstudio.com:443", "vssps.dev.azure.com:443"];

/// A validated installation input.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The organization (collection) URL, ending with `/`.
    pub org_url: String,
    /// The organization's name.
    pub account_name: String,
    /// Where the graph users API lives, ending with `/`.
    pub graph_url: String,
    /// `host:port` of a derived graph URL, which the host must allow; none
    /// when the operator gave `graph_url` (a URL field) or it is the
    /// organization's own host.
    pub extra_host: Option<String>,
    pub credential: Credential,
}

/// JSON Schema of the installation input.
pub fn config_schema() -> Value {
    let secret = |description: &str| json!({"type": "string", "minLength": 1, "writeOnly": true, "description": description});
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Azure DevOps",
        "type": "object",
        "required": ["organization_url", "credential"],
        "properties": {
            "organization_url": {
                "type": "string",
                "format": "uri",
                "pattern": "^https?://",
                "description": "The organization (collection) URL, e.g. https://dev.azure.com/acme/ or https://acme.visualstudio.com/.",
                "examples": ["https://dev.azure.com/acme/"]
            },
            "graph_url": {
                "type": "string",
                "format": "uri",
                "pattern": "^https?://",
                "description": "The graph service URL (users). Derived from the organization URL when absent: https://vssps.dev.azure.com/{org}/ or https://{account}.vssps.visualstudio.com/."
            },
            "credential": {
                "description": "How trackbridge authenticates to Azure DevOps.",
                "oneOf": [
                    {
                        "title": "Personal access token",
                        "type": "object",
                        "required": ["type", "token"],
                        "properties": {
                            "type": {"const": "pat"},
                            "token": secret("A personal access token with work items (read & write), graph (read) and service hooks scopes.")
                        }
                    },
                    {
                        "title": "OAuth",
                        "type": "object",
                        "required": ["type", "access_token"],
                        "properties": {
                            "type": {"const": "oauth"},
                            "access_token": secret("An OAuth access token.")
                        }
                    }
                ]
            }
        }
    })
}

fn url_field(obj: &serde_json::Map<String, Value>, name: &str) -> Result<Option<Url>> {
    let text = match obj.get(name) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim(),
        Some(_) => return Err(Error::invalid_input(format!("{name} must be a string"))),
    };
    let url = Url::parse(text)
        .map_err(|e| Error::invalid_input(format!("{name} is not a valid URL: {}", e.message())))?;
    if url.query.is_some() || text.contains('#') {
        return Err(Error::invalid_input(format!(
            "{name} must not have a query or fragment"
        )));
    }
    Ok(Some(url))
}

/// `scheme://authority/path/`, host lower-cased, ending with `/`.
fn normalized(url: &Url) -> String {
    with_slash(&format!("{}{}", url.origin(), url.path))
}

fn path_segments(url: &Url) -> Vec<&str> {
    url.path.split('/').filter(|s| !s.is_empty()).collect()
}

impl Input {
    pub fn parse(input: &Value) -> Result<Input> {
        let obj = input
            .as_object()
            .ok_or_else(|| Error::invalid_input("the installation input must be a JSON object"))?;
        let org = url_field(obj, "organization_url")?
            .ok_or_else(|| Error::invalid_input("organization_url is required"))?;
        let segments = path_segments(&org);
        let account_name = if org.host == "dev.azure.com" {
            segments.first().map(|s| s.to_string()).ok_or_else(|| {
                Error::invalid_input(
                    "organization_url must name the organization, e.g. https://dev.azure.com/acme/",
                )
            })?
        } else if let Some(account) = org.host.strip_suffix(".visualstudio.com") {
            account.split('.').next().unwrap_or(account).to_string()
        } else {
            segments
                .last()
                .map(|s| s.to_string())
                .unwrap_or_else(|| org.host.clone())
        };
        let org_url = if org.host == "dev.azure.com" {
            // Only the organization segment: a project path would break every call.
            format!("{}/{}/", org.origin(), account_name)
        } else {
            normalized(&org)
        };
        let credential = Credential::parse(
            obj.get("credential")
                .ok_or_else(|| Error::invalid_input("credential is required"))?,
        )?;
        let (graph_url, extra_host) = match url_field(obj, "graph_url")? {
            Some(graph) => (normalized(&graph), None),
            None => derived_graph(&org, &account_name, &org_url),
        };
        Ok(Input {
            org_url,
            account_name,
            graph_url,
            extra_host,
            credential,
        })
    }
}

/// The graph service of an organization and the extra host it needs:
/// `https://vssps.dev.azure.com/{org}/` for dev.azure.com,
/// `https://{account}.vssps.visualstudio.com/` for *.visualstudio.com, and
/// the organization URL itself otherwise (Azure DevOps Server serves the
/// graph API from the collection).
pub fn derived_graph(org: &Url, account_name: &str, org_url: &str) -> (String, Option<String>) {
    if org.host == "dev.azure.com" {
        (
            format!("https://vssps.dev.azure.com/{account_name}/"),
            Some("vssps.dev.azure.com:443".to_string()),
        )
    } else if org.host.ends_with(".visualstudio.com") {
        let host = format!("{account_name}.vssps.visualstudio.com");
        (format!("https://{host}/"), Some(format!("{host}:443")))
    } else {
        (org_url.to_string(), None)
    }
}

/// 32 random bytes (from the host's `wasi:random`) as 64 lowercase hex characters.
pub fn random_secret() -> String {
    random::hex(32)
}

/// The message of an Azure DevOps refusal that means "no access".
fn is_access_refusal(status: u16, reason: &str) -> bool {
    let reason = reason.to_lowercase();
    matches!(status, 400 | 401 | 403)
        || reason.contains("permission")
        || reason.contains("not authorized")
}

/// The operator-facing error for an access refusal: a bad request is the
/// input's fault, anything else the credential's.
fn cannot_communicate(status: Option<u16>) -> Error {
    if status == Some(400) {
        Error::invalid_input(CANNOT_COMMUNICATE)
    } else {
        Error::unauthorized(CANNOT_COMMUNICATE)
    }
}

/// A subscription: its id at Azure DevOps and the secret it sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub id: String,
    pub secret: String,
}

/// The id of the subscription an earlier installation of this collection
/// created, when its integration still names one.
pub fn existing_subscription_id(collection_id: &str) -> Option<String> {
    let existing = integration::lookup(collection_id)?;
    j::non_empty_str_at(&existing.metadata, &["subscription", "id"]).map(str::to_string)
}

/// Creates the service hook subscription with a fresh secret.
pub fn create_subscription(client: &Client) -> Result<Subscription> {
    let secret = random_secret();
    let response = client.create_subscription(&webhook_url(), &secret)?;
    let response = accepted(response)?;
    let body: Value = response.json()?;
    let id = match body.get("id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(Error::upstream(
                response.status,
                "the created subscription has no id",
            ));
        }
    };
    Ok(Subscription { id, secret })
}

/// Gives an earlier installation's subscription a fresh secret, keeping its
/// id; a new subscription when it is gone. The plugin cannot reuse the old
/// secret: contract 0.2.0 shows no plugin a stored secret, and an
/// earlier installation's least of all.
pub fn renew_subscription(client: &Client, id: &str) -> Result<Subscription> {
    let secret = random_secret();
    let response = client.replace_subscription(id, &webhook_url(), &secret)?;
    if response.status == 404 {
        info!("the service hook subscription {id} is gone; creating a new one");
        return create_subscription(client);
    }
    accepted(response)?;
    Ok(Subscription {
        id: id.to_string(),
        secret,
    })
}

fn webhook_url() -> String {
    format!("{}{WEBHOOK_PATH}", integration::public_url())
}

/// A successful subscription answer, or the error it stands for.
fn accepted(response: Response) -> Result<Response> {
    if response.is_success() {
        return Ok(response);
    }
    let reason = response.error_reason();
    if is_access_refusal(response.status, &reason) {
        info!(
            "Azure DevOps refused the subscription (HTTP {}): {reason}",
            response.status
        );
        return Err(cannot_communicate(Some(response.status)));
    }
    Err(response
        .error_for_status()
        .err()
        .unwrap_or_else(|| Error::internal("an unsuccessful answer passed error_for_status")))
}

/// Validates the input, finds the collection, creates (or reuses) the
/// subscription, and produces the integration data.
pub fn build(input: &Value) -> Result<IntegrationData> {
    let input = Input::parse(input)?;
    let client = Client::new(&input.org_url, &input.graph_url, input.credential.clone());
    let collection_id = client.collection_id().map_err(|e| match e {
        Error::Unauthorized(m) => {
            info!("Azure DevOps refused the credential: {m}");
            cannot_communicate(None)
        }
        other => other,
    })?;
    let subscription = match existing_subscription_id(&collection_id) {
        Some(id) => {
            info!(
                "reusing the service hook subscription {id} of collection {collection_id} with a new secret"
            );
            renew_subscription(&client, &id)?
        }
        None => create_subscription(&client)?,
    };
    let metadata = json!({
        "domain_name": input.org_url,
        "graph_url": input.graph_url,
        "account_name": input.account_name,
        "auth": input.credential.kind(),
        "subscription": {"id": subscription.id},
    });
    let secrets = json!({
        "credential": input.credential.to_value(),
        "subscription_secret": subscription.secret,
    });
    let mut data = IntegrationData::new(collection_id, input.account_name, &metadata, &secrets);
    data.extra_hosts = input.extra_host.into_iter().collect();
    Ok(data)
}

/// Deletes the current integration's subscription.
pub fn uninstall() -> Result<()> {
    let current = integration::require_current()?;
    let Some(id) = j::non_empty_str_at(&current.metadata, &["subscription", "id"]) else {
        return Ok(());
    };
    Client::for_integration(&current)?.delete_subscription(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackbridge_plugin_sdk::http::{Method, Response};
    use trackbridge_plugin_sdk::testing;

    const COLLECTION: &str = "80ded3e8-3cd3-43b1-9f96-52032624aa3a";

    fn input(org: &str) -> Value {
        json!({"organization_url": org, "credential": {"type": "pat", "token": "p"}})
    }

    #[test]
    fn urls_are_normalized_and_graph_derived() {
        let i = Input::parse(&input("https://dev.azure.com/Acme")).unwrap();
        assert_eq!(i.org_url, "https://dev.azure.com/Acme/");
        assert_eq!(i.account_name, "Acme");
        assert_eq!(i.graph_url, "https://vssps.dev.azure.com/Acme/");
        assert_eq!(i.extra_host.as_deref(), Some("vssps.dev.azure.com:443"));

        let i = Input::parse(&input("https://Fabrikam.VisualStudio.com")).unwrap();
        assert_eq!(i.org_url, "https://fabrikam.visualstudio.com/");
        assert_eq!(i.account_name, "fabrikam");
        assert_eq!(i.graph_url, "https://fabrikam.vssps.visualstudio.com/");
        assert_eq!(
            i.extra_host.as_deref(),
            Some("fabrikam.vssps.visualstudio.com:443")
        );

        let i = Input::parse(&input("http://127.0.0.1:9000/tfs/DefaultCollection")).unwrap();
        assert_eq!(i.org_url, "http://127.0.0.1:9000/tfs/DefaultCollection/");
        assert_eq!(i.account_name, "DefaultCollection");
        assert_eq!(i.graph_url, i.org_url);
        assert_eq!(i.extra_host, None);

        let mut v = input("https://dev.azure.com/acme/");
        v["graph_url"] = json!("http://127.0.0.1:9000/acme");
        let i = Input::parse(&v).unwrap();
        assert_eq!(i.graph_url, "http://127.0.0.1:9000/acme/");
        assert_eq!(i.extra_host, None);

        for host in [
            "vssps.dev.azure.com:443",
            "fabrikam.vssps.visualstudio.com:443",
        ] {
            assert!(
                ALLOWED_HOST_PATTERNS
                    .iter()
                    .any(|p| match p.strip_prefix("*.") {
                        Some(suffix) => host.ends_with(&format!(".{suffix}")),
                        None => host == *p,
                    })
            );
        }
    }

    #[test]
    fn validation_names_fields() {
        let msg = |v: Value| Input::parse(&v).unwrap_err().message().to_string();
        assert_eq!(
            msg(json!([])),
            "the installation input must be a JSON object"
        );
        assert_eq!(msg(json!({})), "organization_url is required");
        assert_eq!(
            msg(json!({"organization_url": 1})),
            "organization_url must be a string"
        );
        assert!(
            msg(json!({"organization_url": "dev.azure.com/acme"}))
                .starts_with("organization_url is not a valid URL")
        );
        assert_eq!(
            msg(input("https://dev.azure.com/")),
            "organization_url must name the organization, e.g. https://dev.azure.com/acme/"
        );
        assert_eq!(
            msg(json!({"organization_url": "https://dev.azure.com/a"})),
            "credential is required"
        );
        let mut v = input("https://dev.azure.com/a");
        v["graph_url"] = json!("https://x.test/?q=1");
        assert_eq!(msg(v), "graph_url must not have a query or fragment");
    }

    #[test]
    fn secrets_are_64_lowercase_hex_and_differ() {
        let a = random_secret();
        let b = random_secret();
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }

    fn azure(subscription: Response) {
        let mut subscription = Some(subscription);
        testing::on_http(move |req| {
            if req.url.ends_with("_apis/connectionData") {
                return Ok(Response::json_body(200, &json!({"instanceId": COLLECTION})));
            }
            Ok(subscription.take().expect("one subscription call"))
        });
    }

    #[test]
    fn build_creates_a_subscription() {
        testing::reset();
        testing::set_public_url("https://sync.example.com");
        azure(Response::json_body(
            200,
            &json!({"id": "fd672255-8b6b-4769-9260-beea83d752ce"}),
        ));
        let data = build(&input("https://dev.azure.com/acme/")).unwrap();
        assert_eq!(data.external_id, COLLECTION);
        assert_eq!(data.name, "acme");
        assert_eq!(
            data.extra_hosts,
            vec!["vssps.dev.azure.com:443".to_string()]
        );
        let sent = testing::requests();
        assert_eq!(sent.len(), 2);
        assert_eq!(
            sent[0].full_url(),
            "https://dev.azure.com/acme/_apis/connectionData"
        );
        assert_eq!(sent[1].method, Method::Post);
        assert_eq!(
            sent[1].full_url(),
            "https://dev.azure.com/acme/_apis/hooks/subscriptions"
        );
        let secrets: Value = serde_json::from_str(&data.secrets).unwrap();
        let secret = secrets["subscription_secret"].as_str().unwrap();
        let body: Value = serde_json::from_slice(sent[1].body.as_ref().unwrap()).unwrap();
        assert_eq!(
            body,
            json!({"publisherId": "tfs", "eventType": "workitem.updated", "resourceVersion": "1.0",
                "consumerId": "webHooks", "consumerActionId": "httpRequest", "consumerInputs": {
                "url": "https://sync.example.com/extensions/vsts/issue-updated/",
                "resourceDetailsToSend": "all", "httpHeaders": format!("shared-secret:{secret}")}})
        );
        let metadata: Value = serde_json::from_str(&data.metadata).unwrap();
        assert_eq!(
            metadata["subscription"],
            json!({"id": "fd672255-8b6b-4769-9260-beea83d752ce"})
        );
        assert_eq!(metadata["domain_name"], "https://dev.azure.com/acme/");
        assert!(!data.metadata.contains(secret));
        assert_eq!(secrets["credential"], json!({"type": "pat", "token": "p"}));
    }

    #[test]
    fn build_reuses_an_existing_subscription_with_a_new_secret() {
        testing::reset();
        testing::set_public_url("https://sync.example.com");
        testing::add_integration(
            COLLECTION,
            json!({"domain_name": "https://dev.azure.com/acme/", "subscription": {"id": "sub-1"}}),
            json!({"subscription_secret": "old-secret"}),
        );
        azure(Response::json_body(200, &json!({"id": "sub-1"})));
        let data = build(&input("https://dev.azure.com/acme/")).unwrap();
        let sent = testing::requests();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].method, Method::Put);
        assert_eq!(
            sent[1].full_url(),
            "https://dev.azure.com/acme/_apis/hooks/subscriptions/sub-1"
        );
        let metadata: Value = serde_json::from_str(&data.metadata).unwrap();
        assert_eq!(metadata["subscription"], json!({"id": "sub-1"}));
        let secrets: Value = serde_json::from_str(&data.secrets).unwrap();
        let secret = secrets["subscription_secret"].as_str().unwrap();
        assert_ne!(secret, "old-secret");
        let body: Value = serde_json::from_slice(sent[1].body.as_ref().unwrap()).unwrap();
        assert_eq!(
            body["consumerInputs"]["httpHeaders"],
            format!("shared-secret:{secret}")
        );
        assert_eq!(
            body["consumerInputs"]["url"],
            "https://sync.example.com/extensions/vsts/issue-updated/"
        );
    }

    #[test]
    fn a_subscription_deleted_at_azure_devops_is_created_again() {
        testing::reset();
        testing::add_integration(
            COLLECTION,
            json!({"domain_name": "https://dev.azure.com/acme/", "subscription": {"id": "sub-1"}}),
            json!({}),
        );
        let mut answers = vec![
            Response::json_body(200, &json!({"id": "sub-2"})),
            Response::json_body(
                404,
                &json!({"message": "VS403217: Subscription sub-1 does not exist."}),
            ),
        ];
        testing::on_http(move |req| {
            if req.url.ends_with("_apis/connectionData") {
                return Ok(Response::json_body(200, &json!({"instanceId": COLLECTION})));
            }
            Ok(answers.pop().expect("two subscription calls"))
        });
        let data = build(&input("https://dev.azure.com/acme/")).unwrap();
        let methods: Vec<Method> = testing::requests().iter().map(|r| r.method).collect();
        assert_eq!(methods, [Method::Get, Method::Put, Method::Post]);
        let metadata: Value = serde_json::from_str(&data.metadata).unwrap();
        assert_eq!(metadata["subscription"], json!({"id": "sub-2"}));
    }

    #[test]
    fn an_integration_without_subscription_gets_a_new_one() {
        testing::reset();
        testing::add_integration(
            COLLECTION,
            json!({"domain_name": "https://dev.azure.com/acme/"}),
            json!({}),
        );
        azure(Response::json_body(200, &json!({"id": "sub-2"})));
        let data = build(&input("https://dev.azure.com/acme/")).unwrap();
        assert_eq!(testing::requests().len(), 2);
        let metadata: Value = serde_json::from_str(&data.metadata).unwrap();
        assert_eq!(metadata["subscription"], json!({"id": "sub-2"}));
    }

    #[test]
    fn refusals_give_the_clear_error() {
        let cases = [
            (
                401,
                json!({"message": "The user bob is not authorized to access this resource"}),
            ),
            (
                403,
                json!({"message": "The user bob is does not have permission to access this resource"}),
            ),
            (
                500,
                json!({"message": "You do not have permission to do this"}),
            ),
        ];
        for (status, body) in cases {
            testing::reset();
            azure(Response::json_body(status, &body));
            let e = build(&input("https://dev.azure.com/acme/")).unwrap_err();
            assert_eq!(
                e,
                Error::Unauthorized(CANNOT_COMMUNICATE.into()),
                "{status}"
            );
        }
        testing::reset();
        azure(Response::json_body(400, &json!({"message": "bad"})));
        let e = build(&input("https://dev.azure.com/acme/")).unwrap_err();
        assert_eq!(e, Error::InvalidInput(CANNOT_COMMUNICATE.into()));

        testing::reset();
        azure(Response::new(503, "maintenance"));
        let e = build(&input("https://dev.azure.com/acme/")).unwrap_err();
        assert_eq!(e.status(), Some(503));

        testing::reset();
        testing::on_http(|_| Ok(Response::json_body(401, &json!({"message": "no"}))));
        let e = build(&input("https://dev.azure.com/acme/")).unwrap_err();
        assert_eq!(e, Error::Unauthorized(CANNOT_COMMUNICATE.into()));
    }

    #[test]
    fn uninstall_deletes_the_subscription() {
        testing::reset();
        testing::add_integration(
            COLLECTION,
            json!({"domain_name": "https://dev.azure.com/acme/", "subscription": {"id": "sub-1"}}),
            json!({"credential": {"type": "pat", "token": "p"}, "subscription_secret": "s"}),
        );
        assert!(testing::make_current(COLLECTION));
        testing::on_http(|_| Ok(Response::new(204, "")));
        uninstall().unwrap();
        let sent = testing::requests();
        assert_eq!(sent[0].method, Method::Delete);
        assert_eq!(
            sent[0].full_url(),
            "https://dev.azure.com/acme/_apis/hooks/subscriptions/sub-1"
        );
    }
}
