package agent_test

import (
	"hash/crc32"
	"strconv"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func crc32c(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

func fmtInt(i int64) string { return strconv.FormatInt(i, 10) }
