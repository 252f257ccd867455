//! Timestamps as trackers write them, into milliseconds since the Unix epoch —
//! the unit of the contract's `event-time`.
//!
//! [`parse_ms`] reads RFC 3339 date-times and the ISO 8601 variants trackers
//! actually send:
//!
//! | form | example |
//! |---|---|
//! | `Z` or `±hh:mm` | `2018-07-05T20:52:16Z`, `2024-02-29T12:00:00-05:30` |
//! | `±hhmm`, `±hh` (ISO 8601; Jira) | `2017-12-07T09:23:17.771+0000` |
//! | any number of fraction digits, truncated to milliseconds | `2018-07-05T20:52:16.3051288Z` |
//! | a space (or `t`) instead of `T`, `z` instead of `Z` | `2018-07-05 20:52:16z` |
//! | blanks before the zone (Azure DevOps) | `2018-07-05T23:23:11.1935112   Z` |
//!
//! The calendar is checked (`2023-02-29` is refused, `2024-02-29` is not). A
//! time without a zone is refused: its instant is unknown, and a wrong event
//! time is worse than none (the host then orders deliveries by arrival).
//! Instants before 1970 are refused too, since event times are unsigned.
//! Nothing here panics, whatever the input.
//!
//! ```
//! use trackbridge_plugin_sdk::time;
//! assert_eq!(time::parse_ms("2018-07-05T23:23:11.1935112   Z"), Some(1_530_832_991_193));
//! assert_eq!(time::parse_ms("yesterday"), None);
//! ```
//!
//! Parsing is done by the [`time`](https://docs.rs/time) crate (its
//! `parsing` feature, without `std`); this module only normalizes the
//! variants above into RFC 3339 first.

use std::fmt;

use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;

/// Why a text is not a timestamp [`try_parse_ms`] accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimestampError {
    /// Not a date-time at all, or an impossible one (the parser's reason).
    Malformed(String),
    /// A date-time without `Z` or an offset: which instant it means is unknown.
    MissingOffset,
    /// A valid instant before 1970-01-01T00:00:00Z.
    BeforeEpoch,
}

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimestampError::Malformed(why) => write!(f, "not an RFC 3339 timestamp: {why}"),
            TimestampError::MissingOffset => {
                f.write_str("the timestamp has no `Z` or `±hh:mm` offset")
            }
            TimestampError::BeforeEpoch => f.write_str("the timestamp is before 1970"),
        }
    }
}

impl std::error::Error for TimestampError {}

/// Milliseconds since the Unix epoch of an RFC 3339 / ISO 8601 timestamp (see
/// the [module docs](self) for the accepted forms), or `None`.
pub fn parse_ms(text: &str) -> Option<u64> {
    try_parse_ms(text).ok()
}

/// [`parse_ms`] with the reason when it fails, e.g. for a log line.
pub fn try_parse_ms(text: &str) -> Result<u64, TimestampError> {
    let normalized = normalize(text)?;
    let instant = OffsetDateTime::parse(&normalized, &Rfc3339)
        .map_err(|e| TimestampError::Malformed(e.to_string()))?;
    let nanos = instant.unix_timestamp_nanos();
    if nanos < 0 {
        return Err(TimestampError::BeforeEpoch);
    }
    // Truncation, not rounding: `.1939` is 193 ms, as trackers' own clients read it.
    u64::try_from(nanos / 1_000_000).map_err(|_| TimestampError::Malformed("out of range".into()))
}

/// The RFC 3339 spelling of `text`: trimmed, no blanks before the zone, the
/// offset as `±hh:mm`. Everything else is left to the parser to judge.
fn normalize(text: &str) -> Result<String, TimestampError> {
    let text = text.trim();
    // `YYYY-MM-DD` and a separator come first: a sign or `Z` belongs to the
    // zone only after them (the date's own dashes are not an offset).
    const TIME_STARTS: usize = 11;
    if text.len() <= TIME_STARTS {
        return Err(TimestampError::Malformed(
            "too short for a date and a time".into(),
        ));
    }
    let (clock, zone) = if let Some(clock) = text.strip_suffix(['Z', 'z']) {
        (clock, "Z".to_owned())
    } else {
        match text.rfind(['+', '-']) {
            Some(at) if at >= TIME_STARTS => (&text[..at], offset(&text[at..])?),
            _ => return Err(TimestampError::MissingOffset),
        }
    };
    Ok(format!("{}{zone}", clock.trim_end()))
}

