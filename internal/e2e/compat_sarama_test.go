package e2e

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/IBM/sarama"
)

const (
	saramaPartitions   = 3
	saramaPerPartition = 100 // 300 records in all
	saramaTimeout      = 60 * time.Second
)

// saramaConfig is a sarama config for version v with bounded network waits
// and retries, so an agent that does not answer fails the test instead of
// hanging it.
func saramaConfig(v sarama.KafkaVersion) *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = v
	cfg.ClientID = "silt-compat-sarama"
	cfg.Net.DialTimeout = 10 * time.Second
	cfg.Net.ReadTimeout = 20 * time.Second
	cfg.Net.WriteTimeout = 10 * time.Second
	cfg.Metadata.Retry.Max = 5
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Timeout = 10 * time.Second
	cfg.Producer.Retry.Max = 3
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	cfg.Consumer.Return.Errors = true
	cfg.Consumer.MaxWaitTime = 250 * time.Millisecond
	cfg.Admin.Timeout = 10 * time.Second
	return cfg
}

// TestSaramaRoundTrip: for a current, a mid and an old protocol version
// (all using record batch v2), sarama's ClusterAdmin creates a topic of 3
// partitions, a SyncProducer with acks=all writes 300 keyed records to
// chosen partitions, and a PartitionConsumer from the oldest offset reads
// each partition back in order. ListTopics, DescribeConfig and ListOffsets
// (GetOffset) answer what was written.
func TestSaramaRoundTrip(t *testing.T) {
	for _, v := range []sarama.KafkaVersion{sarama.MaxVersion, sarama.V3_6_0_0, sarama.V2_1_0_0} {
		t.Run("V"+v.String(), func(t *testing.T) {
			addr := startCompatDev(t)
			cfg := saramaConfig(v)
			cfg.Net.MaxOpenRequests = 1 // strict per-partition order, so offsets are predictable
			const topic = "sarama-roundtrip"

			saramaCreateTopic(t, addr, cfg, topic, saramaPartitions)
			saramaCheckAdmin(t, addr, cfg, topic, saramaPartitions)

			var prod sarama.SyncProducer
			within(t, saramaTimeout, "sarama.NewSyncProducer", func() (err error) {
				prod, err = sarama.NewSyncProducer([]string{addr}, cfg)
				return err
			})
			defer prod.Close()

			// Interleave partitions so each produce request carries several.
			msgs := make([]*sarama.ProducerMessage, 0, saramaPartitions*saramaPerPartition)
			for i := 0; i < saramaPerPartition; i++ {
				for p := int32(0); p < saramaPartitions; p++ {
					msgs = append(msgs, &sarama.ProducerMessage{
						Topic:     topic,
						Partition: p,
						Key:       sarama.ByteEncoder(compatKey(p, i)),
						Value:     sarama.ByteEncoder(compatValue(p, i)),
					})
				}
			}
			// The first ten one at a time, the rest as one SendMessages.
			within(t, saramaTimeout, "SyncProducer.SendMessage", func() error {
				for _, m := range msgs[:10] {
					if _, _, err := prod.SendMessage(m); err != nil {
						return err
					}
				}
				return nil
			})
			within(t, saramaTimeout, "SyncProducer.SendMessages", func() error {
				return prod.SendMessages(msgs[10:])
			})
			next := make([]int64, saramaPartitions)
			for _, m := range msgs {
				if m.Offset != next[m.Partition] {
					t.Fatalf("partition %d: record acked at offset %d, want %d", m.Partition, m.Offset, next[m.Partition])
				}
				next[m.Partition]++
			}

			saramaCheckOffsets(t, addr, cfg, topic, saramaPartitions, saramaPerPartition)
			for p := int32(0); p < saramaPartitions; p++ {
				saramaConsume(t, addr, cfg, topic, p, saramaPerPartition, func(i int) ([]byte, []byte) {
					return compatKey(p, i), compatValue(p, i)
				})
			}
		})
	}
}

