//! Option kinds and typed values: turning the text of one `key=value` pair into a `Value`
//! according to the option's [`Kind`], and printing a value back in canonical form.
//!
//! The syntax of each kind lives in its own module ([`crate::number`],
//! [`crate::duration`], [`crate::address`], [`crate::trireme`]); this module only
//! dispatches and applies ranges.

use std::time::Duration;

use trireme_types::{NodeId, Uuid};

use crate::address::{Address, PeerOp};
use crate::duration::{format_duration, parse_duration, DurationError};
use crate::number::{
    format_mask, format_size, parse_bool, parse_float, parse_int, parse_mask, parse_size,
    NumberError,
};
use crate::trireme::Pinning;

/// The syntax and range of an option's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `yes/no/true/false/on/off/1/0` and Galera's other boolean words.
    Bool,
    /// An integer in `min..=max`; `K/M/G/T` suffixes allowed, as in Galera.
    Int { min: i64, max: i64 },
    /// A finite number in `[min, max]`, or `[min, max)` when `max_inclusive` is false.
    Float {
        min: f64,
        max: f64,
        max_inclusive: bool,
    },
    /// A byte count in `min..=max`, with optional `K/M/G/T` suffix.
    Size { min: u64, max: u64 },
    /// `auto` or a byte count (socket buffer sizes).
    SizeOrAuto,
    /// `auto`, `0` (also auto) or an integer in `min..=max`.
    CountOrAuto { min: i64, max: i64 },
    /// A duration (ISO-8601 or seconds) in `min..=max`.
    Duration { min: Duration, max: Duration },
    /// A hexadecimal log mask.
    Mask,
    /// Free text, possibly empty.
    String,
    /// Non-empty text naming a file or directory.
    Path,
    /// `[tcp://|ssl://]host[:port]`.
    Address,
    /// `add:<address>` or `del:<address>`.
    PeerOp,
    /// A node UUID, or empty.
    NodeUuid,
    /// One of a fixed list of words, case-insensitive.
    Enum(&'static [&'static str]),
    /// `none`, `auto` or a comma list of CPU core ids.
    CoreList,
}

/// A parsed option value. Which variant an option holds follows from its [`Kind`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    Int(i64),
    Float(f64),
    Size(u64),
    /// `auto` for [`Kind::SizeOrAuto`] and [`Kind::CountOrAuto`].
    Auto,
    Duration(Duration),
    Mask(u32),
    Text(String),
    Address(Address),
    Peer(PeerOp),
    /// [`Kind::NodeUuid`]: `None` for the empty value.
    Node(Option<NodeId>),
    /// [`Kind::Enum`]: the word as spelled in the option's list.
    Choice(&'static str),
    Pinning(Pinning),
}

/// Why a value was refused, before the option's key is attached to make an error.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rejection {
    /// Wrong syntax; the message says what was expected (from [`Kind::expected`]).
    Malformed { detail: Option<&'static str> },
    /// Right syntax, outside [`Kind::range`].
    OutOfRange,
}

impl Kind {
    /// What a value of this kind looks like, for "expected ..." in error messages.
    pub fn expected(&self) -> String {
        match self {
            Kind::Bool => "a boolean (yes/no, true/false, on/off, 1/0)".into(),
            Kind::Int { min, max } => format!("an integer from {min} to {max}"),
            Kind::Float { .. } => format!("a number in {}", self.range()),
            Kind::Size { .. } => "a size such as 128M (suffixes K, M, G, T)".into(),
            Kind::SizeOrAuto => "'auto' or a size such as 4M".into(),
            Kind::CountOrAuto { min, max } => format!("'auto' or an integer from {min} to {max}"),
            Kind::Duration { .. } => {
                "a duration such as PT5S, PT0.5S, PT1M, P1D or a number of seconds".into()
            }
            Kind::Mask => "a hexadecimal mask such as 0x1".into(),
            Kind::String => "text".into(),
            Kind::Path => "a file or directory name".into(),
            Kind::Address => {
                "an address such as tcp://0.0.0.0:4567, 127.0.0.1, [::1]:4567 or host:port".into()
            }
            Kind::PeerOp => "add:<address> or del:<address>".into(),
            Kind::NodeUuid => "a node UUID (8-4-4-4-12 hex digits) or nothing".into(),
            Kind::Enum(words) => format!("one of {}", words.join(", ")),
            Kind::CoreList => "none, auto or a list of CPU core ids such as 0,2,4".into(),
        }
    }

