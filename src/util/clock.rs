//! The broker's wall clock, in Kafka's unit: milliseconds since the Unix epoch.

/// Milliseconds since the Unix epoch (0 if the system clock is before it).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn clock_reads_a_plausible_time() {
        // 2020-01-01 and 2100-01-01 in ms.
        assert!((1_577_836_800_000..4_102_444_800_000).contains(&super::now_ms()));
    }
}
