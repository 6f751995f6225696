//! Persistence of the topic table and the cluster id under `data_dir/meta/`.
//!
//! `topics.json` is replaced atomically: write a temp file, fsync it, rename it over the old
//! one, fsync the directory. A crash leaves either the old or the new table, never a torn
//! one. Only shard 0 writes (all mutations are funnelled there); loading happens once, before
//! the shards start. The writes are small and rare (admin operations), so plain blocking
//! `std::fs` on shard 0 is acceptable here; a later controller log replaces this file.
//!
//! Replica assignments are stored only for replicated topics and default to none, so files
//! written before replication existed load unchanged (as local topics).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cluster::topic_table::{PartitionAssignment, TopicMeta, TopicTable};
use crate::error::BrokerError;

const TOPICS_FILE: &str = "topics.json";
const CLUSTER_ID_FILE: &str = "cluster_id";
const FORMAT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct StoredTable {
    format_version: u32,
    revision: u64,
    topics: Vec<StoredTopic>,
}

#[derive(Serialize, Deserialize)]
struct StoredTopic {
    name: String,
    topic_id: String,
    partitions: i32,
    configs: BTreeMap<String, String>,
    created_revision: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    assignments: Vec<StoredAssignment>,
}

#[derive(Serialize, Deserialize)]
struct StoredAssignment {
    replicas: Vec<i32>,
    group: u64,
}

/// The meta directory.
#[derive(Debug, Clone)]
pub struct TopicStore {
    dir: PathBuf,
}

impl TopicStore {
    /// Creates the directory if needed.
    pub fn open(dir: &Path) -> Result<Self, BrokerError> {
        fs::create_dir_all(dir).map_err(|err| io_error("create", dir, err))?;
        Ok(Self {
            dir: dir.to_path_buf(),
        })
    }

    /// The stored table, or an empty one on first start.
    pub fn load(&self) -> Result<TopicTable, BrokerError> {
        let path = self.dir.join(TOPICS_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(TopicTable::default())
            }
            Err(err) => return Err(io_error("read", &path, err)),
        };
        let stored: StoredTable = serde_json::from_str(&text).map_err(|err| {
            BrokerError::Metadata(format!(
                "{} is not a valid topic table: {err}",
                path.display()
            ))
        })?;
        if stored.format_version != FORMAT_VERSION {
            return Err(BrokerError::Metadata(format!(
                "{} has format version {}, this broker reads {FORMAT_VERSION}",
                path.display(),
                stored.format_version
            )));
        }
        let topics = stored
            .topics
            .into_iter()
            .map(topic_from_stored)
            .collect::<Result<Vec<_>, BrokerError>>()?;
        Ok(TopicTable::from_topics(stored.revision, topics))
    }

    /// Atomically replaces the stored table with `table`.
    pub fn save(&self, table: &TopicTable) -> Result<(), BrokerError> {
        let stored = StoredTable {
            format_version: FORMAT_VERSION,
            revision: table.revision(),
            topics: table
                .iter()
                .map(|meta| StoredTopic {
                    name: meta.name.clone(),
                    topic_id: meta.topic_id.to_string(),
                    partitions: meta.partitions,
                    configs: meta.configs.clone(),
                    created_revision: meta.created_revision,
                    assignments: meta
                        .assignments
                        .iter()
                        .map(|assignment| StoredAssignment {
                            replicas: assignment.replicas.clone(),
                            group: assignment.group,
                        })
                        .collect(),
                })
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&stored)
            .map_err(|err| BrokerError::Metadata(format!("encode topic table: {err}")))?;
        self.replace_file(TOPICS_FILE, &json)
    }

    /// The cluster id, created (random, Kafka's 22-character base64url form) on first start.
    pub fn cluster_id(&self) -> Result<String, BrokerError> {
        let path = self.dir.join(CLUSTER_ID_FILE);
        match fs::read_to_string(&path) {
            Ok(text) if !text.trim().is_empty() => return Ok(text.trim().to_string()),
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io_error("read", &path, err)),
        }
        let id = base64url_no_pad(Uuid::new_v4().as_bytes());
        self.replace_file(CLUSTER_ID_FILE, id.as_bytes())?;
        Ok(id)
    }

    fn replace_file(&self, name: &str, contents: &[u8]) -> Result<(), BrokerError> {
        let path = self.dir.join(name);
        let temp = self.dir.join(format!("{name}.tmp"));
        let mut file = File::create(&temp).map_err(|err| io_error("create", &temp, err))?;
        file.write_all(contents)
            .map_err(|err| io_error("write", &temp, err))?;
        file.sync_all()
            .map_err(|err| io_error("fsync", &temp, err))?;
        drop(file);
        fs::rename(&temp, &path).map_err(|err| io_error("rename", &path, err))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|err| io_error("fsync directory", &self.dir, err))
    }
}