    /// The accepted range, for out-of-range messages and the option table.
    pub fn range(&self) -> String {
        match self {
            Kind::Int { min, max } | Kind::CountOrAuto { min, max } => format!("{min}..={max}"),
            Kind::Float {
                min,
                max,
                max_inclusive,
            } => format!("[{min}, {max}{}", if *max_inclusive { "]" } else { ")" }),
            Kind::Size { min, max } => format!("{}..={}", format_size(*min), format_size(*max)),
            Kind::Duration { min, max } => {
                format!("{}..={}", format_duration(*min), format_duration(*max))
            }
            Kind::Mask => "0..=0x7fffffff".into(),
            Kind::SizeOrAuto => format!("auto or 0..={}", format_size(i64::MAX as u64)),
            _ => self.expected(),
        }
    }

    /// Parses already-trimmed option text.
    pub(crate) fn parse(&self, text: &str) -> Result<Value, Rejection> {
        let malformed = Err(Rejection::Malformed { detail: None });
        match *self {
            Kind::Bool => parse_bool(text).map_or(malformed, |b| Ok(Value::Bool(b))),
            Kind::Int { min, max } => {
                let n = parse_int(text).map_err(number_rejection)?;
                in_range(n >= min && n <= max, Value::Int(n))
            }
            Kind::Float {
                min,
                max,
                max_inclusive,
            } => {
                let Some(x) = parse_float(text) else {
                    return malformed;
                };
                let below_max = if max_inclusive { x <= max } else { x < max };
                in_range(x >= min && below_max, Value::Float(x))
            }
            Kind::Size { min, max } => {
                let n = parse_size(text).map_err(number_rejection)?;
                in_range(n >= min && n <= max, Value::Size(n))
            }
            Kind::SizeOrAuto => {
                if text.eq_ignore_ascii_case("auto") {
                    return Ok(Value::Auto);
                }
                parse_size(text).map(Value::Size).map_err(number_rejection)
            }
            Kind::CountOrAuto { min, max } => {
                if text.eq_ignore_ascii_case("auto") {
                    return Ok(Value::Auto);
                }
                match parse_int(text).map_err(number_rejection)? {
                    0 => Ok(Value::Auto),
                    n => in_range(n >= min && n <= max, Value::Int(n)),
                }
            }
            Kind::Duration { min, max } => {
                let d = parse_duration(text).map_err(|e| match e {
                    DurationError::Syntax => Rejection::Malformed { detail: None },
                    DurationError::Range => Rejection::OutOfRange,
                })?;
                in_range(d >= min && d <= max, Value::Duration(d))
            }
            Kind::Mask => parse_mask(text).map(Value::Mask).map_err(number_rejection),
            Kind::String => Ok(Value::Text(text.to_string())),
            Kind::Path => {
                if text.is_empty() {
                    Err(Rejection::Malformed {
                        detail: Some("the name is empty"),
                    })
                } else {
                    Ok(Value::Text(text.to_string()))
                }
            }
            Kind::Address => Address::parse(text)
                .map(Value::Address)
                .map_err(|d| Rejection::Malformed { detail: Some(d) }),
            Kind::PeerOp => PeerOp::parse(text)
                .map(Value::Peer)
                .map_err(|d| Rejection::Malformed { detail: Some(d) }),
            Kind::NodeUuid => parse_node(text),
            Kind::Enum(words) => words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(text))
                .map_or(malformed, |w| Ok(Value::Choice(w))),
            Kind::CoreList => Pinning::parse(text)
                .map(Value::Pinning)
                .map_err(|d| Rejection::Malformed { detail: Some(d) }),
        }
    }
}

fn in_range(ok: bool, value: Value) -> Result<Value, Rejection> {
    if ok {
        Ok(value)
    } else {
        Err(Rejection::OutOfRange)
    }
}

fn number_rejection(e: NumberError) -> Rejection {
    match e {
        NumberError::Syntax => Rejection::Malformed { detail: None },
        NumberError::Range => Rejection::OutOfRange,
    }
}

fn parse_node(text: &str) -> Result<Value, Rejection> {
    if text.is_empty() {
        return Ok(Value::Node(None));
    }
    // Checked here first: only ASCII reaches the UUID parser, which slices by byte offset.
    let shape_ok = text.len() == 36 && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    let uuid = shape_ok
        .then(|| text.parse::<Uuid>().ok())
        .flatten()
        .ok_or(Rejection::Malformed { detail: None })?;
    Ok(Value::Node(Some(NodeId(uuid))))
}

