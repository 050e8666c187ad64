//! Random inputs as the TPC-C specification draws them (clause 2.1.6 and 4.3.2): uniform
//! ranges, NURand, random strings, customer last names from syllables.

/// A small, seedable PRNG (SplitMix64): reproducible data and inputs from a printed seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// NURand(A, x, y) with run-time constant `c` (clause 2.1.6).
    pub fn nurand(&mut self, a: u64, x: u64, y: u64, c: u64) -> u64 {
        (((self.range(0, a) | self.range(x, y)) + c) % (y - x + 1)) + x
    }

    /// A random alphanumeric string of `min..=max` characters.
    pub fn astring(&mut self, min: usize, max: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let n = self.range(min as u64, max as u64) as usize;
        (0..n)
            .map(|_| CHARS[self.range(0, CHARS.len() as u64 - 1) as usize] as char)
            .collect()
    }

    /// A random numeric string of `n` digits.
    pub fn nstring(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.range(0, 9) as u8))
            .collect()
    }

    /// `I_DATA` / `S_DATA`: 26..=50 characters, 10 % of them containing "ORIGINAL".
    pub fn data_with_original(&mut self) -> String {
        let mut s = self.astring(26, 50);
        if self.range(1, 10) == 1 {
            let at = self.range(0, (s.len() - 8) as u64) as usize;
            s.replace_range(at..at + 8, "ORIGINAL");
        }
        s
    }

    /// A zip code: 4 random digits then "11111".
    pub fn zip(&mut self) -> String {
        format!("{}11111", self.nstring(4))
    }
}

/// The syllables of C_LAST (clause 4.3.2.3).
const SYLLABLES: [&str; 10] = [
    "BAR", "OUGHT", "ABLE", "PRI", "PRES", "ESE", "ANTI", "CALLY", "ATION", "EING",
];

/// The last name of number `n` (0..=999): its three digits as syllables.
pub fn last_name(n: u64) -> String {
    let n = n % 1000;
    format!(
        "{}{}{}",
        SYLLABLES[(n / 100) as usize],
        SYLLABLES[(n / 10 % 10) as usize],
        SYLLABLES[(n % 10) as usize]
    )
}

/// NURand's run-time constants (clause 2.1.6.1). The load uses `C_LAST_LOAD`; the run uses a
/// C_LAST whose difference from it is in 65..=119 and neither 96 nor 112 (clause 2.1.6.1).
pub const C_LAST_LOAD: u64 = 157;
pub const C_LAST_RUN: u64 = 223;
pub const C_ID: u64 = 259;
pub const C_OL_I_ID: u64 = 7911;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_names_are_built_from_syllables() {
        assert_eq!(last_name(0), "BARBARBAR");
        assert_eq!(last_name(371), "PRICALLYOUGHT");
        assert_eq!(last_name(999), "EINGEINGEING");
    }

    #[test]
    fn run_constant_differs_from_load_constant_as_the_spec_requires() {
        let d = C_LAST_RUN - C_LAST_LOAD;
        assert!((65..=119).contains(&d) && d != 96 && d != 112);
    }

    #[test]
    fn draws_stay_in_their_ranges_and_replay_from_the_seed() {
        let mut r = Rng::new(42);
        for _ in 0..10_000 {
            let v = r.range(5, 15);
            assert!((5..=15).contains(&v));
            let c = r.nurand(1023, 1, 3000, C_ID);
            assert!((1..=3000).contains(&c));
            let small = r.nurand(1023, 1, 30, C_ID);
            assert!((1..=30).contains(&small));
        }
        let s = r.astring(8, 16);
        assert!((8..=16).contains(&s.len()) && s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(r.nstring(4).len(), 4);
        assert_eq!(r.zip().len(), 9);
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        assert_eq!(a.next_u64(), b.next_u64());
        let originals = (0..2000)
            .filter(|_| r.data_with_original().contains("ORIGINAL"))
            .count();
        assert!((100..=300).contains(&originals), "{originals}");
    }
}
