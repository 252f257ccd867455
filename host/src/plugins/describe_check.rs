//! What a plugin says of itself in `describe`, checked before it may serve:
//! its name and version reach logs, metrics labels and URLs, its routes
//! decide which requests it receives, its host patterns where it may connect.
//! A plugin's routes live under its own name (`/extensions/<name>/…`), so no
//! plugin can declare a route that takes another plugin's deliveries.

use super::contract::provider_types::ProviderInfo;

/// The HTTP methods a route may declare.
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// Why a `describe` answer is refused, naming the field.
pub fn check(info: &ProviderInfo) -> Result<(), String> {
    check_name(&info.name)?;
    semver::Version::parse(&info.version).map_err(|e| {
        format!(
            "`describe` version `{}` is not a semantic version (e.g. 1.2.3): {e}",
            printable(&info.version)
        )
    })?;
    if info.display_name.is_empty()
        || info.display_name.chars().count() > 100
        || info.display_name.chars().any(char::is_control)
    {
        return Err(format!(
            "`describe` display-name `{}` must be 1 to 100 characters without control characters",
            printable(&info.display_name)
        ));
    }
    let prefix = format!("/extensions/{}/", info.name);
    for (i, route) in info.routes.iter().enumerate() {
        if !METHODS.contains(&route.method.as_str()) {
            return Err(format!(
                "`describe` route {}: method `{}` is not one of {}",
                i + 1,
                printable(&route.method),
                METHODS.join(", ")
            ));
        }
        check_route_path(&route.path, &prefix)
            .map_err(|why| format!("`describe` route `{}`: {why}", printable(&route.path)))?;
        for earlier in &info.routes[..i] {
            if earlier.method == route.method && templates_overlap(&earlier.path, &route.path) {
                return Err(format!(
                    "`describe` routes `{} {}` and `{} {}` match the same requests",
                    earlier.method, earlier.path, route.method, route.path
                ));
            }
        }
    }
    super::config_schema::check_schema(&info.config_schema)?;
    for field in &info.url_fields {
        let valid = !field.is_empty()
            && field
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
        if !valid {
            return Err(format!(
                "`describe` url-fields entry `{}` is not a field name",
                printable(field)
            ));
        }
    }
    for pattern in &info.allowed_host_patterns {
        check_host_pattern(pattern).map_err(|why| {
            format!(
                "`describe` allowed-host-patterns entry `{}`: {why}",
                printable(pattern)
            )
        })?;
    }
    Ok(())
}

/// Lowercase letters, digits and single dashes, starting with a letter, at
/// most 64 characters: it is a path segment, a label value and a file name.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`describe` name `{}` must be lowercase letters, digits and single dashes, \
             start with a letter and be at most 64 characters",
            printable(name)
        ))
    }
}

/// A path under the plugin's own prefix whose segments are literals (URL-safe
/// characters) or `{parameters}`.
fn check_route_path(path: &str, prefix: &str) -> Result<(), String> {
    let Some(rest) = path.strip_prefix(prefix) else {
        return Err(format!("a plugin's routes must start with `{prefix}`"));
    };
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let last = i == segments.len() - 1;
        if segment.is_empty() {
            if last {
                continue; // a trailing slash
            }
            return Err("it has an empty segment".into());
        }
        let valid = match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(param) => {
                !param.is_empty() && param.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            }
            None => segment
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)),
        };
        if !valid {
            return Err(format!(
                "segment `{segment}` is neither a literal (letters, digits, `-._~`) nor a `{{parameter}}`"
            ));
        }
    }
    Ok(())
}

/// `host:port` or `*.domain:port`, where the host is a DNS name: a pattern
/// never matches an IP address (`*.169.254:80` would reach a cloud's
/// metadata service).
fn check_host_pattern(pattern: &str) -> Result<(), String> {
    let (host, port) = pattern
        .rsplit_once(':')
        .ok_or("it needs a port (`host:443`)")?;
    port.parse::<u16>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or("the port is not a number from 1 to 65535")?;
    let name = host.strip_prefix("*.").unwrap_or(host);
    let labels: Vec<&str> = name.split('.').collect();
    let dns = labels.iter().all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    if !dns {
        return Err("the host is not a DNS name".into());
    }
    if labels
        .last()
        .is_some_and(|l| l.chars().all(|c| c.is_ascii_digit()))
    {
        return Err("the host is an IP address, not a DNS name".into());
    }
    if host.starts_with("*.") && labels.len() < 2 {
        return Err("a wildcard needs a domain of at least two labels (`*.example.com`)".into());
    }
    Ok(())
}

