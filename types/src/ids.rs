//! 128-bit identifiers in the textual form Galera and MariaDB use
//! (`8-4-4-4-12` lowercase hex).

use std::fmt;
use std::str::FromStr;

/// A raw 16-byte UUID. Wrapped by [`NodeId`] and [`HistoryId`] so the two are never mixed up.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq, Hash))]
pub struct Uuid(pub [u8; 16]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed UUID '{text}': expected 8-4-4-4-12 hex digits")]
pub struct ParseUuidError {
    pub text: String,
}

impl Uuid {
    pub const NIL: Uuid = Uuid([0; 16]);

    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }

    /// A version-4 style UUID from 16 random bytes supplied by the caller
    /// (the caller owns the randomness so simulations stay deterministic).
    pub fn from_random_bytes(mut bytes: [u8; 16]) -> Uuid {
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid(bytes)
    }

    /// A UUID from the operating system's randomness (`/dev/urandom`), falling back to
    /// time and pid mixing if that is unavailable. Not for simulations.
    pub fn generate() -> Uuid {
        let mut bytes = [0u8; 16];
        let filled = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
            .is_ok();
        if !filled {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let mixed = xxhash_rust::xxh3::xxh3_128(
                &[
                    nanos.to_le_bytes().as_slice(),
                    &std::process::id().to_le_bytes(),
                ]
                .concat(),
            );
            bytes = mixed.to_le_bytes();
        }
        Uuid::from_random_bytes(bytes)
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15]
        )
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Uuid {
    type Err = ParseUuidError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || ParseUuidError {
            text: text.to_string(),
        };
        let trimmed = text.trim();
        // Byte offsets below assume one byte per character.
        if !trimmed.is_ascii() {
            return Err(err());
        }
        let groups: Vec<&str> = trimmed.split('-').collect();
        let lengths = [8, 4, 4, 4, 12];
        if groups.len() != 5 || groups.iter().zip(lengths).any(|(g, n)| g.len() != n) {
            return Err(err());
        }
        let hex: String = groups.concat();
        let mut bytes = [0u8; 16];
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| err())?;
        }
        Ok(Uuid(bytes))
    }
}

macro_rules! uuid_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        #[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
        #[rkyv(derive(Debug, PartialEq, Eq, Hash))]
        pub struct $name(pub Uuid);

        impl $name {
            pub const NIL: $name = $name(Uuid::NIL);

            pub fn is_nil(&self) -> bool {
                self.0.is_nil()
            }

            pub fn generate() -> $name {
                $name(Uuid::generate())
            }

            pub fn as_bytes(&self) -> &[u8; 16] {
                &(self.0).0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = ParseUuidError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                text.parse().map($name)
            }
        }
    };
}

uuid_newtype!(
    /// One incarnation of a node (Galera's gcomm UUID, `wsrep_gcomm_uuid`). A restarted
    /// process gets a new one: membership never confuses a node with its previous life.
    NodeId
);
uuid_newtype!(
    /// A replication history (Galera's cluster state UUID, `wsrep_local_state_uuid`). Seqnos
    /// are only comparable within one history.
    HistoryId
);

impl NodeId {
    /// The 64-bit id the ordering core uses for this node. Never zero (zero means "none"
    /// in the consensus core).
    pub fn short_id(&self) -> u64 {
        let b = self.as_bytes();
        let hi = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
        let lo = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
        let mixed = hi ^ lo.rotate_left(17);
        if mixed == 0 {
            1
        } else {
            mixed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_round_trips_in_galera_form() {
        let text = "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b";
        let uuid: Uuid = text.parse().unwrap();
        assert_eq!(uuid.to_string(), text);
        assert_eq!(uuid.0[0], 0xc3);
        assert_eq!(uuid.0[15], 0x1b);
    }

    #[test]
    fn uuid_parse_rejects_wrong_shapes() {
        for bad in [
            "",
            "c3b16fe6-e77a-11f1-90be-d2d5e7a983é",
            "c3b16fe6e77a11f190bed2d5e7a9831b",
            "c3b16fe6-e77a-11f1-90be-d2d5e7a9831",
            "g3b16fe6-e77a-11f1-90be-d2d5e7a9831b",
        ] {
            assert!(bad.parse::<Uuid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn generated_uuids_differ_and_are_not_nil() {
        let a = Uuid::generate();
        let b = Uuid::generate();
        assert_ne!(a, b);
        assert!(!a.is_nil());
    }

    #[test]
    fn short_id_is_never_zero() {
        assert_ne!(NodeId(Uuid::NIL).short_id(), 0);
    }
}
