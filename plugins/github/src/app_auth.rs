//! GitHub App authentication (spec §2.1): the RS256 app JWT, and the
//! installation access token minted with it, kept as a remembered secret
//! and refreshed before its hour runs out.

use serde_json::{Value, json};
use trackbridge_plugin_sdk::http::Method;
use trackbridge_plugin_sdk::secrets::{self, HeaderFormat, Secret};
use trackbridge_plugin_sdk::{Error, Result, cache, clock, integration, json as j, jwt, time};

use crate::api::{Client, check};

/// The remembered installation token's name.
pub const TOKEN_SECRET: &str = "installation_token";
/// Cache key of the remembered token's expiry (ms since epoch).
pub const TOKEN_EXPIRY_KEY: &str = "installation_token_expires_ms";
/// A token is replaced this long before GitHub's `expires_at`, so no call
/// starts with a token that dies on the way.
pub const REFRESH_MARGIN_SECS: u64 = 300;
/// GitHub's clock-drift advice: `iat` one minute in the past.
const JWT_BACKDATE_SECS: u64 = 60;
/// Under GitHub's 10-minute maximum.
const JWT_LIFETIME_SECS: u64 = 540;

/// The App JWT (`header.claims.signature`), signed by the host with `key`.
pub fn app_jwt(app_id: &str, key: &Secret) -> Result<String> {
    let now = clock::now_secs();
    // A numeric App id goes out as a number, a client id as a string.
    let iss = app_id
        .parse::<u64>()
        .map_or_else(|_| json!(app_id), |n| json!(n));
    let claims = json!({"iat": now.saturating_sub(JWT_BACKDATE_SECS), "exp": now + JWT_LIFETIME_SECS, "iss": iss});
    jwt::rs256(key, &claims.to_string())
}

/// An installation access token as GitHub issued it.
pub struct Minted {
    pub token: String,
    pub expires_at_ms: u64,
}

/// `POST /app/installations/{id}/access_tokens` with a client carrying the JWT.
pub fn mint(jwt_client: &Client, installation_id: u64) -> Result<Minted> {
    let path = format!("/app/installations/{installation_id}/access_tokens");
    let response = jwt_client.send(Method::Post, &path, None)?;
    let response = match response.status {
        404 => {
            return Err(Error::invalid_input(format!(
                "GitHub knows no installation {installation_id} of this App"
            )));
        }
        _ => check(response, "the installation token")?,
    };
    let body: Value = response.json()?;
    let token = j::non_empty_str_at(&body, &["token"])
        .ok_or_else(|| Error::upstream(response.status, "GitHub issued no installation token"))?;
    let expires_at_ms = j::str_at(&body, &["expires_at"])
        .and_then(time::parse_ms)
        .ok_or_else(|| {
            Error::upstream(response.status, "the installation token has no expires_at")
        })?;
    Ok(Minted {
        token: token.to_string(),
        expires_at_ms,
    })
}

/// Seconds a value may be kept: until `expires_at_ms` minus the margin (at least 1).
fn keep_secs(expires_at_ms: u64) -> u32 {
    let left = (expires_at_ms / 1000).saturating_sub(clock::now_secs() + REFRESH_MARGIN_SECS);
    u32::try_from(left).unwrap_or(u32::MAX).max(1)
}

fn app_id_and_installation() -> Result<(String, u64, String)> {
    let current = integration::require_current()?;
    let meta = &current.metadata;
    let app_id = j::str_at(meta, &["app_id"])
        .ok_or_else(|| Error::internal("the integration has no app_id (reinstall it)"))?;
    let installation = j::u64_at(meta, &["installation_id"])
        .ok_or_else(|| Error::internal("the integration has no installation_id (reinstall it)"))?;
    let api_url = j::str_at(meta, &["api_url"])
        .ok_or_else(|| Error::internal("the integration has no api_url (reinstall it)"))?;
    Ok((app_id.to_string(), installation, api_url.to_string()))
}

/// A stand-in `Authorization` value carrying a fresh App JWT, for the
/// current integration (the `/app/...` endpoints).
pub fn jwt_authorization() -> Result<String> {
    let (app_id, _, _) = app_id_and_installation()?;
    let jwt = app_jwt(&app_id, &secrets::require("private_key")?)?;
    let held = secrets::remember("app_jwt", jwt.as_bytes(), JWT_LIFETIME_SECS as u32 - 60);
    Ok(held.stand_in(&HeaderFormat::Prefixed("Bearer ".into())))
}

