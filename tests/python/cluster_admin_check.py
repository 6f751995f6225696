"""confluent-kafka's AdminClient against a three-broker Ringlet cluster (ids 1-3, racks rack-1..3),
bootstrapped from one broker (run by tests/cluster_api_matrix.rs once per broker):
describe_cluster lists all three brokers with their racks and names the controller every broker
names; create_topics with an explicit replica_assignment places the replicas as asked (and an
unknown broker id is refused); describe_configs of each BROKER resource answers with that broker's
broker.id and broker.rack."""

import argparse
import os
import time

import checklib
from checklib import check

ck = checklib.require("confluent_kafka", "confluent-kafka")
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic  # noqa: E402

BROKERS = [1, 2, 3]
TIMEOUT = checklib.WAIT_SECONDS


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bootstrap", required=True, help="HOST:PORT of one broker")
    parser.add_argument("--broker-id", type=int, required=True, help="id of that broker")
    parser.add_argument("--controller", type=int, required=True, help="the expected controller")
    return parser.parse_args()


def describe_cluster(admin, args):
    result = admin.describe_cluster(request_timeout=60).result(timeout=TIMEOUT)
    nodes = sorted((node.id, node.rack) for node in result.nodes)
    expected = [(i, f"rack-{i}") for i in BROKERS]
    check(nodes == expected, f"describe_cluster via {args.broker_id}: nodes {nodes}")
    check(result.controller is not None and result.controller.id == args.controller,
          f"describe_cluster via {args.broker_id}: controller {result.controller} is {args.controller}")


def create_assigned(admin, args):
    topic = f"py-assigned-{args.broker_id}-{os.getpid()}-{int(time.time() * 1000) % 1_000_000}"
    assignment = [[3, 1, 2], [2, 3, 1]]
    futures = admin.create_topics([NewTopic(topic, len(assignment), replica_assignment=assignment)],
                                  operation_timeout=60)
    futures[topic].result(timeout=TIMEOUT)

    def placed():
        md = admin.list_topics(topic=topic, timeout=30)
        t = md.topics.get(topic)
        if t is None or t.error is not None or len(t.partitions) != 2:
            return None
        return [list(t.partitions[p].replicas) for p in range(2)]

    replicas = checklib.wait_until(f"metadata for {topic}", placed)
    check(replicas == assignment, f"create_topics via {args.broker_id}: replicas {replicas}")

    bad = topic + "-bad"
    futures = admin.create_topics([NewTopic(bad, 1, replica_assignment=[[1, 9]])],
                                  operation_timeout=60)
    try:
        futures[bad].result(timeout=TIMEOUT)
        refused = None
    except ck.KafkaException as err:
        refused = err.args[0].code()
    check(refused == ck.KafkaError.INVALID_REPLICA_ASSIGNMENT,
          f"create_topics via {args.broker_id}: broker 9 refused ({refused})")


def describe_brokers(admin, args):
    # librdkafka takes one BROKER resource per call, and sends it to that broker.
    for broker in map(str, BROKERS):
        resource = ConfigResource(ConfigResource.Type.BROKER, broker)
        futures = admin.describe_configs([resource], request_timeout=60)
        configs = futures[resource].result(timeout=TIMEOUT)
        check(configs["broker.id"].value == broker,
              f"describe_configs via {args.broker_id}: broker {broker} broker.id")
        rack = configs.get("broker.rack")
        check(rack is not None and rack.value == f"rack-{broker}",
              f"describe_configs via {args.broker_id}: broker {broker} broker.rack")


def main():
    args = parse_args()
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    describe_cluster(admin, args)
    create_assigned(admin, args)
    describe_brokers(admin, args)


if __name__ == "__main__":
    checklib.run(main)
