//! This broker as a cluster member: per-shard cluster state ([`ClusterShard`]), start-up of
//! the internal listener, the controller and replica drivers, broker heartbeats, and the
//! installation of applied metadata on every shard.
//!
//! Shard 0 is the hub: it accepts other brokers' connections, routes incoming Raft messages
//! to the shard owning each group (one bus hop per shard per frame), runs the controller
//! replica (on voters) and the heartbeat to the controller leader, and merges leadership
//! reports. Every shard runs its own replica driver and its own links to the peers.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringlet_raft::NodeId;

use super::controller::{Controller, CONTROLLER_GROUP};
use super::controller_rpc::{self, ControllerRequest, ControllerResponse, WireError};
use super::leaders::{LeaderReport, LeaderTable};
use super::metadata_stm::{BrokerRegistration, BrokerTable, MetadataCommand, MetadataState};
use super::topic_table::TopicTable;
use crate::config::cluster::ClusterConfig;
use crate::error::BrokerError;
use crate::partition::replicas::ReplicaManager;
use crate::rpc::{Frame, FrameKind, Peers};
use crate::state::ShardState;

/// Largest internal frame (a Raft append carries at most ~1 MiB of batches per group).
pub const MAX_RPC_FRAME_BYTES: usize = 64 << 20;
/// How often a broker heartbeats the controller (also how fresh remote leadership is).
const HEARTBEAT_INTERVAL: Duration = Duration::from_millis(500);
const CONTROLLER_CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// A call to another broker's partitions: longer than their commit timeout (a marker
/// waits for its Raft group to commit it).
const PEER_CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Shard 0's extra duties.
pub struct Hub {
    /// The controller leader's applied metadata index when this broker first heard from it,
    /// and whether this broker has applied as far since (`note_metadata_progress`).
    catch_up_target: std::cell::OnceCell<u64>,
    caught_up: Cell<bool>,
    /// The latest reports of this broker's own replicas (all shards).
    local_reports: RefCell<LeaderTable>,
    /// The controller's merge of every broker's reports.
    remote_reports: RefCell<LeaderTable>,
    controller_hint: Cell<Option<i32>>,
    next_seed: Cell<usize>,
    /// A non-voter's own copy of the metadata, fed by heartbeat responses.
    observer: RefCell<MetadataState>,
}

pub struct ClusterShard {
    pub config: ClusterConfig,
    pub node_id: i32,
    pub peers: Peers,
    pub replicas: Rc<ReplicaManager>,
    /// Shard 0 of a voter.
    pub controller: Option<Rc<Controller>>,
    pub hub: Option<Hub>,
    brokers: RefCell<Arc<BrokerTable>>,
    alive: RefCell<Arc<Vec<i32>>>,
    leaders: RefCell<Arc<LeaderTable>>,
    controller_id: Cell<i32>,
    /// Version of the last installed metadata (the controller's applied index order).
    metadata_version: Cell<u64>,
    pub(super) reconciling: Cell<bool>,
    pub(super) reconcile_again: Cell<bool>,
}

impl ClusterShard {
    /// Sets how often the shard's replicas apply retention (`log.retention.check.interval.ms`).
    pub fn with_retention_check_interval(self, interval: Duration) -> Self {
        self.replicas.set_retention_check_interval(interval);
        self
    }

