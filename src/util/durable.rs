//! Durable file operations: the only place that renames files and syncs directories. Every
//! checkpoint, snapshot and metadata file is replaced with [`write_atomically`], so a crash leaves
//! either the old or the new content, never a torn file.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Replaces `path` with `bytes`: writes `<path>.tmp`, fsyncs it, renames it over `path` and
/// fsyncs the directory, so the new content survives a crash once this returns.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_parent(path)
}

/// Renames `from` to `to` (no sync: callers that need the rename to survive a crash call
/// [`sync_dir`] on the directory afterwards, once for a group of renames).
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)
}

/// fsyncs a directory, making the creation, deletion and renaming of its entries durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// `<path>.tmp`: the name a replacement is written under before it is renamed into place
/// (partition directories delete leftover `.tmp` files when they are opened).
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        write_atomically(&path, b"a long first version").unwrap();
        write_atomically(&path, b"short").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"short");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("checkpoint")]);
    }

    #[test]
    fn temp_name_keeps_the_extension() {
        assert_eq!(
            temp_path(Path::new("/d/0001.snapshot")),
            PathBuf::from("/d/0001.snapshot.tmp")
        );
    }
}
