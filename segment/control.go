package segment

import (
	"encoding/binary"
	"hash/crc32"
	"math"
)

// ControlBatch builds a transaction marker as Kafka writes it: a v2 batch
// with the transactional and control attributes, base offset 0 (assigned at
// commit), no sequence, and one record whose key is (version 0, type: 0
// abort, 1 commit) and whose value is (version 0, coordinatorEpoch).
func ControlBatch(producerID int64, producerEpoch int16, commit bool, coordinatorEpoch int32, timestampMs int64) []byte {
	typ := byte(0)
	if commit {
		typ = 1
	}
	key := []byte{0, 0, 0, typ}
	val := binary.BigEndian.AppendUint32([]byte{0, 0}, uint32(coordinatorEpoch))
	var rec []byte
	rec = append(rec, 0)              // attributes
	rec = binary.AppendVarint(rec, 0) // timestamp delta
	rec = binary.AppendVarint(rec, 0) // offset delta
	rec = binary.AppendVarint(rec, int64(len(key)))
	rec = append(rec, key...)
	rec = binary.AppendVarint(rec, int64(len(val)))
	rec = append(rec, val...)
	rec = binary.AppendVarint(rec, 0) // headers
	records := binary.AppendVarint(nil, int64(len(rec)))
	records = append(records, rec...)

	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(records))
	binary.BigEndian.PutUint64(b[0:], 0)                                       // base offset
	binary.BigEndian.PutUint32(b[8:], uint32(BatchHeaderSize-12+len(records))) // batch length
	binary.BigEndian.PutUint32(b[12:], 0)                                      // partition leader epoch
	b[16] = 2                                                                  // magic
	binary.BigEndian.PutUint16(b[21:], 0x10|0x20)                              // transactional | control
	binary.BigEndian.PutUint32(b[23:], 0)                                      // last offset delta
	binary.BigEndian.PutUint64(b[27:], uint64(timestampMs))                    // first timestamp
	binary.BigEndian.PutUint64(b[35:], uint64(timestampMs))                    // max timestamp
	binary.BigEndian.PutUint64(b[43:], uint64(producerID))                     // producer id
	binary.BigEndian.PutUint16(b[51:], uint16(producerEpoch))                  // producer epoch
	binary.BigEndian.PutUint32(b[53:], math.MaxUint32)                         // base sequence -1
	binary.BigEndian.PutUint32(b[57:], 1)                                      // records
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
