"""kafka-python's admin client against a broker, as a new user runs it.

Usage: kafka_python_admin.py ADDR ATTEMPTS

Each attempt is a new KafkaAdminClient with default broker version
detection (ApiVersions, then Metadata): it lists topics, describes the
cluster and creates a topic, then checks the topic is listed. One JSON line
per attempt on stdout; any failure raises, so the exit status is nonzero.
"""
import json
import sys

from kafka import KafkaAdminClient
from kafka.admin import NewTopic

addr, attempts = sys.argv[1], int(sys.argv[2])
for i in range(attempts):
    admin = KafkaAdminClient(bootstrap_servers=addr, client_id="kafka-python-admin", request_timeout_ms=20000)
    try:
        version = admin.config["api_version"]
        before = admin.list_topics()
        cluster = admin.describe_cluster()
        name = "kafka-python-%d" % i
        admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])
        after = admin.list_topics()
        if name not in after:
            raise SystemExit("attempt %d: created %s but list_topics says %s" % (i, name, after))
        print(json.dumps({
            "attempt": i,
            "api_version": list(version),
            "topics_before": sorted(before),
            "cluster_id": cluster.get("cluster_id"),
            "brokers": len(cluster.get("brokers", [])),
        }), flush=True)
    finally:
        admin.close()