    pub fn new(
        config: ClusterConfig,
        node_id: i32,
        shard_id: usize,
        meta_dir: &std::path::Path,
    ) -> Result<Self, BrokerError> {
        let controller = if shard_id == 0 && config.is_voter(node_id) {
            Some(Controller::open(
                node_id,
                &config.voter_ids(),
                &meta_dir.join("controller"),
                config.broker_session_timeout,
            )?)
        } else {
            None
        };
        let hub = (shard_id == 0).then(|| Hub {
            catch_up_target: std::cell::OnceCell::new(),
            caught_up: Cell::new(false),
            local_reports: RefCell::new(LeaderTable::default()),
            remote_reports: RefCell::new(LeaderTable::default()),
            controller_hint: Cell::new(None),
            next_seed: Cell::new(0),
            observer: RefCell::new(MetadataState::default()),
        });
        Ok(ClusterShard {
            replicas: ReplicaManager::new(node_id, config.raft_tick),
            peers: Peers::new(MAX_RPC_FRAME_BYTES),
            config,
            node_id,
            controller,
            hub,
            brokers: RefCell::new(Arc::new(BrokerTable::default())),
            alive: RefCell::new(Arc::new(Vec::new())),
            leaders: RefCell::new(Arc::new(LeaderTable::default())),
            controller_id: Cell::new(-1),
            metadata_version: Cell::new(0),
            reconciling: Cell::new(false),
            reconcile_again: Cell::new(false),
        })
    }

    pub fn brokers(&self) -> Arc<BrokerTable> {
        self.brokers.borrow().clone()
    }

    /// Registered brokers the controller considers alive (all registered ones until the
    /// first heartbeat answer).
    pub fn alive_brokers(&self) -> Vec<i32> {
        let alive = self.alive.borrow().clone();
        let brokers = self.brokers();
        let registered: Vec<i32> = brokers.ids();
        if alive.is_empty() {
            return registered;
        }
        registered
            .into_iter()
            .filter(|id| alive.contains(id))
            .collect()
    }

    pub fn leaders(&self) -> Arc<LeaderTable> {
        self.leaders.borrow().clone()
    }

    /// The controller leader as last heard (-1: unknown).
    pub fn controller_id(&self) -> i32 {
        self.controller_id.get()
    }

    /// Where node `id` accepts internal traffic: its seed address when it is a voter (as
    /// this node reaches it), else its registered address.
    pub fn peer_addr(&self, id: i32) -> Option<SocketAddr> {
        if let Some(seed) = self.seed(id) {
            return seed.address.current();
        }
        let brokers = self.brokers();
        let registration = brokers.get(id)?;
        let text = format!("{}:{}", registration.rpc_host, registration.rpc_port);
        text.parse().ok()
    }

    fn seed(&self, id: i32) -> Option<&crate::config::cluster::Seed> {
        self.config.seeds.iter().find(|seed| seed.node_id == id)
    }

    /// A link to node `id` is down or a call to it failed: if it is a seed given by name,
    /// the name is looked up again (it may have moved).
    pub fn note_unreachable(&self, id: i32) {
        if let Some(seed) = self.seed(id) {
            seed.address.mark_stale();
        }
    }

    /// Ships Raft frames to their peers (dropped when a link is down: Raft retransmits).
    pub fn send_frames(&self, frames: Vec<(NodeId, Bytes)>) {
        for (node, frame) in frames {
            let Some(addr) = self.peer_addr(node as i32) else {
                tracing::debug!(node, "no address for a raft peer yet");
                continue;
            };
            let link = self.peers.link(node, addr);
            if !link.send_raft(frame) && !link.is_connected() {
                self.note_unreachable(node as i32);
            }
        }
    }

    /// This broker's registration.
    pub fn registration(&self, state: &ShardState) -> BrokerRegistration {
        let rpc = self.config.rpc_listen;
        let rpc_host = if rpc.ip().is_unspecified() {
            state.config.advertise.host.clone()
        } else {
            rpc.ip().to_string()
        };
        BrokerRegistration {
            node_id: self.node_id,
            host: state.config.advertise.host.clone(),
            port: state.config.advertise.port,
            rpc_host,
            rpc_port: rpc.port(),
            rack: self.config.rack.clone(),
        }
    }
}

// ------------------------------------------------------------------ start-up

