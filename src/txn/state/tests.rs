//! Tests of the transaction state machine against Kafka's coordinator decisions.

use std::collections::BTreeSet;

use super::*;
use crate::txn::records::{TxnLogValue, VALUE_VERSION_CLASSIC, VALUE_VERSION_FLEXIBLE};

const PID: i64 = 100;
const EPOCH: i16 = 5;
const T0: i64 = 1_000;

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition::new(topic, partition)
}

fn set(tps: &[(&str, i32)]) -> BTreeSet<TopicPartition> {
    tps.iter().map(|(t, p)| tp(t, *p)).collect()
}

/// Metadata settled in `state` (no pending transition), with one partition when a
/// transaction is open.
fn md(state: TransactionState) -> TransactionMetadata {
    let mut m = TransactionMetadata::new("tx", PID, 60_000, T0);
    m.producer_epoch = EPOCH;
    m.previous_producer_id = PID;
    m.state = state;
    if matches!(state, S::Ongoing | S::PrepareCommit | S::PrepareAbort) {
        m.partitions = set(&[("t", 0)]);
        m.txn_start_timestamp = T0;
    }
    m
}

fn no_alloc() -> Result<i64, TxnError> {
    panic!("no producer id should be allocated")
}

fn init(
    m: &mut TransactionMetadata,
    expected: Option<ProducerIdAndEpoch>,
) -> Result<InitProducerIdAction, TxnError> {
    m.prepare_init_producer_id(30_000, expected, T0 + 10, &mut no_alloc)
}

fn persisted(m: &mut TransactionMetadata, action: InitProducerIdAction) -> TxnTransit {
    let InitProducerIdAction::Persist(t) = action else {
        panic!("expected Persist, got {action:?}")
    };
    m.complete_transition(&t).unwrap();
    t
}

fn init_ok(m: &mut TransactionMetadata, expected: Option<ProducerIdAndEpoch>) -> TxnTransit {
    let action = init(m, expected).unwrap();
    persisted(m, action)
}

fn end(
    m: &mut TransactionMetadata,
    result: TxnResult,
    epoch: i16,
) -> Result<EndTxnAction, TxnError> {
    m.prepare_end_txn(PID, epoch, result, true, T0 + 20)
}

fn pid_epoch(producer_id: i64, epoch: i16) -> Option<ProducerIdAndEpoch> {
    Some(ProducerIdAndEpoch { producer_id, epoch })
}

#[test]
fn states_have_kafkas_ids_names_and_predecessors() {
    let ids: Vec<i8> = S::ALL.iter().map(|s| s.id()).collect();
    assert_eq!(ids, vec![0, 1, 2, 3, 4, 5, 6, 7]);
    for s in S::ALL {
        assert_eq!(TransactionState::from_id(s.id()), Some(s));
        assert_eq!(format!("{s:?}"), s.name());
    }
    assert_eq!(TransactionState::from_id(8), None);
    assert_eq!(TransactionState::from_id(-1), None);
    let table: Vec<(S, Vec<S>)> = vec![
        (
            S::Empty,
            vec![S::Empty, S::CompleteCommit, S::CompleteAbort],
        ),
        (
            S::Ongoing,
            vec![S::Ongoing, S::Empty, S::CompleteCommit, S::CompleteAbort],
        ),
        (S::PrepareCommit, vec![S::Ongoing]),
        (S::PrepareAbort, vec![S::Ongoing, S::PrepareEpochFence]),
        (S::CompleteCommit, vec![S::PrepareCommit]),
        (S::CompleteAbort, vec![S::PrepareAbort]),
        (S::Dead, vec![S::Empty, S::CompleteAbort, S::CompleteCommit]),
        (S::PrepareEpochFence, vec![S::Ongoing]),
    ];
    for (to, from) in table {
        for prev in S::ALL {
            assert_eq!(
                to.can_follow(prev),
                from.contains(&prev),
                "{to:?} after {prev:?}"
            );
        }
    }
    let expirable: Vec<S> = S::ALL
        .into_iter()
        .filter(|s| s.is_expiration_allowed())
        .collect();
    assert_eq!(
        expirable,
        vec![S::Empty, S::CompleteCommit, S::CompleteAbort]
    );
}

