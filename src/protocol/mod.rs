//! TEMPORARY STUB (replaced by wip-guard).
pub mod guard {
    #[derive(Debug, thiserror::Error)]
    #[error("guard")]
    pub struct GuardError;
    pub fn check_request_body(_k: i16, _v: i16, _b: &[u8]) -> Result<(), GuardError> {
        Ok(())
    }
}