/// Before the Kafka listener opens: a voter applies its own controller log up to the commit
/// it knew and installs the tables on every shard (starting its replicas), so a restarted
/// broker knows its topics from its first request.
pub async fn restore_metadata(state: &Rc<ShardState>) {
    let Some(controller) = state.cluster.as_ref().and_then(|c| c.controller.clone()) else {
        return;
    };
    // A Ready hands out at most a few MiB of committed entries: step until all are applied.
    let mut changed = false;
    loop {
        let (frames, more) = controller.step(false);
        if let Some(cluster) = state.cluster.as_ref() {
            cluster.send_frames(frames);
        }
        if !more {
            break;
        }
        changed = true;
    }
    if !changed {
        return;
    }
    let version = controller.applied_version();
    let (topics, brokers) = {
        let applied = controller.state();
        (applied.topics(), applied.brokers())
    };
    tracing::info!(
        topics = topics.len(),
        brokers = brokers.len(),
        "metadata restored from the controller log"
    );
    let _ = state
        .bus
        .invoke_on_all(move |shard: Rc<ShardState>| async move {
            install_metadata(&shard, version, topics, brokers).await;
        })
        .await;
}

/// Binds the internal listener (shard 0) and starts the drivers; called on every shard.
pub fn start(state: &Rc<ShardState>) -> Result<(), BrokerError> {
    let Some(cluster) = state.cluster.as_ref() else {
        return Ok(());
    };
    start_replica_driver(state, cluster);
    if state.shard_id != 0 {
        return Ok(());
    }
    let listener = ringlet_shard::net::bind(cluster.config.rpc_listen).map_err(|err| {
        BrokerError::Startup(format!(
            "cannot listen for brokers on {}: {err}",
            cluster.config.rpc_listen
        ))
    })?;
    let handler_state = Rc::clone(state);
    let handler: crate::rpc::Handler = Rc::new(move |frame: Frame| {
        let state = Rc::clone(&handler_state);
        Box::pin(async move { handle_frame(&state, frame).await })
    });
    crate::rpc::spawn_server(listener, handler, MAX_RPC_FRAME_BYTES).detach();
    if let Some(controller) = cluster.controller.clone() {
        let state = Rc::clone(state);
        ringlet_shard::task::spawn_local(run_controller(state, controller)).detach();
    }
    let heartbeat_state = Rc::clone(state);
    ringlet_shard::task::spawn_local(run_heartbeats(heartbeat_state)).detach();
    tracing::info!(
        rpc = %cluster.config.rpc_listen,
        voters = ?cluster.config.voter_ids(),
        "cluster member started"
    );
    Ok(())
}

fn start_replica_driver(state: &Rc<ShardState>, cluster: &ClusterShard) {
    let replicas = Rc::clone(&cluster.replicas);
    let sender = Rc::clone(state);
    let task = replicas.clone().run(move |frames| {
        let Some(cluster) = sender.cluster.as_ref() else {
            return;
        };
        cluster.send_frames(frames);
        let changed = cluster.replicas.take_changed_reports();
        if !changed.is_empty() {
            forward_reports(&sender, changed);
        }
    });
    ringlet_shard::task::spawn_local(task).detach();
}

/// Sends this shard's changed leadership reports to shard 0 (which republishes them).
fn forward_reports(state: &Rc<ShardState>, reports: Vec<LeaderReport>) {
    let state = Rc::clone(state);
    ringlet_shard::task::spawn_local(async move {
        let outcome = state
            .bus
            .invoke_on(0, move |hub_state: Rc<ShardState>| async move {
                local_reports_changed(&hub_state, reports);
            })
            .await;
        if let Err(err) = outcome {
            tracing::debug!(error = %err, "leadership report not delivered");
        }
    })
    .detach();
}

fn local_reports_changed(state: &Rc<ShardState>, reports: Vec<LeaderReport>) {
    let Some(hub) = state.cluster.as_ref().and_then(|c| c.hub.as_ref()) else {
        return;
    };
    if hub.local_reports.borrow_mut().replace(reports) {
        publish_leaders(state);
    }
}