#[test]
fn errors_map_to_kafka_codes() {
    let codes = [
        (TxnError::ConcurrentTransactions, 51),
        (TxnError::InvalidProducerEpoch, 47),
        (TxnError::ProducerFenced, 90),
        (TxnError::InvalidTxnState, 48),
        (TxnError::InvalidProducerIdMapping, 49),
        (TxnError::InvalidTransactionTimeout(0), 50),
        (TxnError::CoordinatorLoadInProgress, 14),
        (TxnError::NotCoordinator, 16),
        (TxnError::CoordinatorNotAvailable, 15),
        (TxnError::TransactionalIdNotFound, 105),
        (TxnError::InvalidRequest("x"), 42),
        (TxnError::TransactionAbortable, 120),
        (TxnError::IllegalState("x".into()), -1),
    ];
    for (e, code) in codes {
        assert_eq!(e.code(), code, "{e:?}");
    }
}

#[test]
fn transaction_timeout_is_checked_against_the_maximum() {
    assert_eq!(validate_transaction_timeout(1, 900_000), Ok(()));
    assert_eq!(validate_transaction_timeout(900_000, 900_000), Ok(()));
    for bad in [0, -1, 900_001] {
        assert_eq!(
            validate_transaction_timeout(bad, 900_000),
            Err(TxnError::InvalidTransactionTimeout(bad))
        );
    }
    assert!(!is_epoch_exhausted(32_765));
    assert!(is_epoch_exhausted(32_766));
    assert!(is_epoch_exhausted(i16::MAX));
}

#[test]
fn a_new_id_gets_epoch_zero() {
    let mut m = TransactionMetadata::new("tx", 7, 60_000, T0);
    let action = init(&mut m, None).unwrap();
    assert_eq!(m.pending_state, Some(S::Empty));
    assert_eq!(init(&mut m, None), Err(TxnError::ConcurrentTransactions));
    let t = persisted(&mut m, action);
    assert_eq!(
        (t.producer_id, t.producer_epoch, t.last_producer_epoch),
        (7, 0, -1)
    );
    assert_eq!((t.txn_start_timestamp, t.txn_timeout_ms), (-1, 30_000));
    assert_eq!((m.producer_id, m.producer_epoch, m.state), (7, 0, S::Empty));
    assert_eq!(m.previous_producer_id, 7);
    assert_eq!(m.txn_timeout_ms, 30_000);
    assert_eq!(m.txn_last_update_timestamp, T0 + 10);
    assert_eq!(m.pending_state, None);
}

#[test]
fn a_new_id_accepts_any_expected_producer_id() {
    // KIP-360: a producer recovering from UNKNOWN_PRODUCER_ID on a coordinator that lost the id.
    let mut m = TransactionMetadata::new("tx", 7, 60_000, T0);
    let t = init_ok(&mut m, pid_epoch(3, 9));
    assert_eq!(
        (t.producer_id, t.producer_epoch, t.last_producer_epoch),
        (7, 0, -1)
    );
}

#[test]
fn init_on_an_idle_id_bumps_the_epoch() {
    for state in [S::Empty, S::CompleteCommit, S::CompleteAbort] {
        let mut m = md(state);
        let t = init_ok(&mut m, None);
        assert_eq!(
            (t.producer_id, t.producer_epoch, t.last_producer_epoch),
            (PID, 6, -1)
        );
        assert_eq!(
            (m.state, m.producer_epoch, m.txn_timeout_ms),
            (S::Empty, 6, 30_000)
        );
        assert!(t.partitions.is_empty());
    }
}

#[test]
fn init_while_markers_are_written_is_concurrent() {
    for state in [S::PrepareCommit, S::PrepareAbort] {
        let mut m = md(state);
        assert_eq!(init(&mut m, None), Err(TxnError::ConcurrentTransactions));
        assert_eq!(m.pending_state, None);
    }
    let mut m = md(S::Empty);
    m.pending_state = Some(S::Ongoing);
    assert_eq!(init(&mut m, None), Err(TxnError::ConcurrentTransactions));
}

