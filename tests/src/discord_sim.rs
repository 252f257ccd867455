//! A simulated Discord REST API: stateful (channels, webhooks, messages),
//! recording (see [`crate::sim`]) and strict about tokens.
//!
//! * Bot: `GET /api/v10/channels/{id}`, `POST /api/v10/channels/{id}/messages` (with
//!   `nonce` + `enforce_nonce` deduplication: the same author's nonce returns the message it
//!   already created), `PATCH /api/v10/channels/{id}/messages/{message}`. Every bot call needs
//!   `Authorization: Bot <token>` (401 otherwise); an unknown channel is 404 (code 10003).
//! * Webhook: `GET|POST /api/webhooks/{id}/{token}` (`POST` answers 204 without `?wait=true`,
//!   200 with the message with it), `PATCH /api/webhooks/{id}/{token}/messages/{message}`. An
//!   unknown webhook is 404 (code 10015), a wrong token 401 (code 50027). A webhook edits only
//!   its own messages.
//! * Unknown messages are 404 with code 10008; bodies with neither content nor embeds, content
//!   over 2000 characters or more than 10 embeds are 400 (code 50035).
//! * Faults: [`DiscordSim::rate_limit_next`] (429 with `retry_after`, `global` and the
//!   `X-RateLimit-*` headers), [`DiscordSim::refuse`] (401 or 404 for everything),
//!   [`DiscordSim::revoke_bot_token`], [`DiscordSim::delete_channel`],
//!   [`DiscordSim::delete_webhook`], [`DiscordSim::go_down`] (the port closes), and the
//!   shared [`crate::sim::Recorder`] faults.
//!
//! Seeded with channel [`CHANNEL_ID`] (`#alerts`), bot token [`BOT_TOKEN`] and webhook
//! [`WEBHOOK_ID`] / [`WEBHOOK_TOKEN`] on that channel. Success answers carry the rate-limit
//! headers too, with requests to spare.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use serde_json::{Value, json};

use crate::sim::{Recorder, SimServer};

/// The bot token the simulator accepts.
pub const BOT_TOKEN: &str = "sim-bot-token.ABC123";
/// The seeded channel.
pub const CHANNEL_ID: &str = "100200300400500600";
/// The seeded channel's name.
pub const CHANNEL_NAME: &str = "alerts";
/// The seeded channel's server.
pub const GUILD_ID: &str = "41771983423143937";
/// The seeded webhook (on [`CHANNEL_ID`]).
pub const WEBHOOK_ID: &str = "700800900100200300";
/// The seeded webhook's token.
pub const WEBHOOK_TOKEN: &str = "sim-webhook-token_XYZ-789";
/// The seeded webhook's name.
pub const WEBHOOK_NAME: &str = "Trackbridge";

const CONTENT_MAX: usize = 2000;
const EMBEDS_MAX: usize = 10;
const NONCE_MAX: usize = 25;

/// One message as the simulator stores it.
#[derive(Clone, Debug, PartialEq)]
pub struct SimMessage {
    pub id: String,
    pub channel_id: String,
    pub content: String,
    pub embeds: Vec<Value>,
    /// The webhook that posted it; `None` for the bot.
    pub webhook_id: Option<String>,
    pub nonce: Option<String>,
    /// How often it was edited.
    pub edits: u32,
}

impl SimMessage {
    fn to_json(&self) -> Value {
        let author = match &self.webhook_id {
            Some(w) => json!({"id": w, "username": WEBHOOK_NAME, "bot": true}),
            None => {
                json!({"id": "900000000000000001", "username": "trackbridge-sim-bot", "bot": true})
            }
        };
        let mut v = json!({
            "id": self.id,
            "type": 0,
            "channel_id": self.channel_id,
            "content": self.content,
            "embeds": self.embeds,
            "author": author,
            "timestamp": "2026-01-01T00:00:00.000000+00:00",
            "edited_timestamp": if self.edits > 0 { json!("2026-01-01T00:00:01.000000+00:00") } else { Value::Null },
            "mentions": [],
            "attachments": [],
            "pinned": false,
            "tts": false,
        });
        if let Some(w) = &self.webhook_id {
            v["webhook_id"] = json!(w);
        }
        if let Some(n) = &self.nonce {
            v["nonce"] = json!(n);
        }
        v
    }
}

