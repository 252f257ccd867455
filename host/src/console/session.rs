//! Signing in to the console: the admin token (compared in constant time)
//! is exchanged for a session cookie; the session lives server-side (only a
//! hash of its id is stored) with the CSRF token every form carries.
//!
//! The sign-in form has no session yet, so its CSRF token is a double
//! submit: the form page sets a pre-session cookie holding a random token
//! and the form echoes it. Another site can make a browser post the form
//! (to sign it in to a session of the attacker's choosing) but can neither
//! read the token nor, the cookie being `SameSite=Strict`, send it along.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::Digest as _;
use subtle::ConstantTimeEq;

use super::{ConsoleError, page};
use crate::api::AppState;
use crate::store::ConsoleSession;
use crate::time::now_ms;

/// The cookie holding the session id.
pub const COOKIE: &str = "trackbridge_console";
/// The pre-session cookie holding the sign-in form's CSRF token.
pub const LOGIN_COOKIE: &str = "trackbridge_console_login";
/// How long a sign-in form stays usable.
const LOGIN_FORM_LIFETIME_S: i64 = 3600;
/// How long a session lasts from sign-in.
pub const SESSION_LIFETIME_MS: i64 = 8 * 3600 * 1000;

/// A signed-in operator, found from the request's cookie. Without a valid
/// session the request is sent to the sign-in page.
#[derive(Clone, Debug)]
pub struct Session {
    pub row: ConsoleSession,
}

impl Session {
    /// Who the audit record names: the session's hash prefix.
    pub fn who(&self) -> String {
        format!(
            "session:{}",
            &self.row.id_hash[..12.min(self.row.id_hash.len())]
        )
    }

    pub fn csrf(&self) -> &str {
        &self.row.csrf_token
    }

    /// Refuse (403) unless `presented` is this session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ConsoleError> {
        let expected = self.row.csrf_token.as_bytes();
        let presented = presented.unwrap_or("").as_bytes();
        if expected.is_empty() || !bool::from(presented.ct_eq(expected)) {
            return Err(ConsoleError::Csrf);
        }
        Ok(())
    }
}

fn hash_id(id: &str) -> String {
    hex(&sha2::Sha256::digest(id.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_hex() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| ConsoleError::Random(e.to_string()))?;
    Ok(hex(&bytes))
}

fn cookie_value(headers: &HeaderMap, cookie: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == cookie)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, Self::Rejection> {
        // htmx follows a redirect inside its request and would swap the
        // sign-in page into a list; it is told to load that page instead.
        let from_htmx = parts.headers.contains_key("hx-request");
        let to_login = || {
            if from_htmx {
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    [("hx-redirect", "/console/login")],
                    axum::response::Html("sign in again"),
                )
                    .into_response()
            } else {
                Redirect::to("/console/login").into_response()
            }
        };
        let Some(id) = cookie_value(&parts.headers, COOKIE) else {
            return Err(to_login());
        };
        match s.store.console_session(&hash_id(&id), now_ms()).await {
            Ok(Some(row)) => Ok(Session { row }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(ConsoleError::from(crate::api::ApiError::from(e)).into_response()),
        }
    }
}

/// Whether the request reached us over HTTPS (a proxy in front says so).
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

fn cookie_header(value: &str, max_age_s: i64, secure: bool) -> Result<HeaderValue, ConsoleError> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age_s}{secure}"
    ))
    .map_err(|e| ConsoleError::Random(e.to_string()))
}

/// The pre-session cookie: only the sign-in form's address receives it.
fn login_cookie_header(
    value: &str,
    max_age_s: i64,
    secure: bool,
) -> Result<HeaderValue, ConsoleError> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{LOGIN_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/console/login; Max-Age={max_age_s}{secure}"
    ))
    .map_err(|e| ConsoleError::Random(e.to_string()))
}

#[derive(askama::Template)]
#[template(path = "console/login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
}

