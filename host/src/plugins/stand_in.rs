//! Stand-ins: opaque strings a plugin puts where a secret goes in an outbound
//! request (a header, a path segment), swapped for the real value by the
//! outbound gate as the request leaves — and only in a request to one of the
//! current integration's own hosts. The plugin never holds the value; a
//! stand-in it logs or sends elsewhere is worthless once its call ends.

use super::secret_ops::NotAHeaderValue;

/// What every stand-in starts with, so the gate looks no further in requests
/// that carry none.
const PREFIX: &str = "tbsecret-";

struct StandIn {
    token: String,
    /// The secret's name, for the log.
    secret: String,
    value: Result<String, NotAHeaderValue>,
}

/// The stand-ins one call has issued.
#[derive(Default)]
pub struct StandIns {
    issued: Vec<StandIn>,
}

/// A request carried a stand-in whose secret cannot be a header value.
#[derive(Debug, thiserror::Error)]
#[error("secret `{0}` cannot be sent in a request header: {1}")]
pub struct Unusable(pub String, pub NotAHeaderValue);

impl StandIns {
    /// A new stand-in for `value` (the header value the secret makes).
    pub fn issue(&mut self, secret: &str, value: Result<String, NotAHeaderValue>) -> String {
        let mut random = [0u8; 16];
        // Without randomness a stand-in would be guessable across calls; a
        // host that has none cannot run plugins safely anyway.
        getrandom::fill(&mut random).expect("the operating system's random source failed");
        let token = format!("{PREFIX}{}", hex(&random));
        self.issued.push(StandIn {
            token: token.clone(),
            secret: secret.to_owned(),
            value,
        });
        token
    }

    /// Swap the stand-ins in `request`'s header values and path for their
    /// secrets; returns the names of the secrets sent.
    pub fn apply<B>(&self, request: &mut http::Request<B>) -> Result<Vec<String>, Unusable> {
        let mut used = Vec::new();
        if self.issued.is_empty() {
            return Ok(used);
        }
        for value in request.headers_mut().values_mut() {
            let Ok(text) = value.to_str() else { continue };
            if !text.contains(PREFIX) {
                continue;
            }
            let mut text = text.to_owned();
            for s in &self.issued {
                if text.contains(&s.token) {
                    let real = s
                        .value
                        .as_ref()
                        .map_err(|_| Unusable(s.secret.clone(), NotAHeaderValue))?;
                    text = text.replace(&s.token, real);
                    used.push(s.secret.clone());
                }
            }
            *value = http::HeaderValue::from_str(&text)
                .map_err(|_| Unusable(used.last().cloned().unwrap_or_default(), NotAHeaderValue))?;
        }
        let uri = request.uri();
        if let Some(pq) = uri.path_and_query().map(|p| p.as_str().to_owned())
            && pq.contains(PREFIX)
        {
            let mut pq = pq;
            for s in &self.issued {
                if pq.contains(&s.token) {
                    let real = s
                        .value
                        .as_ref()
                        .map_err(|_| Unusable(s.secret.clone(), NotAHeaderValue))?;
                    let encoded =
                        percent_encoding::utf8_percent_encode(real, PATH_SEGMENT).to_string();
                    pq = pq.replace(&s.token, &encoded);
                    used.push(s.secret.clone());
                }
            }
            let mut parts = uri.clone().into_parts();
            parts.path_and_query = Some(pq.parse().map_err(|_| {
                Unusable(used.last().cloned().unwrap_or_default(), NotAHeaderValue)
            })?);
            *request.uri_mut() = http::Uri::from_parts(parts)
                .map_err(|_| Unusable(used.last().cloned().unwrap_or_default(), NotAHeaderValue))?;
        }
        Ok(used)
    }
}

/// What may stay unescaped in a path segment (RFC 3986 unreserved).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, auth: &str) -> http::Request<()> {
        http::Request::builder()
            .uri(uri)
            .header("authorization", auth)
            .header("x-other", "plain")
            .body(())
            .unwrap()
    }

    #[test]
    fn a_stand_in_in_a_header_becomes_the_secret_and_others_stay() {
        let mut s = StandIns::default();
        let token = s.issue("api_token", Ok("Bearer s3cr3t".into()));
        let mut r = request("https://t.example/api", &token);
        assert_eq!(s.apply(&mut r).unwrap(), vec!["api_token".to_string()]);
        assert_eq!(r.headers()["authorization"], "Bearer s3cr3t");
        assert_eq!(r.headers()["x-other"], "plain");
    }

    #[test]
    fn a_stand_in_in_the_path_becomes_the_percent_encoded_secret() {
        let mut s = StandIns::default();
        let token = s.issue("hook", Ok("a/b c".into()));
        let mut r = request(&format!("https://t.example/hooks/1/{token}?wait=true"), "x");
        s.apply(&mut r).unwrap();
        assert_eq!(r.uri().path(), "/hooks/1/a%2Fb%20c");
        assert_eq!(r.uri().query(), Some("wait=true"));
    }

    #[test]
    fn a_stand_in_of_another_call_is_left_as_it_is() {
        let mut first = StandIns::default();
        let token = first.issue("api_token", Ok("Bearer s3cr3t".into()));
        let mut second = StandIns::default();
        second.issue("api_token", Ok("Bearer s3cr3t".into()));
        let mut r = request("https://t.example/api", &token);
        assert!(second.apply(&mut r).unwrap().is_empty());
        assert_eq!(r.headers()["authorization"], token.as_str());
    }

    #[test]
    fn an_unusable_secret_fails_the_request_without_showing_it() {
        let mut s = StandIns::default();
        let token = s.issue("api_token", Err(NotAHeaderValue));
        let mut r = request("https://t.example/api", &token);
        let err = s.apply(&mut r).unwrap_err();
        assert!(err.to_string().contains("api_token"));
    }
}
