//! The brokers a soak runs against: one broker, or three (RF=3 topics, kill -9 of a follower
//! and its restart on a seeded schedule). Watches that no broker dies on its own and, at the
//! end, keeps every broker log and reports anything in them that a healthy broker never prints.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::cluster::Cluster;
use crate::common::seeded::Seeded;
use crate::common::Broker;
use crate::run::Run;

/// What a broker log must never contain: a panic, glibc's heap checks, a fatal signal.
const FATAL_MARKS: [&str; 8] = [
    "panicked at",
    "double free",
    "free(): ",
    "malloc(): ",
    "corrupted",
    "Segmentation fault",
    "SIGSEGV",
    "memory allocation of",
];

pub enum Target {
    One(Broker),
    Three {
        cluster: Cluster,
        /// The node this soak killed and has not restarted yet.
        down: Option<i32>,
    },
}

impl Target {
    pub fn one() -> Target {
        Target::One(Broker::start())
    }

    pub fn three() -> Target {
        let mut cluster = Cluster::start(3);
        cluster.wait_for_brokers(&cluster.ids());
        Target::Three {
            cluster,
            down: None,
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Target::One(_) => "one-broker",
            Target::Three { .. } => "three-brokers",
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Target::One(broker) => broker.bootstrap(),
            Target::Three { cluster, .. } => cluster.bootstrap(),
        }
    }

    pub fn replication(&self) -> i32 {
        match self {
            Target::One(_) => 1,
            Target::Three { .. } => 3,
        }
    }

    /// A broker that should run and has exited: which, how, and its last lines.
    pub fn dead_broker(&mut self) -> Option<String> {
        match self {
            Target::One(broker) => describe_exit(0, broker),
            Target::Three { cluster, down } => {
                let down = *down;
                let ids: Vec<i32> = cluster
                    .ids()
                    .into_iter()
                    .filter(|id| Some(*id) != down)
                    .collect();
                ids.into_iter()
                    .find_map(|id| describe_exit(id, cluster.broker(id)))
            }
        }
    }

    /// Three brokers: kills a broker that is not the controller (a follower of the metadata
    /// quorum, and of the partitions it does not lead) with SIGKILL, holds it down for a while,
    /// restarts it and waits until every partition of `topics` is led with all three replicas
    /// in sync. Returns the node killed. One broker: nothing (there is no follower).
    pub fn kill_a_follower(&mut self, run: &Run, random: &mut Seeded, topics: &[(String, i32)]) {
        let Target::Three { cluster, down } = self else {
            return;
        };
        let controller = cluster.wait_for_controller();
        let followers: Vec<i32> = cluster
            .ids()
            .into_iter()
            .filter(|id| *id != controller)
            .collect();
        let victim = followers[random.below(followers.len() as u64) as usize];
        let hold = Duration::from_millis(random.between(2_000, 15_000));
        run.say(format!(
            "kill -9 node {victim} (controller is {controller}) for {hold:?}"
        ));
        *down = Some(victim);
        cluster.kill(victim);
        run.count("follower kills", 1);
        run.pause(hold);
        cluster.start_node(victim);
        *down = None;
        // A cluster that does not heal is a finding; the soak goes on.
        let _ = run.guarded("the cluster healing after a follower restart", || {
            for (topic, partitions) in topics {
                for partition in 0..*partitions {
                    cluster.wait_for_partition(topic, partition, |isr| isr.len() == 3);
                }
            }
        });
        run.say(format!(
            "node {victim} is back and every partition has three in sync"
        ));
    }

    /// Copies every broker log into `out` and reports fatal marks in them as findings.
    pub fn keep_logs(&self, run: &Run, out: &Path) {
        let dirs: Vec<(i32, PathBuf)> = match self {
            Target::One(broker) => vec![(0, broker.log_path().parent().expect("a log dir").into())],
            Target::Three { cluster, .. } => cluster.log_dirs(),
        };
        let kept = out.join(self.label());
        std::fs::create_dir_all(&kept).expect("create the soak's log directory");
        for (id, dir) in dirs {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = format!("node-{id}-{}", entry.file_name().to_string_lossy());
                let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
                for mark in FATAL_MARKS {
                    if let Some(line) = text.lines().find(|line| line.contains(mark)) {
                        run.finding(format!("{name} contains {mark:?}: {line}"));
                    }
                }
                let _ = std::fs::write(kept.join(&name), &text);
            }
        }
    }
}

fn describe_exit(id: i32, broker: &mut Broker) -> Option<String> {
    let status = broker.exit_status()?;
    Some(format!(
        "broker {id} (pid {}) exited on its own: {status}\n{}",
        broker.pid(),
        broker.log_tail(60)
    ))
}