#[test]
fn init_in_states_requests_never_see_is_illegal() {
    for state in [S::Dead, S::PrepareEpochFence] {
        let mut m = md(state);
        assert!(matches!(init(&mut m, None), Err(TxnError::IllegalState(_))));
    }
}

#[test]
fn init_over_an_open_transaction_fences_and_aborts_it() {
    let mut m = md(S::Ongoing);
    let InitProducerIdAction::AbortOngoing(t) = init(&mut m, None).unwrap() else {
        panic!("expected AbortOngoing")
    };
    assert_eq!(
        (t.state, t.producer_epoch, t.last_producer_epoch),
        (S::PrepareAbort, 6, -1)
    );
    assert!(t.epoch_fence);
    assert_eq!(t.partitions, set(&[("t", 0)]));
    // The fence is in force before the write: the old producer is refused.
    assert_eq!(m.producer_epoch, 6);
    assert_eq!(m.pending_state, Some(S::PrepareAbort));
    let parts = set(&[("t", 1)]);
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &parts, T0),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        end(&mut m, TxnResult::Commit, EPOCH),
        Err(TxnError::ProducerFenced)
    );
    // A retry of InitProducerId meanwhile is told to wait.
    assert_eq!(init(&mut m, None), Err(TxnError::ConcurrentTransactions));
    m.complete_transition(&t).unwrap();
    assert_eq!(m.state, S::PrepareAbort);
    // Markers, then CompleteAbort.
    let done = m
        .prepare_complete(PID, 6, TxnResult::Abort, T0 + 30)
        .unwrap();
    assert!(m.marker_written(&tp("t", 0)).unwrap());
    m.complete_transition(&done).unwrap();
    assert_eq!(m.state, S::CompleteAbort);
    // The producer's retry gets the next epoch.
    let t = init_ok(&mut m, None);
    assert_eq!(t.producer_epoch, 7);
}

#[test]
fn a_failed_fence_is_not_bumped_twice() {
    let mut m = md(S::Ongoing);
    let InitProducerIdAction::AbortOngoing(t) = init(&mut m, None).unwrap() else {
        panic!("expected AbortOngoing")
    };
    m.abort_transition(&t);
    assert!(m.has_failed_epoch_fence);
    assert_eq!(
        (m.pending_state, m.state, m.producer_epoch),
        (None, S::Ongoing, 6)
    );
    let InitProducerIdAction::AbortOngoing(t) = init(&mut m, None).unwrap() else {
        panic!("expected AbortOngoing")
    };
    assert_eq!(t.producer_epoch, 6);
    m.complete_transition(&t).unwrap();
    let done = m.prepare_complete(PID, 6, TxnResult::Abort, T0).unwrap();
    assert!(!m.has_failed_epoch_fence);
    m.complete_transition(&done).unwrap();
}

#[test]
fn fencing_at_the_largest_epoch_is_illegal() {
    let mut m = md(S::Ongoing);
    m.producer_epoch = i16::MAX;
    assert!(matches!(init(&mut m, None), Err(TxnError::IllegalState(_))));
    assert_eq!(m.pending_state, None);
}

#[test]
fn an_exhausted_epoch_rotates_the_producer_id() {
    let mut m = md(S::CompleteCommit);
    m.producer_epoch = 32_766;
    let mut alloc = || Ok(200);
    let action = m
        .prepare_init_producer_id(30_000, None, T0, &mut alloc)
        .unwrap();
    let t = persisted(&mut m, action);
    assert_eq!(
        (t.producer_id, t.producer_epoch, t.last_producer_epoch),
        (200, 0, -1)
    );
    assert_eq!(t.previous_producer_id, PID);
    assert_eq!(
        (m.producer_id, m.producer_epoch, m.previous_producer_id),
        (200, 0, PID)
    );
}

