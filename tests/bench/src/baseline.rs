//! The bare hyper server the host is compared with: it reads the whole body and
//! answers 200, nothing else — the most any webhook server on this machine and
//! runtime can acknowledge. In relay mode it also sends one request to a
//! tracker simulator before answering, the least any webhook-to-tracker sync
//! can cost.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the server does with a request once the body is read.
#[derive(Clone)]
pub enum Mode {
    Ack,
    /// `PUT` this URL (an empty JSON object) and answer once it answered.
    Relay(String),
}

/// A running bare server; stops accepting when dropped.
pub struct BareServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for BareServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    mode: Mode,
    relay: reqwest::Client,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let status = match request.into_body().collect().await {
        Err(_) => StatusCode::BAD_REQUEST,
        Ok(_body) => match mode {
            Mode::Ack => StatusCode::OK,
            Mode::Relay(url) => match relay.put(url).body("{}").send().await {
                Ok(_) => StatusCode::OK,
                Err(_) => StatusCode::BAD_GATEWAY,
            },
        },
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    *response.status_mut() = status;
    Ok(response)
}

/// Serve on a free loopback port, on the caller's runtime (the one the host
/// under test runs on).
pub async fn start(mode: Mode) -> anyhow::Result<BareServer> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let relay = reqwest::Client::builder().no_proxy().build()?;
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let (mode, relay) = (mode.clone(), relay.clone());
            tokio::spawn(async move {
                let service = service_fn(move |r| handle(mode.clone(), relay.clone(), r));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(BareServer { addr, task })
}