/// Merges local and remote reports and installs the result on every shard.
fn publish_leaders(state: &Rc<ShardState>) {
    let Some(hub) = state.cluster.as_ref().and_then(|c| c.hub.as_ref()) else {
        return;
    };
    let mut merged = hub.remote_reports.borrow().clone();
    merged.overlay_local(hub.local_reports.borrow().reports().cloned());
    let table = Arc::new(merged);
    on_every_shard_soon(state, move |shard: Rc<ShardState>| async move {
        if let Some(cluster) = shard.cluster.as_ref() {
            *cluster.leaders.borrow_mut() = table;
        }
    });
}

/// Runs `job` on every shard in the background (a broadcast nobody waits for; each receiver
/// ignores what is older than what it holds).
fn on_every_shard_soon<F, Fut>(state: &Rc<ShardState>, job: F)
where
    F: FnOnce(Rc<ShardState>) -> Fut + Send + Clone + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let state = Rc::clone(state);
    ringlet_shard::task::spawn_local(async move {
        if let Err(err) = state.bus.invoke_on_all(job).await {
            tracing::debug!(error = %err, "broadcast to the shards incomplete");
        }
    })
    .detach();
}

// ------------------------------------------------------------------ inbound RPC

async fn handle_frame(state: &Rc<ShardState>, frame: Frame) -> Option<Bytes> {
    match frame.kind {
        FrameKind::Raft => {
            route_raft(state, frame.payload).await;
            None
        }
        FrameKind::Request => Some(controller_rpc::encode(&answer(state, &frame.payload).await)),
        FrameKind::Response => None,
    }
}

/// Splits a peer's Raft batch by owning shard: group 0 to the controller, each partition
/// group to the shard that owns the partition.
async fn route_raft(state: &Rc<ShardState>, payload: Bytes) {
    let batch = match ringlet_raft::wire::decode(payload) {
        Ok(batch) => batch,
        Err(err) => {
            tracing::warn!(error = %err, "undecodable raft frame dropped");
            return;
        }
    };
    let Some(cluster) = state.cluster.as_ref() else {
        return;
    };
    let topics = state.topics();
    let mut by_shard: BTreeMap<usize, Vec<ringlet_raft::wire::GroupMessage>> = BTreeMap::new();
    let mut controller_messages = Vec::new();
    for message in batch.messages {
        if message.group == CONTROLLER_GROUP {
            controller_messages.push(message);
            continue;
        }
        let Some((topic, partition)) = topics.group(message.group) else {
            continue; // a group this broker has not heard of (yet): Raft retries
        };
        let shard = super::partition_shard(topic, partition, state.shard_count);
        by_shard.entry(shard).or_default().push(message);
    }
    let (from, to) = (batch.from, batch.to);
    if let Some(controller) = cluster.controller.as_ref() {
        if !controller_messages.is_empty() {
            controller.receive(ringlet_raft::wire::Batch {
                from,
                to,
                messages: controller_messages,
            });
        }
    }
    for (shard, messages) in by_shard {
        let batch = ringlet_raft::wire::Batch { from, to, messages };
        if shard == state.shard_id {
            cluster.replicas.receive(batch);
            continue;
        }
        let delivered = state
            .bus
            .invoke_on(shard, move |owner: Rc<ShardState>| async move {
                if let Some(cluster) = owner.cluster.as_ref() {
                    cluster.replicas.receive(batch);
                }
            })
            .await;
        if let Err(err) = delivered {
            tracing::debug!(shard, error = %err, "raft messages not delivered to their shard");
        }
    }
}

async fn answer(state: &Rc<ShardState>, payload: &[u8]) -> ControllerResponse {
    let request: ControllerRequest = match controller_rpc::decode(payload) {
        Ok(request) => request,
        Err(err) => {
            tracing::warn!(error = %err, "bad controller request");
            return ControllerResponse::NotLeader { leader: None };
        }
    };
    if let ControllerRequest::WriteTxnMarkers { marker, partitions } = request {
        return write_txn_markers(state, partitions, marker).await;
    }
    let Some(controller) = state.cluster.as_ref().and_then(|c| c.controller.clone()) else {
        return ControllerResponse::NotLeader { leader: None };
    };
    controller.execute(request).await
}