#[test]
fn a_rotation_asked_by_kip_360_records_the_last_epoch_and_tolerates_its_retry() {
    let mut m = md(S::Empty);
    m.producer_epoch = 32_766;
    let mut alloc = || Ok(200);
    let action = m
        .prepare_init_producer_id(30_000, pid_epoch(PID, 32_766), T0, &mut alloc)
        .unwrap();
    let t = persisted(&mut m, action);
    assert_eq!(
        (t.producer_id, t.producer_epoch, t.last_producer_epoch),
        (200, 0, 32_766)
    );
    // The answer was lost: the producer asks again with its old id and exhausted epoch.
    let t = init_ok(&mut m, pid_epoch(PID, 32_766));
    assert_eq!(
        (t.producer_id, t.producer_epoch, t.last_producer_epoch),
        (200, 0, 32_766)
    );
    // The old id with an epoch that is not exhausted is fenced.
    assert_eq!(
        init(&mut m, pid_epoch(PID, 3)),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn a_failed_allocation_is_the_answer() {
    let mut m = md(S::Empty);
    m.producer_epoch = 32_766;
    let mut alloc = || Err(TxnError::CoordinatorNotAvailable);
    assert_eq!(
        m.prepare_init_producer_id(30_000, None, T0, &mut alloc),
        Err(TxnError::CoordinatorNotAvailable)
    );
    assert_eq!(m.pending_state, None);
}

#[test]
fn kip_360_recovery_bumps_from_the_expected_epoch() {
    let mut m = md(S::Empty);
    let t = init_ok(&mut m, pid_epoch(PID, EPOCH));
    assert_eq!((t.producer_epoch, t.last_producer_epoch), (6, EPOCH));
    // A retry of that call (answer lost) gets the same epoch, without a bump.
    let t = init_ok(&mut m, pid_epoch(PID, EPOCH));
    assert_eq!((t.producer_epoch, t.last_producer_epoch), (6, EPOCH));
    // A stale epoch, or another producer id, is fenced.
    assert_eq!(
        init(&mut m, pid_epoch(PID, 3)),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        init(&mut m, pid_epoch(PID + 1, 6)),
        Err(TxnError::ProducerFenced)
    );
    // A plain InitProducerId bumps and forgets the last epoch: the old retry is now fenced.
    init_ok(&mut m, None);
    assert_eq!((m.producer_epoch, m.last_producer_epoch), (7, -1));
    assert_eq!(
        init(&mut m, pid_epoch(PID, EPOCH)),
        Err(TxnError::ProducerFenced)
    );
}

#[test]
fn exhausted_epoch_with_another_expected_epoch_is_illegal_as_in_kafka() {
    let mut m = md(S::Empty);
    m.producer_epoch = 32_766;
    m.last_producer_epoch = 32_765;
    assert!(matches!(
        init(&mut m, pid_epoch(PID, 32_765)),
        Err(TxnError::IllegalState(_))
    ));
    assert_eq!(m.pending_state, None);
}

#[test]
fn adding_partitions_opens_or_extends_the_transaction() {
    for state in [S::Empty, S::CompleteCommit, S::CompleteAbort] {
        let mut m = md(state);
        m.txn_start_timestamp = 1;
        let parts = set(&[("t", 0), ("u", 2)]);
        let AddPartitionsAction::Persist(t) = m
            .prepare_add_partitions(PID, EPOCH, &parts, T0 + 5)
            .unwrap()
        else {
            panic!("expected Persist")
        };
        assert_eq!((t.state, t.txn_start_timestamp), (S::Ongoing, T0 + 5));
        assert_eq!(t.partitions, parts);
        m.complete_transition(&t).unwrap();
        assert_eq!((m.state, m.txn_start_timestamp), (S::Ongoing, T0 + 5));
        assert_eq!(m.partitions, parts);
    }
    let mut m = md(S::Ongoing);
    let more = set(&[("t", 1)]);
    let AddPartitionsAction::Persist(t) =
        m.prepare_add_partitions(PID, EPOCH, &more, T0 + 5).unwrap()
    else {
        panic!("expected Persist")
    };
    assert_eq!(t.txn_start_timestamp, T0);
    assert_eq!(t.partitions, set(&[("t", 0), ("t", 1)]));
    m.complete_transition(&t).unwrap();
    assert_eq!(m.txn_last_update_timestamp, T0 + 5);
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &set(&[("t", 1)]), T0),
        Ok(AddPartitionsAction::AlreadyInTransaction)
    );
    assert_eq!(m.pending_state, None);
}

