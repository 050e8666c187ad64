//! Durations as Galera reads and prints them (`gu::datetime::Period`).
//!
//! Accepted, like Galera 4:
//! - ISO-8601 `PnYnMnDTnHnMnS`, every part optional, in that order. Only the seconds may
//!   have a fraction, of at most 9 digits (`PT0.5S`, `PT7.5S`). A year is 12 months and a
//!   month 30 days, as in Galera. The `T` is optional too, so `P1D1M` is one day and one
//!   minute, while `P1M` is one month (Galera's regular expression reads it so). Upper case
//!   only, as in Galera.
//! - a plain number of seconds with an optional fraction: `5`, `1.5`, `.5`.
//!
//! Refused, where Galera would take them: an empty value and a lone `.` (Galera reads both
//! as zero, which no timeout wants). Anything longer than `i64::MAX` nanoseconds (~292
//! years) is out of range, as in Galera.
//!
//! Printing follows `operator<<(ostream&, const Period&)`: `P1D`, `PT1M`, `PT7.5S`,
//! `PT1M30S`. Two small differences: a zero duration prints `PT0S` (Galera prints a bare
//! `P`, which reads back but says nothing to a human), and fractions print exactly where
//! Galera rounds to 6 significant digits.

use std::time::Duration;

/// Why a duration was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DurationError {
    Syntax,
    Range,
}

const NANOS_PER_SEC: i128 = 1_000_000_000;
const MINUTE: i128 = 60 * NANOS_PER_SEC;
const HOUR: i128 = 60 * MINUTE;
const DAY: i128 = 24 * HOUR;
const MONTH: i128 = 30 * DAY;
const YEAR: i128 = 12 * MONTH;
/// Galera keeps periods in a signed 64-bit count of nanoseconds.
const MAX_NANOS: i128 = i64::MAX as i128;

/// ISO-8601 parts in the only order they may appear; the index is the "slot".
const SLOT_NANOS: [i128; 6] = [YEAR, MONTH, DAY, HOUR, MINUTE, NANOS_PER_SEC];
const SLOT_MONTH: usize = 1;
const SLOT_HOUR: usize = 3;
const SLOT_MINUTE: usize = 4;
const SLOT_SECOND: usize = 5;

/// Parses a duration in any syntax Galera accepts (see the module header).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let nanos = match text.strip_prefix('P') {
        Some(iso) => parse_iso(iso)?,
        None => parse_seconds(text)?,
    };
    let nanos = u64::try_from(nanos).map_err(|_| DurationError::Range)?;
    Ok(Duration::from_nanos(nanos))
}

/// The part after `P`.
fn parse_iso(text: &str) -> Result<i128, DurationError> {
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut next_slot = 0;
    let mut seen_t = false;
    let mut total: i128 = 0;
    while i < bytes.len() {
        if bytes[i] == b'T' {
            // One `T`, and only before any time part.
            if seen_t || next_slot > SLOT_HOUR {
                return Err(DurationError::Syntax);
            }
            seen_t = true;
            i += 1;
            continue;
        }
        let int_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = &text[int_start..i];
        let mut frac_digits = None;
        if i < bytes.len() && bytes[i] == b'.' {
            i += 1;
            let frac_start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = Some(&text[frac_start..i]);
        }
        let Some(&unit) = bytes.get(i) else {
            return Err(DurationError::Syntax); // a number without its unit
        };
        i += 1;
        if int_digits.is_empty() {
            return Err(DurationError::Syntax);
        }
        let slot = match unit {
            b'Y' => 0,
            // `M` is months until a `T`, a day or an hour has been seen; minutes after.
            b'M' if !seen_t && next_slot <= SLOT_MONTH => SLOT_MONTH,
            b'M' => SLOT_MINUTE,
            b'D' => 2,
            b'H' => SLOT_HOUR,
            b'S' => SLOT_SECOND,
            _ => return Err(DurationError::Syntax),
        };
        if slot < next_slot || (seen_t && slot < SLOT_HOUR) {
            return Err(DurationError::Syntax);
        }
        if frac_digits.is_some() && slot != SLOT_SECOND {
            return Err(DurationError::Syntax);
        }
        next_slot = slot + 1;
        let part = if slot == SLOT_SECOND {
            seconds_to_nanos(int_digits, frac_digits.unwrap_or(""))?
        } else {
            integer(int_digits)?
                .checked_mul(SLOT_NANOS[slot])
                .ok_or(DurationError::Range)?
        };
        total = total.checked_add(part).ok_or(DurationError::Range)?;
        if total > MAX_NANOS {
            return Err(DurationError::Range);
        }
    }
    Ok(total)
}

