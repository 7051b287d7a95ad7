package e2e

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

const (
	kafkaGoPartitions   = 3
	kafkaGoPerPartition = 100 // 300 records in all
	kafkaGoTimeout      = 60 * time.Second
)

// headerBalancer sends each message to the partition named in its
// "partition" header: a manual partitioner, which kafka.Writer lacks.
type headerBalancer struct{}

func (headerBalancer) Balance(msg kafka.Message, partitions ...int) int {
	for _, h := range msg.Headers {
		if h.Key == "partition" {
			p, _ := strconv.Atoi(string(h.Value))
			return p
		}
	}
	return partitions[0]
}

// TestKafkaGoWriterReader: a kafka.Conn creates a topic of 3 partitions and
// ReadPartitions lists them; a kafka.Writer with acks=all writes 300 keyed
// records to chosen partitions (uncompressed, and with each codec); one
// kafka.Reader per partition (no group) reads them back in order.
func TestKafkaGoWriterReader(t *testing.T) {
	codecs := []kafka.Compression{0, kafka.Gzip, kafka.Snappy, kafka.Lz4, kafka.Zstd}
	for _, codec := range codecs {
		name := "none"
		if codec != 0 {
			name = codec.String()
		}
		t.Run(name, func(t *testing.T) {
			addr := startCompatDev(t)
			topic := "kafkago-" + name
			ctx, cancel := context.WithTimeout(context.Background(), 2*kafkaGoTimeout)
			defer cancel()
			kafkaGoCreateTopic(ctx, t, addr, topic, kafkaGoPartitions)

			w := &kafka.Writer{
				Addr:         kafka.TCP(addr),
				Topic:        topic,
				Balancer:     headerBalancer{},
				RequiredAcks: kafka.RequireAll,
				Compression:  codec,
				BatchSize:    50,
				BatchTimeout: 10 * time.Millisecond,
				ReadTimeout:  10 * time.Second,
				WriteTimeout: 10 * time.Second,
				MaxAttempts:  3,
			}
			defer w.Close()
			msgs := make([]kafka.Message, 0, kafkaGoPartitions*kafkaGoPerPartition)
			for i := 0; i < kafkaGoPerPartition; i++ {
				for p := int32(0); p < kafkaGoPartitions; p++ {
					msgs = append(msgs, kafka.Message{
						Key:     compatKey(p, i),
						Value:   compatValue(p, i),
						Headers: []kafka.Header{{Key: "partition", Value: strconv.AppendInt(nil, int64(p), 10)}},
					})
				}
			}
			wctx, wcancel := context.WithTimeout(ctx, kafkaGoTimeout)
			defer wcancel()
			if err := w.WriteMessages(wctx, msgs...); err != nil {
				t.Fatalf("Writer.WriteMessages: %v", err)
			}
			if st := w.Stats(); st.Errors != 0 || st.Messages != int64(len(msgs)) {
				t.Fatalf("Writer stats: %d messages, %d errors; want %d, 0", st.Messages, st.Errors, len(msgs))
			}

			for p := int32(0); p < kafkaGoPartitions; p++ {
				kafkaGoRead(ctx, t, addr, topic, p, kafkaGoPerPartition)
			}
		})
	}
}