#[test]
fn adding_partitions_is_refused_as_kafka_does() {
    let parts = set(&[("t", 9)]);
    let mut m = md(S::Ongoing);
    // The producer id is checked first, then the epoch.
    assert_eq!(
        m.prepare_add_partitions(PID + 1, EPOCH - 1, &parts, T0),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH - 1, &parts, T0),
        Err(TxnError::ProducerFenced)
    );
    m.pending_state = Some(S::Ongoing);
    assert_eq!(
        m.prepare_add_partitions(PID, EPOCH, &parts, T0),
        Err(TxnError::ConcurrentTransactions)
    );
    for state in [S::PrepareCommit, S::PrepareAbort] {
        let mut m = md(state);
        assert_eq!(
            m.prepare_add_partitions(PID, EPOCH, &parts, T0),
            Err(TxnError::ConcurrentTransactions)
        );
    }
    for state in [S::Dead, S::PrepareEpochFence] {
        let mut m = md(state);
        assert!(matches!(
            m.prepare_add_partitions(PID, EPOCH, &parts, T0),
            Err(TxnError::IllegalState(_))
        ));
    }
}

#[test]
fn add_offsets_adds_the_groups_consumer_offsets_partition() {
    let mut m = md(S::Empty);
    // "g".hashCode() = 103; 103 % 50 = 3.
    let AddPartitionsAction::Persist(t) = m.prepare_add_offsets(PID, EPOCH, "g", 50, T0).unwrap()
    else {
        panic!("expected Persist")
    };
    assert_eq!(t.partitions, set(&[("__consumer_offsets", 3)]));
}

#[test]
fn verification_reports_partitions_outside_the_transaction() {
    let m = md(S::Ongoing);
    let asked = set(&[("t", 0), ("t", 1)]);
    assert_eq!(
        m.verify_partitions(PID, EPOCH, &asked),
        Ok(vec![
            (tp("t", 0), None),
            (tp("t", 1), Some(TxnError::TransactionAbortable))
        ])
    );
    assert_eq!(
        m.verify_partitions(PID + 1, EPOCH, &asked),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        m.verify_partitions(PID, 4, &asked),
        Err(TxnError::ProducerFenced)
    );
    for state in [S::PrepareCommit, S::PrepareAbort] {
        assert_eq!(
            md(state).verify_partitions(PID, EPOCH, &asked),
            Err(TxnError::ConcurrentTransactions)
        );
    }
    // A pending transition does not matter; an idle id has no partitions.
    let mut pending = md(S::Ongoing);
    pending.pending_state = Some(S::PrepareCommit);
    assert!(pending.verify_partitions(PID, EPOCH, &asked).is_ok());
    let idle = md(S::Empty).verify_partitions(PID, EPOCH, &asked).unwrap();
    assert!(idle
        .iter()
        .all(|(_, e)| *e == Some(TxnError::TransactionAbortable)));
}

#[test]
fn commit_runs_prepare_markers_complete() {
    let mut m = md(S::Ongoing);
    m.partitions = set(&[("t", 0), ("u", 1)]);
    let EndTxnAction::Persist(t) = end(&mut m, TxnResult::Commit, EPOCH).unwrap() else {
        panic!("expected Persist")
    };
    assert_eq!(
        (t.state, t.producer_epoch, t.epoch_fence),
        (S::PrepareCommit, EPOCH, false)
    );
    assert_eq!(t.partitions, m.partitions);
    assert_eq!(
        end(&mut m, TxnResult::Commit, EPOCH),
        Err(TxnError::ConcurrentTransactions)
    );
    m.complete_transition(&t).unwrap();
    assert_eq!(m.state, S::PrepareCommit);
    // A retry while the markers go out is told to wait; the opposite result is invalid.
    let done = m
        .prepare_complete(PID, EPOCH, TxnResult::Commit, T0 + 40)
        .unwrap();
    assert_eq!(
        (done.state, done.txn_start_timestamp),
        (S::CompleteCommit, T0)
    );
    assert!(done.partitions.is_empty());
    assert_eq!(
        end(&mut m, TxnResult::Commit, EPOCH),
        Err(TxnError::ConcurrentTransactions)
    );
    assert!(!m.marker_written(&tp("t", 0)).unwrap());
    assert!(m.marker_written(&tp("u", 1)).unwrap());
    m.complete_transition(&done).unwrap();
    assert_eq!(
        (m.state, m.txn_last_update_timestamp),
        (S::CompleteCommit, T0 + 40)
    );
    assert!(m.partitions.is_empty());
    assert_eq!(
        end(&mut m, TxnResult::Commit, EPOCH),
        Ok(EndTxnAction::AlreadyCompleted)
    );
    assert_eq!(
        end(&mut m, TxnResult::Abort, EPOCH),
        Err(TxnError::InvalidTxnState)
    );
}