// TestSaramaCompression: an AsyncProducer with each compression codec
// writes records in multi-record batches; a PartitionConsumer reads them
// back identical.
func TestSaramaCompression(t *testing.T) {
	codecs := []sarama.CompressionCodec{
		sarama.CompressionGZIP,
		sarama.CompressionSnappy,
		sarama.CompressionLZ4,
		sarama.CompressionZSTD,
	}
	for _, codec := range codecs {
		t.Run(codec.String(), func(t *testing.T) {
			addr := startCompatDev(t)
			cfg := saramaConfig(sarama.V3_6_0_0)
			cfg.Producer.Compression = codec
			cfg.Producer.Flush.Messages = 50
			cfg.Producer.Flush.Frequency = 10 * time.Millisecond
			topic := "sarama-" + codec.String()
			const n = 500
			saramaCreateTopic(t, addr, cfg, topic, 1)

			value := func(i int) []byte {
				// Compressible, and different per record.
				return bytes.Repeat(fmt.Appendf(nil, "%s record %04d ", codec, i), 20)
			}
			var prod sarama.AsyncProducer
			within(t, saramaTimeout, "sarama.NewAsyncProducer", func() (err error) {
				prod, err = sarama.NewAsyncProducer([]string{addr}, cfg)
				return err
			})
			defer prod.AsyncClose()

			within(t, saramaTimeout, "AsyncProducer", func() error {
				go func() {
					for i := 0; i < n; i++ {
						prod.Input() <- &sarama.ProducerMessage{
							Topic:    topic,
							Key:      sarama.ByteEncoder(compatKey(0, i)),
							Value:    sarama.ByteEncoder(value(i)),
							Metadata: i,
						}
					}
				}()
				acked := 0
				for acked < n {
					select {
					case <-prod.Successes():
						acked++
					case perr := <-prod.Errors():
						return fmt.Errorf("record %v: %w", perr.Msg.Metadata, perr.Err)
					}
				}
				return nil
			})

			saramaCheckOffsets(t, addr, cfg, topic, 1, n)
			saramaConsume(t, addr, cfg, topic, 0, n, func(i int) ([]byte, []byte) {
				return compatKey(0, i), value(i)
			})
		})
	}
}

func saramaCreateTopic(t *testing.T, addr string, cfg *sarama.Config, topic string, partitions int32) {
	t.Helper()
	var adm sarama.ClusterAdmin
	within(t, saramaTimeout, "sarama.NewClusterAdmin", func() (err error) {
		adm, err = sarama.NewClusterAdmin([]string{addr}, cfg)
		return err
	})
	defer adm.Close()
	within(t, saramaTimeout, "ClusterAdmin.CreateTopic", func() error {
		return adm.CreateTopic(topic, &sarama.TopicDetail{
			NumPartitions:     partitions,
			ReplicationFactor: 1,
			ConfigEntries:     map[string]*string{"retention.ms": new("86400000")},
		}, false)
	})
}

// saramaCheckAdmin: ListTopics and DescribeTopics see the topic with its
// partitions, and DescribeConfig returns its configs, including the one set
// at creation.
func saramaCheckAdmin(t *testing.T, addr string, cfg *sarama.Config, topic string, partitions int32) {
	t.Helper()
	var adm sarama.ClusterAdmin
	within(t, saramaTimeout, "sarama.NewClusterAdmin", func() (err error) {
		adm, err = sarama.NewClusterAdmin([]string{addr}, cfg)
		return err
	})
	defer adm.Close()

	var topics map[string]sarama.TopicDetail
	within(t, saramaTimeout, "ClusterAdmin.ListTopics", func() (err error) {
		topics, err = adm.ListTopics()
		return err
	})
	d, ok := topics[topic]
	if !ok {
		t.Fatalf("ListTopics: %s missing from %v", topic, topics)
	}
	if d.NumPartitions != partitions {
		t.Fatalf("ListTopics: %s has %d partitions, want %d", topic, d.NumPartitions, partitions)
	}

	var metas []*sarama.TopicMetadata
	within(t, saramaTimeout, "ClusterAdmin.DescribeTopics", func() (err error) {
		metas, err = adm.DescribeTopics([]string{topic})
		return err
	})
	if len(metas) != 1 || metas[0].Err != sarama.ErrNoError || len(metas[0].Partitions) != int(partitions) {
		t.Fatalf("DescribeTopics(%s): %+v", topic, metas)
	}

	var entries []sarama.ConfigEntry
	within(t, saramaTimeout, "ClusterAdmin.DescribeConfig", func() (err error) {
		entries, err = adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
		return err
	})
	i := slices.IndexFunc(entries, func(e sarama.ConfigEntry) bool { return e.Name == "retention.ms" })
	if i < 0 {
		t.Fatalf("DescribeConfig(%s): no retention.ms in %+v", topic, entries)
	}
	if entries[i].Value != "86400000" {
		t.Fatalf("DescribeConfig(%s): retention.ms = %q, want 86400000", topic, entries[i].Value)
	}

	var brokers []*sarama.Broker
	within(t, saramaTimeout, "ClusterAdmin.DescribeCluster", func() (err error) {
		brokers, _, err = adm.DescribeCluster()
		return err
	})
	if len(brokers) == 0 {
		t.Fatal("DescribeCluster: no brokers")
	}
}

