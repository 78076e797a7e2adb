//! The statistics behind the metrics: order statistics in linear time and the
//! accumulators of the one pass over the runs.
//!
//! Why by hand: the median and the 95th percentile need the distribution; sorting 500,000
//! phase durations would dominate the 200 ms budget, while `select_nth_unstable` finds an
//! order statistic in linear time. Groups are a small vector, not a map: there are a
//! handful of environments and operators, and a lookup by `&str` allocates nothing per row.

use super::metrics::GroupStats;

/// What one pass over the runs collects.
pub(crate) struct RunScan {
    /// success, failed, interrupted, running.
    pub(crate) by_status: [u64; 4],
    pub(crate) durations: Vec<i64>,
    /// (duration, run seq).
    pub(crate) fastest: (i64, i64),
    pub(crate) slowest: (i64, i64),
    pub(crate) by_environment: Groups,
    pub(crate) by_operator: Groups,
}

/// Per-name accumulators (a handful of environments or operators: a vector beats a map
/// and needs no allocation per row).
#[derive(Default)]
pub(crate) struct Groups(Vec<(String, u64, u64, u64, i64)>);

impl Groups {
    pub(crate) fn add(
        &mut self,
        name: &str,
        finished: bool,
        succeeded: bool,
        duration: Option<i64>,
    ) {
        let index = if let Some(index) = self.0.iter().position(|group| group.0 == name) {
            index
        } else {
            self.0.push((name.to_owned(), 0, 0, 0, 0));
            self.0.len() - 1
        };
        let group = &mut self.0[index];
        group.1 += 1;
        group.2 += u64::from(succeeded);
        group.3 += u64::from(finished);
        group.4 += duration.unwrap_or(0);
    }

    pub(crate) fn finish(mut self) -> Vec<GroupStats> {
        self.0.sort_by(|left, right| left.0.cmp(&right.0));
        self.0
            .into_iter()
            .map(|(name, runs, succeeded, finished, total)| GroupStats {
                name,
                runs,
                succeeded,
                success_rate: ratio(succeeded, finished),
                average_ms: (succeeded > 0)
                    .then(|| total / i64::try_from(succeeded).unwrap_or(i64::MAX)),
            })
            .collect()
    }
}

/// The value at nearest rank `percent` (0..=100) of `values`, reordering them.
pub(crate) fn percentile(values: &mut [i64], percent: u32) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    let count = values.len();
    let rank = (count * percent as usize).div_ceil(100).clamp(1, count);
    Some(*values.select_nth_unstable(rank - 1).1)
}

/// The median of `values` (mean of the two middle ones when even), reordering them.
pub(crate) fn median(values: &mut [i64]) -> Option<i64> {
    let count = values.len();
    if count == 0 {
        return None;
    }
    let upper = *values.select_nth_unstable(count / 2).1;
    if count % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..count / 2].iter().copied().max().unwrap_or(upper);
    Some(lower + (upper - lower) / 2)
}

#[expect(
    clippy::cast_precision_loss,
    reason = "run counts are far below 2^52; a ratio needs no more precision"
)]
pub(crate) fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

pub(crate) fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::{median, percentile};

    #[test]
    fn order_statistics_match_a_sorted_reference() {
        let mut values: Vec<i64> = (1..=20).rev().collect();
        assert_eq!(percentile(&mut values, 95), Some(19));
        assert_eq!(percentile(&mut values, 100), Some(20));
        assert_eq!(percentile(&mut values, 0), Some(1));
        assert_eq!(median(&mut values), Some(10));
        assert_eq!(median(&mut [5, 1, 9]), Some(5));
        assert_eq!(median(&mut []), None);
        assert_eq!(percentile(&mut [], 95), None);
    }
}