impl Value {
    /// The canonical text of a value: what Galera's gcomm writes back for the options it
    /// normalises (`true`/`false`, `PT7.5S`, `0x1`), and a stable form for the rest.
    pub(crate) fn canonical(&self) -> String {
        match self {
            Value::Bool(b) => b.to_string(),
            Value::Int(n) => n.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Size(n) => format_size(*n),
            Value::Auto => "auto".to_string(),
            Value::Duration(d) => format_duration(*d),
            Value::Mask(m) => format_mask(*m),
            Value::Text(t) => t.clone(),
            Value::Address(a) => a.to_string(),
            Value::Peer(p) => p.to_string(),
            Value::Node(n) => n.map(|id| id.0.to_string()).unwrap_or_default(),
            Value::Choice(w) => (*w).to_string(),
            Value::Pinning(p) => p.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_range_is_inclusive_at_both_ends() {
        let kind = Kind::Int { min: 0, max: 255 };
        assert_eq!(kind.parse("0"), Ok(Value::Int(0)));
        assert_eq!(kind.parse("255"), Ok(Value::Int(255)));
        assert_eq!(kind.parse("256"), Err(Rejection::OutOfRange));
        assert_eq!(kind.parse("-1"), Err(Rejection::OutOfRange));
        assert_eq!(kind.parse("x"), Err(Rejection::Malformed { detail: None }));
    }

    #[test]
    fn float_range_can_exclude_its_maximum() {
        let half_open = Kind::Float {
            min: 0.0,
            max: 1.0,
            max_inclusive: false,
        };
        assert_eq!(half_open.parse("0.25"), Ok(Value::Float(0.25)));
        assert_eq!(half_open.parse("1.0"), Err(Rejection::OutOfRange));
        let closed = Kind::Float {
            min: 0.0,
            max: 1.0,
            max_inclusive: true,
        };
        assert_eq!(closed.parse("1.0"), Ok(Value::Float(1.0)));
        assert_eq!(closed.range(), "[0, 1]");
        assert_eq!(half_open.range(), "[0, 1)");
    }

    #[test]
    fn count_or_auto_reads_zero_as_auto() {
        let kind = Kind::CountOrAuto { min: 1, max: 64 };
        assert_eq!(kind.parse("auto"), Ok(Value::Auto));
        assert_eq!(kind.parse("AUTO"), Ok(Value::Auto));
        assert_eq!(kind.parse("0"), Ok(Value::Auto));
        assert_eq!(kind.parse("64"), Ok(Value::Int(64)));
        assert_eq!(kind.parse("65"), Err(Rejection::OutOfRange));
    }

    #[test]
    fn enum_matches_case_insensitively_and_keeps_listed_spelling() {
        let kind = Kind::Enum(&["FLAT8", "FLAT16"]);
        assert_eq!(kind.parse("flat16"), Ok(Value::Choice("FLAT16")));
        assert!(kind.parse("FLAT32").is_err());
    }

    #[test]
    fn node_uuid_accepts_empty_and_refuses_non_ascii_without_panicking() {
        assert_eq!(Kind::NodeUuid.parse(""), Ok(Value::Node(None)));
        let text = "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b";
        let Ok(Value::Node(Some(id))) = Kind::NodeUuid.parse(text) else {
            panic!("a well-formed UUID must parse");
        };
        assert_eq!(id.0.to_string(), text);
        // 36 bytes of two-byte characters would split a character in a byte-sliced parser.
        let tricky = "é".repeat(18);
        assert!(Kind::NodeUuid.parse(&tricky).is_err());
        assert!(Kind::NodeUuid.parse("not-a-uuid").is_err());
    }

    #[test]
    fn canonical_forms_parse_back_to_the_same_value() {
        let cases: [(Kind, &str); 9] = [
            (Kind::Bool, "YES"),
            (Kind::Int { min: 0, max: 10 }, "+7"),
            (
                Kind::Size {
                    min: 0,
                    max: u64::MAX,
                },
                "1024M",
            ),
            (
                Kind::Duration {
                    min: Duration::ZERO,
                    max: Duration::MAX,
                },
                "PT90S",
            ),
            (Kind::Mask, "ff"),
            (Kind::Address, "tcp://[::1]:4567"),
            (Kind::PeerOp, "add:10.0.0.1:4567"),
            (Kind::CoreList, "1, 3"),
            (Kind::SizeOrAuto, "Auto"),
        ];
        for (kind, text) in cases {
            let value = kind.parse(text).unwrap();
            assert_eq!(kind.parse(&value.canonical()), Ok(value), "{text}");
        }
    }
}
