package wal

import (
	"encoding/binary"
	"testing"
)

// build writes a valid write-ahead log of the given frames (pages filled
// with their number), as SQLite writes one.
func build(pageSize int, bigEndian bool, frames []Frame) []byte {
	b := make([]byte, HeaderSize)
	magic := uint32(walMagicLE)
	if bigEndian {
		magic = walMagicBE
	}
	binary.BigEndian.PutUint32(b[0:], magic)
	binary.BigEndian.PutUint32(b[4:], walVersion)
	ps := uint32(pageSize)
	if pageSize == 65536 {
		ps = 1
	}
	binary.BigEndian.PutUint32(b[8:], ps)
	copy(b[16:24], "saltsalt")
	s1, s2 := checksum(bigEndian, b[0:24], 0, 0)
	binary.BigEndian.PutUint32(b[24:], s1)
	binary.BigEndian.PutUint32(b[28:], s2)
	for _, f := range frames {
		h := make([]byte, FrameHeaderSize)
		binary.BigEndian.PutUint32(h[0:], f.Page)
		if f.Commit {
			binary.BigEndian.PutUint32(h[4:], f.Page)
		}
		copy(h[8:16], b[16:24])
		page := make([]byte, pageSize)
		for i := range page {
			page[i] = byte(f.Page) + byte(i)
		}
		s1, s2 = checksum(bigEndian, h[0:8], s1, s2)
		s1, s2 = checksum(bigEndian, page, s1, s2)
		binary.BigEndian.PutUint32(h[16:], s1)
		binary.BigEndian.PutUint32(h[20:], s2)
		b = append(append(b, h...), page...)
	}
	return b
}

var three = []Frame{{Page: 2}, {Page: 5, Commit: true}, {Page: 3}, {Page: 2, Commit: true}, {Page: 7}}

func TestParse(t *testing.T) {
	for _, be := range []bool{false, true} {
		for _, ps := range []int{512, 4096, 65536} {
			l, err := Parse(build(ps, be, three))
			if err != nil {
				t.Fatal(err)
			}
			// The last frame belongs to a transaction not committed: left out.
			if l.PageSize != ps || l.Commits != 2 || len(l.Frames) != 4 || l.Frames[3] != (Frame{Page: 2, Commit: true}) {
				t.Fatalf("big-endian %v, page size %d: %+v", be, ps, l)
			}
		}
	}
}

func TestParseStopsAtTheFirstBadFrame(t *testing.T) {
	const ps = 512
	fs := FrameHeaderSize + ps
	good := build(ps, false, three)
	for name, c := range map[string]struct {
		change func(b []byte) []byte
		frames int
	}{
		"a changed page byte in frame 3":          {func(b []byte) []byte { b[HeaderSize+2*fs+FrameHeaderSize+9] ^= 1; return b }, 2},
		"a salt of another generation in frame 2": {func(b []byte) []byte { b[HeaderSize+fs+8] ^= 1; return b }, 0},
		"cut inside frame 4":                      {func(b []byte) []byte { return b[:HeaderSize+3*fs+100] }, 2},
		"page 0 in frame 1":                       {func(b []byte) []byte { return build(ps, false, []Frame{{Page: 0, Commit: true}}) }, 0},
	} {
		b := c.change(append([]byte(nil), good...))
		l, err := Parse(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(l.Frames) != c.frames {
			t.Errorf("%s: %d frames, want %d", name, len(l.Frames), c.frames)
		}
	}
}

func TestParseRefusesWhatIsNotALog(t *testing.T) {
	good := build(4096, false, three)
	set := func(off int, v uint32) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[off:], v)
		return b
	}
	for name, b := range map[string][]byte{
		"shorter than the header": good[:20],
		"another magic number":    set(0, 0x12345678),
		"another format":          set(4, 3007001),
		"page size 768":           set(8, 768),
		"page size 256":           set(8, 256),
		"header checksum":         set(24, 1),
	} {
		if _, err := Parse(b); err == nil {
			t.Errorf("%s: parsed without an error", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(build(512, false, three))
	f.Add(build(1024, true, three[:2]))
	f.Add(build(512, false, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := Parse(b)
		if err != nil {
			return
		}
		if HeaderSize+len(l.Frames)*(FrameHeaderSize+l.PageSize) > len(b) {
			t.Fatalf("%d frames of %d-byte pages from %d bytes", len(l.Frames), l.PageSize, len(b))
		}
		commits := 0
		for _, fr := range l.Frames {
			if fr.Page == 0 {
				t.Fatal("a frame of page 0")
			}
			if fr.Commit {
				commits++
			}
		}
		if commits != l.Commits || (len(l.Frames) > 0 && !l.Frames[len(l.Frames)-1].Commit) {
			t.Fatalf("commits %d, counted %d; frames %+v", l.Commits, commits, l.Frames)
		}
	})
}
