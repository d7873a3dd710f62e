package msdosfs_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// fat16Layout locates the FAT and the root directory of a FAT16 image.
type fat16Layout struct {
	b          []byte
	fat, root  int // byte offsets
	data       int // byte offset of cluster 2
	clusterLen int
}

func layout16(t *testing.T, img string) *fat16Layout {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bps := int(binary.LittleEndian.Uint16(b[11:]))
	spc := int(b[13])
	rsvd := int(binary.LittleEndian.Uint16(b[14:]))
	nfats := int(b[16])
	rootEnts := int(binary.LittleEndian.Uint16(b[17:]))
	fatSz := int(binary.LittleEndian.Uint16(b[22:]))
	l := &fat16Layout{b: b, fat: rsvd * bps, root: (rsvd + nfats*fatSz) * bps, clusterLen: spc * bps}
	l.data = l.root + rootEnts*32
	return l
}

// rootEntry returns the offset of the short entry whose 11-byte name is sn.
func (l *fat16Layout) rootEntry(t *testing.T, sn string) int {
	t.Helper()
	for off := l.root; off < l.data; off += 32 {
		if string(l.b[off:off+11]) == sn {
			return off
		}
	}
	t.Fatalf("no root entry %q", sn)
	return 0
}

func (l *fat16Layout) save(t *testing.T, img string) {
	t.Helper()
	if err := os.WriteFile(img, l.b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// logCapture collects log lines.
type logCapture struct {
	mu    sync.Mutex
	lines []string
}

func (c *logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCapture) Handle(_ context.Context, r slog.Record) error {
	var sb strings.Builder
	sb.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		sb.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	c.mu.Lock()
	c.lines = append(c.lines, sb.String())
	c.mu.Unlock()
	return nil
}
func (c *logCapture) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{c, as}
}
func (c *logCapture) WithGroup(string) slog.Handler { return c }

type attrHandler struct {
	c  *logCapture
	as []slog.Attr
}

func (h *attrHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *attrHandler) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(h.as...)
	return h.c.Handle(ctx, r)
}
func (h *attrHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrHandler{h.c, append(append([]slog.Attr{}, h.as...), as...)}
}
func (h *attrHandler) WithGroup(string) slog.Handler { return h }

