//! Just enough URL handling for tracker base URLs: split into parts, percent
//! encoding and query-string parsing. The `url` crate would work too, but its
//! IDNA tables triple the size of a plugin for no gain here.

use crate::error::{Error, Result};

/// An absolute `http`/`https` URL split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`, lower-case.
    pub scheme: String,
    /// `host[:port]` as written, host lower-cased.
    pub authority: String,
    /// The host without port (brackets kept for IPv6 literals).
    pub host: String,
    pub port: Option<u16>,
    /// The path, `""` when absent (e.g. `https://example.com`).
    pub path: String,
    /// The raw query string without `?`, if any.
    pub query: Option<String>,
}

impl Url {
    /// Parses an absolute `http(s)` URL. User info is refused: credentials do
    /// not belong in URLs a host stores as configuration.
    pub fn parse(input: &str) -> Result<Url> {
        let input = input.trim();
        let (scheme, rest) = input
            .split_once("://")
            .ok_or_else(|| Error::invalid_input(format!("`{input}` is not an absolute URL")))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(Error::invalid_input(format!(
                "`{input}` must use http or https"
            )));
        }
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, after) = rest.split_at(end);
        if authority.is_empty() {
            return Err(Error::invalid_input(format!("`{input}` has no host")));
        }
        if authority.contains('@') {
            return Err(Error::invalid_input(format!(
                "`{input}` must not contain user info"
            )));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| {
            Error::invalid_input(format!("`{input}` has an invalid host or port"))
        })?;
        let (path, query) = match after.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (after.to_string(), None),
        };
        let host = host.to_ascii_lowercase();
        let authority = match port {
            Some(p) => format!("{host}:{p}"),
            None => host.clone(),
        };
        Ok(Url {
            scheme,
            authority,
            host,
            port,
            path,
            query,
        })
    }

    /// The path and query as sent on the request line (`/` when the path is empty).
    pub fn path_with_query(&self) -> String {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        match &self.query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    }

    /// `scheme://authority`, with no trailing slash.
    pub fn origin(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &authority[..close + 2];
        match &rest[close + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._[]:".contains(c));
    if !valid_host {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok()?),
        None => None,
    };
    Some((host, port))
}

/// Percent-encodes everything but RFC 3986 unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`), so space becomes `%20` and `/` becomes `%2F`.
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX_UPPER[(b >> 4) as usize] as char);
            out.push(HEX_UPPER[(b & 0xf) as usize] as char);
        }
    }
    out
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// Decodes `%XX` escapes; with `plus_as_space`, `+` means space as in HTML
/// forms. Invalid escapes are kept literally; invalid UTF-8 is replaced.
pub fn decode(s: &str, plus_as_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if plus_as_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a raw query string the way web frameworks do (`+` is space, a
/// parameter without `=` has the empty value, empty pieces are skipped).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// Renders pairs as a query string with [`encode_component`].
pub fn encode_query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parts() {
        let u = Url::parse("HTTP://Example.Atlassian.net:8080/jira/x?a=1#frag").unwrap();
        assert_eq!(u.scheme, "http");
        assert_eq!(u.authority, "example.atlassian.net:8080");
        assert_eq!(u.host, "example.atlassian.net");
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.path, "/jira/x");
        assert_eq!(u.query.as_deref(), Some("a=1"));
        assert_eq!(u.path_with_query(), "/jira/x?a=1");
        let u = Url::parse("https://example.atlassian.net").unwrap();
        assert_eq!(u.path_with_query(), "/");
        assert_eq!(u.origin(), "https://example.atlassian.net");
        let u = Url::parse("http://[::1]:9000/p").unwrap();
        assert_eq!(u.host, "[::1]");
        assert_eq!(u.port, Some(9000));
    }

    #[test]
    fn rejects_bad_urls() {
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://",
            "https://user:pw@example.com",
            "https://example.com:99999",
            "https://exa mple.com",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn encoding_round_trips() {
        assert_eq!(encode_component("a b/c~d*é"), "a%20b%2Fc~d%2A%C3%A9");
        assert_eq!(decode("a%20b%2fc+d", true), "a b/c d");
        assert_eq!(decode("a+b%", false), "a+b%");
        assert_eq!(decode("%zz%4", false), "%zz%4");
        assert_eq!(
            parse_query("a=1&b&&c=x%2By+z"),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "".into()),
                ("c".into(), "x+y z".into())
            ]
        );
    }
}