/// A stand-in `Authorization` value carrying the current integration's
/// installation token: the remembered one while it has more than the margin
/// left, else a new one (`force`: always a new one).
pub fn installation_authorization(force: bool) -> Result<String> {
    let bearer = HeaderFormat::Prefixed("Bearer ".into());
    if !force
        && let Some(expires) = cache::get_json::<u64>(TOKEN_EXPIRY_KEY)
        && expires / 1000 > clock::now_secs() + REFRESH_MARGIN_SECS
        && let Some(token) = secrets::get(TOKEN_SECRET)
    {
        return Ok(token.stand_in(&bearer));
    }
    let (_, installation, api_url) = app_id_and_installation()?;
    let minted = mint(&Client::new(&api_url, jwt_authorization()?), installation)?;
    let keep = keep_secs(minted.expires_at_ms);
    let token = secrets::remember(TOKEN_SECRET, minted.token.as_bytes(), keep);
    cache::set_json(TOKEN_EXPIRY_KEY, &minted.expires_at_ms, keep);
    Ok(token.stand_in(&bearer))
}

/// The refresh hook of an App client: a new token after a 401.
pub fn refresh() -> Result<Option<String>> {
    installation_authorization(true).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::Verifier;
    use trackbridge_plugin_sdk::http::Response;
    use trackbridge_plugin_sdk::testing;

    const KEY: &str = include_str!("../../../tests/fixtures/github/test-app-key.pem");
    const NOW_MS: u64 = 1_700_000_000_000;

    fn installed() {
        testing::reset();
        testing::set_now_ms(NOW_MS);
        testing::add_integration(
            "api.github.com:1",
            json!({"auth": "app", "app_id": "42", "installation_id": 7, "api_url": "https://api.github.com"}),
            json!({"private_key": KEY, "webhook_secret": "s"}),
        );
        assert!(testing::make_current("api.github.com:1"));
    }

    #[test]
    fn the_app_jwt_is_rs256_with_backdated_iat() {
        installed();
        let jwt = app_jwt("42", &secrets::require("private_key").unwrap()).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(
            claims,
            json!({"iat": 1_699_999_940u64, "exp": 1_700_000_540u64, "iss": 42})
        );
        let public = rsa::RsaPrivateKey::from_pkcs8_pem(KEY)
            .unwrap()
            .to_public_key();
        let signature =
            rsa::pkcs1v15::Signature::try_from(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap()[..])
                .unwrap();
        rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .expect("the signature verifies with the App's public key");
    }

    #[test]
    fn the_installation_token_is_minted_once_and_reused_until_the_margin() {
        installed();
        testing::on_http(|r| {
            assert_eq!(
                r.url,
                "https://api.github.com/app/installations/7/access_tokens"
            );
            assert!(
                r.header_value("authorization")
                    .unwrap()
                    .starts_with("Bearer ey")
            );
            // An hour from NOW_MS.
            Ok(Response::json_body(
                201,
                &json!({"token": "ghs_one", "expires_at": "2023-11-14T23:13:20Z"}),
            ))
        });
        let first = installation_authorization(false).unwrap();
        let again = installation_authorization(false).unwrap();
        assert_eq!(
            testing::requests().len(),
            1,
            "the second call reuses the token"
        );
        assert!(!first.contains("ghs_one") && !again.contains("ghs_one"));
        let (_, ttl) = testing::cache_entry(TOKEN_EXPIRY_KEY).unwrap();
        assert_eq!(ttl, 3600 - 300);

        // Within the margin of the expiry a new token is minted.
        testing::set_now_ms(NOW_MS + (3600 - 299) * 1000);
        installation_authorization(false).unwrap();
        assert_eq!(testing::requests().len(), 2);
    }

    #[test]
    fn an_unknown_installation_is_named() {
        installed();
        testing::on_http(|_| Ok(Response::json_body(404, &json!({"message": "Not Found"}))));
        let err = installation_authorization(false).unwrap_err();
        assert!(err.message().contains("installation 7"), "{err:?}");
    }
}