/// `±hh:mm`, `±hhmm` or `±hh` as `±hh:mm`; the parser checks the ranges.
fn offset(zone: &str) -> Result<String, TimestampError> {
    let b = zone.as_bytes();
    let digit = |i: usize| b.get(i).is_some_and(u8::is_ascii_digit);
    // Every byte sliced below was checked to be ASCII, so no slice can split a character.
    let (hours, minutes) = match b.len() {
        6 if digit(1) && digit(2) && b[3] == b':' && digit(4) && digit(5) => {
            (&zone[1..3], &zone[4..6])
        }
        5 if (1..5).all(digit) => (&zone[1..3], &zone[3..5]),
        3 if digit(1) && digit(2) => (&zone[1..3], "00"),
        _ => {
            return Err(TimestampError::Malformed(format!(
                "`{zone}` is not a UTC offset"
            )));
        }
    };
    Ok(format!("{}{hours}:{minutes}", &zone[..1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_offsets() {
        assert_eq!(parse_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_ms("2014-10-27T15:37:24.873Z"),
            Some(1_414_424_244_873)
        );
        // The same instant written with positive, negative, compact and short offsets.
        for same in [
            "2014-10-27T16:37:24.873+01:00",
            "2014-10-27T10:07:24.873-05:30",
            "2014-10-27T10:07:24.873-0530",
            "2014-10-27T16:37:24.873+01",
            "2014-10-27T15:37:24.873+00:00",
            "2014-10-27T15:37:24.873-00:00",
            "2014-10-27T15:37:24.873+0000",
        ] {
            assert_eq!(parse_ms(same), Some(1_414_424_244_873), "{same}");
        }
        // A negative offset that moves the instant into the next day.
        assert_eq!(
            parse_ms("2023-12-31T23:30:00-02:00"),
            parse_ms("2024-01-01T01:30:00Z")
        );
    }

    #[test]
    fn leap_day() {
        assert_eq!(parse_ms("2024-02-29T12:00:00Z"), Some(1_709_208_000_000));
        assert_eq!(parse_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(
            parse_ms("2024-02-29T23:59:59.999-01:00"),
            Some(1_709_254_799_999)
        );
        for not_leap in ["2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z"] {
            assert!(
                matches!(try_parse_ms(not_leap), Err(TimestampError::Malformed(_))),
                "{not_leap}"
            );
        }
    }

    #[test]
    fn fractions_of_any_length_are_truncated() {
        assert_eq!(parse_ms("2018-07-05T20:52:16Z"), Some(1_530_823_936_000));
        assert_eq!(parse_ms("2018-07-05T20:52:16.3Z"), Some(1_530_823_936_300));
        assert_eq!(parse_ms("2018-07-05T20:52:16.30Z"), Some(1_530_823_936_300));
        // Seven digits (.NET ticks, Azure DevOps): truncated, not rounded.
        assert_eq!(
            parse_ms("2018-07-05T20:52:16.3051288Z"),
            Some(1_530_823_936_305)
        );
        assert_eq!(
            parse_ms("2018-07-05T20:52:16.9999999Z"),
            Some(1_530_823_936_999)
        );
        assert_eq!(
            parse_ms("2018-07-05T20:52:16.123456789012345Z"),
            Some(1_530_823_936_123)
        );
    }

    #[test]
    fn azure_devops_padding_and_separators() {
        assert_eq!(
            parse_ms("2018-07-05T23:23:11.1935112   Z"),
            Some(1_530_832_991_193)
        );
        assert_eq!(
            parse_ms("  2018-07-05T23:23:11.1935112 +00:00\n"),
            Some(1_530_832_991_193)
        );
        assert_eq!(
            parse_ms("2018-07-05 23:23:11.1935112Z"),
            Some(1_530_832_991_193)
        );
        assert_eq!(
            parse_ms("2018-07-05t23:23:11.1935112z"),
            Some(1_530_832_991_193)
        );
        // Jira's changelog `created`.
        assert_eq!(
            parse_ms("2017-12-07T09:23:17.771+0000"),
            Some(1_512_638_597_771)
        );
    }

    #[test]
    fn refuses_what_is_not_an_instant() {
        assert_eq!(
            try_parse_ms("2024-02-29T12:00:00"),
            Err(TimestampError::MissingOffset)
        );
        assert_eq!(
            try_parse_ms("1969-12-31T23:59:59Z"),
            Err(TimestampError::BeforeEpoch)
        );
        assert_eq!(
            try_parse_ms("1970-01-01T00:30:00+01:00"),
            Err(TimestampError::BeforeEpoch)
        );
        for bad in [
            "",
            "   ",
            "Z",
            "yesterday",
            "2018-07-05",
            "2018-07-05Z",
            "2018-07-05T",
            "2018-13-05T00:00:00Z",
            "2018-07-32T00:00:00Z",
            "2018-07-05T25:00:00Z",
            "2018-07-05T23:60:00Z",
            "2018-07-05T20:52:16.Z",
            "2018-07-05T20:52Z",
            "18-07-05T20:52:16Z",
            "2018-07-05T20:52:16+24:00",
            "2018-07-05T20:52:16+01:60",
            "2018-07-05T20:52:16+1:00",
            "2018-07-05T20:52:16+01:0",
            "2018-07-05T20:52:16+",
            "2018-07-05T20:52:16+ab:cd",
            "2018-07-05T20:52:16+1é1",
            "2018-07-05T20:52:16+é:1",
            "2018-07-05T20:52:16.1é+01:00",
            "2018-07-05T20:52:16Z junk",
            "2018-07-05T20:52:16ZZ",
            "2018-07-05TT20:52:16Z",
            "1530823936000",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad:?}");
        }
    }

    /// Arbitrary text, multi-byte characters included, is refused or parsed,
    /// never a panic.
    #[test]
    fn never_panics_on_garbage() {
        let alphabet: Vec<char> = "0123456789-+:.TtZz é€\u{0}\t𝄞".chars().collect();
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let template: Vec<char> = "2018-07-05T23:23:11.1935112+01:00".chars().collect();
        for _ in 0..20_000 {
            let mut s: Vec<char> = if next() % 2 == 0 {
                template.clone()
            } else {
                (0..next() % 40)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            };
            for _ in 0..next() % 4 {
                if s.is_empty() {
                    break;
                }
                let at = (next() % s.len() as u64) as usize;
                s[at] = alphabet[(next() % alphabet.len() as u64) as usize];
            }
            let text: String = s.into_iter().collect();
            let _ = try_parse_ms(&text);
        }
    }

    #[test]
    fn errors_explain_themselves() {
        let e = try_parse_ms("2018-13-05T00:00:00Z").unwrap_err();
        assert!(
            e.to_string().starts_with("not an RFC 3339 timestamp"),
            "{e}"
        );
        assert!(TimestampError::MissingOffset.to_string().contains("offset"));
    }
}
