//! Atlassian Connect query string hash: SHA-256 of the canonical request
//! `METHOD&path&query` (webhook-reliability §2.2, sentry-flows §2.4).

use trackbridge_plugin_sdk::crypto::sha256_hex;
use trackbridge_plugin_sdk::url::encode_component;

/// The canonical path: the app's base path prefix removed, empty → `/`, one
/// trailing `/` dropped, and `&` escaped so a path cannot pose as a query.
pub fn canonical_path(path: &str, base_prefix: &str) -> String {
    let prefix = base_prefix.trim_end_matches('/');
    let path = if prefix.is_empty() {
        path
    } else if path == prefix {
        ""
    } else {
        match path.strip_prefix(prefix) {
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        }
    };
    let path = if path.is_empty() { "/" } else { path };
    let path = if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    path.replace('&', "%26")
}

/// The canonical query: `jwt` dropped, names and values RFC 3986-encoded,
/// sorted by encoded name, repeated names merged as `name=v1,v2` with the
/// encoded values sorted, entries joined with `&`.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "jwt")
        .map(|(k, v)| (encode_component(k), encode_component(v)))
        .collect();
    encoded.sort();
    let mut entries: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in encoded {
        match entries.last_mut() {
            Some((last, values)) if *last == k => values.push(v),
            _ => entries.push((k, vec![v])),
        }
    }
    entries
        .iter()
        .map(|(k, values)| format!("{k}={}", values.join(",")))
        .collect::<Vec<_>>()
        .join("&")
}

/// `METHOD&canonical-path&canonical-query`; `path` must already be relative
/// to the app's base URL (see [`canonical_path`] for stripping a prefix).
pub fn canonical_request(method: &str, path: &str, params: &[(String, String)]) -> String {
    format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        canonical_path(path, ""),
        canonical_query(params)
    )
}

