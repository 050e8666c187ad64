//! Statistics: medians and ranges over repetitions, ratios, and latency histograms.
//!
//! Every latency is kept in an HDR histogram of microseconds (3 significant digits, 1 us to
//! one hour), so percentiles from different sources (our own clients, sysbench's
//! `--histogram` buckets, several sysbench processes of one multi-primary run) merge
//! exactly.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies are recorded in microseconds, up to one hour.
const HIGHEST_US: u64 = 3_600_000_000;

/// A fresh latency histogram (microseconds).
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; a failure here is a programming error.
    Histogram::new_with_bounds(1, HIGHEST_US, 3).expect("valid histogram bounds")
}

/// Records a latency given in microseconds (clamped to the histogram's range).
pub fn record_us(h: &mut Histogram<u64>, us: f64) {
    h.saturating_record(us.round().clamp(1.0, HIGHEST_US as f64) as u64);
}

/// Adds `from` into `into`. Both come from [`new_histogram`], so the addition cannot fail on
/// bounds; values beyond the range were clamped when recorded.
pub fn merge_into(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_err() {
        for v in from.iter_recorded() {
            into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
        }
    }
}

/// sysbench's `--histogram` buckets (`(ms, events)`) as a histogram of microseconds. The
/// resolution is sysbench's: 1024 logarithmic buckets (about 1.8 % wide), values printed to
/// the microsecond.
pub fn from_sysbench_buckets(buckets: &[(f64, u64)]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &(ms, count) in buckets {
        let us = (ms * 1000.0).round().clamp(1.0, HIGHEST_US as f64) as u64;
        h.saturating_record_n(us, count);
    }
    h
}

/// The recorded values of `h` as `(us, count)` pairs, to store alongside a run.
pub fn to_pairs(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| {
            (
                h.highest_equivalent(v.value_iterated_to()),
                v.count_at_value(),
            )
        })
        .collect()
}

/// The inverse of [`to_pairs`].
pub fn from_pairs(pairs: &[(u64, u64)]) -> Histogram<u64> {
    let mut h = new_histogram();
    for &(us, n) in pairs {
        h.saturating_record_n(us.clamp(1, HIGHEST_US), n);
    }
    h
}

/// Percentiles of one latency distribution, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Latency {
    /// Number of recorded events.
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p95_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
}

impl Latency {
    /// The percentiles of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let q = |x: f64| h.value_at_quantile(x) as f64;
        Latency {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: q(0.50),
            p95_us: q(0.95),
            p99_us: q(0.99),
            max_us: h.max() as f64,
        }
    }
}

/// The median of `xs` (mean of the two middle values for an even count); `None` when empty
/// or when a value is not a number.
pub fn median(xs: &[f64]) -> Option<f64> {
    if xs.is_empty() || xs.iter().any(|x| x.is_nan()) {
        return None;
    }
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// A value over repetitions: its median and its range.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Number of repetitions.
    pub n: usize,
}

impl Spread {
    /// Median, minimum and maximum of `xs`; `None` when empty.
    pub fn of(xs: &[f64]) -> Option<Spread> {
        let median = median(xs)?;
        Some(Spread {
            median,
            min: xs.iter().copied().fold(f64::INFINITY, f64::min),
            max: xs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            n: xs.len(),
        })
    }

    /// `median [min-max]` with `decimals` digits (just the value for one repetition).
    pub fn show(&self, decimals: usize) -> String {
        if self.n <= 1 || self.min == self.max {
            format!("{:.*}", decimals, self.median)
        } else {
            format!(
                "{:.*} [{:.*}-{:.*}]",
                decimals, self.median, decimals, self.min, decimals, self.max
            )
        }
    }
}

/// `a / b`, or `None` when the ratio means nothing (b zero, either not finite).
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (a.is_finite() && b.is_finite() && b != 0.0).then(|| a / b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[7.0]), Some(7.0));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[1.0, f64::NAN]), None);
    }

    #[test]
    fn spread_keeps_median_and_range_and_shows_them() {
        let s = Spread::of(&[10.0, 30.0, 20.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.n), (20.0, 10.0, 30.0, 3));
        assert_eq!(s.show(1), "20.0 [10.0-30.0]");
        assert_eq!(Spread::of(&[5.0]).unwrap().show(0), "5");
        assert!(Spread::of(&[]).is_none());
    }

    #[test]
    fn ratio_refuses_division_by_zero() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut h = new_histogram();
        for us in 1..=1000 {
            record_us(&mut h, us as f64);
        }
        let l = Latency::of(&h);
        assert_eq!(l.count, 1000);
        assert_eq!(l.p50_us, 500.0);
        assert_eq!(l.p99_us, 990.0);
        assert_eq!(l.max_us, 1000.0);
        assert!((l.mean_us - 500.5).abs() < 0.5);
        assert_eq!(Latency::of(&new_histogram()), Latency::default());
    }

    #[test]
    fn merged_histograms_hold_both_distributions() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for _ in 0..90 {
            record_us(&mut a, 100.0);
        }
        for _ in 0..10 {
            record_us(&mut b, 5000.0);
        }
        merge_into(&mut a, &b);
        let l = Latency::of(&a);
        assert_eq!(l.count, 100);
        assert_eq!(l.p50_us, 100.0);
        assert!((4995.0..=5005.0).contains(&l.p95_us), "{l:?}");
        assert!((4995.0..=5005.0).contains(&l.max_us));
    }

    #[test]
    fn sysbench_buckets_become_microseconds() {
        let h = from_sysbench_buckets(&[(0.027, 25), (0.027, 159), (1.5, 16), (51.945, 1)]);
        assert_eq!(h.len(), 201);
        assert_eq!(h.value_at_quantile(0.5), 27);
        assert!(h.equivalent(h.max(), 51_945));
        assert!(h.equivalent(h.value_at_quantile(0.99), 1500));
    }

    #[test]
    fn histograms_round_trip_through_pairs() {
        let mut h = new_histogram();
        for us in [5.0, 5.0, 120.0, 99_999.0] {
            record_us(&mut h, us);
        }
        let back = from_pairs(&to_pairs(&h));
        assert_eq!(Latency::of(&back).count, 4);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert!(back.equivalent(back.max(), h.max()));
    }
}
