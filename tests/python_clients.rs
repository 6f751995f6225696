//! Issue 3, test 3: the Python clients against the real broker, each through its own check script
//! in tests/python (admin create/delete topic, produce with acks=all, consume by assign + seek to
//! beginning without a consumer group, every message compared). The scripts print what they
//! checked and exit non-zero on any mismatch or when the client library is missing.

mod common;

use common::scripts::run_python_check;
use common::Broker;

fn check_script_passes(script: &str) {
    let mut broker = Broker::start();
    let output = run_python_check(script, &broker.bootstrap(), &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("ALL CHECKS PASSED"),
        "{script} did not report success:\n{stdout}"
    );
    broker.assert_alive(&format!("after {script}"));
}

#[test]
fn confluent_kafka_admin_produce_consume() {
    check_script_passes("confluent_kafka_check.py");
}

#[test]
fn kafka_python_admin_produce_consume() {
    check_script_passes("kafka_python_check.py");
}

#[test]
fn aiokafka_admin_produce_consume() {
    check_script_passes("aiokafka_check.py");
}
