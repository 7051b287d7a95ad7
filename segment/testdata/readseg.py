#!/usr/bin/env python3
"""Independent reader for Silt segment format v1, written from FORMAT.md.

Usage: readseg.py SEGMENT [BASE_OFFSET ...]

Prints the footer and every batch. With one base offset per chunk (as the
metastore index rows would give them), prints the real batch offsets too;
a compacted chunk (footer base offset != -1) holds them in its batches.
"""
import struct
import sys

MAGIC = b"SILTSEG\x00"


def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def read_segment(obj):
    size = len(obj)
    if size < 48:
        raise ValueError("not a segment: too short")
    tr = obj[size - 32:]
    if tr[24:32] != MAGIC:
        raise ValueError("not a segment: bad magic")
    (version,) = struct.unpack(">H", tr[22:24])
    if version != 1:
        raise ValueError("unsupported version %d" % version)
    footer_pos, footer_len, footer_crc, flags, trailer_crc = struct.unpack(">QIIHI", tr[:22])
    if crc32c(tr[:18]) != trailer_crc:
        raise ValueError("trailer checksum mismatch")
    if flags & 0x00FF:
        raise ValueError("unknown incompatible flags %#x" % flags)
    if footer_pos < 16 or footer_len < 4 or footer_pos + footer_len != size - 32:
        raise ValueError("corrupt: footer range")
    footer = obj[footer_pos:footer_pos + footer_len]
    if crc32c(footer) != footer_crc:
        raise ValueError("footer checksum mismatch")
    (n,) = struct.unpack(">I", footer[:4])
    if n * 88 > footer_len - 4:
        raise ValueError("corrupt: chunk count")
    p, prev_end, chunks = 4, 16, []
    for _ in range(n):
        (entry_len,) = struct.unpack(">H", footer[p:p + 2])
        e = footer[p + 2:p + 2 + entry_len]
        if len(e) != entry_len or entry_len < 86:
            raise ValueError("corrupt: entry length")
        topic_id = e[:16]
        (name_len,) = struct.unpack(">H", e[16:18])
        if 86 + name_len > entry_len:
            raise ValueError("corrupt: name length")
        name = e[18:18 + name_len].decode("utf-8")
        (partition, position, length, batches, offsets, records,
         min_ts, max_ts, base, crc) = struct.unpack(">iQQIqqqqqI", e[18 + name_len:86 + name_len])
        if position < prev_end or position + length > footer_pos:
            raise ValueError("corrupt: chunk range")
        prev_end = position + length
        chunks.append(dict(topic_id=topic_id, topic=name, partition=partition, position=position,
                           length=length, batches=batches, offsets=offsets, records=records,
                           min_ts=min_ts, max_ts=max_ts, base=base, crc=crc))
        p += 2 + entry_len
    return version, flags, chunks


def batches(chunk):
    p = 0
    while p < len(chunk):
        base, batch_len = struct.unpack(">qi", chunk[p:p + 12])
        attributes, last_offset_delta, first_ts = struct.unpack(">hiq", chunk[p + 21:p + 35])
        records, = struct.unpack(">i", chunk[p + 57:p + 61])
        # Attributes bit 6 (KIP-534): firstTimestamp holds the delete horizon.
        horizon = first_ts if attributes & 0x40 else None
        yield base, 12 + batch_len, last_offset_delta, records, horizon
        p += 12 + batch_len


def main():
    obj = open(sys.argv[1], "rb").read()
    bases = [int(a) for a in sys.argv[2:]]
    version, flags, chunks = read_segment(obj)
    print("segment version=%d flags=%#06x size=%d chunks=%d" % (version, flags, len(obj), len(chunks)))
    for i, c in enumerate(chunks):
        print('chunk %d topic="%s" id=%s partition=%d pos=%d len=%d batches=%d offsets=%d records=%d '
              "ts=[%d,%d] base=%d crc=%08x" % (i, c["topic"], c["topic_id"].hex(), c["partition"], c["position"],
                                               c["length"], c["batches"], c["offsets"], c["records"], c["min_ts"],
                                               c["max_ts"], c["base"], c["crc"]))
    for i, c in enumerate(chunks):
        chunk = obj[c["position"]:c["position"] + c["length"]]
        if crc32c(chunk) != c["crc"]:
            raise ValueError("chunk %d checksum mismatch" % i)
        offset = bases[i] if i < len(bases) else None
        compacted = c["base"] != -1
        for base, size, last_offset_delta, records, horizon in batches(chunk):
            if compacted:
                # Compacted segments: every batch holds its real offset,
                # and offsets may have gaps.
                offset = base
            real = "" if offset is None else " offset=%d" % offset
            if horizon is not None:
                real += " deleteHorizon=%d" % horizon
            print("chunk %d batch size=%d records=%d lastOffsetDelta=%d%s" % (i, size, records, last_offset_delta, real))
            if offset is not None:
                offset += last_offset_delta + 1


if __name__ == "__main__":
    main()
