//! Odradek: a message broker that speaks Apache Kafka's binary protocol.
pub mod log;
pub mod protocol;
