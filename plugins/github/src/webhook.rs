//! Deliveries (spec §1): which integration a delivery is for, its
//! `X-Hub-Signature-256`, and the events of `issues` actions.

use serde_json::Value;
use trackbridge_plugin_sdk::provider::*;
use trackbridge_plugin_sdk::url::{Url, parse_query};
use trackbridge_plugin_sdk::{Result, info, integration, json as j, secrets, time};

use crate::Repo;
use crate::issue::{Choice, IssueKey, choose};
use crate::issues_api::{assigned_by, fetch_issue};

/// The actions that become events; every other one is acknowledged and dropped.
const HANDLED_ACTIONS: &[&str] = &["assigned", "unassigned", "closed", "reopened"];

/// The integration key of a repository: the API host and the repository's
/// numeric id, which (unlike `owner/repo`) survives renames.
pub fn external_id(api_authority: &str, repository_id: u64) -> String {
    format!("{api_authority}:{repository_id}")
}

/// The JSON payload: the body itself, or the `payload` field of a
/// form-encoded delivery (hooks created with `content_type: form`).
pub fn payload(request: &IncomingRequest) -> std::result::Result<Value, String> {
    let form = request
        .header("content-type")
        .is_some_and(|t| t.trim().starts_with("application/x-www-form-urlencoded"));
    if form {
        let text = std::str::from_utf8(&request.body)
            .map_err(|_| "the form body is not UTF-8".to_string())?;
        let field = parse_query(text)
            .into_iter()
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v)
            .ok_or("the form body has no payload field")?;
        serde_json::from_str(&field).map_err(|e| format!("the payload is not JSON: {e}"))
    } else {
        serde_json::from_slice(&request.body).map_err(|e| format!("the body is not JSON: {e}"))
    }
}

/// The integration key a payload names, from `repository.url`'s host and `repository.id`.
fn payload_integration(payload: &Value) -> Option<String> {
    let id = j::u64_at(payload, &["repository", "id"])?;
    let url = Url::parse(j::str_at(payload, &["repository", "url"])?).ok()?;
    Some(external_id(&url.authority, id))
}

pub fn verify(request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
    let event = request
        .header("x-github-event")
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| Rejection::new(400, "missing X-GitHub-Event"))?
        .to_string();
    let signature = request
        .header("x-hub-signature-256")
        .and_then(|s| s.trim().strip_prefix("sha256="))
        .filter(|hex| hex.len() == 64)
        .ok_or_else(|| Rejection::new(401, "missing or malformed X-Hub-Signature-256"))?
        .to_string();
    let payload = payload(request).map_err(|why| Rejection::new(400, why))?;
    let external = payload_integration(&payload)
        .ok_or_else(|| Rejection::new(400, "the delivery names no repository (id and url)"))?;
    if integration::select(&external).is_none() {
        return Err(Rejection::new(
            404,
            format!("no GitHub integration for repository {external}"),
        ));
    }
    let secret = secrets::get("webhook_secret")
        .ok_or_else(|| Rejection::new(401, "the integration has no webhook secret"))?;
    // Over the raw bytes, before any decoding; the host compares in constant time.
    if !secret.hmac_sha256_verify_hex(&request.body, &signature) {
        return Err(Rejection::new(
            401,
            "X-Hub-Signature-256 does not match the body",
        ));
    }
    let action = j::str_at(&payload, &["action"]).unwrap_or_default();
    let ignore = event != "issues"
        || !HANDLED_ACTIONS.contains(&action)
        // The Issues API covers pull requests too; they are not linked issues.
        || payload["issue"].get("pull_request").is_some_and(|p| !p.is_null());
    Ok(VerifiedWebhook {
        integration: external,
        delivery_id: request
            .header("x-github-delivery")
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(str::to_string),
        event_time: j::str_at(&payload, &["issue", "updated_at"]).and_then(time::parse_ms),
        ignore,
    })
}

fn status_event(action: StatusAction, from: &str, to: &str) -> Change {
    Change::Status(StatusChange {
        from: Some(from.to_string()),
        to: Some(to.to_string()),
        action,
    })
}

