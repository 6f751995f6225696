//! A second broker must refuse to start on a port or a data directory that a running broker
//! holds, instead of silently sharing them (the shards' listeners use SO_REUSEPORT, which the
//! kernel would otherwise happily extend to a second process), while a restarted broker takes
//! its port back at once.

mod common;

use std::process::{Command, Output};

use common::Broker;

fn start_second(data_dir: &std::path::Path, listen: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ringlet"))
        .arg("start")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", listen, "--advertise", listen, "--shards", "1"])
        .output()
        .expect("run a second ringlet")
}

#[test]
fn second_broker_on_the_same_port_exits_with_an_error() {
    let mut first = Broker::start();
    let other_dir = tempfile::tempdir().unwrap();
    let output = start_second(other_dir.path(), &first.bootstrap());
    let log = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "second broker started on a busy port:\n{log}"
    );
    assert!(
        log.contains("another broker"),
        "no clear reason given:\n{log}"
    );
    first.assert_alive("after a second broker tried its port");
}

#[test]
fn second_broker_on_the_same_data_dir_exits_with_an_error() {
    let mut first = Broker::start();
    let listen = format!("127.0.0.1:{}", common::free_port());
    let output = start_second(first.data_dir(), &listen);
    let log = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success(),
        "second broker started on a busy data dir:\n{log}"
    );
    assert!(
        log.contains("in use by another ringlet process"),
        "no clear reason given:\n{log}"
    );
    first.assert_alive("after a second broker tried its data dir");
}

/// A killed broker's connections linger in the kernel (the client has not closed its end, so
/// the broker's side waits in FIN_WAIT2 for up to a minute); a new broker must still be able
/// to take the port at once, as a restarted Kafka broker can.
#[test]
fn a_restarted_broker_takes_its_port_while_old_connections_linger() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let logs = dir.path().join("logs");
    let port = common::free_port();
    let mut first = Broker::start_advertising(&data_dir, &logs, port, port);
    let lingering: Vec<std::net::TcpStream> = (0..4)
        .map(|_| common::wire::connect(first.addr()))
        .collect();
    first.kill_hard();
    drop(first);
    let mut second = Broker::start_advertising(&data_dir, &logs, port, port);
    second.assert_alive("restarted on the same port with old connections lingering");
    drop(lingering);
}
