//! Splitting an options string into `(key, value)` pairs, as `gu::Config::parse` does.
//!
//! - Pairs are separated by `;`, key from value by `=`; a backslash makes either one literal
//!   (`\;`, `\=`); any other backslash is kept as is.
//! - Keys and values are trimmed of ASCII white space, as by Galera's `gu::trim`; empty
//!   segments (`;;`, a trailing `;`, only blanks) are skipped.
//! - A non-empty segment without `=`, with an empty key, or with a second `=` is an error.
//! - Quotes are not special: MariaDB has already removed the SQL or my.cnf quoting, and
//!   Galera does not unquote either.
//!
//! Later pairs win over earlier ones for the same key; that is the caller's business, this
//! module keeps every pair in order.

use crate::error::{clip, OptionError};

/// White space as C's `isspace` sees it in the "C" locale.
fn is_c_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r')
}

fn trim(s: &str) -> &str {
    s.trim_matches(is_c_space)
}

/// Splits `text` at every `sep` not preceded by a backslash. An escaped `sep` loses its
/// backslash; other escapes are left for a later pass.
fn split_unescaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&sep) {
            current.push(sep);
            chars.next();
        } else if c == sep {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

/// Parses `key=value; key = value;` into trimmed pairs, in order.
pub(crate) fn parse_pairs(text: &str) -> Result<Vec<(String, String)>, OptionError> {
    let mut pairs = Vec::new();
    // `\=` must survive the first split to be seen by the second, so split on `;` by hand
    // keeping `\=` intact: only `\;` is resolved here.
    for segment in split_unescaped(text, ';') {
        if trim(&segment).is_empty() {
            continue;
        }
        let parts = split_unescaped(&segment, '=');
        let syntax = |reason| OptionError::Syntax {
            segment: clip(trim(&segment)),
            reason,
        };
        let key = trim(&parts[0]);
        match parts.len() {
            1 => return Err(syntax("expected key=value")),
            2 if key.is_empty() => return Err(syntax("the key is empty")),
            2 => pairs.push((key.to_string(), trim(&parts[1]).to_string())),
            _ => return Err(syntax("more than one '=' (write \\= for a literal one)")),
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        parse_pairs(text).unwrap()
    }

    fn p(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn spaces_empty_segments_and_trailing_semicolon_are_tolerated() {
        assert_eq!(
            pairs(" a=1;  b = 2 ;;\t;c=PT5S; "),
            vec![p("a", "1"), p("b", "2"), p("c", "PT5S")]
        );
        assert_eq!(pairs(""), vec![]);
        assert_eq!(pairs(";;;"), vec![]);
        assert_eq!(pairs("   "), vec![]);
    }

    #[test]
    fn empty_values_are_kept() {
        assert_eq!(
            pairs("gcomm.thread_prio = ; x="),
            vec![p("gcomm.thread_prio", ""), p("x", "")]
        );
    }

    #[test]
    fn galera_rendered_options_string_parses_back() {
        let rendered = "base_dir = /tmp/g1/data/; gcomm.thread_prio = ; pc.weight = 1; ";
        assert_eq!(
            pairs(rendered),
            vec![
                p("base_dir", "/tmp/g1/data/"),
                p("gcomm.thread_prio", ""),
                p("pc.weight", "1")
            ]
        );
    }

    #[test]
    fn backslash_escapes_separators() {
        assert_eq!(pairs(r"a=x\;y;b=1\=2"), vec![p("a", "x;y"), p("b", "1=2")]);
        assert_eq!(pairs(r"a=c:\dir"), vec![p("a", r"c:\dir")]);
    }

    #[test]
    fn segments_that_are_not_key_value_are_syntax_errors_naming_the_segment() {
        for (text, segment) in [
            ("a=1;foo;b=2", "foo"),
            ("=5", "=5"),
            (" = 5 ", "= 5"),
            ("a=1=2", "a=1=2"),
        ] {
            match parse_pairs(text) {
                Err(OptionError::Syntax { segment: s, .. }) => assert_eq!(s, segment, "{text}"),
                other => panic!("{text}: expected a syntax error, got {other:?}"),
            }
        }
    }

    #[test]
    fn unicode_and_control_characters_do_not_panic() {
        for text in [
            "é=ü",
            "\u{0}=\u{0}",
            "a=\u{feff}",
            "\\",
            "\\;",
            "=\\",
            "\u{2028}",
        ] {
            let _ = parse_pairs(text);
        }
    }
}
