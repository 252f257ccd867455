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
            if let Some(swapped) = self.swap(text, &mut used, |real| real.to_owned())? {
                *value = http::HeaderValue::from_str(&swapped).map_err(|_| self.unusable(&used))?;
            }
        }
        let uri = request.uri().clone();
        let pq = uri.path_and_query().map(|p| p.as_str()).unwrap_or_default();
        let encode =
            |real: &str| percent_encoding::utf8_percent_encode(real, PATH_SEGMENT).to_string();
        if let Some(swapped) = self.swap(pq, &mut used, encode)? {
            let mut parts = uri.into_parts();
            parts.path_and_query = Some(swapped.parse().map_err(|_| self.unusable(&used))?);
            *request.uri_mut() = http::Uri::from_parts(parts).map_err(|_| self.unusable(&used))?;
        }
        Ok(used)
    }

    /// `text` with every stand-in in it replaced by `render(secret value)`,
    /// or none when it holds none; the secrets used are added to `used`.
    fn swap(
        &self,
        text: &str,
        used: &mut Vec<String>,
        render: impl Fn(&str) -> String,
    ) -> Result<Option<String>, Unusable> {
        if !text.contains(PREFIX) {
            return Ok(None);
        }
        let mut text = text.to_owned();
        for s in &self.issued {
            if text.contains(&s.token) {
                let real = s
                    .value
                    .as_ref()
                    .map_err(|_| Unusable(s.secret.clone(), NotAHeaderValue))?;
                text = text.replace(&s.token, &render(real));
                used.push(s.secret.clone());
            }
        }
        Ok(Some(text))
    }

    fn unusable(&self, used: &[String]) -> Unusable {
        Unusable(used.last().cloned().unwrap_or_default(), NotAHeaderValue)
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
