//! Scalar value syntax as Galera reads it: booleans, integers with size suffixes, sizes,
//! floating-point fractions and hexadecimal log masks.
//!
//! Galera reads these through `gu_str2bool`, `gu_str2ll` (strtoll plus one `K/M/G/T`
//! suffix, powers of 1024, case-insensitive, nothing after it: `1KB` is refused) and
//! `strtod`. Two deliberate differences, both towards fewer surprises:
//! - a leading `0` does not make a number octal (`gu_str2ll` passes base 0 to strtoll, so
//!   Galera reads `010` as 8 in some options and as 10 in others); `0x` hex is kept;
//! - `nan` and `inf` are refused where Galera's strtod would take them.
//!
//! Every parser here is total: any input gives a value or an error, never a panic.

/// Why a number was refused; the caller turns it into an [`crate::OptionError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NumberError {
    /// Not a number in the accepted syntax.
    Syntax,
    /// A number, but it does not fit (i64, or u64 for sizes) or is negative for a size.
    Range,
}

/// Galera's boolean words (`gu_str2bool`), case-insensitive. Beyond the usual
/// yes/no/true/false/on/off/1/0 Galera also takes y/n, yep/nope, yeah, sure and none.
pub(crate) fn parse_bool(text: &str) -> Option<bool> {
    const TRUE: [&str; 8] = ["1", "y", "yes", "on", "true", "yep", "yeah", "sure"];
    const FALSE: [&str; 7] = ["0", "n", "no", "off", "false", "nope", "none"];
    if TRUE.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        Some(true)
    } else if FALSE.iter().any(|w| w.eq_ignore_ascii_case(text)) {
        Some(false)
    } else {
        None
    }
}

/// An integer: optional sign, decimal digits or `0x` hex digits, then at most one of
/// `K`, `M`, `G`, `T` (x1024, x1024^2, ...), case-insensitive.
pub(crate) fn parse_int(text: &str) -> Result<i64, NumberError> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, rest) = match rest.get(..2) {
        Some("0x") | Some("0X") => (16u32, &rest[2..]),
        _ => (10u32, rest),
    };
    let digits_end = rest
        .char_indices()
        .find(|(_, c)| !c.is_digit(radix))
        .map_or(rest.len(), |(i, _)| i);
    let (digits, suffix) = rest.split_at(digits_end);
    if digits.is_empty() {
        return Err(NumberError::Syntax);
    }
    let shift = match suffix {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        _ => return Err(NumberError::Syntax),
    };
    // Accumulate in i128 so the overflow check is a plain comparison at the end.
    let mut magnitude: i128 = 0;
    for c in digits.chars() {
        let d = c.to_digit(radix).ok_or(NumberError::Syntax)?;
        magnitude = magnitude * i128::from(radix) + i128::from(d);
        if magnitude > i128::from(u64::MAX) {
            return Err(NumberError::Range);
        }
    }
    let scaled = magnitude << shift;
    let signed = if negative { -scaled } else { scaled };
    i64::try_from(signed).map_err(|_| NumberError::Range)
}

/// A size in bytes: [`parse_int`] syntax, not negative.
pub(crate) fn parse_size(text: &str) -> Result<u64, NumberError> {
    let n = parse_int(text)?;
    u64::try_from(n).map_err(|_| NumberError::Range)
}

/// A finite floating-point number (`0.25`, `1`, `1.0`, `.5`, `1e-3`).
pub(crate) fn parse_float(text: &str) -> Option<f64> {
    // Rust's parser also takes "inf", "NaN" and "infinity": none is a sensible fraction.
    let value: f64 = text.parse().ok()?;
    value.is_finite().then_some(value)
}

/// A log mask as Galera's gcomm reads it: hexadecimal, `0x` optional (`0x1`, `ff`, `0`),
/// at most `0x7fffffff` (it is a C `int`).
pub(crate) fn parse_mask(text: &str) -> Result<u32, NumberError> {
    let digits = match text.get(..2) {
        Some("0x") | Some("0X") => &text[2..],
        _ => text,
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(NumberError::Syntax);
    }
    let trimmed = digits.trim_start_matches('0');
    if trimmed.len() > 8 {
        return Err(NumberError::Range);
    }
    let value = u32::from_str_radix(if trimmed.is_empty() { "0" } else { trimmed }, 16)
        .map_err(|_| NumberError::Syntax)?;
    if value > 0x7fff_ffff {
        return Err(NumberError::Range);
    }
    Ok(value)
}

/// A mask the way gcomm prints it (`std::showbase << std::hex`): `0x1`, and `0` for zero.
pub(crate) fn format_mask(mask: u32) -> String {
    if mask == 0 {
        "0".to_string()
    } else {
        format!("{mask:#x}")
    }
}