/// The `qsh` claim value: lower-case hex SHA-256 of the canonical request.
pub fn qsh(method: &str, path: &str, params: &[(String, String)]) -> String {
    sha256_hex(canonical_request(method, path, params).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use trackbridge_plugin_sdk::url::{Url, parse_query};

    /// Canonical string and hash for a URL relative to `base`.
    fn check(method: &str, url: &str, base_prefix: &str, canonical: &str, hash: Option<&str>) {
        let parsed = Url::parse(url).unwrap();
        let params = parse_query(parsed.query.as_deref().unwrap_or(""));
        let path = canonical_path(&parsed.path, base_prefix);
        assert_eq!(
            canonical_request(method, &path, &params),
            canonical,
            "{url}"
        );
        if let Some(hash) = hash {
            assert_eq!(qsh(method, &path, &params), hash, "{url}");
        }
    }

    #[test]
    fn sha256_sanity() {
        assert_eq!(
            sha256_hex(b"foo"),
            "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
        );
    }

    #[test]
    fn simple_paths() {
        check(
            "GET",
            "https://x.test/path",
            "",
            "GET&/path&",
            Some("799be84a7fa35570087163c0cd9af3abff7ac05c2c12ba0bb1d7eebc984b3ac2"),
        );
        for url in ["https://x.test", "https://x.test/"] {
            check(
                "GET",
                url,
                "",
                "GET&/&",
                Some("c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"),
            );
        }
    }

    const HELLO_QUERY: &str = "lic=none&tz=Australia%2FSydney&cp=%2Fjira&user_key=&loc=en-US&user_id=&jwt=eyJhbGciOiJIUzI1NiJ9.e30.sig&xdm_e=http%3A%2F%2Fstorm%3A2990&xdm_c=channel-servlet-hello-world&xdm_p=1";

    #[test]
    fn atlassian_hello_world() {
        check(
            "GET",
            &format!("http://storm:2990/hello-world?{HELLO_QUERY}"),
            "",
            "GET&/hello-world&cp=%2Fjira&lic=none&loc=en-US&tz=Australia%2FSydney&user_id=&user_key=&xdm_c=channel-servlet-hello-world&xdm_e=http%3A%2F%2Fstorm%3A2990&xdm_p=1",
            Some("8063ff4ca1e41df7bc90c8ab6d0f6207d491cf6dad7c66ea797b4614b71922e9"),
        );
        // Form parameters in a POST body are not part of our canonical request.
        check(
            "POST",
            "http://storm:2990/hello-world",
            "",
            "POST&/hello-world&",
            Some("6f95f3738e1b037a3bebbe0ad237d80fdbc1d5ae452e98ce03a9c004c178ebb4"),
        );
    }

    #[test]
    fn bitbucket_and_case_sorting() {
        check(
            "GET",
            "https://api.bitbucket.org/test?param=value",
            "",
            "GET&/test&param=value",
            Some("be16910858a41fd19ea5c1b4e9decca9a784d1024cb00b2158defe2f29dc86dd"),
        );
        check(
            "GET",
            "http://localhost:2990/path/to/service?a=1&A=2&b=3&B=4",
            "",
            "GET&/path/to/service&A=2&B=4&a=1&b=3",
            Some("70282c7cf82834bd5a3d6dacda1b4ccd5cf5860a63a1fa2fb86b64d576e6a1d5"),
        );
    }

    #[test]
    fn repeated_parameters() {
        check(
            "GET",
            "https://x.test/path/to/service?zee_last=param&repeated=parameter 1&first=param&repeated=parameter 2",
            "",
            "GET&/path/to/service&first=param&repeated=parameter%201,parameter%202&zee_last=param",
            Some("e52bb281606c3bd9ca16cfe96fe2df78f5d9ffa126f06befd750dfa10fa1a897"),
        );
        check(
            "GET",
            "https://x.test/path/to/service?zee_last=param&repeated=parameter 1&first=param&repeated=parameter 2&repeated=Parameter 2",
            "",
            "GET&/path/to/service&first=param&repeated=Parameter%202,parameter%201,parameter%202&zee_last=param",
            None,
        );
    }

    #[test]
    fn base_prefix_valueless_params_and_ampersand_paths() {
        check(
            "GET",
            "https://bitbucket.org/base/path/to/service",
            "/base",
            "GET&/path/to/service&",
            None,
        );
        check(
            "GET",
            "https://x.test/hello-world?a&b=foo&c",
            "",
            "GET&/hello-world&a=&b=foo&c=",
            None,
        );
        check(
            "POST",
            "https://x.test/jira/rest/api/2/project/jira&a=b&c=d?x=y",
            "/jira",
            "POST&/rest/api/2/project/jira%26a=b%26c=d&x=y",
            None,
        );
        check(
            "POST",
            "https://x.atlassian.net?jwt=abc&a=1",
            "",
            "POST&/&a=1",
            None,
        );
        // A prefix only strips whole segments.
        assert_eq!(canonical_path("/jiraX/a", "/jira"), "/jiraX/a");
        assert_eq!(canonical_path("/jira", "/jira/"), "/");
    }

    #[test]
    fn encoding_pitfalls() {
        // `+` is a space in a query string and must hash as %20; `%2F` stays encoded.
        check(
            "GET",
            "https://x.test/p/?q=a+b&r=c%2Fd&s=*~",
            "",
            "GET&/p&q=a%20b&r=c%2Fd&s=%2A~",
            None,
        );
    }

    #[test]
    fn sentry_vectors() {
        check(
            "GET",
            "https://sentry.test/extensions/jira/configure/?a=1&b=2&c=3&test=pass",
            "",
            "GET&/extensions/jira/configure&a=1&b=2&c=3&test=pass",
            Some("36f43b88d6a8cdf89bb8f744e2378bb0ceb6378e80ab0b513082a8b72396bccc"),
        );
        check(
            "POST",
            "https://sentry.test/extensions/jira/issue-updated/",
            "",
            "POST&/extensions/jira/issue-updated&",
            Some("3f3a9ce11273657e8a715d95ddc04fc69e5a70b5c94513f9ca94917f74384f44"),
        );
        check(
            "get",
            "https://example.atlassian.net/rest/api/2/serverInfo?query=1&user=me",
            "",
            "GET&/rest/api/2/serverInfo&query=1&user=me",
            Some("de952010640ab2cfd2062781b54e94b78fce16731006db7deeaffceb425fe242"),
        );
    }
}
