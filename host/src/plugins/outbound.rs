//! Sending a plugin's outbound request, to an address the host allows.
//!
//! The outbound-HTTP gate ([`super::http_gate`]) decides by host name; this
//! decides by address, after resolution: a name that resolves to loopback,
//! link-local (where clouds serve instance metadata and credentials), an
//! unspecified or a multicast address is refused unless the operator allowed
//! that range (`--outbound-allow-networks`). The connection goes to the very
//! address that was checked, so a name that resolves differently a moment
//! later (DNS rebinding) gains nothing. Private ranges (10/8, 192.168/16, …)
//! stay allowed: Jira Server and Azure DevOps Server live there.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use http::uri::Scheme;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody};

/// The address ranges outbound requests may reach although they are internal.
#[derive(Clone, Debug, Default)]
pub struct AddressPolicy {
    pub allowed: Vec<ipnet::IpNet>,
}

impl AddressPolicy {
    /// Whether a connection to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|net| net.contains(&ip)) || !is_internal(ip)
    }
}

/// Loopback, link-local, unspecified, multicast or broadcast — or one of the
/// metadata addresses clouds serve outside those ranges.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    // fe80::/10, link-local
                    || (v6.segments()[0] & 0xffc0) == 0xfe80
                    // AWS's instance metadata over IPv6
                    || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
            }
        },
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_multicast()
        || v4.is_broadcast()
        // 0.0.0.0/8, "this network"
        || v4.octets()[0] == 0
        // Alibaba Cloud's instance metadata
        || v4 == Ipv4Addr::new(100, 100, 100, 200)
}

trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

type Response = http::Response<WasiBody>;
type Finished = Box<dyn Future<Output = Result<(), HttpError>> + Send>;

/// Resolve `host`, keep the addresses `policy` permits, connect to the first
/// that answers.
async fn connect(
    host: &str,
    port: u16,
    policy: &AddressPolicy,
    plugin: &str,
) -> Result<TcpStream, HttpError> {
    let literal = host.trim_matches(['[', ']']).parse::<IpAddr>().ok();
    let addresses: Vec<SocketAddr> = match literal {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| HttpError::DestinationNotFound)?
            .collect(),
    };
    let (permitted, refused): (Vec<_>, Vec<_>) =
        addresses.into_iter().partition(|a| policy.permits(a.ip()));
    if permitted.is_empty() {
        tracing::warn!(
            plugin,
            host,
            addresses = ?refused,
            "outbound request refused: the host resolves only to internal addresses \
             (loopback, link-local, metadata); allow a range with --outbound-allow-networks"
        );
        return Err(HttpError::HttpRequestDenied);
    }
    let mut last = None;
    for address in permitted {
        match TcpStream::connect(address).await {
            Ok(stream) => return Ok(stream),
            Err(err) => last = Some(err),
        }
    }
    tracing::debug!(plugin, host, error = ?last, "outbound connection failed");
    Err(last.map_or(HttpError::ConnectionRefused, HttpError::Connect))
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

/// Send `request` (an absolute URI) over a fresh connection to an address
/// `policy` permits. Returns the response and a future that finishes the
/// connection's I/O.
pub async fn send(
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    policy: Arc<AddressPolicy>,
    plugin: String,
) -> Result<(Response, Finished), HttpError> {
    let uri = request.uri().clone();
    let host = uri
        .host()
        .ok_or(HttpError::HttpRequestUriInvalid)?
        .to_owned();
    let tls = uri.scheme() == Some(&Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let connect_timeout = options
        .and_then(|o| o.connect_timeout)
        .unwrap_or(Duration::from_secs(600));
    let first_byte_timeout = options
        .and_then(|o| o.first_byte_timeout)
        .unwrap_or(Duration::from_secs(600));

    let tcp = tokio::time::timeout(connect_timeout, connect(&host, port, &policy, &plugin))
        .await
        .map_err(|_| HttpError::ConnectionTimeout)??;
    let stream: Box<dyn Stream> = if tls {
        let name =
            rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(name, tcp)
            .await
            .map_err(HttpError::Tls)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = tokio::time::timeout(
        connect_timeout,
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)),
    )
    .await
    .map_err(|_| HttpError::ConnectionTimeout)??;
    // On a direct connection the request line carries the path only.
    *request.uri_mut() = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|_| HttpError::HttpRequestUriInvalid)?;
    let mut connection = Box::pin(connection);
    let respond = sender.send_request(request);
    tokio::pin!(respond);
    // Drive the connection's I/O until the response head is in.
    let response = tokio::time::timeout(first_byte_timeout, async {
        tokio::select! {
            response = &mut respond => response.map_err(HttpError::from),
            ended = &mut connection => {
                ended.map_err(HttpError::from)?;
                respond.await.map_err(HttpError::from)
            }
        }
    })
    .await
    .map_err(|_| HttpError::ConnectionReadTimeout)??;
    let response = response.map(|body| body.map_err(HttpError::from).boxed_unsync());
    let finished: Finished = Box::new(async move { connection.await.map_err(HttpError::from) });
    Ok((response, finished))
}
