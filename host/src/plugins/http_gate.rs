//! The outbound-HTTP gate: `wasi:http` requests may reach only the hosts of the
//! integration the call acts for. Anything else is refused and logged.

use std::sync::Arc;

use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use super::outbound::AddressPolicy;
use crate::metrics::{Metrics, PluginLabels};

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

/// Per-call policy: the authorities (`host:port`) this call may reach.
#[derive(Default)]
pub struct HttpGate {
    pub plugin: String,
    pub allowed: Vec<String>,
    /// `host:port` patterns allowed besides (see [`host_matches_pattern`]).
    pub patterns: Vec<String>,
    /// Which addresses the allowed hosts may resolve to.
    pub addresses: Arc<AddressPolicy>,
    /// Where refusals are counted (per plugin).
    pub metrics: Arc<Metrics>,
    /// The integration the call acts for, once there is one.
    pub integration: Option<i64>,
    /// Stand-ins for secrets the call was given (contract 0.2.0).
    pub stand_ins: super::stand_in::StandIns,
}

impl HttpGate {
    fn allows(&self, uri: &http::Uri) -> bool {
        authority_of(uri).is_some_and(|a| {
            self.allowed.iter().any(|h| h.eq_ignore_ascii_case(&a))
                || self.patterns.iter().any(|p| host_matches_pattern(&a, p))
        })
    }
}

/// `host:port` of an absolute URI, with the scheme's default port filled in.
pub fn authority_of(uri: &http::Uri) -> Option<String> {
    let host = uri.host()?;
    let port = uri.port_u16().or(match uri.scheme_str() {
        Some("http") => Some(80),
        Some("https") | None => Some(443),
        _ => None,
    })?;
    Some(format!("{}:{port}", host.to_ascii_lowercase()))
}

/// `host:port` of a URL given by an operator (an integration's base URL).
pub fn authority_of_url(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let host = parsed.host_str()?;
    Some(format!(
        "{}:{}",
        host.to_ascii_lowercase(),
        parsed.port_or_known_default()?
    ))
}

/// The hosts (`host:port`) an installation may reach: those of the URLs in
/// the plugin's `url-fields` that `input` has. A missing field is skipped
/// (the schema's `required` refuses it); one that is not a URL string is
/// the operator's error, named.
pub fn url_field_hosts(
    url_fields: &[String],
    input: &serde_json::Value,
) -> Result<Vec<String>, String> {
    let mut hosts = Vec::new();
    for field in url_fields {
        match input.get(field) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(url)) => {
                hosts.push(authority_of_url(url).ok_or_else(|| format!("`{field}` is not a URL"))?)
            }
            Some(_) => return Err(format!("`{field}` must be a URL")),
        }
    }
    Ok(hosts)
}

/// Whether `host` (`host:port`) matches `pattern`, where a leading `*.` matches
/// one or more subdomain labels (`*.example.com:443` matches `a.example.com:443`
/// but not `example.com:443`).
pub fn host_matches_pattern(host: &str, pattern: &str) -> bool {
    let (host, pattern) = (host.to_ascii_lowercase(), pattern.to_ascii_lowercase());
    // A pattern names DNS hosts; an address literal (`169.254.169.254:80`)
    // never falls under one, whatever its digits end with.
    let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
    if name
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .is_ok()
    {
        return false;
    }
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .strip_suffix(suffix)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.')),
        None => host == pattern,
    }
}