/// The sign-in form with `status`. A fresh form token is set unless `token`
/// (one the browser already holds) is given.
fn login_page(
    headers: &HeaderMap,
    status: axum::http::StatusCode,
    token: Option<String>,
    error: Option<String>,
) -> Result<Response, ConsoleError> {
    let (csrf, fresh) = match token {
        Some(token) => (token, false),
        None => (random_hex()?, true),
    };
    let mut response = page(LoginPage {
        csrf: csrf.clone(),
        error,
    })?;
    *response.status_mut() = status;
    if fresh {
        response.headers_mut().insert(
            header::SET_COOKIE,
            login_cookie_header(&csrf, LOGIN_FORM_LIFETIME_S, over_https(headers))?,
        );
    }
    // The token is per browser: no cache may hand this page to another.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `GET /console/login`.
pub async fn login_form(headers: HeaderMap) -> Result<Response, ConsoleError> {
    login_page(&headers, axum::http::StatusCode::OK, None, None)
}

#[derive(serde::Deserialize)]
pub struct LoginInput {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

/// The sign-in form's token if the form echoed the one its cookie holds.
fn login_csrf(headers: &HeaderMap, presented: &str) -> Option<String> {
    let expected = cookie_value(headers, LOGIN_COOKIE)?;
    bool::from(presented.as_bytes().ct_eq(expected.as_bytes())).then_some(expected)
}

/// `POST /console/login`: the admin token for a session cookie.
pub async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    axum::Form(input): axum::Form<LoginInput>,
) -> Result<Response, ConsoleError> {
    let Some(form_token) = login_csrf(&headers, &input.csrf) else {
        // Checked before the admin token: a forged post learns nothing of it.
        tracing::warn!("a sign-in without the sign-in form's token was refused");
        return login_page(
            &headers,
            axum::http::StatusCode::FORBIDDEN,
            None,
            Some(
                "The sign-in form's security token is missing or wrong (the form may have \
                 expired, or the request did not come from it). Nothing was changed; sign in \
                 with this form."
                    .into(),
            ),
        );
    };
    let expected = s.settings.admin_token.as_bytes();
    let ok = !expected.is_empty() && bool::from(input.token.trim().as_bytes().ct_eq(expected));
    if !ok {
        return login_page(
            &headers,
            axum::http::StatusCode::FORBIDDEN,
            Some(form_token),
            Some("That is not the admin token.".into()),
        );
    }
    let id = random_hex()?;
    let now = now_ms();
    s.store
        .purge_console_sessions(now)
        .await
        .map_err(crate::api::ApiError::from)?;
    let row = ConsoleSession {
        id_hash: hash_id(&id),
        csrf_token: random_hex()?,
        created_at: now,
        expires_at: now + SESSION_LIFETIME_MS,
    };
    s.store
        .create_console_session(&row)
        .await
        .map_err(crate::api::ApiError::from)?;
    let session = Session { row };
    s.store
        .record_console_audit(&session.who(), "signed in", "console", now)
        .await
        .map_err(crate::api::ApiError::from)?;
    let mut response = Redirect::to("/console").into_response();
    let https = over_https(&headers);
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie_header(&id, SESSION_LIFETIME_MS / 1000, https)?,
    );
    // The form's token has done its work; a new sign-in takes a new form.
    response
        .headers_mut()
        .append(header::SET_COOKIE, login_cookie_header("", 0, https)?);
    Ok(response)
}

#[derive(serde::Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
}

/// `POST /console/logout`.
pub async fn logout(
    State(s): State<AppState>,
    session: Session,
    headers: HeaderMap,
    axum::Form(input): axum::Form<CsrfOnly>,
) -> Result<Response, ConsoleError> {
    session.check_csrf(input.csrf.as_deref())?;
    let now = now_ms();
    s.store
        .record_console_audit(&session.who(), "signed out", "console", now)
        .await
        .map_err(crate::api::ApiError::from)?;
    s.store
        .delete_console_session(&session.row.id_hash)
        .await
        .map_err(crate::api::ApiError::from)?;
    let mut response = Redirect::to("/console/login").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie_header("", 0, over_https(&headers))?,
    );
    Ok(response)
}