// TestKafkaGoConn: the kafka.Conn API: Brokers, Controller, CreateTopics,
// ReadPartitions, DialLeader with WriteMessages, ReadFirstOffset /
// ReadLastOffset / ReadOffset, ReadBatch, and DeleteTopics.
func TestKafkaGoConn(t *testing.T) {
	addr := startCompatDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), kafkaGoTimeout)
	defer cancel()
	const topic = "kafkago-conn"
	kafkaGoCreateTopic(ctx, t, addr, topic, kafkaGoPartitions)

	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("kafka.Dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(kafkaGoTimeout))
	brokers, err := conn.Brokers()
	if err != nil || len(brokers) == 0 {
		t.Fatalf("Conn.Brokers: %v %v", brokers, err)
	}
	parts, err := conn.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("Conn.ReadPartitions: %v", err)
	}
	if len(parts) != kafkaGoPartitions {
		t.Fatalf("Conn.ReadPartitions(%s): %d partitions, want %d: %+v", topic, len(parts), kafkaGoPartitions, parts)
	}
	for _, p := range parts {
		if p.Topic != topic || p.Leader.Host == "" || p.Leader.Port == 0 || p.Error != nil {
			t.Fatalf("Conn.ReadPartitions(%s): partition %+v", topic, p)
		}
	}

	// Produce through a partition leader connection and read back.
	const p, n = 1, 50
	leader, err := kafka.DialLeader(ctx, "tcp", addr, topic, p)
	if err != nil {
		t.Fatalf("kafka.DialLeader: %v", err)
	}
	defer leader.Close()
	_ = leader.SetDeadline(time.Now().Add(kafkaGoTimeout))
	if err := leader.SetRequiredAcks(-1); err != nil {
		t.Fatalf("Conn.SetRequiredAcks: %v", err)
	}
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: compatKey(p, i), Value: compatValue(p, i)}
	}
	if _, err := leader.WriteMessages(msgs[:n/2]...); err != nil {
		t.Fatalf("Conn.WriteMessages: %v", err)
	}
	if _, err := leader.WriteMessages(msgs[n/2:]...); err != nil {
		t.Fatalf("Conn.WriteMessages: %v", err)
	}
	first, err := leader.ReadFirstOffset()
	if err != nil {
		t.Fatalf("Conn.ReadFirstOffset: %v", err)
	}
	last, err := leader.ReadLastOffset()
	if err != nil {
		t.Fatalf("Conn.ReadLastOffset: %v", err)
	}
	if first != 0 || last != n {
		t.Fatalf("offsets [%d, %d), want [0, %d)", first, last, n)
	}
	if _, err := leader.Seek(0, kafka.SeekAbsolute); err != nil {
		t.Fatalf("Conn.Seek: %v", err)
	}
	batch := leader.ReadBatch(1, 1<<20)
	for i := 0; i < n; i++ {
		m, err := batch.ReadMessage()
		if err != nil {
			// One fetch may stop at a batch boundary; fetch again from here.
			batch.Close()
			if _, err := leader.Seek(int64(i), kafka.SeekAbsolute); err != nil {
				t.Fatalf("Conn.Seek(%d): %v", i, err)
			}
			batch = leader.ReadBatch(1, 1<<20)
			if m, err = batch.ReadMessage(); err != nil {
				t.Fatalf("Batch.ReadMessage at offset %d: %v", i, err)
			}
		}
		if m.Offset != int64(i) || !bytes.Equal(m.Key, compatKey(p, i)) || !bytes.Equal(m.Value, compatValue(p, i)) {
			t.Fatalf("record %d: offset %d key %q value %q", i, m.Offset, m.Key, m.Value)
		}
	}
	if hwm := batch.HighWaterMark(); hwm != n {
		t.Fatalf("Batch.HighWaterMark = %d, want %d", hwm, n)
	}
	batch.Close()

	ctl := kafkaGoController(ctx, t, addr)
	defer ctl.Close()
	if err := ctl.DeleteTopics(topic); err != nil {
		t.Fatalf("Conn.DeleteTopics: %v", err)
	}
}