/// Whether two route templates match a common path: the same number of
/// segments, each pair equal or one of them a `{parameter}` (which matches
/// any segment, an empty one too).
pub fn templates_overlap(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    let param = |s: &str| s.starts_with('{') && s.ends_with('}');
    a.len() == b.len()
        && a.iter()
            .zip(&b)
            .all(|(x, y)| x == y || param(x) || param(y))
}

/// `text` with control characters shown as escapes, for an error message.
fn printable(text: &str) -> String {
    text.chars()
        .take(200)
        .flat_map(char::escape_debug)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::contract::provider_types::Route;

    fn info() -> ProviderInfo {
        ProviderInfo {
            name: "acme".into(),
            version: "1.0.0".into(),
            display_name: "Acme".into(),
            routes: vec![Route {
                method: "POST".into(),
                path: "/extensions/acme/hook/{token}/".into(),
            }],
            config_schema: r#"{"type": "object"}"#.into(),
            url_fields: vec!["base_url".into()],
            allowed_host_patterns: vec!["*.acme.example:443".into()],
            status_model: crate::plugins::contract::provider_types::StatusModel::Workflow,
            maintenance_interval_secs: None,
        }
    }

    fn refused(change: impl FnOnce(&mut ProviderInfo)) -> String {
        let mut info = info();
        change(&mut info);
        check(&info).expect_err("refused")
    }

    #[test]
    fn a_well_formed_answer_passes() {
        check(&info()).unwrap();
    }

    #[test]
    fn names_and_versions_that_would_corrupt_logs_or_paths_are_refused() {
        assert!(refused(|i| i.name = "acme\nERROR forged".into()).contains("name `acme\\nERROR"));
        assert!(refused(|i| i.name = "Acme".into()).contains("name"));
        assert!(refused(|i| i.name = "../x".into()).contains("name"));
        assert!(refused(|i| i.version = "1.0.0\nINFO forged".into()).contains("semantic version"));
        assert!(refused(|i| i.version = "latest".into()).contains("semantic version"));
        assert!(refused(|i| i.display_name = "A\u{1b}[31m".into()).contains("display-name"));
    }

    #[test]
    fn routes_live_under_the_plugin_name() {
        let other = refused(|i| i.routes[0].path = "/extensions/jira/issue-updated/".into());
        assert!(
            other.contains("must start with `/extensions/acme/`"),
            "{other}"
        );
        let any = refused(|i| i.routes[0].path = "/extensions/{p}/issue-updated/".into());
        assert!(any.contains("must start with"), "{any}");
        assert!(refused(|i| i.routes[0].method = "TRACE".into()).contains("method"));
        assert!(refused(|i| i.routes[0].path = "/extensions/acme/a//b".into()).contains("empty"));
        assert!(refused(|i| i.routes[0].path = "/extensions/acme/a b/".into()).contains("segment"));
        let twice = refused(|i| {
            i.routes.push(Route {
                method: "POST".into(),
                path: "/extensions/acme/hook/fixed/".into(),
            })
        });
        assert!(twice.contains("match the same requests"), "{twice}");
    }

    #[test]
    fn host_patterns_name_dns_hosts_only() {
        for pattern in [
            "*.169.254:80",
            "169.254.169.254:80",
            "*.com:443",
            "example.com",
            "*.x.com:0",
            "exa mple.com:443",
        ] {
            assert!(
                refused(|i| i.allowed_host_patterns = vec![pattern.into()])
                    .contains("allowed-host-patterns"),
                "{pattern}"
            );
        }
        let mut ok = info();
        ok.allowed_host_patterns = vec![
            "discord.com:443".into(),
            "*.vssps.visualstudio.com:443".into(),
        ];
        check(&ok).unwrap();
    }

    #[test]
    fn overlap_is_what_templates_match() {
        assert!(templates_overlap(
            "/extensions/{p}/issue-updated/",
            "/extensions/jira/issue-updated/"
        ));
        assert!(templates_overlap("/a/{x}/", "/a/{y}/"));
        assert!(!templates_overlap("/a/{x}/", "/a/{x}/b/"));
        assert!(!templates_overlap("/a/b/", "/a/c/"));
    }
}
