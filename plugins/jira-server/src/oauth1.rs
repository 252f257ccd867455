//! OAuth 1.0a request signing (RFC 5849 §3), as Jira Server / Data Center
//! application links expect it: RSA-SHA1 with the consumer's private key.
//!
//! The plugin builds the signature base string; the host signs it with the
//! private key, which the plugin only holds by handle.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use trackbridge_plugin_sdk::Result;
use trackbridge_plugin_sdk::secrets::{RsaHash, Secret};
use trackbridge_plugin_sdk::url::{Url, decode, encode_component, parse_query};

/// The only signature method Jira application links use with a key pair.
/// (HMAC-SHA1 needs the consumer secret, which incoming links do not have.)
pub const SIGNATURE_METHOD: &str = "RSA-SHA1";

/// RFC 5849 §3.6 percent-encoding: everything but `A-Z a-z 0-9 - . _ ~`,
/// upper-case hex, UTF-8 first. (The SDK's component encoding is exactly this.)
pub fn encode(s: &str) -> String {
    encode_component(s)
}

/// Who signs: the consumer and (after the dance) the access token. Both are
/// sent in clear in every `Authorization` header, so neither is a secret;
/// the private key, which is, stays with the host.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub consumer_key: String,
    pub token: Option<String>,
}

/// The per-request values: `oauth_timestamp`, `oauth_nonce`, and extra
/// protocol parameters (`oauth_callback`, `oauth_verifier`) where needed.
#[derive(Debug, Clone, Default)]
pub struct Nonce {
    pub timestamp: u64,
    pub nonce: String,
    pub extra: Vec<(String, String)>,
    /// Whether to send `oauth_version=1.0` (optional per RFC 5849; Jira's
    /// libraries send it).
    pub version: bool,
}

/// RFC 5849 §3.4.1.2: lower-case scheme and host, no default port, the path
/// (`/` when empty), no query or fragment.
pub fn base_uri(url: &Url) -> String {
    let default_port = match url.scheme.as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    let authority = match url.port {
        Some(p) if Some(p) != default_port => format!("{}:{p}", url.host),
        _ => url.host.clone(),
    };
    let path = if url.path.is_empty() { "/" } else { &url.path };
    format!("{}://{authority}{path}", url.scheme)
}

/// RFC 5849 §3.4.1.3.2: encode names and values, sort by name then value,
/// join `name=value` with `&`.
pub fn normalize_parameters(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> =
        params.iter().map(|(k, v)| (encode(k), encode(v))).collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// RFC 5849 §3.4.1: `METHOD&enc(base URI)&enc(normalized parameters)`.
/// `params` are the decoded query, form-body and `oauth_*` parameters.
pub fn signature_base_string(method: &str, url: &Url, params: &[(String, String)]) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        encode(&base_uri(url)),
        encode(&normalize_parameters(params))
    )
}

/// The request parameters that are signed besides the `oauth_*` ones: the
/// URL's query and, for a single-part form body, the body's (§3.4.1.3.1).
pub fn request_parameters(url: &Url, form_body: Option<&[u8]>) -> Vec<(String, String)> {
    let mut params = url.query.as_deref().map(parse_query).unwrap_or_default();
    if let Some(body) = form_body {
        params.extend(parse_query(&String::from_utf8_lossy(body)));
    }
    params
}

/// The base64 RSA-SHA1 signature of `base_string` with `private_key`.
pub fn sign(private_key: &Secret, base_string: &str) -> Result<String> {
    let signature = private_key.rsa_sign(RsaHash::Sha1, base_string.as_bytes())?;
    Ok(STANDARD.encode(signature))
}