// kafkaGoController dials the controller the cluster names, as kafka-go's
// documentation says topic creation must.
func kafkaGoController(ctx context.Context, t *testing.T, addr string) *kafka.Conn {
	t.Helper()
	conn, err := kafka.DialContext(ctx, "tcp", addr)
	if err != nil {
		t.Fatalf("kafka.Dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(kafkaGoTimeout))
	ctl, err := conn.Controller()
	if err != nil {
		t.Fatalf("Conn.Controller: %v", err)
	}
	cc, err := kafka.DialContext(ctx, "tcp", net.JoinHostPort(ctl.Host, strconv.Itoa(ctl.Port)))
	if err != nil {
		t.Fatalf("dial controller %+v: %v", ctl, err)
	}
	_ = cc.SetDeadline(time.Now().Add(kafkaGoTimeout))
	return cc
}

func kafkaGoCreateTopic(ctx context.Context, t *testing.T, addr, topic string, partitions int) {
	t.Helper()
	ctl := kafkaGoController(ctx, t, addr)
	defer ctl.Close()
	err := ctl.CreateTopics(kafka.TopicConfig{
		Topic:             topic,
		NumPartitions:     partitions,
		ReplicationFactor: 1,
	})
	if err != nil {
		t.Fatalf("Conn.CreateTopics(%s): %v", topic, err)
	}
	parts, err := ctl.ReadPartitions(topic)
	if err != nil {
		t.Fatalf("Conn.ReadPartitions(%s): %v", topic, err)
	}
	if len(parts) != partitions {
		t.Fatalf("Conn.ReadPartitions(%s): %d partitions, want %d", topic, len(parts), partitions)
	}
}

// kafkaGoRead reads n records of one partition with a group-less
// kafka.Reader from the first offset and checks offset, key and value.
func kafkaGoRead(ctx context.Context, t *testing.T, addr, topic string, p int32, n int) {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:     []string{addr},
		Topic:       topic,
		Partition:   int(p),
		MinBytes:    1,
		MaxBytes:    1 << 20,
		MaxWait:     250 * time.Millisecond,
		MaxAttempts: 3,
	})
	defer r.Close()
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		t.Fatalf("Reader.SetOffset: %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, kafkaGoTimeout)
	defer cancel()
	for i := 0; i < n; i++ {
		m, err := r.ReadMessage(rctx)
		if err != nil {
			t.Fatalf("partition %d: Reader.ReadMessage after %d records: %v (reader stats %+v)", p, i, err, r.Stats())
		}
		wk, wv := compatKey(p, i), compatValue(p, i)
		if m.Partition != int(p) || m.Offset != int64(i) || !bytes.Equal(m.Key, wk) || !bytes.Equal(m.Value, wv) {
			t.Fatalf("partition %d record %d: partition %d offset %d key %q value %q, want key %q value %q",
				p, i, m.Partition, m.Offset, m.Key, m.Value, wk, wv)
		}
	}
	if lag := r.Lag(); lag != 0 {
		t.Fatalf("partition %d: lag %d after reading all records", p, lag)
	}
}

// TestKafkaGoClient: the kafka.Client API, which negotiates versions with
// ApiVersions: CreateTopics with a config, Metadata, CreatePartitions,
// DescribeConfigs, and ListOffsets after a Writer fills the new partition.
func TestKafkaGoClient(t *testing.T) {
	addr := startCompatDev(t)
	ctx, cancel := context.WithTimeout(context.Background(), kafkaGoTimeout)
	defer cancel()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: tr}
	const topic = "kafkago-client"

	created, err := cl.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic:             topic,
		NumPartitions:     3,
		ReplicationFactor: 1,
		ConfigEntries:     []kafka.ConfigEntry{{ConfigName: "retention.ms", ConfigValue: "86400000"}},
	}}})
	if err != nil || created.Errors[topic] != nil {
		t.Fatalf("Client.CreateTopics: %v %v", err, created)
	}
	grown, err := cl.CreatePartitions(ctx, &kafka.CreatePartitionsRequest{Topics: []kafka.TopicPartitionsConfig{{Name: topic, Count: 4}}})
	if err != nil || grown.Errors[topic] != nil {
		t.Fatalf("Client.CreatePartitions: %v %v", err, grown)
	}
	// A kafka.Transport answers Client.Metadata from its cache, refreshed
	// after CreateTopics and DeleteTopics but not after CreatePartitions
	// (kafka-go behaviour, see transport.go connPool.roundTrip). Everything
	// after the new partition is made uses a fresh Transport.
	fresh := &kafka.Transport{}
	defer fresh.CloseIdleConnections()
	cl = &kafka.Client{Addr: kafka.TCP(addr), Timeout: 10 * time.Second, Transport: fresh}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatalf("Client.Metadata: %v", err)
	}
	if len(md.Brokers) == 0 || len(md.Topics) != 1 || md.Topics[0].Error != nil || len(md.Topics[0].Partitions) != 4 {
		t.Fatalf("Client.Metadata(%s): %+v", topic, md)
	}

	dc, err := cl.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic,
		ResourceName: topic,
		ConfigNames:  []string{"retention.ms"},
	}}})
	if err != nil || len(dc.Resources) != 1 || dc.Resources[0].Error != nil {
		t.Fatalf("Client.DescribeConfigs: %v %+v", err, dc)
	}
	if e := dc.Resources[0].ConfigEntries; len(e) != 1 || e[0].ConfigName != "retention.ms" || e[0].ConfigValue != "86400000" {
		t.Fatalf("Client.DescribeConfigs(%s, retention.ms): %+v", topic, e)
	}

	const p, n = 3, 10
	w := &kafka.Writer{
		Addr:         kafka.TCP(addr),
		Topic:        topic,
		Balancer:     headerBalancer{},
		RequiredAcks: kafka.RequireAll,
		Transport:    fresh,
		BatchTimeout: 10 * time.Millisecond,
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
		MaxAttempts:  3,
	}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{
			Key:     compatKey(p, i),
			Value:   compatValue(p, i),
			Headers: []kafka.Header{{Key: "partition", Value: []byte(strconv.Itoa(p))}},
		}
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("Writer.WriteMessages: %v", err)
	}
	offs, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p), kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0)},
	}})
	if err != nil {
		t.Fatalf("Client.ListOffsets: %v", err)
	}
	for _, po := range offs.Topics[topic] {
		want := int64(0)
		if po.Partition == p {
			want = n
		}
		if po.Error != nil || po.FirstOffset != 0 || po.LastOffset != want {
			t.Fatalf("Client.ListOffsets partition %d: [%d, %d) %v, want [0, %d)", po.Partition, po.FirstOffset, po.LastOffset, po.Error, want)
		}
	}
	if len(offs.Topics[topic]) != 2 {
		t.Fatalf("Client.ListOffsets: %+v", offs.Topics)
	}
	kafkaGoRead(ctx, t, addr, topic, p, n)
}