// saramaCheckOffsets: ListOffsets answers 0 for the oldest and n for the
// newest offset of each partition.
func saramaCheckOffsets(t *testing.T, addr string, cfg *sarama.Config, topic string, partitions int32, n int64) {
	t.Helper()
	var cl sarama.Client
	within(t, saramaTimeout, "sarama.NewClient", func() (err error) {
		cl, err = sarama.NewClient([]string{addr}, cfg)
		return err
	})
	defer cl.Close()
	for p := int32(0); p < partitions; p++ {
		var oldest, newest int64
		within(t, saramaTimeout, "Client.GetOffset", func() (err error) {
			if oldest, err = cl.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
				return err
			}
			newest, err = cl.GetOffset(topic, p, sarama.OffsetNewest)
			return err
		})
		if oldest != 0 || newest != n {
			t.Fatalf("partition %d: offsets [%d, %d), want [0, %d)", p, oldest, newest, n)
		}
	}
}

// saramaConsume reads n records of one partition from the oldest offset and
// checks each one's offset, key and value.
func saramaConsume(t *testing.T, addr string, cfg *sarama.Config, topic string, p int32, n int, want func(i int) (key, value []byte)) {
	t.Helper()
	var cons sarama.Consumer
	within(t, saramaTimeout, "sarama.NewConsumer", func() (err error) {
		cons, err = sarama.NewConsumer([]string{addr}, cfg)
		return err
	})
	defer cons.Close()
	var pc sarama.PartitionConsumer
	within(t, saramaTimeout, "Consumer.ConsumePartition", func() (err error) {
		pc, err = cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		return err
	})
	defer pc.AsyncClose()

	deadline := time.After(saramaTimeout)
	for i := 0; i < n; i++ {
		select {
		case m := <-pc.Messages():
			wk, wv := want(i)
			if m.Offset != int64(i) || !bytes.Equal(m.Key, wk) || !bytes.Equal(m.Value, wv) {
				t.Fatalf("partition %d record %d: offset %d key %q value %.60q, want offset %d key %q value %.60q",
					p, i, m.Offset, m.Key, m.Value, i, wk, wv)
			}
		case err := <-pc.Errors():
			t.Fatalf("partition %d after %d records: %v", p, i, err)
		case <-deadline:
			t.Fatalf("partition %d: %d of %d records within %v", p, i, n, saramaTimeout)
		}
	}
	if hwm := pc.HighWaterMarkOffset(); hwm != int64(n) {
		t.Fatalf("partition %d: high watermark %d, want %d", p, hwm, n)
	}
}