#[test]
fn end_txn_answers_every_state_as_kafka_does() {
    use TxnResult::{Abort, Commit};
    let concurrent = Err(TxnError::ConcurrentTransactions);
    let invalid = Err(TxnError::InvalidTxnState);
    let done = Ok(EndTxnAction::AlreadyCompleted);
    let cases = [
        (S::Empty, Commit, invalid.clone()),
        (S::Empty, Abort, invalid.clone()),
        (S::PrepareCommit, Commit, concurrent.clone()),
        (S::PrepareCommit, Abort, invalid.clone()),
        (S::PrepareAbort, Abort, concurrent.clone()),
        (S::PrepareAbort, Commit, invalid.clone()),
        (S::CompleteCommit, Commit, done.clone()),
        (S::CompleteCommit, Abort, invalid.clone()),
        (S::CompleteAbort, Abort, done.clone()),
        (S::CompleteAbort, Commit, invalid.clone()),
    ];
    for (state, result, expected) in cases {
        let mut m = md(state);
        assert_eq!(end(&mut m, result, EPOCH), expected, "{state:?} {result:?}");
        assert_eq!(m.pending_state, None);
    }
    for (result, next) in [(Commit, S::PrepareCommit), (Abort, S::PrepareAbort)] {
        let mut m = md(S::Ongoing);
        let Ok(EndTxnAction::Persist(t)) = end(&mut m, result, EPOCH) else {
            panic!("expected Persist")
        };
        assert_eq!(t.state, next);
    }
    for state in [S::Dead, S::PrepareEpochFence] {
        let mut m = md(state);
        assert!(matches!(
            end(&mut m, Commit, EPOCH),
            Err(TxnError::IllegalState(_))
        ));
    }
}

#[test]
fn end_txn_checks_producer_id_epoch_and_pending_first() {
    let mut m = md(S::Ongoing);
    assert_eq!(
        m.prepare_end_txn(PID + 1, EPOCH, TxnResult::Commit, true, T0),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        end(&mut m, TxnResult::Commit, EPOCH - 1),
        Err(TxnError::ProducerFenced)
    );
    // A client must match the epoch exactly; the coordinator itself may come with a higher one.
    assert_eq!(
        end(&mut m, TxnResult::Commit, EPOCH + 1),
        Err(TxnError::ProducerFenced)
    );
    m.pending_state = Some(S::Ongoing);
    assert_eq!(
        end(&mut m, TxnResult::Abort, EPOCH),
        Err(TxnError::ConcurrentTransactions)
    );
    // Even a completed transaction's retry waits for a pending transition.
    let mut m = md(S::CompleteCommit);
    m.pending_state = Some(S::Empty);
    assert_eq!(
        end(&mut m, TxnResult::Commit, EPOCH),
        Err(TxnError::ConcurrentTransactions)
    );
}

#[test]
fn completion_is_refused_when_the_transaction_changed() {
    let mut m = md(S::PrepareCommit);
    assert_eq!(
        m.prepare_complete(PID + 1, EPOCH, TxnResult::Commit, T0),
        Err(TxnError::InvalidProducerIdMapping)
    );
    assert_eq!(
        m.prepare_complete(PID, EPOCH + 1, TxnResult::Commit, T0),
        Err(TxnError::ProducerFenced)
    );
    assert_eq!(
        m.prepare_complete(PID, EPOCH, TxnResult::Abort, T0),
        Err(TxnError::InvalidTxnState)
    );
    for state in [S::Empty, S::Ongoing, S::CompleteCommit, S::CompleteAbort] {
        assert_eq!(
            md(state).prepare_complete(PID, EPOCH, TxnResult::Commit, T0),
            Err(TxnError::InvalidTxnState)
        );
    }
    m.pending_state = Some(S::CompleteCommit);
    assert_eq!(
        m.prepare_complete(PID, EPOCH, TxnResult::Commit, T0),
        Err(TxnError::ConcurrentTransactions)
    );
    assert!(matches!(
        md(S::Ongoing).marker_written(&tp("t", 0)),
        Err(TxnError::IllegalState(_))
    ));
}

