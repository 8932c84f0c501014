//! Rate-limited log lines: a flood of the same warning (bad connections, say) must not write
//! unbounded log volume. Each call site gets its own [`LogLimiter`]: in every interval the first
//! few lines are written verbatim, the rest only counted; the count is reported with the next
//! line written after the interval, as one summary line.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lines written verbatim per interval at one call site.
pub const BURST: u32 = 5;
/// Length of one interval.
pub const INTERVAL: Duration = Duration::from_secs(10);

/// What to do with one line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Write it; first report `suppressed` lines dropped in the interval before, if any.
    Write { suppressed: u64 },
    /// Drop it (it is counted).
    Suppress,
}

#[derive(Debug)]
struct Window {
    start: Option<Instant>,
    written: u32,
    suppressed: u64,
}

/// A per-call-site limiter: at most `burst` lines per `interval`, the rest counted.
#[derive(Debug)]
pub struct LogLimiter {
    burst: u32,
    interval: Duration,
    window: Mutex<Window>,
}

impl LogLimiter {
    /// A limiter letting `burst` lines through per `interval`; usable in a `static`.
    pub const fn new(burst: u32, interval: Duration) -> LogLimiter {
        LogLimiter {
            burst,
            interval,
            window: Mutex::new(Window {
                start: None,
                written: 0,
                suppressed: 0,
            }),
        }
    }

    /// The interval the limiter counts over.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Decides about one line now.
    pub fn check(&self) -> Verdict {
        self.check_at(Instant::now())
    }

    /// Decides about one line at `now` (monotonic, never earlier than a previous call's).
    pub fn check_at(&self, now: Instant) -> Verdict {
        // A poisoned lock only means another thread panicked mid-count; the count is still usable.
        let mut w = self
            .window
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut suppressed = 0;
        let expired = w
            .start
            .is_none_or(|start| now.saturating_duration_since(start) >= self.interval);
        if expired {
            suppressed = std::mem::take(&mut w.suppressed);
            w.start = Some(now);
            w.written = 0;
        }
        if w.written < self.burst {
            w.written += 1;
            Verdict::Write { suppressed }
        } else {
            w.suppressed += 1;
            Verdict::Suppress
        }
    }
}

/// `tracing::warn!` behind a per-call-site [`LogLimiter`] ([`BURST`] lines per [`INTERVAL`]);
/// lines dropped in one interval are summarised in one warning before the next line written.
macro_rules! warn_limited {
    ($($arg:tt)+) => {{
        static LIMITER: $crate::util::ratelog::LogLimiter = $crate::util::ratelog::LogLimiter::new(
            $crate::util::ratelog::BURST,
            $crate::util::ratelog::INTERVAL,
        );
        if let $crate::util::ratelog::Verdict::Write { suppressed } = LIMITER.check() {
            if suppressed > 0 {
                ::tracing::warn!(
                    suppressed,
                    "{suppressed} similar warnings suppressed in a {} s interval",
                    LIMITER.interval().as_secs()
                );
            }
            ::tracing::warn!($($arg)+);
        }
    }};
}
pub(crate) use warn_limited;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_burst_then_counts_then_reports_the_count() {
        let limiter = LogLimiter::new(3, Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..3 {
            assert_eq!(
                limiter.check_at(t0 + Duration::from_millis(i)),
                Verdict::Write { suppressed: 0 }
            );
        }
        for i in 0..100 {
            assert_eq!(
                limiter.check_at(t0 + Duration::from_millis(10 + i)),
                Verdict::Suppress
            );
        }
        // Still inside the interval.
        assert_eq!(
            limiter.check_at(t0 + Duration::from_millis(9_999)),
            Verdict::Suppress
        );
        // The next interval: the first line carries the 101 dropped ones, once.
        let t1 = t0 + Duration::from_secs(10);
        assert_eq!(limiter.check_at(t1), Verdict::Write { suppressed: 101 });
        assert_eq!(
            limiter.check_at(t1 + Duration::from_millis(1)),
            Verdict::Write { suppressed: 0 }
        );
        assert_eq!(
            limiter.check_at(t1 + Duration::from_millis(2)),
            Verdict::Write { suppressed: 0 }
        );
        assert_eq!(
            limiter.check_at(t1 + Duration::from_millis(3)),
            Verdict::Suppress
        );
        // A quiet spell much longer than the interval: the count is still reported once.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!(limiter.check_at(t2), Verdict::Write { suppressed: 1 });
        assert_eq!(
            limiter.check_at(t2 + Duration::from_secs(20)),
            Verdict::Write { suppressed: 0 }
        );
    }

    #[test]
    fn a_flood_writes_a_bounded_number_of_lines() {
        let limiter = LogLimiter::new(BURST, INTERVAL);
        let t0 = Instant::now();
        // 10 000 lines over 60 s: at most BURST per started interval, plus one summary each.
        let written = (0..10_000u64)
            .map(|i| limiter.check_at(t0 + Duration::from_millis(i * 6)))
            .filter(|v| matches!(v, Verdict::Write { .. }))
            .count();
        assert_eq!(written, 6 * BURST as usize);
    }
}
