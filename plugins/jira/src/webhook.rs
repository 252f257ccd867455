//! `POST /extensions/jira/issue-updated/`: authenticating deliveries (Connect
//! JWT or admin-webhook `X-Hub-Signature`) and turning changelogs into events.

use serde_json::Value;
use trackbridge_jira_common::has_changelog;
use trackbridge_plugin_sdk::provider::{InboundEvent, IncomingRequest, Rejection, VerifiedWebhook};
use trackbridge_plugin_sdk::secrets::{self, JwtError};
use trackbridge_plugin_sdk::{Result, clock, integration, json, jwt, warn};

use crate::client::{Client, authority_of};
use crate::{auth, connect_jwt, hub_signature, qsh};

/// Clock skew tolerated between Jira and us.
const LEEWAY_SECS: i64 = 60;

/// Sentry answers every Connect validation failure with 409.
fn connect_reject(message: &str) -> Rejection {
    Rejection::new(409, message)
}

fn hub_reject(message: &str) -> Rejection {
    Rejection::new(401, message)
}

pub fn verify(request: &IncomingRequest) -> Result<VerifiedWebhook, Rejection> {
    let now_secs = clock::now_secs() as i64;
    let (external_id, payload) = if let Some(authorization) = request.header("authorization") {
        let token = connect_jwt::split_authorization(authorization)
            .ok_or_else(|| connect_reject("No token parameter"))?;
        let external_id = verify_connect(request, token, now_secs)?;
        (external_id, parse_body(&request.body)?)
    } else if let Some(signature) = request.header("x-hub-signature") {
        verify_hub(request, signature)?
    } else if let Some(token) = request.query_param("jwt").filter(|t| !t.trim().is_empty()) {
        // Connect may carry the token in the query instead (the qsh leaves it out).
        let external_id = verify_connect(request, token.trim(), now_secs)?;
        (external_id, parse_body(&request.body)?)
    } else {
        return Err(connect_reject("No token parameter"));
    };
    Ok(VerifiedWebhook {
        integration: external_id,
        delivery_id: delivery_id(request),
        event_time: event_time(&payload),
        ignore: !has_changelog(&payload),
    })
}

fn parse_body(body: &[u8]) -> Result<Value, Rejection> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::new(400, "empty body"));
    }
    trackbridge_jira_common::payload::parse(body)
        .map_err(|_| Rejection::new(400, "malformed JSON body"))
}

/// Atlassian Connect: returns the client key of the verified installation.
fn verify_connect(
    request: &IncomingRequest,
    token: &str,
    now_secs: i64,
) -> Result<String, Rejection> {
    // Unverified: only to find whose shared secret must verify it.
    let unverified = jwt::peek(token).ok_or_else(|| connect_reject("Malformed token"))?;
    // The shared secret only backs HS256; `none` and asymmetric algorithms are refused.
    if unverified.alg() != Some("HS256") {
        return Err(connect_reject("Unsupported token algorithm"));
    }
    let issuer = unverified
        .claim_str("iss")
        .ok_or_else(|| connect_reject("No integration found"))?;
    let installation =
        integration::select(issuer).ok_or_else(|| connect_reject("No integration found"))?;
    let connect = match installation.metadata_str("auth") {
        Some(kind) => kind == "connect",
        None => auth::kind_by_secrets() == Some("connect"),
    };
    if !connect {
        return Err(connect_reject("No integration found"));
    }
    let secret =
        secrets::get(auth::SHARED_SECRET).ok_or_else(|| connect_reject("No integration found"))?;
    let claims = secret.jwt_hs256_verify(token).map_err(|e| {
        connect_reject(match e {
            JwtError::BadSignature => "Signature is invalid",
            JwtError::Expired => "Signature is expired",
            JwtError::NotYetValid => "Token is not yet valid",
            JwtError::WrongAlgorithm(_) => "Unsupported token algorithm",
            JwtError::Malformed(_) => "Malformed token",
        })
    })?;
    // The host checked `exp` and `nbf` only; the rest of the window is ours.
    connect_jwt::check_times(&claims, now_secs, LEEWAY_SECS).map_err(|e| {
        connect_reject(match e {
            connect_jwt::TimeError::Expired => "Signature is expired",
            connect_jwt::TimeError::NoExpiry => "Token has no expiry",
            connect_jwt::TimeError::IssuedInFuture => "Token is not yet valid",
            connect_jwt::TimeError::TooLong => "Token is valid for too long",
        })
    })?;
    // The verified claims, not the unverified ones, must name the installation.
    if claims.get("iss").and_then(Value::as_str) != Some(installation.external_id.as_str()) {
        return Err(connect_reject("No integration found"));
    }
    // The route is POST-only, and Sentry hashes this endpoint as POST whatever came in.
    let expected = qsh::qsh("POST", &request.path, &request.query_pairs());
    if claims.get("qsh").and_then(Value::as_str) != Some(expected.as_str()) {
        return Err(connect_reject("Query hash mismatch"));
    }
    Ok(installation.external_id)
}

/// Jira admin webhook with a secret: returns the site's integration and the payload.
fn verify_hub(request: &IncomingRequest, signature: &str) -> Result<(String, Value), Rejection> {
    let payload = parse_body(&request.body)?;
    let site = site_of(&payload)
        .or_else(|| request.query_param("site").map(|s| normalize_site(&s)))
        .ok_or_else(|| hub_reject("No integration found"))?;
    let installation =
        integration::select(&site).ok_or_else(|| hub_reject("No integration found"))?;
    let Some(secret) = secrets::get("webhook_secret") else {
        warn!("X-Hub-Signature delivery for {site}, but the integration has no webhook_secret");
        return Err(hub_reject("Signature is invalid"));
    };
    if !hub_signature::verify(&secret, &request.body, signature) {
        return Err(hub_reject("Signature is invalid"));
    }
    Ok((installation.external_id, payload))
}

/// The site a payload comes from: the authority of `issue.self`, else `user.self`.
pub fn site_of(payload: &Value) -> Option<String> {
    [["issue", "self"], ["user", "self"]]
        .iter()
        .find_map(|path| authority_of(json::str_at(payload, path)?))
}

/// `?site=` may be a bare authority or a URL.
fn normalize_site(site: &str) -> String {
    authority_of(site).unwrap_or_else(|| site.trim().trim_end_matches('/').to_ascii_lowercase())
}

fn delivery_id(request: &IncomingRequest) -> Option<String> {
    request
        .header("x-atlassian-webhook-identifier")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn event_time(payload: &Value) -> Option<u64> {
    json::u64_at(payload, &["timestamp"])
}

/// The events of a verified delivery; the integration is current.
pub fn handle(request: &IncomingRequest, client: &Client) -> Result<Vec<InboundEvent>> {
    trackbridge_jira_common::events(&request.body, client, |_| delivery_id(request))
}

#[cfg(test)]
mod tests;
