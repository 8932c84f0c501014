//! A latency summary for one request type: log-scale buckets (four per power of two, so a
//! quantile is within about 12% of the true value) over a rotating window of two
//! [`WINDOW`]-long slots, and cumulative count and sum. Recording is two relaxed atomic adds
//! (and, once per window, resetting a slot); nothing allocates.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Length of one slot: quantiles cover the last one to two of them.
pub const WINDOW: Duration = Duration::from_secs(30);
/// Buckets: 0-3 µs one each, then four per power of two up to 2^37 µs (about 38 hours).
const BUCKETS: usize = 4 + 36 * 4;

/// The bucket of a duration in microseconds.
fn bucket_of(micros: u64) -> usize {
    if micros < 4 {
        return micros as usize;
    }
    let msb = 63 - micros.leading_zeros();
    let sub = (micros >> (msb - 2)) & 3;
    (4 + (msb as usize - 2) * 4 + sub as usize).min(BUCKETS - 1)
}

/// The smallest duration (µs) of a bucket.
fn bucket_floor(index: usize) -> u64 {
    if index < 4 {
        return index as u64;
    }
    let msb = (index - 4) / 4 + 2;
    let sub = ((index - 4) % 4) as u64;
    (4 + sub) << (msb - 2)
}

/// One window's buckets and the window number they hold.
struct Slot {
    window: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl Slot {
    fn new() -> Slot {
        Slot {
            window: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// The request-time summary of one request type.
pub struct Summary {
    epoch: Instant,
    slots: [Slot; 2],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// A summary read at one instant.
#[derive(Clone, Debug, PartialEq)]
pub struct SummarySnapshot {
    /// `(quantile, milliseconds)`; NaN when the window holds no sample.
    pub quantiles: Vec<(f64, f64)>,
    /// Every sample since start.
    pub count: u64,
    /// Their sum, in milliseconds.
    pub sum_ms: f64,
}

impl Summary {
    pub fn new(epoch: Instant) -> Summary {
        Summary {
            epoch,
            slots: [Slot::new(), Slot::new()],
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Window number of an instant (starting at 1, so a fresh slot's 0 is never current).
    fn window(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs() / WINDOW.as_secs() + 1
    }

    /// Records one request that took `elapsed`, ending at `now`.
    pub fn record(&self, elapsed: Duration, now: Instant) {
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        let window = self.window(now);
        let slot = &self.slots[(window % 2) as usize];
        let held = slot.window.load(Ordering::Acquire);
        if held != window
            && slot
                .window
                .compare_exchange(held, window, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // This thread turned the slot over: clear what the window before last left in it.
            // A sample another thread adds meanwhile may be lost; that is fine for a summary.
            for b in &slot.buckets {
                b.store(0, Ordering::Relaxed);
            }
        }
        slot.buckets[bucket_of(micros)].fetch_add(1, Ordering::Relaxed);
    }

    /// The `quantiles` over the current and the previous window, with count and sum.
    pub fn snapshot(&self, quantiles: &[f64], now: Instant) -> SummarySnapshot {
        let window = self.window(now);
        let mut merged = [0u64; BUCKETS];
        for slot in &self.slots {
            let held = slot.window.load(Ordering::Acquire);
            if held == window || held + 1 == window {
                for (m, b) in merged.iter_mut().zip(&slot.buckets) {
                    *m += b.load(Ordering::Relaxed);
                }
            }
        }
        let total: u64 = merged.iter().sum();
        let quantiles = quantiles
            .iter()
            .map(|&q| (q, quantile_ms(&merged, total, q)))
            .collect();
        SummarySnapshot {
            quantiles,
            count: self.count.load(Ordering::Relaxed),
            sum_ms: self.sum_micros.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

/// The `q` quantile of the bucket counts, in ms: the middle of the bucket holding that rank.
fn quantile_ms(buckets: &[u64; BUCKETS], total: u64, q: f64) -> f64 {
    if total == 0 {
        return f64::NAN;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            let low = bucket_floor(i) as f64;
            let high = if i + 1 < BUCKETS {
                bucket_floor(i + 1) as f64
            } else {
                low
            };
            return (low + high) / 2.0 / 1000.0;
        }
    }
    f64::NAN
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        for i in 0..BUCKETS - 1 {
            assert!(bucket_floor(i) < bucket_floor(i + 1), "bucket {i}");
            assert_eq!(bucket_of(bucket_floor(i)), i);
            assert_eq!(
                bucket_of(bucket_floor(i + 1) - 1),
                i,
                "bucket {i}'s last value"
            );
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_come_from_the_recorded_times() {
        let start = Instant::now();
        let s = Summary::new(start);
        for ms in 1..=1000u64 {
            s.record(Duration::from_millis(ms), start);
        }
        let snap = s.snapshot(&[0.5, 0.99, 0.999], start);
        assert_eq!(snap.count, 1000);
        assert_eq!(snap.sum_ms, 500_500.0);
        for ((q, got), want) in snap.quantiles.iter().zip([500.0, 990.0, 999.0]) {
            assert!((got - want).abs() / want < 0.13, "q{q}: {got} vs {want}");
        }
    }

    #[test]
    fn old_windows_fall_out_but_count_and_sum_stay() {
        let start = Instant::now();
        let s = Summary::new(start);
        s.record(Duration::from_secs(5), start);
        let later = start + WINDOW;
        s.record(Duration::from_millis(1), later);
        let snap = s.snapshot(&[0.999], later);
        assert!(
            snap.quantiles[0].1 > 4000.0,
            "the previous window still counts"
        );
        let much_later = start + WINDOW * 2;
        s.record(Duration::from_millis(1), much_later);
        let snap = s.snapshot(&[0.999], much_later);
        assert!(snap.quantiles[0].1 < 2.0, "{:?}", snap.quantiles);
        assert_eq!(snap.count, 3);
        let empty = s.snapshot(&[0.5], start + WINDOW * 10);
        assert!(empty.quantiles[0].1.is_nan());
    }
}
