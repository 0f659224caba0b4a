//! `SimRng`: the one source of randomness of a simulation, drawn from its
//! seed (SplitMix64: small, fast, and the same numbers on every platform
//! and toolchain, which a replay needs).

/// A seeded generator. Every choice a simulation makes (which agent runs
/// next, how long a resume costs, a network delay, a fault) comes from
/// one of these, so a seed names a run.
#[derive(Clone, Debug)]
pub(crate) struct SimRng {
    state: u64,
}

impl SimRng {
    /// The generator for `seed`.
    pub(crate) fn new(seed: u64) -> SimRng {
        SimRng { state: seed }
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0), by Lemire's multiply-shift (the bias
    /// is below 2^-32 for the small `n` a scheduler draws).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0, "a draw from an empty range");
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `low..=high`.
    pub(crate) fn between(&mut self, low: u64, high: u64) -> u64 {
        if high <= low {
            return low;
        }
        low + self.below(high - low + 1)
    }

    /// `true` with probability `per_million` / 1,000,000.
    pub(crate) fn chance(&mut self, per_million: u32) -> bool {
        self.below(1_000_000) < u64::from(per_million)
    }
}

#[cfg(test)]
mod tests {
    use super::SimRng;

    #[test]
    fn one_seed_gives_one_sequence_and_two_seeds_two() {
        let a: Vec<u64> = {
            let mut rng = SimRng::new(7);
            (0..4).map(|_| rng.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut rng = SimRng::new(7);
            (0..4).map(|_| rng.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut rng = SimRng::new(8);
            (0..4).map(|_| rng.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        // SplitMix64's published first output for seed 0.
        assert_eq!(SimRng::new(0).next_u64(), 0xe220_a839_7b1d_cdaf);
    }

    #[test]
    fn draws_stay_in_their_ranges() {
        let mut rng = SimRng::new(1);
        for _ in 0..10_000 {
            assert!(rng.below(3) < 3);
            let x = rng.between(5, 9);
            assert!((5..=9).contains(&x));
        }
        assert_eq!(rng.between(4, 4), 4);
    }
}
