//! Retry timing: exponential backoff with jitter, and a switch that zeroes it in tests.
//!
//! Why: a PVE cluster under load answers lock timeouts and proxy errors that go away a
//! moment later, and several clients retrying in lock-step make it worse. Backoff with
//! jitter spreads them out. Tests and benchmarks must not sleep, so the environment
//! variable [`RETRY_DELAY_ENV`] (or [`RetryPolicy::without_delays`]) sets every delay to
//! zero while keeping the number of attempts.

use std::time::Duration;

use rand::Rng;

/// `SOMBRERO_RETRY_DELAY_MS`: overrides the first retry delay in milliseconds; `0` turns all
/// retry delays off (attempt counts stay the same).
pub const RETRY_DELAY_ENV: &str = "SOMBRERO_RETRY_DELAY_MS";

/// How often and how patiently to repeat a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (1 = no retries).
    pub attempts: u32,
    /// Delay before the first retry; doubled for each further retry.
    pub base_delay: Duration,
    /// Upper bound for one delay.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 8 attempts, 200 ms doubling up to 3 s (at most about 12 s of waiting), or the delay
    /// from [`RETRY_DELAY_ENV`]. Eight attempts make a read fail under 25% injected faults
    /// with probability 0.25^8 (1.5e-5).
    fn default() -> Self {
        let policy = Self {
            attempts: 8,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(3),
        };
        policy.with_env_override()
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        Self {
            attempts: 1,
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
        }
    }

    /// The same attempts with every delay zero (tests, benchmarks).
    #[must_use]
    pub fn without_delays(self) -> Self {
        Self {
            base_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            ..self
        }
    }

    /// Applies [`RETRY_DELAY_ENV`] when it is set to a number.
    #[must_use]
    pub fn with_env_override(self) -> Self {
        self.with_delay_override(std::env::var(RETRY_DELAY_ENV).ok().as_deref())
    }

    /// Applies a [`RETRY_DELAY_ENV`]-style value: milliseconds, `0` for no delays; anything
    /// else leaves the policy unchanged.
    #[must_use]
    pub fn with_delay_override(self, value: Option<&str>) -> Self {
        match value.and_then(|value| value.trim().parse::<u64>().ok()) {
            Some(0) => self.without_delays(),
            Some(milliseconds) => Self {
                base_delay: Duration::from_millis(milliseconds),
                ..self
            },
            None => self,
        }
    }

    /// The delay before retry number `retry` (0-based): `base * 2^retry`, capped, then
    /// scaled by a random factor in [0.5, 1.0] so clients do not retry in lock-step.
    pub fn delay(&self, retry: u32) -> Duration {
        if self.base_delay.is_zero() {
            return Duration::ZERO;
        }
        let exponential = self
            .base_delay
            .saturating_mul(1u32.checked_shl(retry.min(16)).unwrap_or(u32::MAX));
        let capped = exponential.min(self.max_delay.max(self.base_delay));
        capped.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::RetryPolicy;
    use std::time::Duration;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = policy.delay(0);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.delay(2);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            assert!(policy.delay(30) <= Duration::from_secs(1));
        }
        let overridden = policy.with_delay_override(Some("0"));
        assert_eq!(overridden.delay(2), Duration::ZERO);
        assert_eq!(overridden.attempts, 5);
        let slower = policy.with_delay_override(Some("400"));
        assert_eq!(slower.base_delay, Duration::from_millis(400));
        assert_eq!(policy.with_delay_override(Some("soon")), policy);
        assert_eq!(policy.with_delay_override(None), policy);
        let zero = policy.without_delays();
        assert_eq!(zero.attempts, 5);
        assert_eq!(zero.delay(3), Duration::ZERO);
    }
}