/// A plain number of seconds: `5`, `5.`, `1.5`, `.5`.
fn parse_seconds(text: &str) -> Result<i128, DurationError> {
    let (int_digits, frac_digits) = text.split_once('.').unwrap_or((text, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_digits.is_empty() && frac_digits.is_empty())
        || !all_digits(int_digits)
        || !all_digits(frac_digits)
    {
        return Err(DurationError::Syntax);
    }
    seconds_to_nanos(int_digits, frac_digits)
}

fn seconds_to_nanos(int_digits: &str, frac_digits: &str) -> Result<i128, DurationError> {
    // Galera keeps nanoseconds: a tenth digit after the point is refused, not rounded.
    if frac_digits.len() > 9 {
        return Err(DurationError::Syntax);
    }
    let whole = if int_digits.is_empty() {
        0
    } else {
        integer(int_digits)?
    };
    let mut frac: i128 = 0;
    for b in frac_digits.bytes() {
        frac = frac * 10 + i128::from(b - b'0');
    }
    for _ in frac_digits.len()..9 {
        frac *= 10;
    }
    let total = whole
        .checked_mul(NANOS_PER_SEC)
        .and_then(|n| n.checked_add(frac))
        .ok_or(DurationError::Range)?;
    if total > MAX_NANOS {
        return Err(DurationError::Range);
    }
    Ok(total)
}

/// ASCII decimal digits (checked by the caller) to a number, refusing anything that could
/// not fit a Galera period anyway.
fn integer(digits: &str) -> Result<i128, DurationError> {
    let mut n: i128 = 0;
    for b in digits.bytes() {
        n = n * 10 + i128::from(b - b'0');
        if n > MAX_NANOS {
            return Err(DurationError::Range);
        }
    }
    Ok(n)
}

/// Prints a duration the way Galera does (see the module header).
pub fn format_duration(duration: Duration) -> String {
    let mut rest = i128::try_from(duration.as_nanos()).unwrap_or(i128::MAX);
    if rest == 0 {
        return "PT0S".to_string();
    }
    let mut out = String::from("P");
    for (unit, letter) in [(YEAR, 'Y'), (MONTH, 'M'), (DAY, 'D')] {
        if rest >= unit {
            out.push_str(&format!("{}{letter}", rest / unit));
            rest %= unit;
        }
    }
    if rest > 0 {
        out.push('T');
    }
    for (unit, letter) in [(HOUR, 'H'), (MINUTE, 'M')] {
        if rest >= unit {
            out.push_str(&format!("{}{letter}", rest / unit));
            rest %= unit;
        }
    }
    if rest > 0 {
        let whole = rest / NANOS_PER_SEC;
        let frac = rest % NANOS_PER_SEC;
        out.push_str(&whole.to_string());
        if frac > 0 {
            let digits = format!("{frac:09}");
            out.push('.');
            out.push_str(digits.trim_end_matches('0'));
        }
        out.push('S');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn iso_durations_from_galera_defaults_parse() {
        assert_eq!(parse_duration("PT5S"), Ok(secs(5.0)));
        assert_eq!(parse_duration("PT0.5S"), Ok(secs(0.5)));
        assert_eq!(parse_duration("PT7.5S"), Ok(secs(7.5)));
        assert_eq!(parse_duration("PT1M"), Ok(secs(60.0)));
        assert_eq!(parse_duration("PT24H"), Ok(secs(86_400.0)));
        assert_eq!(parse_duration("P1D"), Ok(secs(86_400.0)));
        assert_eq!(parse_duration("PT1H30M"), Ok(secs(5_400.0)));
        assert_eq!(parse_duration("PT100M"), Ok(secs(6_000.0)));
    }

    #[test]
    fn month_and_minute_are_told_apart_as_galera_does() {
        assert_eq!(parse_duration("P1M"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("PT1M"), Ok(Duration::from_secs(60)));
        assert_eq!(
            parse_duration("P1D1M"),
            Ok(Duration::from_secs(86_400 + 60))
        );
        assert_eq!(parse_duration("P1Y"), Ok(Duration::from_secs(360 * 86_400)));
        // T is optional before time parts, as in Galera's pattern.
        assert_eq!(parse_duration("P1H"), Ok(Duration::from_secs(3_600)));
        assert_eq!(parse_duration("P5S"), Ok(Duration::from_secs(5)));
    }

    #[test]
    fn plain_seconds_are_accepted() {
        assert_eq!(parse_duration("5"), Ok(secs(5.0)));
        assert_eq!(parse_duration("1.5"), Ok(secs(1.5)));
        assert_eq!(parse_duration(".5"), Ok(secs(0.5)));
        assert_eq!(parse_duration("5."), Ok(secs(5.0)));
        assert_eq!(parse_duration("0.000000001"), Ok(Duration::from_nanos(1)));
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in [
            "",
            ".",
            "PT",
            "P",
            "pt5s",
            "PT5",
            "PT5X",
            "PT.5S",
            "PT1.5M",
            "P1.5D",
            "PT5S5S",
            "PT1S1M",
            "PTT1S",
            "P1HT1M",
            "PT1D",
            "5s",
            "-5",
            "+5",
            "1e3",
            "PT-1S",
            "P 1D",
            "PT0.0000000001S",
            "1..5",
            "abc",
            "PT5S ",
        ] {
            let parsed = parse_duration(bad);
            // `P` and `PT` alone are Galera's zero: allowed by the grammar, zero length.
            if bad == "P" || bad == "PT" {
                assert_eq!(parsed, Ok(Duration::ZERO), "{bad:?}");
            } else {
                assert_eq!(parsed, Err(DurationError::Syntax), "{bad:?}");
            }
        }
    }

    #[test]
    fn durations_beyond_galera_period_range_are_refused() {
        assert_eq!(parse_duration("P300Y"), Err(DurationError::Range));
        assert_eq!(parse_duration(&"9".repeat(100)), Err(DurationError::Range));
        assert_eq!(
            parse_duration(&format!("PT{}S", "9".repeat(60))),
            Err(DurationError::Range)
        );
        assert!(parse_duration("P290Y").is_ok());
    }

    #[test]
    fn format_matches_galera_output_for_its_defaults() {
        assert_eq!(format_duration(secs(5.0)), "PT5S");
        assert_eq!(format_duration(secs(0.5)), "PT0.5S");
        assert_eq!(format_duration(secs(7.5)), "PT7.5S");
        assert_eq!(format_duration(secs(60.0)), "PT1M");
        assert_eq!(format_duration(secs(90.0)), "PT1M30S");
        assert_eq!(format_duration(secs(86_400.0)), "P1D");
        assert_eq!(format_duration(secs(86_400.0 + 3_600.0)), "P1DT1H");
        assert_eq!(
            format_duration(Duration::from_secs(400 * 86_400)),
            "P1Y1M10D"
        );
        assert_eq!(format_duration(Duration::ZERO), "PT0S");
        assert_eq!(format_duration(Duration::from_nanos(1)), "PT0.000000001S");
    }

    #[test]
    fn durations_round_trip_through_format_and_parse() {
        let samples = [
            Duration::ZERO,
            Duration::from_nanos(1),
            Duration::from_millis(100),
            Duration::from_millis(1_500),
            Duration::from_secs(59),
            Duration::from_secs(3_661),
            Duration::from_secs(86_399),
            Duration::from_secs(31 * 86_400 + 7),
            Duration::from_nanos(i64::MAX as u64),
        ];
        for d in samples {
            let text = format_duration(d);
            assert_eq!(parse_duration(&text), Ok(d), "{text}");
        }
    }
}
