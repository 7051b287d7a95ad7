"""kafka-python's producer and group consumer against a broker.

Usage: kafka_python_clients.py ADDR TOPIC CODEC N

Produces N keyed records with acks=all and CODEC ("none" or "gzip", which
need no extra Python modules), then consumes them from the beginning in
group "kafka-python-<TOPIC>" and commits. Prints each consumed record as
"partition offset key value", one per line; any failure raises.
"""
import sys

from kafka import KafkaConsumer, KafkaProducer

addr, topic, codec, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
producer = KafkaProducer(bootstrap_servers=addr, acks="all",
                         compression_type=None if codec == "none" else codec)
for i in range(n):
    producer.send(topic, key=b"key-%04d" % i, value=b"value-%04d" % i)
producer.flush()
producer.close()

consumer = KafkaConsumer(topic, bootstrap_servers=addr, group_id="kafka-python-" + topic,
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         consumer_timeout_ms=15000)
seen = 0
for m in consumer:
    print(m.partition, m.offset, m.key.decode(), m.value.decode(), flush=True)
    seen += 1
    if seen == n:
        break
consumer.commit()
consumer.close()
