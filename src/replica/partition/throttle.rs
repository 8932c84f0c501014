//! Whether a replica is throttled (Kafka's `ReplicationQuotaManager.isThrottled`): its topic's
//! `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas` name it,
//! as last applied; and whether a follower is in the ISR, which exempts it on the leader side.

use std::sync::atomic::Ordering;

use tracing::info;

use super::Partition;

const LEADER: u8 = 1;
const FOLLOWER: u8 = 2;

/// Which throttled-replica lists of its topic name this broker's replica.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Throttled {
    /// Named by `leader.replication.throttled.replicas` (with this broker's id).
    pub leader: bool,
    /// Named by `follower.replication.throttled.replicas` (with this broker's id).
    pub follower: bool,
}

impl Throttled {
    fn bits(self) -> u8 {
        (u8::from(self.leader) * LEADER) | (u8::from(self.follower) * FOLLOWER)
    }

    fn from_bits(bits: u8) -> Throttled {
        Throttled {
            leader: bits & LEADER != 0,
            follower: bits & FOLLOWER != 0,
        }
    }
}

impl Partition {
    /// Sets which throttled-replica lists name this replica (logged when it changes).
    pub(in crate::replica) fn set_throttled(&self, throttled: Throttled) {
        let before = self.throttled.swap(throttled.bits(), Ordering::AcqRel);
        if before != throttled.bits() {
            info!(partition = %self.tp, leader = throttled.leader, follower = throttled.follower,
                "replication throttle of replica changed");
        }
    }

    /// Which throttled-replica lists name this replica.
    pub fn throttled(&self) -> Throttled {
        Throttled::from_bits(self.throttled.load(Ordering::Acquire))
    }

    /// Whether `replica_id` is in the recorded ISR.
    pub fn in_isr(&self, replica_id: i32) -> bool {
        self.state.read().isr.contains(&replica_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_round_trip() {
        for leader in [false, true] {
            for follower in [false, true] {
                let t = Throttled { leader, follower };
                assert_eq!(Throttled::from_bits(t.bits()), t);
            }
        }
    }
}
