//! OAuth 1.0a request signing (RFC 5849 §3), as Jira Server / Data Center
//! application links expect it: RSA-SHA1 with the consumer's private key.
//! HMAC-SHA1 is here too, for the RFC's own test vectors.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha1::{Digest, Sha1};
use trackbridge_plugin_sdk::url::{Url, decode, encode_component, parse_query};

/// RFC 5849 §3.6 percent-encoding: everything but `A-Z a-z 0-9 - . _ ~`,
/// upper-case hex, UTF-8 first. (The SDK's component encoding is exactly this.)
pub fn encode(s: &str) -> String {
    encode_component(s)
}

/// A consumer private key, parsed once. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct PrivateKey(RsaPrivateKey);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl PrivateKey {
    /// Parses a PEM RSA private key, PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`). The error never quotes the key.
    pub fn from_pem(pem: &str) -> Result<PrivateKey, String> {
        let pem = pem.trim();
        RsaPrivateKey::from_pkcs8_pem(pem)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(pem))
            .map(PrivateKey)
            .map_err(|_| {
                "the private key is not a PEM-encoded RSA private key (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`)".to_string()
            })
    }

    /// RSASSA-PKCS1-v1_5 with SHA-1 over `data`, blinded with host randomness.
    pub fn sign_sha1(&self, data: &[u8]) -> Vec<u8> {
        let digest = Sha1::digest(data);
        let mut rng = crate::rng::HostRng;
        // PKCS#1 v1.5 signing fails only for keys too small for a SHA-1
        // DigestInfo (< 368 bits), which no parseable Jira key is.
        self.0
            .sign_with_rng(&mut rng, Pkcs1v15Sign::new::<Sha1>(), &digest)
            .unwrap_or_default()
    }
}

/// How the signature is computed.
#[derive(Debug, Clone)]
pub enum Method {
    RsaSha1(Box<PrivateKey>),
    /// Consumer secret; the token secret is in [`Credentials::token_secret`].
    HmacSha1(String),
}

impl Method {
    fn name(&self) -> &'static str {
        match self {
            Method::RsaSha1(_) => "RSA-SHA1",
            Method::HmacSha1(_) => "HMAC-SHA1",
        }
    }
}

/// Who signs: the consumer and (after the dance) the access token.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub consumer_key: String,
    pub method: Method,
    pub token: Option<String>,
    /// Unused by RSA-SHA1 (RFC 5849 §3.4.3), part of the HMAC key otherwise.
    pub token_secret: String,
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