impl WasiHttpHooks for HttpGate {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        if !self.allows(request.uri()) {
            tracing::warn!(
                plugin = %self.plugin,
                destination = %request.uri().authority().map(|a| a.as_str()).unwrap_or("?"),
                "outbound request refused: not a host of this integration"
            );
            self.metrics
                .plugin_outbound_refused
                .get_or_create(&PluginLabels {
                    plugin: self.plugin.clone(),
                })
                .inc();
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        // Secrets go only to the integration's own hosts, not to hosts a
        // pattern allows (those serve installation, before there are secrets).
        let own = authority_of(request.uri())
            .is_some_and(|a| self.allowed.iter().any(|h| h.eq_ignore_ascii_case(&a)));
        if own {
            let destination = authority_of(request.uri()).unwrap_or_default();
            match self.stand_ins.apply(&mut request) {
                Ok(used) => {
                    for secret in used {
                        tracing::info!(
                            target: "plugin.secrets",
                            plugin = %self.plugin,
                            integration = ?self.integration,
                            secret,
                            operation = "send",
                            %destination,
                            "a secret went out in a request to the integration's host"
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(plugin = %self.plugin, integration = ?self.integration, error = %e, "outbound request refused");
                    return Box::new(
                        async move { Err(HttpError::InternalError(Some(e.to_string()))) },
                    );
                }
            }
        }
        Box::new(super::outbound::send(
            request,
            options,
            self.addresses.clone(),
            self.plugin.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(allowed: &[&str]) -> HttpGate {
        HttpGate {
            plugin: "test".into(),
            allowed: allowed.iter().map(|s| s.to_string()).collect(),
            patterns: Vec::new(),
            addresses: Arc::default(),
            metrics: Arc::default(),
            integration: None,
            stand_ins: Default::default(),
        }
    }

    #[test]
    fn declared_patterns_pass_too() {
        let mut g = gate(&[]);
        g.patterns = vec![
            "*.vssps.visualstudio.com:443".into(),
            "discord.com:443".into(),
        ];
        assert!(g.allows(&"https://discord.com/api/v10/channels/1".parse().unwrap()));
        assert!(g.allows(&"https://acme.vssps.visualstudio.com/_apis".parse().unwrap()));
        assert!(!g.allows(&"https://evil.com/".parse().unwrap()));
    }

    #[test]
    fn only_the_integration_hosts_pass() {
        let g = gate(&["example.atlassian.net:443", "127.0.0.1:8080"]);
        assert!(
            g.allows(
                &"https://example.atlassian.net/rest/api/2/status"
                    .parse()
                    .unwrap()
            )
        );
        assert!(g.allows(&"https://EXAMPLE.atlassian.net:443/x".parse().unwrap()));
        assert!(g.allows(&"http://127.0.0.1:8080/x".parse().unwrap()));
        assert!(
            !g.allows(&"http://example.atlassian.net/x".parse().unwrap()),
            "port 80 differs"
        );
        assert!(!g.allows(&"http://127.0.0.1:8081/x".parse().unwrap()));
        assert!(!g.allows(&"https://evil.example.com/x".parse().unwrap()));
        assert!(!g.allows(&"https://example.atlassian.net.evil.com/x".parse().unwrap()));
        assert!(!gate(&[]).allows(&"https://example.atlassian.net/x".parse().unwrap()));
    }

    #[test]
    fn patterns_match_subdomains_only_where_they_say_so() {
        assert!(host_matches_pattern(
            "acme.vssps.visualstudio.com:443",
            "*.vssps.visualstudio.com:443"
        ));
        assert!(host_matches_pattern(
            "a.b.vssps.visualstudio.com:443",
            "*.vssps.visualstudio.com:443"
        ));
        assert!(!host_matches_pattern(
            "vssps.visualstudio.com:443",
            "*.vssps.visualstudio.com:443"
        ));
        assert!(!host_matches_pattern(
            "evilvssps.visualstudio.com:443",
            "*.vssps.visualstudio.com:443"
        ));
        assert!(!host_matches_pattern(
            "acme.vssps.visualstudio.com:80",
            "*.vssps.visualstudio.com:443"
        ));
        assert!(host_matches_pattern(
            "VSSPS.dev.azure.com:443",
            "vssps.dev.azure.com:443"
        ));
        // Address literals never match a pattern.
        assert!(!host_matches_pattern("169.254.169.254:80", "*.169.254:80"));
        assert!(!host_matches_pattern("10.0.0.1:443", "10.0.0.1:443"));
        assert!(!host_matches_pattern("[::1]:443", "*.1]:443"));
    }

    #[test]
    fn url_fields_give_the_hosts_an_installation_may_reach() {
        let fields = vec!["base_url".to_owned(), "graph_url".to_owned()];
        let input =
            serde_json::json!({"base_url": "https://Acme.example.com/jira", "graph_url": null});
        assert_eq!(
            url_field_hosts(&fields, &input).unwrap(),
            ["acme.example.com:443"]
        );
        let not_url = serde_json::json!({"base_url": "nope"});
        assert_eq!(
            url_field_hosts(&fields, &not_url).unwrap_err(),
            "`base_url` is not a URL"
        );
        let not_string = serde_json::json!({"graph_url": 5});
        assert_eq!(
            url_field_hosts(&fields, &not_string).unwrap_err(),
            "`graph_url` must be a URL"
        );
    }

    #[test]
    fn operator_urls_become_authorities() {
        assert_eq!(
            authority_of_url("https://Example.atlassian.net/").as_deref(),
            Some("example.atlassian.net:443")
        );
        assert_eq!(
            authority_of_url("http://127.0.0.1:9000").as_deref(),
            Some("127.0.0.1:9000")
        );
        assert_eq!(authority_of_url("not a url"), None);
    }
}
