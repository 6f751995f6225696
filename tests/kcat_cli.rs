//! Issue 3, test 2: kcat (Debian's kcat on its own librdkafka) against the real broker: metadata
//! listing (-L), produce (-P, keyed, with a header, acks=all) and consume (-C -e), checking the
//! listing, offsets, order, keys, values and headers.

mod common;

use std::process::Command;

use common::kafka::create_topic;
use common::scripts::run_ok;
use common::{unique_topic, Broker};

const PARTITIONS: i32 = 3;
const MESSAGES: usize = 60;

fn kcat(bootstrap: &str) -> Command {
    let mut command = Command::new("kcat");
    command.args(["-b", bootstrap, "-X", "broker.address.family=v4"]);
    command
}

#[test]
fn kcat_lists_metadata() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("kcat-meta");
    create_topic(&bootstrap, &topic, PARTITIONS);

    let output = run_ok(kcat(&bootstrap).args(["-L", "-t", &topic]), None);
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        listing.contains(" 1 brokers:"),
        "kcat -L lists one broker:\n{listing}"
    );
    assert!(
        listing.contains(&format!("at {bootstrap}")),
        "kcat -L shows the advertised address {bootstrap}:\n{listing}"
    );
    assert!(
        listing.contains(&format!("topic \"{topic}\" with {PARTITIONS} partitions:")),
        "kcat -L shows {topic} with {PARTITIONS} partitions:\n{listing}"
    );
    for partition in 0..PARTITIONS {
        let line = listing
            .lines()
            .find(|line| {
                line.trim_start()
                    .starts_with(&format!("partition {partition},"))
            })
            .unwrap_or_else(|| panic!("no line for partition {partition}:\n{listing}"));
        assert!(
            line.contains("leader ") && !line.contains("leader -1") && !line.contains("Broker:"),
            "partition {partition} has a leader and no error: {line}"
        );
    }

    // Listing every topic (no -t) includes ours too.
    let all = run_ok(kcat(&bootstrap).arg("-L"), None);
    assert!(
        String::from_utf8_lossy(&all.stdout).contains(&format!("topic \"{topic}\"")),
        "full listing includes {topic}"
    );
    println!("kcat -L: broker, topic and {PARTITIONS} led partitions listed");
}

#[test]
fn kcat_produces_and_consumes() {
    let broker = Broker::start();
    let bootstrap = broker.bootstrap();
    let topic = unique_topic("kcat-io");
    create_topic(&bootstrap, &topic, PARTITIONS);

    // Keyed messages to partition 1 (explicit), with one header on every message.
    let input: String = (0..MESSAGES)
        .map(|i| format!("key-{i}:value-{i}-{}\n", "k".repeat(i % 13)))
        .collect();
    run_ok(
        kcat(&bootstrap).args([
            "-P",
            "-t",
            &topic,
            "-p",
            "1",
            "-K:",
            "-H",
            "origin=kcat",
            "-X",
            "acks=all",
        ]),
        Some(input.as_bytes()),
    );
    // Unkeyed messages to partition 2, one per line.
    let plain: String = (0..MESSAGES).map(|i| format!("plain-{i}\n")).collect();
    run_ok(
        kcat(&bootstrap).args(["-P", "-t", &topic, "-p", "2", "-X", "acks=all"]),
        Some(plain.as_bytes()),
    );

    let output = run_ok(
        kcat(&bootstrap).args([
            "-C",
            "-t",
            &topic,
            "-o",
            "beginning",
            "-e",
            "-f",
            "%p|%o|%k|%s|%h\n",
        ]),
        None,
    );
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let partition_lines = |p: &str| -> Vec<Vec<String>> {
        lines
            .iter()
            .map(|l| l.splitn(5, '|').map(str::to_string).collect::<Vec<_>>())
            .filter(|fields| fields[0] == p)
            .collect()
    };

    let keyed = partition_lines("1");
    assert_eq!(
        keyed.len(),
        MESSAGES,
        "partition 1 message count:\n{lines:?}"
    );
    for (i, fields) in keyed.iter().enumerate() {
        let expected = vec![
            "1".to_string(),
            i.to_string(),
            format!("key-{i}"),
            format!("value-{i}-{}", "k".repeat(i % 13)),
            "origin=kcat".to_string(),
        ];
        assert_eq!(fields, &expected, "partition 1, message {i}");
    }
    let unkeyed = partition_lines("2");
    assert_eq!(unkeyed.len(), MESSAGES, "partition 2 message count");
    for (i, fields) in unkeyed.iter().enumerate() {
        assert_eq!(fields[1], i.to_string(), "partition 2 offset order");
        assert_eq!(fields[2], "", "partition 2 messages have no key");
        assert_eq!(fields[3], format!("plain-{i}"), "partition 2 value {i}");
    }
    assert!(
        partition_lines("0").is_empty(),
        "nothing was produced to partition 0"
    );

    // A bounded consume of one partition from an offset: -p 1 -o 10 -c 5.
    let output = run_ok(
        kcat(&bootstrap).args([
            "-C", "-t", &topic, "-p", "1", "-o", "10", "-c", "5", "-e", "-f", "%o:%s\n",
        ]),
        None,
    );
    let expected: String = (10..15)
        .map(|i| format!("{i}:value-{i}-{}\n", "k".repeat(i % 13)))
        .collect();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        expected,
        "kcat -o 10 -c 5"
    );
    println!(
        "kcat: produced {} messages and consumed them back intact",
        2 * MESSAGES
    );
}

/// The README's quick start: `ringlet start` with no `--data-dir` (so the relative default
/// `./data`), kcat producing two keyed messages to an auto-created topic and reading them back,
/// also after a restart. A relative data directory once failed every partition open (glommio's
/// directory fsync, see `io/tests/relative_paths.rs`), and no test started the broker that way.
#[test]
fn readme_quick_start_with_the_default_data_dir() {
    let working_dir = tempfile::tempdir().expect("temp working dir");
    let mut broker = Broker::start_in_working_dir(working_dir.path());
    run_ok(
        kcat(&broker.bootstrap()).args(["-t", "demo", "-P", "-K:", "-X", "acks=all"]),
        Some(b"k1:hello\nk2:world\n"),
    );
    let expected = ["k1=hello", "k2=world"];
    assert_eq!(read_demo(&broker.bootstrap()), expected);
    assert!(broker.stop_graceful().success(), "graceful stop");
    assert!(
        working_dir.path().join("data/demo-0").is_dir(),
        "the partition lives under ./data of the working directory"
    );
    let restarted = Broker::start_in_working_dir(working_dir.path());
    assert_eq!(
        read_demo(&restarted.bootstrap()),
        expected,
        "after a restart"
    );
}

/// `key=value` of every message in `demo`, sorted (the keys may hash to different partitions).
fn read_demo(bootstrap: &str) -> Vec<String> {
    let output = run_ok(
        kcat(bootstrap).args(["-t", "demo", "-C", "-o", "beginning", "-e", "-f", "%k=%s\n"]),
        None,
    );
    let mut lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}