/// A coordinator's markers for partitions this broker leads (or led, as it knew).
async fn write_txn_markers(
    state: &Rc<ShardState>,
    partitions: Vec<(String, i32)>,
    marker: crate::partition::txn_markers::TxnMarker,
) -> ControllerResponse {
    let written = crate::partition::txn_markers::write_markers(state, partitions, marker).await;
    let errors = written
        .into_iter()
        .map(|(_, result)| result.err().map(|err| WireError::from_error(&err)))
        .collect();
    ControllerResponse::TxnMarkers(errors)
}

// ------------------------------------------------------------------ controller driver

async fn run_controller(state: Rc<ShardState>, controller: Rc<Controller>) {
    let tick = state
        .cluster
        .as_ref()
        .map_or(Duration::from_millis(100), |c| c.config.raft_tick);
    let mut next_tick = Instant::now() + tick;
    loop {
        controller
            .wait(next_tick.saturating_duration_since(Instant::now()))
            .await;
        let now = Instant::now();
        let due = now >= next_tick;
        if due {
            next_tick = now + tick;
        }
        let (frames, changed) = controller.step(due);
        if let Some(cluster) = state.cluster.as_ref() {
            cluster.send_frames(frames);
            let leader = controller.leader().unwrap_or(-1);
            if leader != cluster.controller_id.get() {
                install_view_everywhere(&state, None, leader);
            }
        }
        if changed {
            let (topics, brokers) = {
                let applied = controller.state();
                (applied.topics(), applied.brokers())
            };
            publish_metadata(&state, controller.applied_version(), topics, brokers);
        }
    }
}

/// Installs applied metadata on every shard (newer versions only) and reconciles replicas.
fn publish_metadata(
    state: &Rc<ShardState>,
    version: u64,
    topics: Arc<TopicTable>,
    brokers: Arc<BrokerTable>,
) {
    on_every_shard_soon(state, move |shard: Rc<ShardState>| async move {
        install_metadata(&shard, version, topics, brokers).await;
    });
}

async fn install_metadata(
    shard: &Rc<ShardState>,
    version: u64,
    topics: Arc<TopicTable>,
    brokers: Arc<BrokerTable>,
) {
    let Some(cluster) = shard.cluster.as_ref() else {
        return;
    };
    if version <= cluster.metadata_version.get() {
        return;
    }
    cluster.metadata_version.set(version);
    *cluster.brokers.borrow_mut() = brokers;
    shard.install_topics(topics);
    super::reconcile::reconcile(shard).await;
}

// ------------------------------------------------------------------ heartbeats

async fn run_heartbeats(state: Rc<ShardState>) {
    loop {
        heartbeat_once(&state).await;
        ringlet_shard::task::sleep(HEARTBEAT_INTERVAL).await;
    }
}