impl Credentials {
    /// The `oauth_*` parameters of one request, without the signature.
    pub fn protocol_parameters(&self, nonce: &Nonce) -> Vec<(String, String)> {
        let mut oauth = vec![
            ("oauth_consumer_key".to_string(), self.consumer_key.clone()),
            ("oauth_nonce".to_string(), nonce.nonce.clone()),
            (
                "oauth_signature_method".to_string(),
                self.method.name().to_string(),
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

    /// The base64 signature of `base_string`.
    pub fn sign(&self, base_string: &str) -> String {
        match &self.method {
            Method::RsaSha1(key) => STANDARD.encode(key.sign_sha1(base_string.as_bytes())),
            Method::HmacSha1(consumer_secret) => {
                let key = format!("{}&{}", encode(consumer_secret), encode(&self.token_secret));
                let mut mac = Hmac::<Sha1>::new_from_slice(key.as_bytes())
                    .expect("HMAC takes keys of any length");
                mac.update(base_string.as_bytes());
                STANDARD.encode(mac.finalize().into_bytes())
            }
        }
    }

    /// The `oauth_signature` for `method url` (query included) with an
    /// optional form body.
    pub fn signature(
        &self,
        method: &str,
        url: &Url,
        form_body: Option<&[u8]>,
        nonce: &Nonce,
    ) -> String {
        let mut params = request_parameters(url, form_body);
        params.extend(self.protocol_parameters(nonce));
        self.sign(&signature_base_string(method, url, &params))
    }

    /// The `Authorization` header value (§3.5.1): `OAuth k="v", ...` with
    /// names and values percent-encoded.
    pub fn authorization(
        &self,
        method: &str,
        url: &Url,
        form_body: Option<&[u8]>,
        nonce: &Nonce,
    ) -> String {
        let signature = self.signature(method, url, form_body, nonce);
        let mut oauth = self.protocol_parameters(nonce);
        oauth.push(("oauth_signature".to_string(), signature));
        let fields = oauth
            .iter()
            .map(|(k, v)| format!("{}=\"{}\"", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join(", ");
        format!("OAuth {fields}")
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

    /// The 1024-bit RSA test key of the OAuth test cases (wiki.oauth.net TestCases §9.3).
    pub(crate) const TEST_CASES_KEY: &str = crate::tests::TEST_KEY;

    fn hmac(consumer_key: &str, token: Option<&str>, token_secret: &str) -> Credentials {
        Credentials {
            consumer_key: consumer_key.into(),
            method: Method::HmacSha1("kd94hf93k423kf44".into()),
            token: token.map(str::to_string),
            token_secret: token_secret.into(),
        }
    }

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

    // RFC 5849 §1.2, the three HMAC-SHA1 steps (webhook-reliability §3.4).
    #[test]
    fn rfc5849_section_1_2_initiate() {
        let c = hmac("dpf43f3p2l4k3l03", None, "");
        let n = nonce(
            137131200,
            "wIjqoS",
            &[("oauth_callback", "http://printer.example.com/ready")],
        );
        let sig = c.signature(
            "POST",
            &url("https://photos.example.net/initiate"),
            None,
            &n,
        );
        assert_eq!(sig, "74KNZJeDHnMBp0EMJ9ZHt/XKycU=");
    }

    #[test]
    fn rfc5849_section_1_2_token() {
        let c = hmac(
            "dpf43f3p2l4k3l03",
            Some("hh5s93j4hdidpola"),
            "hdhd0244k9j7ao03",
        );
        let n = nonce(
            137131201,
            "walatlh",
            &[("oauth_verifier", "hfdp7dh39dks9884")],
        );
        let sig = c.signature("POST", &url("https://photos.example.net/token"), None, &n);
        assert_eq!(sig, "gKgrFCywp7rO0OXSjdot/IHF7IU=");
    }

    #[test]
    fn rfc5849_section_1_2_photos() {
        let c = hmac(
            "dpf43f3p2l4k3l03",
            Some("nnch734d00sl2jdk"),
            "pfkkdhi9sl3r4s00",
        );
        let n = nonce(137131202, "chapoH", &[]);
        let sig = c.signature(
            "GET",
            &url("http://photos.example.net/photos?file=vacation.jpg&size=original"),
            None,
            &n,
        );
        assert_eq!(sig, "MdpQcU8iPSUjWoN/UDMsK2sui9I=");
    }

    // RFC 5849 §3.4.1 normalization and base string example.
    #[test]
    fn rfc5849_section_3_4_1_base_string() {
        let u = url("http://example.com/request?b5=%3D%253D&a3=a&c%40=&a2=r%20b");
        let c = Credentials {
            consumer_key: "9djdj82h48djs9d2".into(),
            method: Method::HmacSha1("unused".into()),
            token: Some("kkk9d7dh3k39sjv7".into()),
            token_secret: String::new(),
        };
        let mut params = request_parameters(&u, Some(b"c2&a3=2+q"));
        params.extend(c.protocol_parameters(&nonce(137131201, "7d8f3e4a", &[])));
        assert_eq!(
            normalize_parameters(&params),
            "a2=r%20b&a3=2%20q&a3=a&b5=%3D%253D&c%40=&c2=&oauth_consumer_key=9djdj82h48djs9d2&oauth_nonce=7d8f3e4a&oauth_signature_method=HMAC-SHA1&oauth_timestamp=137131201&oauth_token=kkk9d7dh3k39sjv7"
        );
        assert_eq!(
            signature_base_string("post", &u, &params),
            "POST&http%3A%2F%2Fexample.com%2Frequest&a2%3Dr%2520b%26a3%3D2%2520q%26a3%3Da%26b5%3D%253D%25253D%26c%2540%3D%26c2%3D%26oauth_consumer_key%3D9djdj82h48djs9d2%26oauth_nonce%3D7d8f3e4a%26oauth_signature_method%3DHMAC-SHA1%26oauth_timestamp%3D137131201%26oauth_token%3Dkkk9d7dh3k39sjv7"
        );
    }

    // OAuth test cases §9.3: RSA-SHA1 (note the deliberate `vacaction`).
    const RSA_BASE_STRING: &str = "GET&http%3A%2F%2Fphotos.example.net%2Fphotos&file%3Dvacaction.jpg%26oauth_consumer_key%3Ddpf43f3p2l4k3l03%26oauth_nonce%3D13917289812797014437%26oauth_signature_method%3DRSA-SHA1%26oauth_timestamp%3D1196666512%26oauth_version%3D1.0%26size%3Doriginal";
    const RSA_SIGNATURE: &str = "jvTp/wX1TYtByB1m+Pbyo0lnCOLIsyGCH7wke8AUs3BpnwZJtAuEJkvQL2/9n4s5wUmUl4aCI4BwpraNx4RtEXMe5qg5T1LVTGliMRpKasKsW//e+RinhejgCuzoH26dyF8iY2ZZ/5D1ilgeijhV/vBka5twt399mXwaYdCwFYE=";

    fn rsa_credentials() -> Credentials {
        Credentials {
            consumer_key: "dpf43f3p2l4k3l03".into(),
            method: Method::RsaSha1(Box::new(PrivateKey::from_pem(TEST_CASES_KEY).unwrap())),
            token: None,
            token_secret: String::new(),
        }
    }

    #[test]
    fn oauth_test_cases_rsa_sha1() {
        let c = rsa_credentials();
        let n = Nonce {
            version: true,
            ..nonce(1196666512, "13917289812797014437", &[])
        };
        let u = url("http://photos.example.net/photos?file=vacaction.jpg&size=original");
        let mut params = request_parameters(&u, None);
        params.extend(c.protocol_parameters(&n));
        assert_eq!(signature_base_string("GET", &u, &params), RSA_BASE_STRING);
        assert_eq!(c.sign(RSA_BASE_STRING), RSA_SIGNATURE);
        assert_eq!(c.signature("GET", &u, None, &n), RSA_SIGNATURE);
    }

    #[test]
    fn header_format_and_round_trip() {
        let c = rsa_credentials();
        let n = Nonce {
            version: true,
            ..nonce(1196666512, "13917289812797014437", &[])
        };
        let u = url("http://photos.example.net/photos?file=vacaction.jpg&size=original");
        let header = c.authorization("GET", &u, None, &n);
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

    #[test]
    fn bad_keys_are_refused_without_quoting_them() {
        for bad in [
            "",
            "not a key",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
        ] {
            let e = PrivateKey::from_pem(bad).unwrap_err();
            assert!(e.contains("not a PEM-encoded RSA private key"), "{e}");
            assert!(!bad.is_empty() || !e.contains("AAAA"));
        }
        assert_eq!(
            format!("{:?}", PrivateKey::from_pem(TEST_CASES_KEY).unwrap()),
            "PrivateKey(<redacted>)"
        );
    }
}
