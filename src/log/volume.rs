//! The size of the volume a log directory is on (statvfs), as Kafka reports it in
//! DescribeLogDirs (KIP-827): total bytes, and bytes usable by the broker (not counting blocks
//! reserved for the superuser, Java's `FileStore.getUsableSpace`).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Total and usable bytes of one volume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VolumeSpace {
    pub total_bytes: u64,
    pub usable_bytes: u64,
}

impl VolumeSpace {
    /// The volume holding `path`.
    pub fn of(path: &Path) -> io::Result<VolumeSpace> {
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c_path` is a NUL-terminated string and `st` a statvfs we own; statvfs writes
        // only into `st`.
        let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut st) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        // The field types are platform aliases (c_ulong, fsblkcnt_t): widen them as they are.
        let fragment = st.f_frsize as u64;
        Ok(VolumeSpace {
            total_bytes: (st.f_blocks as u64).saturating_mul(fragment),
            usable_bytes: (st.f_bavail as u64).saturating_mul(fragment),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_has_a_volume_with_room() {
        let dir = tempfile::tempdir().unwrap();
        let space = VolumeSpace::of(dir.path()).unwrap();
        assert!(space.total_bytes > 0);
        assert!(space.usable_bytes <= space.total_bytes);
        assert!(VolumeSpace::of(&dir.path().join("missing")).is_err());
    }
}