#[test]
fn a_loaded_prepare_state_owes_its_markers() {
    assert_eq!(
        md(S::PrepareCommit).pending_markers(),
        Some(TxnResult::Commit)
    );
    assert_eq!(
        md(S::PrepareAbort).pending_markers(),
        Some(TxnResult::Abort)
    );
    assert_eq!(md(S::Ongoing).pending_markers(), None);
    let mut m = md(S::PrepareAbort);
    let done = m
        .prepare_complete(PID, EPOCH, TxnResult::Abort, T0 + 1)
        .unwrap();
    assert_eq!(done.state, S::CompleteAbort);
}

#[test]
fn an_open_transaction_times_out_strictly_after_its_timeout() {
    let m = md(S::Ongoing);
    assert!(!m.is_timed_out(T0 + 60_000));
    assert!(m.is_timed_out(T0 + 60_001));
    for state in [S::Empty, S::PrepareCommit, S::CompleteAbort] {
        assert!(!md(state).is_timed_out(i64::MAX / 2));
    }
    let mut pending = md(S::Ongoing);
    pending.pending_state = Some(S::PrepareCommit);
    assert!(!pending.is_timed_out(i64::MAX / 2));
}

#[test]
fn a_timed_out_transaction_is_aborted_with_an_epoch_bump() {
    let mut m = md(S::Ongoing);
    assert_eq!(m.prepare_abort_timed_out(PID + 1, T0 + 70_000), Ok(None));
    let t = m
        .prepare_abort_timed_out(PID, T0 + 70_000)
        .unwrap()
        .unwrap();
    assert_eq!(
        (t.state, t.producer_epoch, t.last_producer_epoch),
        (S::PrepareAbort, 6, -1)
    );
    assert!(t.epoch_fence);
    assert_eq!(t.txn_last_update_timestamp, T0 + 70_000);
    // Pending now: a second sweep skips it; the producer's commit is fenced.
    assert_eq!(m.prepare_abort_timed_out(PID, T0 + 80_000), Ok(None));
    assert_eq!(
        end(&mut m, TxnResult::Commit, EPOCH),
        Err(TxnError::ProducerFenced)
    );
    m.complete_transition(&t).unwrap();
    let done = m
        .prepare_complete(PID, 6, TxnResult::Abort, T0 + 70_001)
        .unwrap();
    m.marker_written(&tp("t", 0)).unwrap();
    m.complete_transition(&done).unwrap();
    assert_eq!((m.state, m.producer_epoch), (S::CompleteAbort, 6));
    // Committed in the meantime: nothing to abort.
    let mut m = md(S::CompleteCommit);
    assert_eq!(m.prepare_abort_timed_out(PID, T0 + 70_000), Ok(None));
}

#[test]
fn idle_ids_expire_after_the_expiration_time() {
    let expiration = 604_800_000;
    for state in [S::Empty, S::CompleteCommit, S::CompleteAbort] {
        let mut m = md(state);
        assert!(!m.should_expire(T0 + expiration - 1, expiration));
        assert!(m.should_expire(T0 + expiration, expiration));
        let t = m.prepare_dead().unwrap();
        assert!(t.is_tombstone());
        assert_eq!(t.txn_last_update_timestamp, T0);
        assert!(!m.should_expire(T0 + expiration, expiration));
        assert!(matches!(
            m.complete_transition(&t),
            Err(TxnError::IllegalState(_))
        ));
        m.abort_transition(&t);
        assert_eq!((m.state, m.pending_state), (state, None));
    }
    for state in [S::Ongoing, S::PrepareCommit, S::PrepareAbort] {
        let mut m = md(state);
        assert!(!m.should_expire(i64::MAX / 2, expiration));
        assert!(matches!(m.prepare_dead(), Err(TxnError::IllegalState(_))));
    }
}