pub fn handle(request: &IncomingRequest, repo: &Repo) -> Result<Vec<InboundEvent>> {
    let payload = payload(request).map_err(trackbridge_plugin_sdk::Error::invalid_input)?;
    let delivery_id = request.header("x-github-delivery").map(str::to_string);
    let (Some(full_name), Some(number)) = (
        j::str_at(&payload, &["repository", "full_name"]),
        j::u64_at(&payload, &["issue", "number"]),
    ) else {
        return Ok(Vec::new());
    };
    let key = IssueKey::parse(&format!("{full_name}#{number}"))?;
    let updated_at = |issue: &Value| j::str_at(issue, &["updated_at"]).and_then(time::parse_ms);
    let event = |change: Change, event_time: Option<u64>| InboundEvent {
        external_issue: key.to_string(),
        change,
        event_time,
        delivery_id: delivery_id.clone(),
    };
    let change = match j::str_at(&payload, &["action"]) {
        Some("closed") => status_event(StatusAction::Resolve, "open", "closed"),
        Some("reopened") => status_event(StatusAction::Unresolve, "closed", "open"),
        Some("assigned" | "unassigned") => {
            // Deliveries arrive in any order and their snapshots can be stale:
            // the issue as GitHub has it now is the truth.
            let Some(issue) = fetch_issue(&repo.client, &key)? else {
                return Ok(Vec::new());
            };
            let ours = match &repo.actor {
                Some(actor) => assigned_by(&repo.client, &key, actor)?,
                None => None,
            };
            return Ok(match choose(&issue, ours.as_deref()) {
                Choice::Keep => {
                    info!("{key}: the person trackbridge assigned is still assigned");
                    Vec::new()
                }
                Choice::Assign(identity) => {
                    vec![event(Change::Assignee(Some(identity)), updated_at(&issue))]
                }
                Choice::Nobody => vec![event(Change::Assignee(None), updated_at(&issue))],
            });
        }
        _ => return Ok(Vec::new()),
    };
    Ok(vec![event(change, updated_at(&payload["issue"]))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trackbridge_plugin_sdk::testing;

    /// GitHub's documented test secret (SOURCES.md has the vectors).
    const SECRET: &str = "It's a Secret to Everybody";
    const ASSIGNED: &[u8] =
        include_bytes!("../../../tests/fixtures/github/webhook_issues_assigned.json");
    const ASSIGNED_SIG: &str =
        "sha256=895272f5414e86ba472a04ab44c81abcb3aa200936fbe2009fd565cab60ebcd3";

    fn request(body: &[u8], signature: &str, content_type: &str) -> IncomingRequest {
        IncomingRequest {
            method: "POST".into(),
            path: crate::WEBHOOK_PATH.into(),
            query: String::new(),
            headers: vec![
                ("content-type".into(), content_type.into()),
                ("x-github-event".into(), "issues".into()),
                ("x-github-delivery".into(), "d-1".into()),
                ("x-hub-signature-256".into(), signature.into()),
            ],
            route_params: Vec::new(),
            body: body.to_vec(),
        }
    }

    fn installed() {
        testing::reset();
        testing::add_integration(
            "api.github.com:186853002",
            json!({}),
            json!({"webhook_secret": SECRET}),
        );
    }

    #[test]
    fn githubs_test_vector_verifies_the_fixture_bytes() {
        installed();
        let verified = verify(&request(ASSIGNED, ASSIGNED_SIG, "application/json")).unwrap();
        assert_eq!(verified.integration, "api.github.com:186853002");
        assert_eq!(verified.delivery_id.as_deref(), Some("d-1"));
        assert_eq!(verified.event_time, time::parse_ms("2019-05-15T15:20:18Z"));
        assert!(!verified.ignore);
    }

    #[test]
    fn one_altered_byte_fails_the_signature() {
        installed();
        // One byte inside a string value: still JSON, no longer what GitHub signed.
        let mut body = ASSIGNED.to_vec();
        let at = body.windows(10).position(|w| w == b"Codertocat").unwrap();
        body[at] = b'D';
        let rejected = verify(&request(&body, ASSIGNED_SIG, "application/json")).unwrap_err();
        assert_eq!(
            (rejected.status, rejected.message.as_str()),
            (401, "X-Hub-Signature-256 does not match the body")
        );
        for bad in ["", "sha1=abc", "sha256=xyz", &ASSIGNED_SIG[..70]] {
            assert_eq!(
                verify(&request(ASSIGNED, bad, "application/json"))
                    .unwrap_err()
                    .status,
                401,
                "{bad}"
            );
        }
    }

    #[test]
    fn a_form_delivery_is_verified_over_the_raw_form_body() {
        installed();
        let payload = String::from_utf8(ASSIGNED.to_vec()).unwrap();
        let body = format!(
            "payload={}",
            trackbridge_plugin_sdk::url::encode_component(&payload)
        );
        let mac =
            trackbridge_plugin_sdk::crypto::hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
        let verified = verify(&request(
            body.as_bytes(),
            &format!("sha256={mac}"),
            "application/x-www-form-urlencoded",
        ))
        .unwrap();
        assert_eq!(verified.integration, "api.github.com:186853002");
    }

    #[test]
    fn other_repositories_and_missing_headers_are_refused() {
        installed();
        let mut other: Value = serde_json::from_slice(ASSIGNED).unwrap();
        other["repository"]["id"] = json!(1);
        let body = other.to_string();
        let mac =
            trackbridge_plugin_sdk::crypto::hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
        assert_eq!(
            verify(&request(
                body.as_bytes(),
                &format!("sha256={mac}"),
                "application/json"
            ))
            .unwrap_err()
            .status,
            404
        );
        let mut no_event = request(ASSIGNED, ASSIGNED_SIG, "application/json");
        no_event.headers.retain(|(k, _)| k != "x-github-event");
        assert_eq!(verify(&no_event).unwrap_err().status, 400);
    }

    #[test]
    fn pull_requests_and_other_actions_are_ignored() {
        installed();
        let mut labeled: Value = serde_json::from_slice(ASSIGNED).unwrap();
        labeled["action"] = json!("labeled");
        let mut pr: Value = serde_json::from_slice(ASSIGNED).unwrap();
        pr["issue"]["pull_request"] = json!({"url": "x"});
        for body in [labeled, pr] {
            let body = body.to_string();
            let mac =
                trackbridge_plugin_sdk::crypto::hmac_sha256_hex(SECRET.as_bytes(), body.as_bytes());
            assert!(
                verify(&request(
                    body.as_bytes(),
                    &format!("sha256={mac}"),
                    "application/json"
                ))
                .unwrap()
                .ignore
            );
        }
    }
}
