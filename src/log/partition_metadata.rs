//! Kafka's `partition.metadata` file: the id of the topic a partition directory belongs to. A log
//! left behind by a topic deleted while this broker was away is then never taken for a new topic
//! of the same name.

use std::fs;
use std::io;
use std::path::Path;

use tracing::warn;
use uuid::Uuid;

use super::{LogError, LogManager, TopicPartition};
use crate::util::durable::write_atomically;
use crate::util::kafka_uuid;

/// The file's name inside a partition directory.
pub const PARTITION_METADATA: &str = "partition.metadata";

/// The file's text for topic `id`, as Kafka writes it.
fn render(id: Uuid) -> String {
    format!("version: 0\ntopic_id: {}\n", kafka_uuid::to_string(id))
}

/// The topic id recorded in the file's text.
fn parse(text: &str) -> Result<Uuid, LogError> {
    let corrupt = |why: &str| LogError::Corrupt(format!("{PARTITION_METADATA}: {why}"));
    let mut version = None;
    let mut topic_id = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| corrupt("not `key: value`"))?;
        match key.trim() {
            "version" => version = Some(value.trim()),
            "topic_id" => topic_id = Some(value.trim()),
            _ => return Err(corrupt("unknown key")),
        }
    }
    if version != Some("0") {
        return Err(corrupt("unsupported version"));
    }
    topic_id
        .and_then(kafka_uuid::parse)
        .ok_or_else(|| corrupt("missing or invalid topic_id"))
}

/// The topic id recorded in `dir`, if the file exists.
fn read_topic_id(dir: &Path) -> Result<Option<Uuid>, LogError> {
    match fs::read_to_string(dir.join(PARTITION_METADATA)) {
        Ok(text) => parse(&text).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Records topic `id` in `dir` (created if missing), durably.
fn write_topic_id(dir: &Path, id: Uuid) -> Result<(), LogError> {
    fs::create_dir_all(dir)?;
    write_atomically(&dir.join(PARTITION_METADATA), render(id).as_bytes())?;
    Ok(())
}

impl LogManager {
    /// Makes the partition's directory belong to topic `id` before the partition is hosted. A
    /// directory recorded for another topic id (the topic was deleted while this broker was away
    /// and created again under the same name) holds another topic's records: it is deleted.
    /// Then the id is recorded.
    pub fn claim_for_topic(&self, tp: &TopicPartition, id: Uuid) -> Result<(), LogError> {
        let dir = self.dir().join(tp.dir_name());
        match read_topic_id(&dir)? {
            Some(recorded) if recorded == id => return Ok(()),
            Some(recorded) => {
                warn!(partition = %tp, stale = %kafka_uuid::to_string(recorded),
                    topic_id = %kafka_uuid::to_string(id),
                    "partition directory belongs to an earlier topic of this name; deleting it");
                self.delete_partition(tp)?;
            }
            None => {}
        }
        write_topic_id(&dir, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::test_util::batch;
    use crate::log::LogConfig;

    #[test]
    fn kafka_text_round_trips() {
        let id = Uuid::from_u64_pair(1, 2);
        assert_eq!(render(id), "version: 0\ntopic_id: AAAAAAAAAAEAAAAAAAAAAg\n");
        assert_eq!(parse(&render(id)).unwrap(), id);
        assert!(parse("version: 1\ntopic_id: AAAAAAAAAAEAAAAAAAAAAg\n").is_err());
        assert!(parse("version: 0\n").is_err());
        assert!(parse("version: 0\ntopic_id: nope\n").is_err());
    }

    #[test]
    fn a_directory_of_an_earlier_topic_is_deleted_before_it_is_claimed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::open(dir.path()).unwrap();
        let tp = TopicPartition::new("t", 0);
        let (old, new) = (Uuid::new_v4(), Uuid::new_v4());
        logs.claim_for_topic(&tp, old).unwrap();
        let log = logs.open_partition(&tp, LogConfig::default()).unwrap();
        log.append(&batch(3, 0), 0, 0).unwrap();
        assert_eq!(log.log_end_offset(), 3);

        // Same topic again (a restart): the records stay.
        logs.claim_for_topic(&tp, old).unwrap();
        assert_eq!(logs.get(&tp).unwrap().log_end_offset(), 3);

        // A new topic of the same name: the old records go.
        logs.claim_for_topic(&tp, new).unwrap();
        assert!(logs.get(&tp).is_none());
        let log = logs.open_partition(&tp, LogConfig::default()).unwrap();
        assert_eq!(log.log_end_offset(), 0);
        assert_eq!(
            read_topic_id(&dir.path().join(tp.dir_name())).unwrap(),
            Some(new)
        );
    }
}