async fn heartbeat_once(state: &Rc<ShardState>) {
    let Some(cluster) = state.cluster.as_ref() else {
        return;
    };
    let Some(hub) = cluster.hub.as_ref() else {
        return;
    };
    let registration = cluster.registration(state);
    let reports: Vec<LeaderReport> = hub.local_reports.borrow().reports().cloned().collect();
    let observer_applied = cluster
        .controller
        .is_none()
        .then(|| hub.observer.borrow().applied_index());
    let target = controller_target(cluster, hub);
    let response = match (&cluster.controller, target) {
        (Some(controller), Some(id)) if id == cluster.node_id => {
            controller.heartbeat(registration, reports, observer_applied)
        }
        (_, Some(id)) => {
            let request = ControllerRequest::Heartbeat {
                registration,
                reports,
                observer_applied,
            };
            match call_controller(cluster, id, &request).await {
                Ok(response) => response,
                Err(err) => {
                    tracing::debug!(controller = id, error = %err, "heartbeat failed");
                    hub.controller_hint.set(None);
                    return;
                }
            }
        }
        (_, None) => return,
    };
    match response {
        ControllerResponse::Heartbeat {
            alive,
            reports,
            commands,
            metadata_applied,
        } => {
            if let Some(id) = target {
                hub.controller_hint.set(Some(id));
            }
            let controller_id = match &cluster.controller {
                Some(controller) => controller.leader().unwrap_or(-1),
                None => target.unwrap_or(-1),
            };
            install_view_everywhere(state, Some(alive), controller_id);
            let mut remote = LeaderTable::default();
            remote.merge(reports);
            *hub.remote_reports.borrow_mut() = remote;
            publish_leaders(state);
            apply_observed(state, hub, commands);
            note_metadata_progress(state, cluster, hub, metadata_applied);
        }
        ControllerResponse::NotLeader { leader } => {
            hub.controller_hint
                .set(leader.filter(|id| Some(*id) != target));
        }
        ControllerResponse::Proposed(_) | ControllerResponse::TxnMarkers(_) => {}
    }
}

/// Kafka starts deleting log segments only once a broker has caught up with the metadata
/// log: a broker restarting would otherwise apply retention with topic configs the cluster
/// has since changed (seen: a follower restarted after `retention.bytes` went from 64 KiB to
/// -1 deleted its log down to 64 KiB in the 300 ms before it replayed the change). The
/// first heartbeat answer names the leader's applied index; once this broker has applied as
/// far, every shard's replicas may apply retention.
fn note_metadata_progress(
    state: &Rc<ShardState>,
    cluster: &ClusterShard,
    hub: &Hub,
    leader_applied: u64,
) {
    if hub.caught_up.get() {
        return;
    }
    let target = *hub.catch_up_target.get_or_init(|| leader_applied);
    let applied = match &cluster.controller {
        Some(controller) => controller.applied_index(),
        None => hub.observer.borrow().applied_index(),
    };
    if applied < target {
        return;
    }
    hub.caught_up.set(true);
    tracing::info!(
        applied,
        target,
        "caught up with the cluster's metadata: retention may run"
    );
    on_every_shard_soon(state, |shard: Rc<ShardState>| async move {
        if let Some(cluster) = shard.cluster.as_ref() {
            cluster.replicas.allow_retention();
        }
    });
}

/// Installs the alive brokers (when given) and the controller leader on every shard.
fn install_view_everywhere(state: &Rc<ShardState>, alive: Option<Vec<i32>>, controller: i32) {
    if let Some(cluster) = state.cluster.as_ref() {
        cluster.controller_id.set(controller);
    }
    let alive = alive.map(Arc::new);
    on_every_shard_soon(state, move |shard: Rc<ShardState>| async move {
        if let Some(cluster) = shard.cluster.as_ref() {
            cluster.controller_id.set(controller);
            if let Some(alive) = alive {
                *cluster.alive.borrow_mut() = alive;
            }
        }
    });
}

/// A non-voter applies the committed commands the leader handed it.
fn apply_observed(state: &Rc<ShardState>, hub: &Hub, commands: Vec<(u64, Vec<u8>)>) {
    if commands.is_empty() {
        return;
    }
    let (topics, brokers, version) = {
        let mut observer = hub.observer.borrow_mut();
        for (index, data) in commands {
            if index <= observer.applied_index() {
                continue;
            }
            match MetadataCommand::decode(&data) {
                Ok(command) => {
                    let _ = observer.apply(index, &command);
                }
                Err(err) => tracing::warn!(index, error = %err, "bad observed metadata command"),
            }
        }
        (
            observer.topics(),
            observer.brokers(),
            observer.applied_index(),
        )
    };
    publish_metadata(state, version, topics, brokers);
}

