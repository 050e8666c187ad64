//! Which slice owns which seqno, and seqno arithmetic within one slice's share.
//!
//! Seqno `s >= 0` belongs to slice `(s / STRIPE_LEN) % slice_count`. A slice's own seqnos, in
//! order, are its *ordinals* 0, 1, 2, ...: runs of `STRIPE_LEN` consecutive seqnos separated by
//! the other slices' stripes. "Contiguous" for a slice means consecutive ordinals.
//! All arithmetic is checked: seqnos come from disk too, and must not panic.

use crate::format::STRIPE_LEN;
use trireme_types::Seqno;

/// The slice that owns `seqno` when the cache has `slice_count` slices. Seqnos below zero
/// (undefined) map to slice 0; `slice_count == 0` is treated as 1.
pub fn slice_of(seqno: Seqno, slice_count: u32) -> u32 {
    let n = i64::from(slice_count.max(1));
    let s = seqno.0.max(0);
    // (s / STRIPE) % n < n <= u32::MAX.
    ((s / i64::from(STRIPE_LEN)) % n) as u32
}

/// One slice's view of the striping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Striping {
    index: i64,
    count: i64,
    stripe: i64,
}

impl Striping {
    pub(crate) fn new(index: u32, count: u32) -> Striping {
        debug_assert!(index < count);
        Striping {
            index: i64::from(index),
            count: i64::from(count),
            stripe: i64::from(STRIPE_LEN),
        }
    }

    pub(crate) fn owns(&self, s: Seqno) -> bool {
        s.0 >= 0 && (s.0 / self.stripe) % self.count == self.index
    }

    /// Position of an owned seqno among this slice's seqnos.
    pub(crate) fn ordinal(&self, s: Seqno) -> i64 {
        debug_assert!(self.owns(s));
        (s.0 / self.stripe / self.count) * self.stripe + s.0 % self.stripe
    }

    /// The next seqno this slice owns after `s` (which it owns).
    pub(crate) fn next(&self, s: Seqno) -> Option<Seqno> {
        debug_assert!(self.owns(s));
        let s1 = s.0.checked_add(1)?;
        if s1 % self.stripe != 0 {
            Some(Seqno(s1))
        } else {
            s1.checked_add((self.count - 1) * self.stripe).map(Seqno)
        }
    }

    /// The seqno this slice owns just before `s` (which it owns), if any is >= 0.
    pub(crate) fn prev(&self, s: Seqno) -> Option<Seqno> {
        debug_assert!(self.owns(s));
        let step = if s.0 % self.stripe != 0 {
            1
        } else {
            1 + (self.count - 1) * self.stripe
        };
        let p = s.0 - step;
        (p >= 0).then_some(Seqno(p))
    }

    /// The highest seqno <= `x` that this slice owns, if any.
    pub(crate) fn last_at_or_below(&self, x: Seqno) -> Option<Seqno> {
        if x.0 < 0 {
            return None;
        }
        let stripe_no = x.0 / self.stripe;
        let back = (stripe_no % self.count - self.index).rem_euclid(self.count);
        if back == 0 {
            return Some(x);
        }
        let t = stripe_no - back;
        (t >= 0).then(|| Seqno(t * self.stripe + self.stripe - 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute-force checks of every helper against the definition, for several slice counts.
    #[test]
    fn striping_helpers_agree_with_the_definition() {
        for count in [1u32, 2, 3, 5] {
            let limit = 64 * i64::from(count) * 4;
            for index in 0..count {
                let st = Striping::new(index, count);
                let owned: Vec<i64> = (0..limit)
                    .filter(|&s| slice_of(Seqno(s), count) == index)
                    .collect();
                for (i, &s) in owned.iter().enumerate() {
                    assert!(st.owns(Seqno(s)));
                    assert_eq!(st.ordinal(Seqno(s)), i as i64);
                    if i + 1 < owned.len() {
                        assert_eq!(st.next(Seqno(s)), Some(Seqno(owned[i + 1])));
                    }
                    let prev = if i == 0 {
                        None
                    } else {
                        Some(Seqno(owned[i - 1]))
                    };
                    assert_eq!(st.prev(Seqno(s)), prev);
                }
                for x in -1..limit {
                    let expect = owned.iter().rev().find(|&&s| s <= x).map(|&s| Seqno(s));
                    assert_eq!(
                        st.last_at_or_below(Seqno(x)),
                        expect,
                        "count {count} index {index} x {x}"
                    );
                }
            }
        }
    }

    #[test]
    fn next_saturates_instead_of_overflowing() {
        let st = Striping::new(0, 1);
        assert_eq!(st.next(Seqno(i64::MAX)), None);
    }
}