// TestSaramaAdmin: ClusterAdmin's topic operations beyond creation:
// CreatePartitions, IncrementalAlterConfig, AlterConfig and DeleteTopic,
// each visible through ListTopics / DescribeConfig afterwards.
func TestSaramaAdmin(t *testing.T) {
	addr := startCompatDev(t)
	cfg := saramaConfig(sarama.V3_6_0_0)
	const topic = "sarama-admin"
	saramaCreateTopic(t, addr, cfg, topic, 2)

	var adm sarama.ClusterAdmin
	within(t, saramaTimeout, "sarama.NewClusterAdmin", func() (err error) {
		adm, err = sarama.NewClusterAdmin([]string{addr}, cfg)
		return err
	})
	defer adm.Close()

	within(t, saramaTimeout, "ClusterAdmin.CreatePartitions", func() error {
		return adm.CreatePartitions(topic, 5, nil, false)
	})
	saramaCheckAdmin(t, addr, cfg, topic, 5)

	retention := func() string {
		t.Helper()
		var entries []sarama.ConfigEntry
		within(t, saramaTimeout, "ClusterAdmin.DescribeConfig", func() (err error) {
			entries, err = adm.DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic})
			return err
		})
		for _, e := range entries {
			if e.Name == "retention.ms" {
				return e.Value
			}
		}
		t.Fatalf("DescribeConfig(%s): no retention.ms in %+v", topic, entries)
		return ""
	}
	within(t, saramaTimeout, "ClusterAdmin.IncrementalAlterConfig", func() error {
		return adm.IncrementalAlterConfig(sarama.TopicResource, topic, map[string]sarama.IncrementalAlterConfigsEntry{
			"retention.ms": {Operation: sarama.IncrementalAlterConfigsOperationSet, Value: new("3600000")},
		}, false)
	})
	if got := retention(); got != "3600000" {
		t.Fatalf("after IncrementalAlterConfig: retention.ms = %q, want 3600000", got)
	}
	within(t, saramaTimeout, "ClusterAdmin.AlterConfig", func() error {
		return adm.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": new("7200000")}, false)
	})
	if got := retention(); got != "7200000" {
		t.Fatalf("after AlterConfig: retention.ms = %q, want 7200000", got)
	}

	within(t, saramaTimeout, "ClusterAdmin.DeleteTopic", func() error {
		return adm.DeleteTopic(topic)
	})
	var topics map[string]sarama.TopicDetail
	within(t, saramaTimeout, "ClusterAdmin.ListTopics", func() (err error) {
		topics, err = adm.ListTopics()
		return err
	})
	if _, ok := topics[topic]; ok {
		t.Fatalf("ListTopics after DeleteTopic still has %s", topic)
	}
}

// TestSaramaIdempotentProducer: sarama's idempotent producer gets a
// producer ID through InitProducerId and writes with sequence numbers; every
// record lands once, in order.
func TestSaramaIdempotentProducer(t *testing.T) {
	addr := startCompatDev(t)
	cfg := saramaConfig(sarama.V3_6_0_0)
	cfg.Producer.Idempotent = true
	cfg.Net.MaxOpenRequests = 1
	const topic, n = "sarama-idempotent", 200
	saramaCreateTopic(t, addr, cfg, topic, 1)

	var prod sarama.SyncProducer
	within(t, saramaTimeout, "sarama.NewSyncProducer (idempotent)", func() (err error) {
		prod, err = sarama.NewSyncProducer([]string{addr}, cfg)
		return err
	})
	defer prod.Close()
	msgs := make([]*sarama.ProducerMessage, n)
	for i := range msgs {
		msgs[i] = &sarama.ProducerMessage{
			Topic: topic,
			Key:   sarama.ByteEncoder(compatKey(0, i)),
			Value: sarama.ByteEncoder(compatValue(0, i)),
		}
	}
	within(t, saramaTimeout, "SyncProducer.SendMessages (idempotent)", func() error {
		return prod.SendMessages(msgs)
	})
	for i, m := range msgs {
		if m.Offset != int64(i) {
			t.Fatalf("record %d acked at offset %d", i, m.Offset)
		}
	}
	saramaCheckOffsets(t, addr, cfg, topic, 1, n)
	saramaConsume(t, addr, cfg, topic, 0, n, func(i int) ([]byte, []byte) {
		return compatKey(0, i), compatValue(0, i)
	})
}