/// A size the way Galera writes one back (`gu::Config::set_longlong`): the largest of
/// `T`, `G`, `M`, `K` that divides it exactly, else plain bytes. `134217728` -> `128M`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [(u32, &str); 4] = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];
    if bytes == 0 {
        return "0".to_string();
    }
    for (shift, unit) in UNITS {
        if bytes.trailing_zeros() >= shift {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    bytes.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bool_accepts_galera_words_in_any_case() {
        for w in [
            "yes", "YES", "Yes", "true", "TRUE", "on", "ON", "1", "y", "Y", "yep", "yeah",
        ] {
            assert_eq!(parse_bool(w), Some(true), "{w}");
        }
        for w in [
            "no", "NO", "false", "False", "off", "OFF", "0", "n", "nope", "none",
        ] {
            assert_eq!(parse_bool(w), Some(false), "{w}");
        }
        for w in ["", "2", "yess", "tru", "of", " yes", "-1"] {
            assert_eq!(parse_bool(w), None, "{w}");
        }
    }

    #[test]
    fn int_reads_suffixes_as_powers_of_1024() {
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(parse_int("16"), Ok(16));
        assert_eq!(parse_int("+16"), Ok(16));
        assert_eq!(parse_int("-3"), Ok(-3));
        assert_eq!(parse_int("1k"), Ok(1024));
        assert_eq!(parse_int("128M"), Ok(128 << 20));
        assert_eq!(parse_int("2g"), Ok(2 << 30));
        assert_eq!(parse_int("1T"), Ok(1 << 40));
        assert_eq!(parse_int("0x10"), Ok(16));
        assert_eq!(parse_int("0x1K"), Ok(1024));
        // Leading zero stays decimal (see module header).
        assert_eq!(parse_int("010"), Ok(10));
    }

    #[test]
    fn int_refuses_trailing_garbage_and_unit_words() {
        for bad in [
            "", "+", "-", "abc", "1KB", "1 K", "1.5", "1e3", "0x", "K", "12x", "1MM",
        ] {
            assert_eq!(parse_int(bad), Err(NumberError::Syntax), "{bad}");
        }
    }

    #[test]
    fn int_reports_overflow_as_range() {
        assert_eq!(parse_int("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_int("9223372036854775808"), Err(NumberError::Range));
        assert_eq!(parse_int("8388608T"), Err(NumberError::Range));
        assert_eq!(parse_int(&"9".repeat(400)), Err(NumberError::Range));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
    }

    #[test]
    fn size_refuses_negative_numbers() {
        assert_eq!(parse_size("128M"), Ok(134_217_728));
        assert_eq!(parse_size("-1"), Err(NumberError::Range));
    }

    #[test]
    fn sizes_round_trip_through_galera_formatting() {
        for bytes in [
            0u64,
            1,
            1000,
            1024,
            1536,
            128 << 20,
            3 << 30,
            5 << 40,
            i64::MAX as u64,
        ] {
            let text = format_size(bytes);
            assert_eq!(parse_size(&text), Ok(bytes), "{text}");
        }
        assert_eq!(format_size(128 << 20), "128M");
        assert_eq!(format_size(1536), "1536");
        assert_eq!(format_size(2048), "2K");
    }

    #[test]
    fn float_refuses_non_finite_values() {
        assert_eq!(parse_float("0.25"), Some(0.25));
        assert_eq!(parse_float("1"), Some(1.0));
        assert_eq!(parse_float(".5"), Some(0.5));
        for bad in ["", "nan", "NaN", "inf", "-inf", "infinity", "1,5", "0x1"] {
            assert_eq!(parse_float(bad), None, "{bad}");
        }
    }

    #[test]
    fn mask_is_hexadecimal_with_optional_prefix() {
        assert_eq!(parse_mask("0x1"), Ok(1));
        assert_eq!(parse_mask("ff"), Ok(255));
        assert_eq!(parse_mask("0"), Ok(0));
        assert_eq!(parse_mask("0000000000001"), Ok(1));
        assert_eq!(parse_mask("0x7fffffff"), Ok(0x7fff_ffff));
        assert_eq!(parse_mask("0x80000000"), Err(NumberError::Range));
        assert_eq!(parse_mask("0x"), Err(NumberError::Syntax));
        assert_eq!(parse_mask("0xg"), Err(NumberError::Syntax));
        assert_eq!(format_mask(1), "0x1");
        assert_eq!(format_mask(0), "0");
        assert_eq!(parse_mask(&format_mask(0xabc)), Ok(0xabc));
    }
}