#[derive(Clone, Debug)]
struct Channel {
    name: String,
    guild_id: String,
}

#[derive(Clone, Debug)]
struct Webhook {
    token: String,
    channel_id: String,
    name: String,
}

#[derive(Clone, Debug)]
struct RateLimit {
    remaining: usize,
    retry_after: f64,
    global: bool,
}

#[derive(Default)]
struct DiscordState {
    bot_token: Option<String>,
    channels: BTreeMap<String, Channel>,
    webhooks: BTreeMap<String, Webhook>,
    messages: BTreeMap<String, SimMessage>,
    /// (author, nonce) → message id.
    nonces: HashMap<(String, String), String>,
    next_id: u64,
    rate_limit: Option<RateLimit>,
    refuse: Option<u16>,
}

type Shared = Arc<Mutex<DiscordState>>;

/// The simulator. Dropping it stops the server.
pub struct DiscordSim {
    server: Mutex<Option<SimServer>>,
    base_url: String,
    recorder: Recorder,
    state: Shared,
}

impl DiscordSim {
    /// Start a simulator seeded as described in the module docs.
    pub async fn start() -> anyhow::Result<DiscordSim> {
        DiscordSim::start_on(std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// The simulator on a given address (e.g. a fixed port for the walk-through).
    pub async fn start_on(addr: std::net::SocketAddr) -> anyhow::Result<DiscordSim> {
        let mut state = DiscordState {
            bot_token: Some(BOT_TOKEN.into()),
            next_id: 1_250_000_000_000_000_000,
            ..Default::default()
        };
        state.channels.insert(
            CHANNEL_ID.into(),
            Channel {
                name: CHANNEL_NAME.into(),
                guild_id: GUILD_ID.into(),
            },
        );
        state.webhooks.insert(
            WEBHOOK_ID.into(),
            Webhook {
                token: WEBHOOK_TOKEN.into(),
                channel_id: CHANNEL_ID.into(),
                name: WEBHOOK_NAME.into(),
            },
        );
        let state: Shared = Arc::new(Mutex::new(state));
        let webhook_routes = Router::new()
            .route("/{id}/{token}", get(get_webhook).post(execute_webhook))
            .route(
                "/{id}/{token}/messages/{message}",
                patch(edit_webhook_message),
            );
        let bot_routes = Router::new()
            .route("/channels/{channel}", get(get_channel))
            .route(
                "/channels/{channel}/messages",
                axum::routing::post(create_message),
            )
            .route(
                "/channels/{channel}/messages/{message}",
                patch(edit_message),
            )
            .route_layer(middleware::from_fn_with_state(state.clone(), bot_auth));
        let router = Router::new()
            .nest("/api/v10", bot_routes.clone())
            .nest("/api/webhooks", webhook_routes.clone())
            .nest("/api/v10/webhooks", webhook_routes)
            .fallback(not_found)
            .layer(middleware::from_fn_with_state(state.clone(), faults))
            .with_state(state.clone());
        let recorder = Recorder::new();
        let server = SimServer::start_on(addr, router, recorder.clone()).await?;
        Ok(DiscordSim {
            base_url: server.base_url(),
            server: Mutex::new(Some(server)),
            recorder,
            state,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// The bot API base, `http://127.0.0.1:PORT/api/v10` (the plugin's `api_base_url`).
    pub fn api_base_url(&self) -> String {
        format!("{}/api/v10", self.base_url)
    }

    /// The seeded webhook's URL, token included.
    pub fn webhook_url(&self) -> String {
        format!(
            "{}/api/webhooks/{WEBHOOK_ID}/{WEBHOOK_TOKEN}",
            self.base_url
        )
    }

    /// The request log and the shared fault queue.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Every message, id → content.
    pub fn messages(&self) -> BTreeMap<String, String> {
        self.state
            .lock()
            .unwrap()
            .messages
            .iter()
            .map(|(id, m)| (id.clone(), m.content.clone()))
            .collect()
    }

    /// One message with everything stored about it.
    pub fn message(&self, id: &str) -> Option<SimMessage> {
        self.state.lock().unwrap().messages.get(id).cloned()
    }

    /// Answer the next `n` requests with 429, `{"retry_after": secs, "global": false}` and
    /// `Retry-After` / `X-RateLimit-*` headers.
    pub fn rate_limit_next(&self, n: usize, retry_after: f64) {
        self.state.lock().unwrap().rate_limit = Some(RateLimit {
            remaining: n,
            retry_after,
            global: false,
        });
    }

    /// Answer every request with `status` (401 or 404, with Discord's body for it) until
    /// called with `None`.
    pub fn refuse(&self, status: Option<u16>) {
        self.state.lock().unwrap().refuse = status;
    }

    /// Stop accepting the bot token (as when it is reset in the Developer Portal).
    pub fn revoke_bot_token(&self) {
        self.state.lock().unwrap().bot_token = None;
    }

    /// Accept `token` as the bot token from now on.
    pub fn set_bot_token(&self, token: &str) {
        self.state.lock().unwrap().bot_token = Some(token.to_string());
    }

    /// Delete a channel: later calls about it are 404.
    pub fn delete_channel(&self, id: &str) {
        self.state.lock().unwrap().channels.remove(id);
    }

    /// Delete a webhook: later calls through it are 404.
    pub fn delete_webhook(&self, id: &str) {
        self.state.lock().unwrap().webhooks.remove(id);
    }

    /// Delete a message (as a moderator would).
    pub fn delete_message(&self, id: &str) {
        self.state.lock().unwrap().messages.remove(id);
    }

    /// Stop the server: connections to its port are refused from now on. The recorder
    /// and the messages stay readable.
    pub fn go_down(&self) {
        self.server.lock().unwrap().take();
    }

    /// True until [`DiscordSim::go_down`].
    pub fn is_up(&self) -> bool {
        self.server.lock().unwrap().is_some()
    }
}

fn discord_error(status: StatusCode, message: &str, code: u64) -> Response {
    (status, Json(json!({"message": message, "code": code}))).into_response()
}

fn unauthorized() -> Response {
    discord_error(StatusCode::UNAUTHORIZED, "401: Unauthorized", 0)
}

fn unknown_channel() -> Response {
    discord_error(StatusCode::NOT_FOUND, "Unknown Channel", 10003)
}

fn unknown_webhook() -> Response {
    discord_error(StatusCode::NOT_FOUND, "Unknown Webhook", 10015)
}

fn unknown_message() -> Response {
    discord_error(StatusCode::NOT_FOUND, "Unknown Message", 10008)
}

fn epoch_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The rate-limit headers of a bucket with `remaining` requests left.
fn rate_headers(headers: &mut HeaderMap, remaining: u32, reset_after: f64) {
    let set = |h: &mut HeaderMap, k: &'static str, v: String| {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    };
    set(headers, "x-ratelimit-limit", "5".into());
    set(headers, "x-ratelimit-remaining", remaining.to_string());
    set(
        headers,
        "x-ratelimit-reset",
        format!("{:.3}", epoch_secs() + reset_after),
    );
    set(
        headers,
        "x-ratelimit-reset-after",
        format!("{reset_after:.3}"),
    );
    set(headers, "x-ratelimit-bucket", "sim-bucket-0001".into());
}

/// Injected refusals and rate limits, before any route.
async fn faults(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let injected = {
        let mut s = state.lock().unwrap();
        if let Some(status) = s.refuse {
            let webhook = request.uri().path().contains("/webhooks/");
            Some(match (status, webhook) {
                (404, true) => unknown_webhook(),
                (404, false) => unknown_channel(),
                (401, true) => {
                    discord_error(StatusCode::UNAUTHORIZED, "Invalid Webhook Token", 50027)
                }
                (401, false) => unauthorized(),
                (other, _) => discord_error(
                    StatusCode::from_u16(other).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                    "injected refusal",
                    0,
                ),
            })
        } else if let Some(limit) = s.rate_limit.as_mut().filter(|l| l.remaining > 0) {
            limit.remaining -= 1;
            let limit = limit.clone();
            if limit.remaining == 0 {
                s.rate_limit = None;
            }
            let mut response = (
                StatusCode::TOO_MANY_REQUESTS,
                Json(json!({
                    "message": "You are being rate limited.",
                    "retry_after": limit.retry_after,
                    "global": limit.global,
                })),
            )
                .into_response();
            let headers = response.headers_mut();
            rate_headers(headers, 0, limit.retry_after);
            let secs = limit.retry_after.ceil().max(0.0) as u64;
            headers.insert("retry-after", HeaderValue::from(secs));
            headers.insert("x-ratelimit-scope", HeaderValue::from_static("user"));
            if limit.global {
                headers.insert("x-ratelimit-global", HeaderValue::from_static("true"));
            }
            Some(response)
        } else {
            None
        }
    };
    if let Some(response) = injected {
        return response;
    }
    let mut response = next.run(request).await;
    if response.status().is_success() {
        rate_headers(response.headers_mut(), 4, 1.0);
    }
    response
}

/// `Authorization: Bot <token>` on every bot route.
async fn bot_auth(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let expected = state.lock().unwrap().bot_token.clone();
    let given = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bot "));
    match (expected, given) {
        (Some(expected), Some(given)) if expected == given => next.run(request).await,
        _ => unauthorized(),
    }
}

async fn not_found() -> Response {
    discord_error(StatusCode::NOT_FOUND, "404: Not Found", 0)
}

async fn get_channel(State(state): State<Shared>, Path(channel): Path<String>) -> Response {
    let s = state.lock().unwrap();
    match s.channels.get(&channel) {
        Some(c) => Json(json!({
            "id": channel,
            "type": 0,
            "guild_id": c.guild_id,
            "name": c.name,
            "position": 0,
            "nsfw": false,
        }))
        .into_response(),
        None => unknown_channel(),
    }
}

/// A checked message body: content and embeds.
struct Body {
    content: Option<String>,
    embeds: Option<Vec<Value>>,
    nonce: Option<String>,
    enforce_nonce: bool,
}

fn parse_body(bytes: &[u8], creating: bool) -> Result<Body, Box<Response>> {
    let invalid = |why: &str| -> Box<Response> {
        Box::new((
            StatusCode::BAD_REQUEST,
            Json(json!({"message": "Invalid Form Body", "code": 50035, "errors": {"_errors": [{"code": "BASE_TYPE_INVALID", "message": why}]}})),
        )
            .into_response())
    };
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(invalid("the body must be a JSON object"));
    };
    let content = match body.get("content") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= CONTENT_MAX => Some(s.clone()),
        Some(Value::String(_)) => return Err(invalid("content: must be 2000 or fewer in length")),
        Some(_) => return Err(invalid("content: must be a string")),
    };
    let embeds = match body.get("embeds") {
        None | Some(Value::Null) => None,
        Some(Value::Array(a)) if a.len() <= EMBEDS_MAX && a.iter().all(Value::is_object) => {
            Some(a.clone())
        }
        Some(_) => return Err(invalid("embeds: at most 10 embed objects")),
    };
    let nonce = match body.get("nonce") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.chars().count() <= NONCE_MAX => Some(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Some(_) => {
            return Err(invalid(
                "nonce: must be an integer or a string of 25 characters or fewer",
            ));
        }
    };
    let enforce_nonce = body
        .get("enforce_nonce")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if creating
        && content.as_deref().is_none_or(str::is_empty)
        && embeds.as_ref().is_none_or(Vec::is_empty)
    {
        return Err(Box::new(discord_error(
            StatusCode::BAD_REQUEST,
            "Cannot send an empty message",
            50006,
        )));
    }
    Ok(Body {
        content,
        embeds,
        nonce,
        enforce_nonce,
    })
}

impl DiscordState {
    fn create(&mut self, channel_id: &str, webhook_id: Option<&str>, body: Body) -> SimMessage {
        let author = webhook_id.unwrap_or("bot").to_string();
        if body.enforce_nonce
            && let Some(nonce) = &body.nonce
            && let Some(existing) = self
                .nonces
                .get(&(author.clone(), nonce.clone()))
                .and_then(|id| self.messages.get(id))
        {
            return existing.clone();
        }
        self.next_id += 1;
        let message = SimMessage {
            id: self.next_id.to_string(),
            channel_id: channel_id.to_string(),
            content: body.content.unwrap_or_default(),
            embeds: body.embeds.unwrap_or_default(),
            webhook_id: webhook_id.map(str::to_string),
            nonce: body.nonce.clone(),
            edits: 0,
        };
        if let Some(nonce) = body.nonce {
            self.nonces.insert((author, nonce), message.id.clone());
        }
        self.messages.insert(message.id.clone(), message.clone());
        message
    }

    fn edit(&mut self, id: &str, body: Body) -> SimMessage {
        let message = self.messages.get_mut(id).expect("checked by the caller");
        if let Some(content) = body.content {
            message.content = content;
        }
        if let Some(embeds) = body.embeds {
            message.embeds = embeds;
        }
        message.edits += 1;
        message.clone()
    }
}

async fn create_message(
    State(state): State<Shared>,
    Path(channel): Path<String>,
    bytes: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    if !s.channels.contains_key(&channel) {
        return unknown_channel();
    }
    let body = match parse_body(&bytes, true) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    Json(s.create(&channel, None, body).to_json()).into_response()
}

async fn edit_message(
    State(state): State<Shared>,
    Path((channel, message)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    if !s.channels.contains_key(&channel) {
        return unknown_channel();
    }
    if s.messages
        .get(&message)
        .is_none_or(|m| m.channel_id != channel)
    {
        return unknown_message();
    }
    let body = match parse_body(&bytes, false) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    Json(s.edit(&message, body).to_json()).into_response()
}

/// The webhook `id` when `token` is its token; the answer to give otherwise.
fn check_webhook(s: &DiscordState, id: &str, token: &str) -> Result<Webhook, Box<Response>> {
    match s.webhooks.get(id) {
        None => Err(Box::new(unknown_webhook())),
        Some(w) if w.token != token => Err(Box::new(discord_error(
            StatusCode::UNAUTHORIZED,
            "Invalid Webhook Token",
            50027,
        ))),
        Some(w) if !s.channels.contains_key(&w.channel_id) => Err(Box::new(unknown_webhook())),
        Some(w) => Ok(w.clone()),
    }
}

async fn get_webhook(
    State(state): State<Shared>,
    Path((id, token)): Path<(String, String)>,
) -> Response {
    let s = state.lock().unwrap();
    match check_webhook(&s, &id, &token) {
        Ok(w) => {
            let guild = s.channels.get(&w.channel_id).map(|c| c.guild_id.clone());
            Json(json!({
                "id": id,
                "type": 1,
                "guild_id": guild,
                "channel_id": w.channel_id,
                "name": w.name,
                "avatar": null,
                "application_id": null,
                "token": w.token,
            }))
            .into_response()
        }
        Err(r) => *r,
    }
}

async fn execute_webhook(
    State(state): State<Shared>,
    Path((id, token)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    bytes: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    let webhook = match check_webhook(&s, &id, &token) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let mut body = match parse_body(&bytes, true) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    // Webhooks have no nonce deduplication.
    body.enforce_nonce = false;
    body.nonce = None;
    let message = s.create(&webhook.channel_id, Some(&id), body);
    if query.get("wait").is_some_and(|w| w == "true") {
        Json(message.to_json()).into_response()
    } else {
        StatusCode::NO_CONTENT.into_response()
    }
}

async fn edit_webhook_message(
    State(state): State<Shared>,
    Path((id, token, message)): Path<(String, String, String)>,
    bytes: Bytes,
) -> Response {
    let mut s = state.lock().unwrap();
    if let Err(r) = check_webhook(&s, &id, &token) {
        return *r;
    }
    if s.messages
        .get(&message)
        .is_none_or(|m| m.webhook_id.as_deref() != Some(id.as_str()))
    {
        return unknown_message();
    }
    let body = match parse_body(&bytes, false) {
        Ok(b) => b,
        Err(r) => return *r,
    };
    Json(s.edit(&message, body).to_json()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bot_messages_dedupe_by_nonce_and_edit() {
        let sim = DiscordSim::start().await.unwrap();
        let http = reqwest::Client::new();
        let url = format!("{}/channels/{CHANNEL_ID}/messages", sim.api_base_url());
        let body = json!({"content": "hi", "nonce": "n-1", "enforce_nonce": true});

        let denied = http.post(&url).json(&body).send().await.unwrap();
        assert_eq!(denied.status(), 401);

        let auth = format!("Bot {BOT_TOKEN}");
        let first: Value = http
            .post(&url)
            .header("authorization", &auth)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let again = http
            .post(&url)
            .header("authorization", &auth)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 200);
        assert!(again.headers().contains_key("x-ratelimit-bucket"));
        let again: Value = again.json().await.unwrap();
        assert_eq!(first["id"], again["id"]);
        assert_eq!(sim.messages().len(), 1);

        let id = first["id"].as_str().unwrap();
        let edited = http
            .patch(format!("{url}/{id}"))
            .header("authorization", &auth)
            .json(&json!({"content": "edited"}))
            .send()
            .await
            .unwrap();
        assert_eq!(edited.status(), 200);
        assert_eq!(sim.messages()[id], "edited");
        assert_eq!(sim.message(id).unwrap().edits, 1);

        let unknown = http
            .patch(format!("{url}/1"))
            .header("authorization", &auth)
            .json(&json!({"content": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        let other_channel = http
            .get(format!("{}/channels/1", sim.api_base_url()))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(other_channel.status(), 404);

        sim.rate_limit_next(1, 0.5);
        let limited = http
            .get(format!("{}/channels/{CHANNEL_ID}", sim.api_base_url()))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap();
        assert_eq!(limited.status(), 429);
        assert_eq!(limited.headers()["retry-after"], "1");
        assert_eq!(limited.headers()["x-ratelimit-remaining"], "0");
        let b: Value = limited.json().await.unwrap();
        assert_eq!(b["retry_after"], 0.5);
        assert_eq!(b["global"], false);
    }

    #[tokio::test]
    async fn webhooks_wait_edit_and_refuse() {
        let sim = DiscordSim::start().await.unwrap();
        let http = reqwest::Client::new();
        let no_wait = http
            .post(sim.webhook_url())
            .json(&json!({"content": "a"}))
            .send()
            .await
            .unwrap();
        assert_eq!(no_wait.status(), 204);
        let waited: Value = http
            .post(format!("{}?wait=true", sim.webhook_url()))
            .json(&json!({"content": "b"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = waited["id"].as_str().unwrap();
        assert_eq!(waited["webhook_id"], WEBHOOK_ID);
        let edited = http
            .patch(format!("{}/messages/{id}", sim.webhook_url()))
            .json(&json!({"content": "c"}))
            .send()
            .await
            .unwrap();
        assert_eq!(edited.status(), 200);
        assert_eq!(sim.messages().len(), 2);
        assert_eq!(sim.messages()[id], "c");

        let wrong = http
            .get(format!("{}/api/webhooks/{WEBHOOK_ID}/nope", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert_eq!(
            http.get(sim.webhook_url()).send().await.unwrap().status(),
            200
        );
        sim.refuse(Some(404));
        let gone = http.get(sim.webhook_url()).send().await.unwrap();
        assert_eq!(gone.status(), 404);
        assert_eq!(gone.json::<Value>().await.unwrap()["code"], 10015);
        sim.refuse(None);
        sim.delete_webhook(WEBHOOK_ID);
        assert_eq!(
            http.get(sim.webhook_url()).send().await.unwrap().status(),
            404
        );
        assert_eq!(sim.recorder().requests().len(), 7);

        sim.go_down();
        assert!(http.get(sim.webhook_url()).send().await.is_err());
    }
}
