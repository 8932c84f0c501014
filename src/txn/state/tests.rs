//! Tests of the transaction state machine.