// TestChainCycle makes a file's cluster chain loop: reading it gives EIO
// and a log line naming the mount, and does not hang.
func TestChainCycle(t *testing.T) {
	img := mkfs(t, 16)
	k, p := boot(t, img, rumpcore.MountSpec{})
	writeFile(t, p, "/mnt/LOOP.BIN", bytes.Repeat([]byte("L"), 3*2048))
	writeFile(t, p, "/mnt/OK.TXT", []byte("fine"))
	shutdown(t, k)
	l := layout16(t, img)
	e := l.rootEntry(t, "LOOP    BIN")
	first := int(binary.LittleEndian.Uint16(l.b[e+26:]))
	// first -> first+1 -> first+2 -> first: a cycle.
	binary.LittleEndian.PutUint16(l.b[l.fat+2*(first+2):], uint16(first))
	l.save(t, img)

	logs := &logCapture{}
	k, err := rumpcore.Init(rumpcore.Options{Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Shutdown()
	if err := k.Mount("/mnt", rumpcore.MountSpec{Type: "msdosfs", Image: img, ReadOnly: true, Name: "loopy"}); err != nil {
		t.Fatal(err)
	}
	p = k.NewProc(vnodeops.Root)
	fd, err := p.Open("/mnt/loop.bin", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Read(fd, make([]byte, 100)); err != syscall.EIO {
		t.Errorf("read of looping file: %v, want EIO", err)
	}
	p.Close(fd)
	if got := readAll(t, p, "/mnt/ok.txt"); string(got) != "fine" {
		t.Errorf("ok.txt reads %q", got)
	}
	found := false
	logs.mu.Lock()
	for _, line := range logs.lines {
		if strings.Contains(line, "loops") && strings.Contains(line, "loopy") && strings.Contains(line, "LOOP.BIN") {
			found = true
		}
	}
	if !found {
		t.Errorf("no log line naming the mount and file: %q", logs.lines)
	}
	logs.mu.Unlock()
}

// TestOrphanLongName breaks the checksum of a long name: the file shows
// under its short name. The volume label is never listed.
func TestOrphanLongName(t *testing.T) {
	img := mkfs(t, 16)
	run(t, "mlabel", "-i", img, "::MYVOLUME")
	src := t.TempDir()
	if err := os.WriteFile(src+"/Long Name File.txt", []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src+"/Another Long One.txt", []byte("y"), 0o644); err != nil {
		t.Fatal(err)
	}
	populate(t, img, src)
	l := layout16(t, img)
	e := l.rootEntry(t, "LONGNA~1TXT")
	// The long entries are just before it; break their checksum.
	for off := e - 32; off >= l.root && l.b[off+11] == 0x0F; off -= 32 {
		l.b[off+13]++
	}
	l.save(t, img)
	k, p := boot(t, img, rumpcore.MountSpec{ReadOnly: true})
	defer shutdown(t, k)
	var names []string
	for _, d := range listDir(t, p, "/mnt") {
		names = append(names, d.Name)
	}
	if strings.Join(names, "|") != "Another Long One.txt|LONGNA~1.TXT" {
		t.Errorf("names %q", names)
	}
	if _, err := p.Stat("/mnt/Long Name File.txt"); err != syscall.ENOENT {
		t.Errorf("orphaned long name still found: %v", err)
	}
}

// TestTypeByClusterCount: the FAT type comes from the cluster count, not
// from the BS_FilSysType label.
func TestTypeByClusterCount(t *testing.T) {
	img := mkfs(t, 16)
	src := sourceTree(t)
	populate(t, img, src)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	copy(b[54:62], "FAT12   ")
	if err := os.WriteFile(img, b, 0o644); err != nil {
		t.Fatal(err)
	}
	k, p := boot(t, img, rumpcore.MountSpec{ReadOnly: true})
	compareTree(t, p, "/mnt", src)
	shutdown(t, k)
}

// TestBadBPB: images with broken BPB fields do not mount and do not probe.
func TestBadBPB(t *testing.T) {
	img := mkfs(t, 12)
	good, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(b []byte){
		"bytes per sector":    func(b []byte) { binary.LittleEndian.PutUint16(b[11:], 300) },
		"sectors per cluster": func(b []byte) { b[13] = 3 },
		"no FATs":             func(b []byte) { b[16] = 0 },
		"no reserved":         func(b []byte) { binary.LittleEndian.PutUint16(b[14:], 0) },
		"signature":           func(b []byte) { b[510] = 0 },
		"too large":           func(b []byte) { binary.LittleEndian.PutUint16(b[19:], 0xFFFF) },
		"FAT too small":       func(b []byte) { binary.LittleEndian.PutUint16(b[22:], 1) },
		"zero root entries":   func(b []byte) { binary.LittleEndian.PutUint16(b[17:], 0) },
	}
	for name, mut := range cases {
		t.Run(name, func(t *testing.T) {
			b := append([]byte(nil), good...)
			mut(b)
			bad := t.TempDir() + "/bad.img"
			if err := os.WriteFile(bad, b, 0o644); err != nil {
				t.Fatal(err)
			}
			k, err := rumpcore.Init(rumpcore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer k.Shutdown()
			if err := k.Mount("/mnt", rumpcore.MountSpec{Type: "msdosfs", Image: bad}); err == nil {
				t.Errorf("mounted")
			}
			if err := k.Mount("/mnt", rumpcore.MountSpec{Type: "auto", Image: bad}); err == nil {
				t.Errorf("probed and mounted")
			}
		})
	}
}

// TestUnknownOption: unknown mount options are named in the error.
func TestUnknownOption(t *testing.T) {
	img := mkfs(t, 12)
	k, err := rumpcore.Init(rumpcore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Shutdown()
	err = k.Mount("/mnt", rumpcore.MountSpec{Type: "msdosfs", Image: img, Options: map[string]string{"bogus": "1"}})
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("mount with bogus option: %v", err)
	}
	err = k.Mount("/mnt", rumpcore.MountSpec{Type: "msdosfs", Image: img, Options: map[string]string{"tz": "Mars/Olympus"}})
	if err == nil {
		t.Errorf("mount with bad tz succeeded")
	}
}
