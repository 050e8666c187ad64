//! Positions in the total order and the small integer ids of the wsrep API.

use crate::ids::HistoryId;
use std::fmt;
use std::str::FromStr;

/// A position in the cluster-wide total order. Seqnos are 1-based within a history;
/// [`Seqno::UNDEFINED`] (-1) means "no position", exactly as in the wsrep API.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq, PartialOrd, Ord))]
pub struct Seqno(pub i64);

impl Seqno {
    pub const UNDEFINED: Seqno = Seqno(-1);
    pub const ZERO: Seqno = Seqno(0);

    pub fn is_defined(self) -> bool {
        self.0 >= 0
    }

    pub fn next(self) -> Seqno {
        Seqno(self.0 + 1)
    }

    pub fn prev(self) -> Seqno {
        Seqno(self.0 - 1)
    }
}

impl Default for Seqno {
    fn default() -> Self {
        Seqno::UNDEFINED
    }
}

impl fmt::Display for Seqno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Seqno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A position in a named history, printed `uuid:seqno` as Galera and MariaDB do.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Gtid {
    pub history: HistoryId,
    pub seqno: Seqno,
}

impl Gtid {
    pub const UNDEFINED: Gtid = Gtid {
        history: HistoryId::NIL,
        seqno: Seqno::UNDEFINED,
    };

    pub fn new(history: HistoryId, seqno: Seqno) -> Gtid {
        Gtid { history, seqno }
    }

    pub fn is_undefined(&self) -> bool {
        self.history.is_nil() && !self.seqno.is_defined()
    }
}

impl fmt::Display for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.history, self.seqno)
    }
}

impl fmt::Debug for Gtid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Gtid {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (uuid, seqno) = text
            .rsplit_once(':')
            .ok_or_else(|| format!("malformed GTID '{text}': expected <uuid>:<seqno>"))?;
        let history: HistoryId = uuid.parse().map_err(|e| format!("{e}"))?;
        let seqno: i64 = seqno
            .trim()
            .parse()
            .map_err(|_| format!("malformed GTID '{text}': seqno is not an integer"))?;
        if seqno < -1 {
            return Err(format!("malformed GTID '{text}': seqno below -1"));
        }
        Ok(Gtid {
            history,
            seqno: Seqno(seqno),
        })
    }
}

/// The number of a primary configuration (`wsrep_cluster_conf_id`); -1 outside a primary.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Debug,
    Default,
    rkyv::Archive,
    rkyv::Serialize,
    rkyv::Deserialize,
)]
#[rkyv(derive(Debug, PartialEq, Eq))]
pub struct ViewId(pub i64);

impl ViewId {
    pub const NONE: ViewId = ViewId(-1);
}

/// MariaDB's per-server transaction id (`wsrep_ws_handle_t::trx_id`); all bits set = none.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct TrxId(pub u64);

impl TrxId {
    pub const UNDEFINED: TrxId = TrxId(u64::MAX);
}

/// MariaDB's connection (thread) id; all bits set = none.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Default)]
pub struct ConnId(pub u64);

impl ConnId {
    pub const UNDEFINED: ConnId = ConnId(u64::MAX);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_parses_the_form_wsrep_recover_prints() {
        let g: Gtid = "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b:42".parse().unwrap();
        assert_eq!(g.seqno, Seqno(42));
        assert_eq!(g.to_string(), "c3b16fe6-e77a-11f1-90be-d2d5e7a9831b:42");
        let undefined: Gtid = "00000000-0000-0000-0000-000000000000:-1".parse().unwrap();
        assert!(undefined.is_undefined());
    }

    #[test]
    fn gtid_rejects_garbage() {
        assert!("nonsense".parse::<Gtid>().is_err());
        assert!("c3b16fe6-e77a-11f1-90be-d2d5e7a9831b:x"
            .parse::<Gtid>()
            .is_err());
        assert!("c3b16fe6-e77a-11f1-90be-d2d5e7a9831b:-7"
            .parse::<Gtid>()
            .is_err());
    }
}
