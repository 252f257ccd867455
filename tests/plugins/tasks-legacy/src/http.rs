//! A copy of `tests/plugins/tasks/src/http.rs`, on purpose: both plugins are frozen test
//! fixtures of different contract versions (0.2.0 and 0.1.0), and neither may change with
//! the other. Keep the two copies apart rather than sharing a module.
//!
//! A small blocking HTTP client over `wasi:http/outgoing-handler`, and random
//! bytes from `wasi:random`. Natively (the workspace's checks) both are stubs:
//! the plugin only ever runs as a component.

/// An answer from the tracker.
pub struct Response {
    pub status: u16,
    /// Names lower-case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `scheme`, `authority` and `path?query` of an `http(s)://` URL.
fn split_url(url: &str) -> Result<(bool, &str, &str), String> {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(format!("not an http(s) URL: {url}"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("URL without a host: {url}"));
    }
    Ok((https, authority, path))
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::{Response, split_url};
    use wasi::http::outgoing_handler;
    use wasi::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};
    use wasi::io::streams::StreamError;

    const WRITE_CHUNK: usize = 4096;

    /// Send one request and read the whole answer. `Err` is a transport failure
    /// (denied host, refused connection), described for an upstream error.
    pub fn send(
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<&[u8]>,
    ) -> Result<Response, String> {
        let (https, authority, path) = split_url(url)?;
        let mut entries: Vec<(String, Vec<u8>)> = headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
            .collect();
        if let Some(body) = body {
            entries.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
        let fields =
            Fields::from_list(&entries).map_err(|e| format!("invalid request header: {e:?}"))?;
        let request = OutgoingRequest::new(fields);
        let method = match method {
            "GET" => Method::Get,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            other => Method::Other(other.to_string()),
        };
        let bad = |what: &str| format!("could not set the request {what}");
        request.set_method(&method).map_err(|()| bad("method"))?;
        let scheme = if https { Scheme::Https } else { Scheme::Http };
        request
            .set_scheme(Some(&scheme))
            .map_err(|()| bad("scheme"))?;
        request
            .set_authority(Some(authority))
            .map_err(|()| bad("authority"))?;
        request
            .set_path_with_query(Some(path))
            .map_err(|()| bad("path"))?;
        let outgoing_body = request.body().map_err(|()| bad("body"))?;
        let future = outgoing_handler::handle(request, None)
            .map_err(|e| format!("request to {authority} failed: {e:?}"))?;
        if let Some(bytes) = body {
            let stream = outgoing_body.write().map_err(|()| bad("body stream"))?;
            for chunk in bytes.chunks(WRITE_CHUNK) {
                stream
                    .blocking_write_and_flush(chunk)
                    .map_err(|e| format!("writing to {authority} failed: {e:?}"))?;
            }
            drop(stream);
        }
        OutgoingBody::finish(outgoing_body, None)
            .map_err(|e| format!("request to {authority} failed: {e:?}"))?;
        let response = loop {
            match future.get() {
                Some(Ok(Ok(response))) => break response,
                Some(Ok(Err(code))) => {
                    return Err(format!("request to {authority} failed: {code:?}"));
                }
                Some(Err(())) => return Err("response already taken".into()),
                None => future.subscribe().block(),
            }
        };
        let status = response.status();
        let headers = response
            .headers()
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        let incoming = response
            .consume()
            .map_err(|()| "response body already consumed".to_string())?;
        let stream = incoming
            .stream()
            .map_err(|()| "response body stream already taken".to_string())?;
        let mut body = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => body.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(e) => return Err(format!("reading from {authority} failed: {e:?}")),
            }
        }
        // Child resources go before their parents, or the host traps.
        drop(stream);
        drop(incoming);
        drop(response);
        Ok(Response {
            status,
            headers,
            body,
        })
    }

    pub fn random_bytes(len: usize) -> Vec<u8> {
        wasi::random::random::get_random_bytes(len as u64)
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::{Response, split_url};

    pub fn send(
        _method: &str,
        url: &str,
        _headers: &[(String, String)],
        _body: Option<&[u8]>,
    ) -> Result<Response, String> {
        split_url(url)?;
        Err("outbound HTTP exists only inside a component".into())
    }

    pub fn random_bytes(_len: usize) -> Vec<u8> {
        // Never a predictable secret: a native build has no source of randomness here.
        panic!("random bytes exist only inside a component")
    }
}

pub use imp::{random_bytes, send};
