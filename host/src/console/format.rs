//! How the console shows values: times in UTC, ages, and stored payloads with
//! credentials masked.

use serde_json::Value;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime};

/// What a masked value is shown as.
pub const MASK: &str = "••••";

/// How times are shown, and how `datetime-local` inputs take them.
const SHOWN: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
const INPUT: &[BorrowedFormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]");

/// What a filter's time may look like (read as UTC).
const ACCEPTED: &[&[BorrowedFormatItem<'_>]] = &[
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]"),
    format_description!("[year]-[month]-[day]T[hour]:[minute]"),
    format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    format_description!("[year]-[month]-[day] [hour]:[minute]"),
];
const DATE: &[BorrowedFormatItem<'_>] = format_description!("[year]-[month]-[day]");

fn at(ms: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
}

fn shown(ms: i64, format: &[BorrowedFormatItem<'_>]) -> String {
    at(ms)
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{ms} ms since the epoch"))
}

/// `2026-12-03 15:35:31 UTC` for milliseconds since the epoch.
pub fn utc(ms: i64) -> String {
    shown(ms, SHOWN)
}

pub fn utc_opt(ms: Option<i64>) -> String {
    ms.map(utc).unwrap_or_else(|| "—".into())
}

/// `YYYY-MM-DDTHH:MM` (UTC), as a `datetime-local` input takes it.
pub fn utc_input(ms: i64) -> String {
    shown(ms, INPUT)
}

/// `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` or `YYYY-MM-DD HH:MM[:SS]`, read as
/// UTC, to milliseconds; a date that does not exist (February 30) is none.
pub fn parse_utc(text: &str) -> Option<i64> {
    let text = text
        .trim()
        .trim_end_matches("UTC")
        .trim_end_matches('Z')
        .trim();
    let time = ACCEPTED
        .iter()
        .find_map(|f| PrimitiveDateTime::parse(text, f).ok())
        .or_else(|| Date::parse(text, DATE).ok().map(Date::midnight))?;
    i64::try_from(time.assume_utc().unix_timestamp_nanos() / 1_000_000).ok()
}

/// `3 h 12 min`, `45 s`: how long ago `ms` was at `now`.
pub fn age(ms: i64, now: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Whether a header or JSON field of this name holds a credential.
pub fn is_sensitive(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authorization"
        || name == "cookie"
        || name == "set-cookie"
        || name.starts_with("x-hub-signature")
        || ["secret", "token", "password", "signature"]
            .iter()
            .any(|part| name.contains(part))
        // `api_key`, `privateKey`…, but not the identifiers trackers call
        // keys (an issue's `key`, a project's, an Atlassian Connect client's).
        || (name.contains("key")
            && !matches!(
                name.as_str(),
                "key" | "issuekey" | "issue_key" | "projectkey" | "project_key" | "clientkey"
                    | "client_key"
            ))
}

/// `value` with every sensitive field's value replaced by [`MASK`].
pub fn mask_json(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if is_sensitive(k) {
                    *v = Value::String(MASK.into());
                } else {
                    mask_json(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

/// Stored bytes for reading: pretty-printed masked JSON, else the text.
pub fn pretty_masked(bytes: &[u8]) -> String {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(mut value) => {
            mask_json(&mut value);
            serde_json::to_string_pretty(&value).unwrap_or_default()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_read_and_print_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_732_370_000_123), "2024-11-23 13:53:20 UTC");
        assert_eq!(parse_utc("2024-11-23T13:53:20"), Some(1_732_370_000_000));
        assert_eq!(parse_utc("2024-11-23 13:53"), Some(1_732_369_980_000));
        assert_eq!(parse_utc("2024-11-23"), Some(1_732_320_000_000));
        assert_eq!(parse_utc("2024-13-01"), None);
        assert_eq!(parse_utc("2024-02-30"), None);
        assert_eq!(parse_utc("2024-11-23T13:53:20Z"), Some(1_732_370_000_000));
        assert_eq!(parse_utc("yesterday"), None);
        assert_eq!(utc_input(1_732_370_000_123), "2024-11-23T13:53");
    }

    #[test]
    fn credentials_are_masked_at_any_depth() {
        let mut v = json!({"a": {"api_token": "x", "list": [{"Password": "y"}]}, "name": "n"});
        mask_json(&mut v);
        assert_eq!(
            v,
            json!({"a": {"api_token": MASK, "list": [{"Password": MASK}]}, "name": "n"})
        );
        assert!(is_sensitive("X-Hub-Signature-256"));
        assert!(is_sensitive("Cookie"));
        assert!(!is_sensitive("content-type"));
        assert!(is_sensitive("private_key") && is_sensitive("apiKey"));
        assert!(!is_sensitive("key") && !is_sensitive("clientKey"));
    }
}
