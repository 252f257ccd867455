//! Slugs, as Sentry makes them for projects (spec §8.1): Django's `slugify`,
//! reserved words, and a random-suffix scheme when the slug is taken.

use sqlx::AnyConnection;
use unicode_normalization::UnicodeNormalization;

/// Slugs that would collide with routes.
pub const RESERVED: &[&str] = &[
    "$all",
    "api-keys",
    "audit-log",
    "auth",
    "members",
    "projects",
    "rate-limits",
    "repos",
    "settings",
    "teams",
    "billing",
    "payments",
    "legal",
    "subscription",
    "support",
    "integrations",
    "developer-settings",
    "usage",
];

/// Sentry's suffix alphabet, as it is (`0` twice, no `8`).
const SUFFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456790";
/// Suffix lengths and how many candidates of each are tried.
const SUFFIX_SCHEDULE: &[(usize, usize)] = &[(2, 1), (3, 5), (5, 20), (12, 1)];
const MAX_LEN: usize = 50;

/// Django's `slugify`: NFKD to ASCII, lower-case, drop everything but word
/// characters, spaces and hyphens, collapse runs of spaces and hyphens into one
/// `-`, strip leading and trailing `-` and `_`.
pub fn slugify(value: &str) -> String {
    let ascii: String = value.nfkd().filter(char::is_ascii).collect();
    let mut out = String::with_capacity(ascii.len());
    let mut in_run = false;
    for c in ascii.to_ascii_lowercase().chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
            in_run = false;
        } else if c == '-' || c.is_ascii_whitespace() {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        }
    }
    out.trim_matches(|c| c == '-' || c == '_').to_owned()
}

/// The slug a name gives before uniqueness: slugified, cut to 50, no edge `-`.
pub fn base_slug(name: &str) -> String {
    let slug: String = slugify(name).chars().take(MAX_LEN).collect();
    slug.trim_matches('-').to_owned()
}

/// Random characters from `alphabet`.
fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; len];
    // Without randomness the suffixes would all be "aaa…": still correct (the
    // unique constraint decides), just more collisions.
    let _ = getrandom::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

async fn taken(conn: &mut AnyConnection, org: i64, slug: &str) -> Result<bool, sqlx::Error> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM projects WHERE organization_id = $1 AND lower(slug) = lower($2)",
    )
    .bind(org)
    .bind(slug)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// A project slug for `name` that is free in `org` (case-insensitively). Run it in
/// the write transaction that inserts the project, which stands in for Sentry's
/// per-organization slug lock. When every candidate is taken the last one is
/// returned and the database's unique constraint decides.
pub async fn unique_project_slug(
    conn: &mut AnyConnection,
    org: i64,
    name: &str,
) -> Result<String, sqlx::Error> {
    let mut base = base_slug(name);
    if base.is_empty() || RESERVED.contains(&base.as_str()) {
        base = random_string(12, b"0123456789abcdef");
    }
    let all_digits = base.chars().all(|c| c.is_ascii_digit());
    if !all_digits && !taken(conn, org, &base).await? {
        return Ok(base);
    }
    let mut candidate = base.clone();
    for &(len, tries) in SUFFIX_SCHEDULE {
        for _ in 0..tries {
            let head: String = base.chars().take(MAX_LEN - len - 1).collect();
            candidate = format!("{head}-{}", random_string(len, SUFFIX_ALPHABET));
            if !taken(conn, org, &candidate).await? {
                return Ok(candidate);
            }
        }
    }
    Ok(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugify_follows_django() {
        assert_eq!(slugify("Hello World"), "hello-world");
        assert_eq!(slugify("  Crème brûlée!! "), "creme-brulee");
        assert_eq!(slugify("a -- b__c"), "a-b__c");
        assert_eq!(slugify("_-leading and trailing-_"), "leading-and-trailing");
        assert_eq!(slugify("日本語"), "");
    }

    #[test]
    fn base_slugs_are_cut_to_fifty_without_edge_hyphens() {
        let long = "word ".repeat(20);
        let slug = base_slug(&long);
        assert!(slug.len() <= 50);
        assert!(!slug.ends_with('-'));
    }

    #[test]
    fn random_suffixes_use_the_alphabet() {
        let s = random_string(200, SUFFIX_ALPHABET);
        assert_eq!(s.len(), 200);
        assert!(s.bytes().all(|b| SUFFIX_ALPHABET.contains(&b)));
        assert!(!s.contains('8'));
    }
}