fn topic_from_stored(topic: StoredTopic) -> Result<TopicMeta, BrokerError> {
    let topic_id = Uuid::parse_str(&topic.topic_id).map_err(|err| {
        BrokerError::Metadata(format!("topic {} has a bad id: {err}", topic.name))
    })?;
    // A replicated topic has exactly one assignment per partition; anything else would make
    // `TopicMeta::assignment` lie about which partitions exist.
    let assigned = topic.assignments.len();
    if assigned != 0 && i32::try_from(assigned).ok() != Some(topic.partitions) {
        return Err(BrokerError::Metadata(format!(
            "topic {} has {} partitions but {assigned} assignments",
            topic.name, topic.partitions
        )));
    }
    let assignments = topic
        .assignments
        .into_iter()
        .map(|stored| PartitionAssignment {
            replicas: stored.replicas,
            group: stored.group,
        })
        .collect();
    Ok(TopicMeta {
        name: topic.name,
        topic_id,
        partitions: topic.partitions,
        configs: topic.configs,
        created_revision: topic.created_revision,
        assignments,
    })
}

fn io_error(op: &str, path: &Path, err: std::io::Error) -> BrokerError {
    BrokerError::Metadata(format!("{op} {}: {err}", path.display()))
}

/// RFC 4648 base64url without padding (what Kafka's `Uuid.toString()` prints).
pub fn base64url_no_pad(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topic_table::TopicConfigs;

    #[test]
    fn table_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(&dir.path().join("meta")).unwrap();
        assert!(store.load().unwrap().is_empty());
        let mut configs = TopicConfigs::new();
        configs.insert("cleanup.policy".into(), "compact".into());
        let table = TopicTable::default()
            .with_created("a", 3, configs, Uuid::new_v4())
            .unwrap()
            .with_created("b", 1, TopicConfigs::new(), Uuid::new_v4())
            .unwrap();
        store.save(&table).unwrap();
        let reopened = TopicStore::open(&dir.path().join("meta")).unwrap();
        assert_eq!(reopened.load().unwrap(), table);
    }

    #[test]
    fn assignments_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(dir.path()).unwrap();
        let assignments = vec![
            PartitionAssignment {
                replicas: vec![1, 2],
                group: 7,
            },
            PartitionAssignment {
                replicas: vec![2, 1],
                group: 8,
            },
        ];
        let table = TopicTable::default()
            .with_created_assigned("r", TopicConfigs::new(), Uuid::new_v4(), assignments, 5)
            .unwrap();
        store.save(&table).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(loaded, table);
        assert_eq!(loaded.group(8), Some(("r", 1)));
    }

    #[test]
    fn files_without_assignments_still_load() {
        let dir = tempfile::tempdir().unwrap();
        let old = r#"{"format_version":1,"revision":1,"topics":[{"name":"a",
            "topic_id":"00000000-0000-0000-0000-000000000001","partitions":2,
            "configs":{},"created_revision":1}]}"#;
        fs::write(dir.path().join(TOPICS_FILE), old).unwrap();
        let table = TopicStore::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(table.get("a").unwrap().partitions, 2);
        assert!(table.get("a").unwrap().assignments.is_empty());
    }

    #[test]
    fn cluster_id_is_stable() {
        let dir = tempfile::tempdir().unwrap();
        let store = TopicStore::open(dir.path()).unwrap();
        let first = store.cluster_id().unwrap();
        assert_eq!(first.len(), 22);
        assert_eq!(store.cluster_id().unwrap(), first);
    }

    #[test]
    fn corrupt_table_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(TOPICS_FILE), b"{not json").unwrap();
        let store = TopicStore::open(dir.path()).unwrap();
        assert!(matches!(store.load(), Err(BrokerError::Metadata(_))));
    }

    #[test]
    fn base64url_matches_rfc4648() {
        assert_eq!(base64url_no_pad(b"f"), "Zg");
        assert_eq!(base64url_no_pad(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url_no_pad(&[0xfb, 0xff]), "-_8");
    }
}
