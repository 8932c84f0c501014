//! Kafka's offset checkpoint text files (`recovery-point-offset-checkpoint`,
//! `log-start-offset-checkpoint`, `cleaner-offset-checkpoint`): a version line "0", a count line, then "topic partition offset"
//! lines. Written atomically: tmp file, fsync, rename, fsync of the directory.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::error::LogError;
use super::TopicPartition;
use crate::util::durable::write_atomically;

pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// The log cleaner's first dirty offset per compacted partition.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// Reads a checkpoint file; a missing file is an empty map, a malformed one an error.
pub fn read_checkpoint(path: &Path) -> Result<HashMap<TopicPartition, i64>, LogError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e.into()),
    };
    let bad = |why: &str| LogError::Corrupt(format!("{}: {why}", path.display()));
    let mut lines = text.lines();
    match lines.next() {
        Some("0") => {}
        _ => return Err(bad("unsupported version line")),
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("bad count line"))?;
    let mut out = HashMap::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let line = lines
            .next()
            .ok_or_else(|| bad("fewer entries than declared"))?;
        let mut parts = line.split(' ');
        let (Some(topic), Some(p), Some(o), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("malformed entry"));
        };
        let partition: i32 = p.parse().map_err(|_| bad("bad partition"))?;
        let offset: i64 = o.parse().map_err(|_| bad("bad offset"))?;
        if topic.is_empty() {
            return Err(bad("empty topic"));
        }
        out.insert(
            TopicPartition {
                topic: Arc::from(topic),
                partition,
            },
            offset,
        );
    }
    if lines.any(|l| !l.trim().is_empty()) {
        return Err(bad("more entries than declared"));
    }
    Ok(out)
}

/// Writes a checkpoint file atomically.
pub fn write_checkpoint(
    path: &Path,
    entries: &HashMap<TopicPartition, i64>,
) -> Result<(), LogError> {
    let mut sorted: Vec<_> = entries.iter().collect();
    sorted.sort();
    let mut text = format!("0\n{}\n", sorted.len());
    for (tp, o) in sorted {
        text.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, o));
    }
    write_atomically(path, text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(RECOVERY_POINT_CHECKPOINT);
        assert!(read_checkpoint(&p).unwrap().is_empty());
        let mut m = HashMap::new();
        m.insert(TopicPartition::new("a.b-c", 3), 42);
        m.insert(TopicPartition::new("t", 0), 0);
        write_checkpoint(&p, &m).unwrap();
        let text = fs::read_to_string(&p).unwrap();
        assert_eq!(text, "0\n2\na.b-c 3 42\nt 0 0\n");
        assert_eq!(read_checkpoint(&p).unwrap(), m);
        for bad in [
            "1\n0\n",
            "0\n2\nt 0 1\n",
            "0\n1\nt x 1\n",
            "0\n1\nt 0 1 9\n",
            "",
        ] {
            fs::write(&p, bad).unwrap();
            assert!(read_checkpoint(&p).is_err(), "{bad:?}");
        }
    }
}
