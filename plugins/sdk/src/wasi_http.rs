//! The wasm32 implementation of [`crate::http::Request::send`].

use wasi::http::outgoing_handler;
use wasi::http::types::{
    ErrorCode, Fields, Method as WasiMethod, OutgoingBody, OutgoingRequest, RequestOptions, Scheme,
};
use wasi::io::streams::StreamError;

use crate::error::{Error, Result};
use crate::http::{Method, Request, Response};

/// Bodies are written in pieces no larger than what `check-write` guarantees
/// to accept in one blocking call.
const WRITE_CHUNK: usize = 4096;
const READ_CHUNK: u64 = 64 * 1024;

pub(crate) fn send(request: &Request) -> Result<Response> {
    let url = request.parsed_url()?;
    let target = url.authority.clone();

    let mut entries: Vec<(String, Vec<u8>)> = request
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    if let Some(body) = &request.body {
        // A known length avoids chunked encoding, which some tracker proxies mishandle.
        if !entries.iter().any(|(k, _)| k == "content-length") {
            entries.push(("content-length".into(), body.len().to_string().into_bytes()));
        }
    }
    let headers = Fields::from_list(&entries)
        .map_err(|e| Error::internal(format!("invalid request header: {e:?}")))?;

    let outgoing = OutgoingRequest::new(headers);
    let method = match request.method {
        Method::Get => WasiMethod::Get,
        Method::Post => WasiMethod::Post,
        Method::Put => WasiMethod::Put,
        Method::Patch => WasiMethod::Patch,
        Method::Delete => WasiMethod::Delete,
        Method::Head => WasiMethod::Head,
    };
    let scheme = if url.scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let bad = |what: &str| Error::internal(format!("could not set the request {what}"));
    outgoing.set_method(&method).map_err(|()| bad("method"))?;
    outgoing
        .set_scheme(Some(&scheme))
        .map_err(|()| bad("scheme"))?;
    outgoing
        .set_authority(Some(&url.authority))
        .map_err(|()| bad("authority"))?;
    outgoing
        .set_path_with_query(Some(&url.path_with_query()))
        .map_err(|()| bad("path"))?;
    let body = outgoing.body().map_err(|()| bad("body"))?;

    // The body is written only after `handle`: before it, nothing drains the
    // stream and a large body would block forever.
    let options = match request.timeout {
        Some(timeout) => {
            let nanos = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
            let options = RequestOptions::new();
            let bad = |what: &str| Error::internal(format!("could not set the {what} timeout"));
            options
                .set_connect_timeout(Some(nanos))
                .map_err(|()| bad("connect"))?;
            options
                .set_first_byte_timeout(Some(nanos))
                .map_err(|()| bad("first-byte"))?;
            options
                .set_between_bytes_timeout(Some(nanos))
                .map_err(|()| bad("between-bytes"))?;
            Some(options)
        }
        None => None,
    };
    let future = outgoing_handler::handle(outgoing, options).map_err(|e| transport(&target, &e))?;
    if let Some(bytes) = &request.body {
        let stream = body.write().map_err(|()| bad("body stream"))?;
        for chunk in bytes.chunks(WRITE_CHUNK) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| stream_error(&target, e))?;
        }
        drop(stream);
    }
    OutgoingBody::finish(body, None).map_err(|e| transport(&target, &e))?;

    let response = loop {
        match future.get() {
            Some(Ok(Ok(response))) => break response,
            Some(Ok(Err(code))) => return Err(transport(&target, &code)),
            Some(Err(())) => return Err(Error::internal("response already taken")),
            None => future.subscribe().block(),
        }
    };
    let status = response.status();
    let headers = {
        let fields = response.headers();
        fields
            .entries()
            .into_iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    };
    let incoming = response
        .consume()
        .map_err(|()| Error::internal("response body already consumed"))?;
    let stream = incoming
        .stream()
        .map_err(|()| Error::internal("response body stream already taken"))?;
    let mut body = Vec::new();
    loop {
        match stream.blocking_read(READ_CHUNK) {
            Ok(chunk) => body.extend_from_slice(&chunk),
            Err(StreamError::Closed) => break,
            Err(e) => return Err(stream_error(&target, e)),
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

fn transport(target: &str, code: &ErrorCode) -> Error {
    match code {
        ErrorCode::HttpRequestDenied => Error::unreachable(format!(
            "{target} is not an allowed host of this integration (HTTP-request-denied)"
        )),
        other => Error::unreachable(format!("request to {target} failed: {other:?}")),
    }
}

fn stream_error(target: &str, e: StreamError) -> Error {
    match e {
        StreamError::Closed => Error::unreachable(format!("connection to {target} closed early")),
        StreamError::LastOperationFailed(io) => match wasi::http::types::http_error_code(&io) {
            Some(code) => transport(target, &code),
            None => Error::unreachable(format!(
                "I/O error talking to {target}: {}",
                io.to_debug_string()
            )),
        },
    }
}