impl Credentials {
    /// The `oauth_*` parameters of one request, without the signature.
    pub fn protocol_parameters(&self, nonce: &Nonce) -> Vec<(String, String)> {
        let mut oauth = vec![
            ("oauth_consumer_key".to_string(), self.consumer_key.clone()),
            ("oauth_nonce".to_string(), nonce.nonce.clone()),
            (
                "oauth_signature_method".to_string(),
                SIGNATURE_METHOD.to_string(),
            ),
            ("oauth_timestamp".to_string(), nonce.timestamp.to_string()),
        ];
        if let Some(token) = &self.token {
            oauth.push(("oauth_token".to_string(), token.clone()));
        }
        if nonce.version {
            oauth.push(("oauth_version".to_string(), "1.0".to_string()));
        }
        oauth.extend(nonce.extra.iter().cloned());
        oauth
    }

    /// The signature base string for `method url` (query included) with an
    /// optional form body.
    pub fn base_string(
        &self,
        method: &str,
        url: &Url,
        form_body: Option<&[u8]>,
        nonce: &Nonce,
    ) -> String {
        let mut params = request_parameters(url, form_body);
        params.extend(self.protocol_parameters(nonce));
        signature_base_string(method, url, &params)
    }

    /// The `Authorization` header value (§3.5.1): `OAuth k="v", ...` with
    /// names and values percent-encoded, signed with `private_key`.
    pub fn authorization(
        &self,
        method: &str,
        url: &Url,
        form_body: Option<&[u8]>,
        nonce: &Nonce,
        private_key: &Secret,
    ) -> Result<String> {
        let signature = sign(
            private_key,
            &self.base_string(method, url, form_body, nonce),
        )?;
        let mut oauth = self.protocol_parameters(nonce);
        oauth.push(("oauth_signature".to_string(), signature));
        let fields = oauth
            .iter()
            .map(|(k, v)| format!("{}=\"{}\"", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join(", ");
        Ok(format!("OAuth {fields}"))
    }
}

/// Parses an `Authorization: OAuth ...` header into decoded pairs (`realm`
/// included); `None` when it is not one.
pub fn parse_authorization(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value.trim();
    let (scheme, rest) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("OAuth") {
        return None;
    }
    rest.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=')?;
            let v = v.trim().strip_prefix('"')?.strip_suffix('"')?;
            Some((decode(k.trim(), false), decode(v, false)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use trackbridge_plugin_sdk::secrets;
    use trackbridge_plugin_sdk::testing;

    fn nonce(ts: u64, n: &str, extra: &[(&str, &str)]) -> Nonce {
        Nonce {
            timestamp: ts,
            nonce: n.into(),
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            version: false,
        }
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // RFC 5849 §3.4.1 normalization and base string example (its parameters
    // name HMAC-SHA1; only the string building is under test).
    #[test]
    fn rfc5849_section_3_4_1_base_string() {
        let u = url("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b");
        let mut params = request_parameters(&u, Some(b"c2&a3=2+q"));
        params.extend(pairs(&[
            ("oauth_consumer_key", "9djdj82h48djs9d2"),
            ("oauth_token", "kkk9d7dh3k39sjv7"),
            ("oauth_signature_method", "HMAC-SHA1"),
            ("oauth_timestamp", "137131201"),
            ("oauth_nonce", "7d8f3e4a"),
        ]));
        assert_eq!(
            normalize_parameters(&params),
            "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7"
        );
        assert_eq!(
            signature_base_string("post", &u, &params),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    #[test]
    fn protocol_parameters_follow_the_credentials() {
        let c = Credentials {
            consumer_key: "ck".into(),
            token: Some("tok".into()),
        };
        let n = nonce(5, "n", &[("oauth_verifier", "v")]);
        assert_eq!(
            c.protocol_parameters(&n),
            pairs(&[
                ("oauth_consumer_key", "ck"),
                ("oauth_nonce", "n"),
                ("oauth_signature_method", "RSA-SHA1"),
                ("oauth_timestamp", "5"),
                ("oauth_token", "tok"),
                ("oauth_verifier", "v"),
            ])
        );
    }

    // OAuth test cases §9.3: RSA-SHA1 (note the deliberate `vacaction`).
    const RSA_BASE_STRING: &str = "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacaction.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3D13917289812797014437%26oauth_signature_method%3DRSA-SHA1%26oauth_timestamp%3D1196666512%26oauth_version%3D1.0%26size%3Doriginal";
    const RSA_SIGNATURE: &str = "jvTp/wX1TYtByB1m+Pbyo0lnCOLIsyGCH7wke8AUs3BpnwZJtAuEJkvQL2/9n4s5wUmUl4aCI4BwpraNx4RtEXMe5qg5T1LVTGliMRpKasKsW//e+RinhejgCuzoH26dyF8iY2ZZ/5D1ilgeijhV/vBka5twt399mXwaYdCwFYE=";

    fn test_case() -> (Credentials, Nonce, Url) {
        let c = Credentials {
            consumer_key: "dpf43f3p2l4k3l03".into(),
            token: None,
        };
        let n = Nonce {
            version: true,
            ..nonce(1196666512, "13917289812797014437", &[])
        };
        let u = url("http://photos.example.net/photos?file=vacaction.jpg&size=original");
        (c, n, u)
    }

    /// The test cases' key as the current integration's `private_key`.
    fn with_test_key() -> Secret {
        testing::reset();
        testing::add_integration(
            "site",
            json!({}),
            json!({"private_key": crate::tests::TEST_KEY}),
        );
        testing::make_current("site");
        secrets::require("private_key").unwrap()
    }

    #[test]
    fn oauth_test_cases_rsa_sha1() {
        let key = with_test_key();
        let (c, n, u) = test_case();
        assert_eq!(c.base_string("GET", &u, None, &n), RSA_BASE_STRING);
        assert_eq!(sign(&key, RSA_BASE_STRING).unwrap(), RSA_SIGNATURE);
        assert_eq!(
            testing::secret_uses(),
            vec![
                ("private_key".to_string(), "get".to_string()),
                ("private_key".to_string(), "rsa-sign".to_string())
            ]
        );
    }

    #[test]
    fn header_format_and_round_trip() {
        let key = with_test_key();
        let (c, n, u) = test_case();
        let header = c.authorization("GET", &u, None, &n, &key).unwrap();
        let sig = encode(RSA_SIGNATURE);
        assert_eq!(
            header,
            format!(
                "OAuth oauth_consumer_key=\"dpf43f3p2l4k3l03\", oauth_nonce=\"13917289812797014437\", oauth_signature_method=\"RSA-SHA1\", oauth_timestamp=\"1196666512\", oauth_version=\"1.0\", oauth_signature=\"{sig}\""
            )
        );
        let parsed = parse_authorization(&header).unwrap();
        assert!(parsed.contains(&("oauth_signature".into(), RSA_SIGNATURE.into())));
        assert_eq!(parse_authorization("Bearer x"), None);
        assert_eq!(parse_authorization("OAuth a=unquoted"), None);
    }

    #[test]
    fn a_secret_that_is_no_key_fails_the_signature() {
        testing::reset();
        testing::add_integration("site", json!({}), json!({"private_key": "not a key"}));
        testing::make_current("site");
        let key = secrets::require("private_key").unwrap();
        let (c, n, u) = test_case();
        let e = c.authorization("GET", &u, None, &n, &key).unwrap_err();
        assert!(e.message().contains("private_key"), "{e}");
        assert!(!e.message().contains("not a key"), "{e}");
    }

    #[test]
    fn base_uri_rules() {
        assert_eq!(
            base_uri(&url("HTTP://Example.COM:80/r%20v/X?id=123")),
            "http://example.com/r%20v/X"
        );
        assert_eq!(
            base_uri(&url("https://www.example.net:8080/?q=1")),
            "https://www.example.net:8080/"
        );
        assert_eq!(
            base_uri(&url("https://jira.example.com:443")),
            "https://jira.example.com/"
        );
    }
}
