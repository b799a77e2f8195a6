// Package wal reads SQLite write-ahead logs for tools/walpages.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The write-ahead log format of SQLite (https://sqlite.org/fileformat2.html#walformat):
// a 32-byte header, then frames of a 24-byte header and one page each.
const (
	HeaderSize      = 32
	FrameHeaderSize = 24
	walMagicLE      = 0x377f0682 // checksums in little-endian words
	walMagicBE      = 0x377f0683 // checksums in big-endian words
	walVersion      = 3007000
)

// Frame is one valid frame of a write-ahead log.
type Frame struct {
	Page   uint32 // the page it holds
	Commit bool   // the last frame of a transaction
}

// Log is what Parse read from a write-ahead log.
type Log struct {
	PageSize int
	// Frames are the frames of committed transactions, in order; frames
	// after the last commit frame (a transaction being written) are left
	// out, as SQLite leaves them out.
	Frames  []Frame
	Commits int // transactions committed
}

// Parse reads a write-ahead log as SQLite recovers it: the header must
// be valid, and frames are read while their salts match the header's and
// their cumulative checksums hold. Frames left from an earlier generation
// of the log (other salts) or cut short end the log, as they do for SQLite.
func Parse(b []byte) (*Log, error) {
	if len(b) < HeaderSize {
		return nil, fmt.Errorf("write-ahead log is %d bytes, shorter than its %d-byte header", len(b), HeaderSize)
	}
	magic := binary.BigEndian.Uint32(b[0:4])
	if magic != walMagicLE && magic != walMagicBE {
		return nil, fmt.Errorf("not a SQLite write-ahead log: magic number %#x", magic)
	}
	if v := binary.BigEndian.Uint32(b[4:8]); v != walVersion {
		return nil, fmt.Errorf("write-ahead log format %d, want %d", v, walVersion)
	}
	ps := int(binary.BigEndian.Uint32(b[8:12]))
	if ps == 1 {
		ps = 65536
	}
	if ps < 512 || ps > 65536 || ps&(ps-1) != 0 {
		return nil, fmt.Errorf("write-ahead log page size %d is not a power of two from 512 to 65536", ps)
	}
	bigEndian := magic == walMagicBE
	s1, s2 := checksum(bigEndian, b[0:24], 0, 0)
	if s1 != binary.BigEndian.Uint32(b[24:28]) || s2 != binary.BigEndian.Uint32(b[28:32]) {
		return nil, errors.New("write-ahead log header checksum does not match")
	}
	l := &Log{PageSize: ps}
	committed := 0
	for off := HeaderSize; off+FrameHeaderSize+ps <= len(b); off += FrameHeaderSize + ps {
		h := b[off : off+FrameHeaderSize]
		if string(h[8:16]) != string(b[16:24]) {
			break // a frame of an earlier generation of the log
		}
		s1, s2 = checksum(bigEndian, h[0:8], s1, s2)
		s1, s2 = checksum(bigEndian, b[off+FrameHeaderSize:off+FrameHeaderSize+ps], s1, s2)
		if s1 != binary.BigEndian.Uint32(h[16:20]) || s2 != binary.BigEndian.Uint32(h[20:24]) {
			break
		}
		page := binary.BigEndian.Uint32(h[0:4])
		if page == 0 {
			break
		}
		commit := binary.BigEndian.Uint32(h[4:8]) != 0
		l.Frames = append(l.Frames, Frame{Page: page, Commit: commit})
		if commit {
			committed = len(l.Frames)
			l.Commits++
		}
	}
	l.Frames = l.Frames[:committed]
	return l, nil
}

// checksum continues SQLite's write-ahead log checksum over b, whose length
// is a multiple of 8, reading 32-bit words in the log's byte order.
func checksum(bigEndian bool, b []byte, s1, s2 uint32) (uint32, uint32) {
	word := binary.LittleEndian.Uint32
	if bigEndian {
		word = binary.BigEndian.Uint32
	}
	for i := 0; i+8 <= len(b); i += 8 {
		s1 += word(b[i:]) + s2
		s2 += word(b[i+4:]) + s1
	}
	return s1, s2
}
