//! A timeline of what consumer-group members did (delivered, committed, assigned, revoked),
//! gathered from in-process rdkafka members and from member processes
//! (tests/python/group_member.py prints the same events as JSON lines), and the check that
//! consumption across hand-overs is exactly what Kafka promises: a partition's new owner
//! starts at the last committed offset, nothing is skipped, and every message is delivered.
//!
//! Times are wall-clock microseconds (`CLOCK_REALTIME`), shared by every process on the host.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Delivered {
        offset: i64,
        value: String,
    },
    /// The broker accepted a commit of `offset` (the next offset to consume).
    Committed {
        offset: i64,
    },
    Assigned(Vec<i32>),
    Revoked(Vec<i32>),
}

#[derive(Debug, Clone)]
pub struct Event {
    pub time_us: u64,
    pub member: String,
    pub partition: i32,
    pub kind: Kind,
}

/// The shared timeline; cheap to clone into member threads.
#[derive(Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<Event>>>);

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

impl Timeline {
    pub fn record(&self, member: &str, partition: i32, kind: Kind) {
        self.0.lock().unwrap().push(Event {
            time_us: now_us(),
            member: member.to_string(),
            partition,
            kind,
        });
    }

    pub fn events(&self) -> Vec<Event> {
        let mut events = self.0.lock().unwrap().clone();
        events.sort_by_key(|e| e.time_us);
        events
    }

    /// How many messages `member` has been delivered so far.
    pub fn delivered_by(&self, member: &str) -> usize {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.member == member && matches!(e.kind, Kind::Delivered { .. }))
            .count()
    }

    /// Every payload delivered to anyone.
    pub fn payloads(&self) -> BTreeSet<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match &e.kind {
                Kind::Delivered { value, .. } => Some(value.clone()),
                _ => None,
            })
            .collect()
    }

    /// Partitions `member` delivered messages from after `since_us`.
    pub fn partitions_delivered_by(&self, member: &str, since_us: u64) -> BTreeSet<i32> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.member == member && e.time_us > since_us)
            .filter(|e| matches!(e.kind, Kind::Delivered { .. }))
            .map(|e| e.partition)
            .collect()
    }

    /// Every partition set `member` was assigned.
    pub fn assignments_of(&self, member: &str) -> Vec<Vec<i32>> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.member == member)
            .filter_map(|e| match &e.kind {
                Kind::Assigned(partitions) => Some(partitions.clone()),
                _ => None,
            })
            .collect()
    }

    /// Reads a member process's JSON-line events into the timeline until its stdout closes.
    pub fn follow_process(&self, member: &str, stdout: ChildStdout) -> JoinHandle<()> {
        let timeline = self.clone();
        let member = member.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(event) = parse_event(&member, &line) {
                    timeline.0.lock().unwrap().push(event);
                }
            }
        })
    }
}

fn parse_event(member: &str, line: &str) -> Option<Event> {
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    let time_us = value["t"].as_u64()?;
    let partition = value["p"].as_i64().unwrap_or(-1) as i32;
    let offset = value["o"].as_i64().unwrap_or(-1);
    let partitions = || -> Vec<i32> {
        value["ps"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_i64())
                    .map(|p| p as i32)
                    .collect()
            })
            .unwrap_or_default()
    };
    let kind = match value["kind"].as_str()? {
        "delivered" => Kind::Delivered {
            offset,
            value: value["v"].as_str().unwrap_or_default().to_string(),
        },
        "committed" => Kind::Committed { offset },
        "assigned" => Kind::Assigned(partitions()),
        "revoked" => Kind::Revoked(partitions()),
        _ => return None,
    };
    Some(Event {
        time_us,
        member: member.to_string(),
        partition,
        kind,
    })
}

/// Waits for a member process and its event reader.
pub fn reap(mut child: Child, reader: JoinHandle<()>) -> std::process::ExitStatus {
    let status = child.wait().expect("wait for member process");
    reader.join().expect("event reader");
    status
}

/// Checks every partition's deliveries in time order against the commits before them:
/// - the first delivery ever is offset 0 (a fresh group on a fresh topic, earliest reset);
/// - a member taking a partition over starts at the last accepted commit, or, when the
///   previous owner was killed (`killed`), possibly one past the previous owner's last
///   delivery (its final commit may have been accepted without it living to report it);
/// - a member continuing goes on at the next offset, or restarts at the last commit after
///   a rebalance that refused its in-flight commit.
///
/// Returns every violation, and every (partition, offset) below `ends` never delivered.
pub fn check_handovers(
    events: &[Event],
    ends: &BTreeMap<i32, i64>,
    killed: &[&str],
) -> Vec<String> {
    let mut violations = Vec::new();
    for (&partition, &end) in ends {
        let mut last_commit = 0i64;
        let mut previous: Option<(&str, i64)> = None;
        let mut seen = BTreeSet::new();
        for event in events.iter().filter(|e| e.partition == partition) {
            match &event.kind {
                Kind::Committed { offset } => last_commit = *offset,
                Kind::Delivered { offset, .. } => {
                    let allowed = allowed_offsets(previous, last_commit, &event.member, killed);
                    if !allowed.contains(offset) {
                        violations.push(format!(
                            "partition {partition}: {} got offset {offset} after {previous:?} \
                             with last commit {last_commit}; allowed {allowed:?}",
                            event.member
                        ));
                    }
                    seen.insert(*offset);
                    previous = Some((event.member.as_str(), *offset));
                }
                Kind::Assigned(_) | Kind::Revoked(_) => {}
            }
        }
        let missing: Vec<i64> = (0..end).filter(|o| !seen.contains(o)).collect();
        if !missing.is_empty() {
            violations.push(format!(
                "partition {partition}: offsets never delivered: {missing:?}"
            ));
        }
    }
    violations
}

fn allowed_offsets(
    previous: Option<(&str, i64)>,
    last_commit: i64,
    member: &str,
    killed: &[&str],
) -> BTreeSet<i64> {
    let mut allowed = BTreeSet::from([last_commit]);
    match previous {
        None => {}
        Some((owner, offset)) if owner == member => {
            allowed.insert(offset + 1);
        }
        Some((owner, offset)) if killed.contains(&owner) => {
            allowed.insert(offset + 1);
        }
        Some(_) => {}
    }
    allowed
}
