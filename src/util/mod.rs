//! The ground floor: small helpers every layer may use and that use no other module of the
//! broker: the clock, durable file writes, background-task plumbing Kafka's UUID text form and
//! rate-limited log lines.

pub mod clock;
pub mod durable;
pub mod kafka_uuid;
pub mod ratelog;
pub mod task;