/// Who to ask: the local controller's leader, the last hint, or the next seed in turn.
fn controller_target(cluster: &ClusterShard, hub: &Hub) -> Option<i32> {
    if let Some(leader) = cluster.controller.as_ref().and_then(|c| c.leader()) {
        return Some(leader);
    }
    if let Some(hint) = hub.controller_hint.get() {
        return Some(hint);
    }
    let seeds = &cluster.config.seeds;
    if seeds.is_empty() {
        return None;
    }
    let index = hub.next_seed.get() % seeds.len();
    hub.next_seed.set(index + 1);
    Some(seeds[index].node_id)
}

async fn call_controller(
    cluster: &ClusterShard,
    id: i32,
    request: &ControllerRequest,
) -> Result<ControllerResponse, BrokerError> {
    let addr = cluster
        .peer_addr(id)
        .ok_or_else(|| BrokerError::NotController(format!("no address for node {id}")))?;
    let link = cluster.peers.link(id as NodeId, addr);
    let answer = link
        .call(controller_rpc::encode(request), CONTROLLER_CALL_TIMEOUT)
        .await
        .map_err(|err| {
            cluster.note_unreachable(id);
            BrokerError::NotController(format!("controller {id}: {err}"))
        })?;
    controller_rpc::decode(&answer)
}

/// Sends `request` to broker `id` from this shard's link to it and waits for the answer.
pub async fn call_peer(
    state: &ShardState,
    id: i32,
    request: &ControllerRequest,
) -> Result<ControllerResponse, BrokerError> {
    let cluster = state
        .cluster
        .as_ref()
        .ok_or_else(|| BrokerError::internal("a peer call on a single node"))?;
    let addr = cluster
        .peer_addr(id)
        .ok_or(BrokerError::NotLeaderOrFollower)?;
    let link = cluster.peers.link(id as NodeId, addr);
    let answer = link
        .call(controller_rpc::encode(request), PEER_CALL_TIMEOUT)
        .await
        .map_err(|err| BrokerError::RequestTimedOut(format!("broker {id}: {err}")))?;
    controller_rpc::decode(&answer)
}

// ------------------------------------------------------------------ proposals

/// Runs `request` on the controller leader (from shard 0, which the caller hops to):
/// locally when this broker leads, else forwarded; retried while no leader is known.
/// Answers once the resulting command is applied there.
pub async fn request(
    state: &Rc<ShardState>,
    request: ControllerRequest,
) -> Result<(), BrokerError> {
    let deadline = Instant::now() + super::controller::PROPOSE_TIMEOUT;
    let cluster = state
        .cluster
        .as_ref()
        .ok_or_else(|| BrokerError::internal("controller request on a single node"))?;
    let hub = cluster
        .hub
        .as_ref()
        .ok_or_else(|| BrokerError::internal("controller request off shard 0"))?;
    let mut last_error = BrokerError::NotController("no controller leader yet".into());
    while Instant::now() < deadline {
        let target = controller_target(cluster, hub);
        let outcome = match (&cluster.controller, target) {
            (Some(controller), Some(id)) if id == cluster.node_id => {
                controller.execute(request.clone()).await
            }
            (_, Some(id)) => match call_controller(cluster, id, &request).await {
                Ok(response) => response,
                Err(err) => {
                    hub.controller_hint.set(None);
                    last_error = err;
                    ringlet_shard::task::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            (_, None) => ControllerResponse::NotLeader { leader: None },
        };
        match outcome {
            ControllerResponse::Proposed(None) => return Ok(()),
            ControllerResponse::Proposed(Some(err)) => return Err(err.into_error()),
            ControllerResponse::NotLeader { leader } => {
                hub.controller_hint
                    .set(leader.filter(|id| Some(*id) != target));
                ringlet_shard::task::sleep(Duration::from_millis(100)).await;
            }
            ControllerResponse::Heartbeat { .. } | ControllerResponse::TxnMarkers(_) => {
                return Err(BrokerError::internal("controller answered a request oddly"))
            }
        }
    }
    Err(match last_error {
        BrokerError::NotController(why) => BrokerError::RequestTimedOut(why),
        other => other,
    })
}
