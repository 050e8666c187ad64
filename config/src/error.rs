//! The one error type of this crate. Every variant names the option (or the piece of the
//! options string) it is about, because the message ends up in MariaDB's error log or in
//! the client's `SET GLOBAL` error, in front of an operator who has to fix one line.
//!
//! Values echoed back are clipped (see [`clip`]) so a pasted megabyte of garbage cannot turn
//! one error into a megabyte log line.

/// What went wrong with a provider options string, at init or at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// The key is not a Galera 4.23 or Trireme option. Keys are case-sensitive, as in Galera.
    #[error("Unknown parameter '{key}'{}", did_you_mean(.suggestion))]
    Unknown {
        key: String,
        /// The nearest known key, when one is close enough to be a likely typo.
        suggestion: Option<&'static str>,
    },
    /// The value does not have the option's syntax.
    #[error("Invalid value '{value}' for provider option '{key}': expected {expected}")]
    Malformed {
        key: &'static str,
        value: String,
        expected: String,
    },
    /// The value has the right syntax but lies outside the accepted range.
    #[error("Value '{value}' for provider option '{key}' is out of range: expected {range}")]
    OutOfRange {
        key: &'static str,
        value: String,
        range: String,
    },
    /// A run-time `SET` tried to change an option that only takes effect at startup.
    #[error("Provider option '{key}' cannot be changed at run time")]
    NotDynamic { key: &'static str },
    /// A `;`-separated segment is not `key = value`.
    #[error("Malformed provider options segment '{segment}': {reason}")]
    Syntax {
        segment: String,
        reason: &'static str,
    },
    /// Two options are each valid but not together (Galera checks the same pairs).
    #[error(
        "Provider option '{key}' = '{value}' conflicts with '{other}' = '{other_value}': {rule}"
    )]
    Inconsistent {
        key: &'static str,
        value: String,
        other: &'static str,
        other_value: String,
        rule: &'static str,
    },
    /// `wsrep_node_address` (passed to `init`, not an option) cannot be used.
    #[error("Invalid node address '{address}': {reason}")]
    NodeAddress {
        address: String,
        reason: &'static str,
    },
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(key) => format!(" (did you mean '{key}'?)"),
        None => String::new(),
    }
}

/// The longest piece of user input an error message repeats.
const CLIP_CHARS: usize = 120;

/// User input as it should appear inside an error message: at most [`CLIP_CHARS`]
/// characters, with an ellipsis when cut. Cuts on a character boundary, never inside one.
pub(crate) fn clip(text: &str) -> String {
    match text.char_indices().nth(CLIP_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_message_names_key_and_suggestion() {
        let err = OptionError::Unknown {
            key: "evs.suspekt_timeout".into(),
            suggestion: Some("evs.suspect_timeout"),
        };
        assert_eq!(
            err.to_string(),
            "Unknown parameter 'evs.suspekt_timeout' (did you mean 'evs.suspect_timeout'?)"
        );
    }

    #[test]
    fn clip_keeps_short_text_and_cuts_long_text_on_char_boundary() {
        assert_eq!(clip("abc"), "abc");
        let long = "é".repeat(500);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), CLIP_CHARS + 3);
        assert!(clipped.ends_with("..."));
    }
}
