//! Which `__transaction_state` partition owns a transactional id, as Kafka computes it:
//! `Utils.abs(transactionalId.hashCode) % transactionTopicPartitionCount`, where `hashCode` is
//! Java's `String.hashCode` over UTF-16 code units (`h = 31 * h + unit`, wrapping) and
//! `Utils.abs` maps `i32::MIN` to 0. Clients find their coordinator through this, so it must
//! match Kafka's exactly.

/// Java's `String.hashCode` of `s` (over its UTF-16 code units).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__transaction_state` partition of `transactional_id` among `partitions` (a count below
/// 1 is taken as 1).
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    let hash = java_string_hash(transactional_id);
    let non_negative = if hash == i32::MIN { 0 } else { hash.abs() };
    non_negative % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_javas_string_hash_code() {
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("abc"), 96354);
        assert_eq!(java_string_hash("my-transactional-id"), -959_806_496);
        assert_eq!(java_string_hash("transactional-id-0"), 1_051_133_890);
        // A character outside the BMP counts as its two UTF-16 surrogates.
        assert_eq!(java_string_hash("txn-\u{1F600}"), -858_070_106);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
    }

    #[test]
    fn partition_is_kafkas_abs_modulo_the_count() {
        assert_eq!(partition_for("", 50), 0);
        assert_eq!(partition_for("a", 50), 47);
        assert_eq!(partition_for("abc", 50), 4);
        assert_eq!(partition_for("my-transactional-id", 50), 46);
        assert_eq!(partition_for("txn-\u{1F600}", 50), 6);
        assert_eq!(partition_for("transactional-id-0", 50), 40);
        // Utils.abs(Integer.MIN_VALUE) is 0.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("a", 1), 0);
        assert_eq!(partition_for("a", 0), 0);
    }
}