#[test]
fn completing_checks_the_pending_transition() {
    let mut m = md(S::Empty);
    let t = match init(&mut m, None).unwrap() {
        InitProducerIdAction::Persist(t) => t,
        other => panic!("{other:?}"),
    };
    let mut other = t.clone();
    other.state = S::Ongoing;
    assert!(matches!(
        m.complete_transition(&other),
        Err(TxnError::IllegalState(_))
    ));
    let mut bad_epoch = t.clone();
    bad_epoch.producer_epoch = 9;
    assert!(matches!(
        m.complete_transition(&bad_epoch),
        Err(TxnError::IllegalState(_))
    ));
    m.complete_transition(&t).unwrap();
    assert!(matches!(
        m.complete_transition(&t),
        Err(TxnError::IllegalState(_))
    ));
}

#[test]
fn a_failed_write_drops_the_pending_transition_only() {
    let mut m = md(S::Ongoing);
    let before = m.clone();
    let EndTxnAction::Persist(t) = end(&mut m, TxnResult::Commit, EPOCH).unwrap() else {
        panic!("expected Persist")
    };
    m.abort_transition(&t);
    assert_eq!(m, before);
}

#[test]
fn transits_round_trip_through_the_log() {
    let mut m = md(S::Ongoing);
    m.partitions = set(&[("b", 1), ("a", 2), ("b", 0)]);
    let EndTxnAction::Persist(t) = end(&mut m, TxnResult::Commit, EPOCH).unwrap() else {
        panic!("expected Persist")
    };
    let value = t.to_log_value();
    let groups: Vec<(String, Vec<i32>)> = value
        .transaction_partitions
        .clone()
        .unwrap()
        .into_iter()
        .map(|p| (p.topic, p.partition_ids))
        .collect();
    assert_eq!(
        groups,
        vec![("a".into(), vec![2]), ("b".into(), vec![0, 1])]
    );
    assert_eq!(value.transaction_status, 2);
    for version in [VALUE_VERSION_CLASSIC, VALUE_VERSION_FLEXIBLE] {
        let decoded = TxnLogValue::decode(&value.encode(version)).unwrap();
        let loaded = TransactionMetadata::from_log("tx", &decoded).unwrap();
        assert_eq!(loaded.state, S::PrepareCommit);
        assert_eq!(loaded.partitions, m.partitions);
        assert_eq!((loaded.producer_id, loaded.producer_epoch), (PID, EPOCH));
        assert_eq!(loaded.last_producer_epoch, -1);
        assert_eq!(loaded.txn_start_timestamp, T0);
        assert_eq!(loaded.txn_last_update_timestamp, T0 + 20);
    }
    // An Empty state is written with a null partition list.
    let mut m = md(S::CompleteCommit);
    let t = match init(&mut m, None).unwrap() {
        InitProducerIdAction::Persist(t) => t,
        other => panic!("{other:?}"),
    };
    assert_eq!(t.to_log_value().transaction_partitions, None);
    let mut bad = t.to_log_value();
    bad.transaction_status = 9;
    assert!(matches!(
        TransactionMetadata::from_log("tx", &bad),
        Err(TxnError::IllegalState(_))
    ));
}

#[test]
fn a_full_life_cycle() {
    let mut m = TransactionMetadata::new("tx", 1, 60_000, 0);
    init_ok(&mut m, None);
    for round in 0..3 {
        let parts = set(&[("t", round)]);
        let AddPartitionsAction::Persist(t) = m.prepare_add_partitions(1, 0, &parts, 10).unwrap()
        else {
            panic!("expected Persist")
        };
        m.complete_transition(&t).unwrap();
        let result = if round % 2 == 0 {
            TxnResult::Commit
        } else {
            TxnResult::Abort
        };
        let EndTxnAction::Persist(t) = m.prepare_end_txn(1, 0, result, true, 20).unwrap() else {
            panic!("expected Persist")
        };
        m.complete_transition(&t).unwrap();
        let done = m.prepare_complete(1, 0, result, 30).unwrap();
        assert!(m.marker_written(&tp("t", round)).unwrap());
        m.complete_transition(&done).unwrap();
        assert_eq!(m.producer_epoch, 0);
    }
    assert_eq!(m.state, S::CompleteCommit);
}
