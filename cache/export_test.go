package cache

// WaitDiskWrites blocks until the disk tier has written (or dropped)
// everything queued, so tests can look at the files.
func (b *Bucket) WaitDiskWrites() {
	if b.disk != nil {
		b.disk.waitIdle()
	}
}

// DiskName is the file name of a block under the disk directory.
func DiskName(key string, index int64) string { return diskName(blockID{key, index}) }

// MemBlock is the memory tier's block idx of key, nil if not held.
func (b *Bucket) MemBlock(key string, idx int64) []byte {
	data, _, _ := b.mem.get(blockID{key, idx})
	return data
}
