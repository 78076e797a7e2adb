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
    /// The selected runs' seqs, when the caller asked for them.
    pub(crate) seqs: Vec<i64>,
}

/// A set of run seqs, for keeping the phases of the selected runs in one scan.
///
/// Why sorted, with a cursor: phases are read in the order they were recorded, so their
/// runs' seqs mostly rise; the next phase's run is nearly always the run of the previous
/// phase or a later one close by, found by stepping the cursor, and a binary search
/// handles the rest (interleaved runs of two processes).
pub(crate) struct RunSet {
    seqs: Vec<i64>,
    /// Where the last lookup ended.
    cursor: usize,
}

impl RunSet {
    pub(crate) fn new(mut seqs: Vec<i64>) -> Self {
        seqs.sort_unstable();
        seqs.dedup();
        Self { seqs, cursor: 0 }
    }

    pub(crate) fn contains(&mut self, seq: i64) -> bool {
        // A few steps forward from the last answer; a binary search otherwise.
        for _ in 0..4 {
            match self.seqs.get(self.cursor) {
                Some(&found) if found == seq => return true,
                Some(&found) if found < seq => self.cursor += 1,
                _ => break,
            }
        }
        let (index, found) = match self.seqs.binary_search(&seq) {
            Ok(index) => (index, true),
            Err(index) => (index, false),
        };
        self.cursor = index;
        found
    }
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

#[cfg(test)]
mod tests {
    use super::{RunSet, median, percentile};

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

    #[test]
    fn a_run_set_answers_like_a_plain_lookup_in_any_order() {
        let members: Vec<i64> = (1..200).filter(|seq| seq % 3 != 0).collect();
        let mut set = RunSet::new(members.iter().rev().copied().chain([5, 5]).collect());
        // Rising (the usual order of phases), then falling and jumping around.
        let queries = (0..210)
            .chain((0..210).rev())
            .chain([150, 2, 199, 3, 0, -4, 400]);
        for seq in queries {
            assert_eq!(set.contains(seq), members.contains(&seq), "seq {seq}");
        }
        assert!(!RunSet::new(Vec::new()).contains(1));
    }
}
