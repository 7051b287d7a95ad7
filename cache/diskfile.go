package cache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// On-disk layout of the disk tier. Each block is one file
//
//	<dir>/<h[0:2]>/<h>.blk   h = hex(SHA-256(key "\x00" index)[:16])
//
// holding a header, the object key and the block's bytes:
//
//	offset  size  field
//	0       8     magic "SILTBLK1"
//	8       8     block size of the cache that wrote it (little endian)
//	16      8     block index
//	24      4     key length
//	28      4     data length
//	32      4     CRC-32C (Castagnoli) of the data
//	36      4     CRC-32C of bytes [0,36) followed by the key
//	40      -     key, then data
//
// Files are written to a temporary "*.tmp" in the same directory and renamed
// into place, so a name only ever holds a whole file; they are not fsynced
// (this is a cache: a file torn by a crash fails validation and is deleted).
// The key in the header lets a restart rebuild the index by scanning the
// directory; the header checksum is checked then, the data checksum on every
// read.
const (
	diskMagic      = "SILTBLK1"
	diskHeaderSize = 40
	diskExt        = ".blk"
	diskTempExt    = ".tmp"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errCorrupt marks a disk file that failed validation.
var errCorrupt = errors.New("corrupt cache file")

// diskName is the file name of a block, relative to the cache directory.
func diskName(id blockID) string {
	h := sha256.New()
	h.Write([]byte(id.key))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, id.index, 10))
	sum := hex.EncodeToString(h.Sum(nil)[:16])
	return filepath.Join(sum[:2], sum+diskExt)
}

func diskFileSize(id blockID, dataLen int) int64 {
	return int64(diskHeaderSize + len(id.key) + dataLen)
}

// encodeBlock returns the whole file for a block.
func encodeBlock(id blockID, blockSize int64, data []byte) []byte {
	buf := make([]byte, diskHeaderSize, diskFileSize(id, len(data)))
	copy(buf, diskMagic)
	binary.LittleEndian.PutUint64(buf[8:], uint64(blockSize))
	binary.LittleEndian.PutUint64(buf[16:], uint64(id.index))
	binary.LittleEndian.PutUint32(buf[24:], uint32(len(id.key)))
	binary.LittleEndian.PutUint32(buf[28:], uint32(len(data)))
	binary.LittleEndian.PutUint32(buf[32:], crc32.Checksum(data, castagnoli))
	buf = append(buf, id.key...)
	hcrc := crc32.Update(crc32.Checksum(buf[:36], castagnoli), castagnoli, []byte(id.key))
	binary.LittleEndian.PutUint32(buf[36:], hcrc)
	return append(buf, data...)
}

// diskHeader is a decoded and checked header.
type diskHeader struct {
	id      blockID
	dataLen int64
	dataCRC uint32
}

// decodeHeader checks the header of a file of fileSize bytes whose first
// bytes are in head (at least diskHeaderSize + key length of them, or the
// whole file). It reports errCorrupt for anything that does not add up.
func decodeHeader(head []byte, fileSize, blockSize int64) (diskHeader, error) {
	if len(head) < diskHeaderSize || string(head[:8]) != diskMagic {
		return diskHeader{}, fmt.Errorf("bad magic: %w", errCorrupt)
	}
	if bs := int64(binary.LittleEndian.Uint64(head[8:])); bs != blockSize {
		return diskHeader{}, fmt.Errorf("written with block size %d, now %d: %w", bs, blockSize, errCorrupt)
	}
	keyLen := int64(binary.LittleEndian.Uint32(head[24:]))
	dataLen := int64(binary.LittleEndian.Uint32(head[28:]))
	if keyLen == 0 || int64(len(head)) < diskHeaderSize+keyLen || dataLen > blockSize ||
		fileSize != diskHeaderSize+keyLen+dataLen {
		return diskHeader{}, fmt.Errorf("lengths do not match the file size: %w", errCorrupt)
	}
	key := head[diskHeaderSize : diskHeaderSize+keyLen]
	if crc32.Update(crc32.Checksum(head[:36], castagnoli), castagnoli, key) != binary.LittleEndian.Uint32(head[36:]) {
		return diskHeader{}, fmt.Errorf("header checksum mismatch: %w", errCorrupt)
	}
	return diskHeader{
		id:      blockID{key: string(key), index: int64(binary.LittleEndian.Uint64(head[16:]))},
		dataLen: dataLen,
		dataCRC: binary.LittleEndian.Uint32(head[32:]),
	}, nil
}

// decodeBlock checks a whole file read for id and returns its data, which
// aliases buf.
func decodeBlock(buf []byte, id blockID, blockSize int64) ([]byte, error) {
	h, err := decodeHeader(buf, int64(len(buf)), blockSize)
	if err != nil {
		return nil, err
	}
	if h.id != id {
		return nil, fmt.Errorf("holds %s block %d: %w", h.id.key, h.id.index, errCorrupt)
	}
	data := buf[int64(len(buf))-h.dataLen:]
	if crc32.Checksum(data, castagnoli) != h.dataCRC {
		return nil, fmt.Errorf("data checksum mismatch: %w", errCorrupt)
	}
	return data, nil
}

// readHeader reads and checks the header of the file at path, for the scan
// at start.
func readHeader(path string, blockSize int64) (diskHeader, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return diskHeader{}, 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return diskHeader{}, 0, err
	}
	head := make([]byte, diskHeaderSize)
	if _, err := io.ReadFull(f, head); err != nil {
		return diskHeader{}, 0, fmt.Errorf("short header: %w", errCorrupt)
	}
	keyLen := int64(binary.LittleEndian.Uint32(head[24:]))
	if keyLen > st.Size()-diskHeaderSize {
		return diskHeader{}, 0, fmt.Errorf("key runs past the end: %w", errCorrupt)
	}
	head = append(head, make([]byte, keyLen)...)
	if _, err := io.ReadFull(f, head[diskHeaderSize:]); err != nil {
		return diskHeader{}, 0, fmt.Errorf("short key: %w", errCorrupt)
	}
	h, err := decodeHeader(head, st.Size(), blockSize)
	return h, st.Size(), err
}

// writeFileAtomic writes data to path through a temporary file and a
// rename, creating the parent directory if needed.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "block-*"+diskTempExt)
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}
