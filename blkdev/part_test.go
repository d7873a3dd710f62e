package blkdev

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/rump9p/rump9p/tests/hosttools"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"unicode/utf16"
)

// putRecord writes MBR record slot (0-3) of the sector at sec.
func putRecord(sec []byte, slot int, status, typ byte, start, count uint32) {
	r := sec[mbrTableOffset+slot*mbrRecordSize:]
	r[0] = status
	r[4] = typ
	binary.LittleEndian.PutUint32(r[8:], start)
	binary.LittleEndian.PutUint32(r[12:], count)
	sec[510], sec[511] = 0x55, 0xAA
}

// sector returns the 512-byte sector lba of img.
func sector(img []byte, lba int) []byte { return img[lba*512 : (lba+1)*512] }

// craftMBR builds a 10000-sector image with primaries 1 (0x83) and 4
// (0x0c), an extended partition in slot 3 and a chain of four EBRs, the
// third without a data partition.
func craftMBR() []byte {
	img := make([]byte, 10000*512)
	mbr := sector(img, 0)
	putRecord(mbr, 0, 0x80, 0x83, 2048, 100)
	putRecord(mbr, 2, 0, 0x05, 4096, 4096)
	putRecord(mbr, 3, 0, 0x0c, 9000, 100)
	// EBR at 4096: logical 5 at 4096+63, link to base+1000.
	putRecord(sector(img, 4096), 0, 0, 0x83, 63, 100)
	putRecord(sector(img, 4096), 1, 0, 0x05, 1000, 200)
	// EBR at 5096: logical 6, link to base+2000.
	putRecord(sector(img, 5096), 0, 0, 0x82, 63, 50)
	putRecord(sector(img, 5096), 1, 0, 0x0f, 2000, 200)
	// EBR at 6096: no data, link to base+3000.
	putRecord(sector(img, 6096), 1, 0, 0x05, 3000, 200)
	// EBR at 7096: logical 7, end of chain.
	putRecord(sector(img, 7096), 0, 0, 0x07, 1, 10)
	return img
}

func memDev(img []byte) Device { return NewMemDeviceFrom(img, true) }

func TestPartitionsMBR(t *testing.T) {
	parts, err := Partitions(memDev(craftMBR()))
	if err != nil {
		t.Fatal(err)
	}
	want := []Partition{
		{Number: 1, Start: 2048 * 512, Size: 100 * 512, Type: "0x83"},
		{Number: 4, Start: 9000 * 512, Size: 100 * 512, Type: "0x0c"},
		{Number: 5, Start: (4096 + 63) * 512, Size: 100 * 512, Type: "0x83"},
		{Number: 6, Start: (5096 + 63) * 512, Size: 50 * 512, Type: "0x82"},
		{Number: 7, Start: (7096 + 1) * 512, Size: 10 * 512, Type: "0x07"},
	}
	if !reflect.DeepEqual(parts, want) {
		t.Fatalf("got  %+v\nwant %+v", parts, want)
	}
}

func TestPartitionsMBRHostile(t *testing.T) {
	cases := []struct {
		name   string
		mangle func(img []byte)
		errSub string
	}{
		{"EBR loop to first", func(img []byte) {
			putRecord(sector(img, 7096), 1, 0, 0x05, 0, 200)
		}, "loops"},
		{"EBR loop to self", func(img []byte) {
			putRecord(sector(img, 5096), 1, 0, 0x05, 1000, 200)
		}, "loops"},
		{"EBR outside extended", func(img []byte) {
			putRecord(sector(img, 5096), 1, 0, 0x05, 5000, 200)
		}, "outside"},
		{"EBR without signature", func(img []byte) {
			sector(img, 6096)[510] = 0
		}, "signature"},
		{"logical past end", func(img []byte) {
			putRecord(sector(img, 7096), 0, 0, 0x07, 1, 0xFFFFFFFF)
		}, "past the end"},
		{"primary past end", func(img []byte) {
			putRecord(sector(img, 0), 3, 0, 0x0c, 9999, 2)
		}, "past the end"},
		{"huge primary", func(img []byte) {
			putRecord(sector(img, 0), 0, 0, 0x83, 0xFFFFFFFF, 0xFFFFFFFF)
		}, "past the end"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := craftMBR()
			tc.mangle(img)
			parts, err := Partitions(memDev(img))
			if err == nil {
				t.Fatalf("no error; partitions %+v", parts)
			}
			if !errors.Is(err, ErrBadPartitionTable) || !strings.Contains(err.Error(), tc.errSub) || !strings.Contains(err.Error(), "mem") {
				t.Fatalf("error %q: want ErrBadPartitionTable mentioning %q and the image", err, tc.errSub)
			}
		})
	}
}

// TestPartitionsMBRLongChain checks that a chain longer than maxLogical
// (not a loop: every EBR is new) is cut off with an error.
func TestPartitionsMBRLongChain(t *testing.T) {
	n := maxLogical + 10
	img := make([]byte, (n+10)*512)
	putRecord(sector(img, 0), 0, 0, 0x05, 1, uint32(n+5))
	for i := 0; i < n+2; i++ {
		putRecord(sector(img, 1+i), 1, 0, 0x05, uint32(i+1), 1)
	}
	_, err := Partitions(memDev(img))
	if !errors.Is(err, ErrBadPartitionTable) || !strings.Contains(err.Error(), "extended boot records") {
		t.Fatalf("error %v", err)
	}
}

func TestPartitionsNoTable(t *testing.T) {
	// FAT boot sector whose boot code area looks like records that do not
	// fit the device.
	fat := make([]byte, 64*512)
	copy(fat, []byte{0xEB, 0x3C, 0x90, 'm', 'k', 'f', 's', '.', 'f', 'a', 't'})
	binary.LittleEndian.PutUint16(fat[11:], 512)
	fat[13] = 4
	binary.LittleEndian.PutUint16(fat[14:], 1)
	fat[16] = 2
	fat[21] = 0xF8
	putRecord(fat, 0, 0, 0x54, 0x20736968, 0x206e6f6e)
	// An ext2-like image: no signature at all.
	ext := make([]byte, 8192)
	ext[1024+56], ext[1024+57] = 0x53, 0xEF
	// Boot code where a record's status byte should be.
	code := make([]byte, 4096)
	putRecord(code, 0, 0, 0x83, 1, 2)
	code[mbrTableOffset+16] = 'T'
	cases := map[string][]byte{
		"tiny":            make([]byte, 100),
		"no signature":    ext,
		"bad status":      code,
		"FAT superfloppy": fat,
	}
	for name, img := range cases {
		parts, err := Partitions(memDev(img))
		if err != nil || parts != nil {
			t.Errorf("%s: %+v, %v; want no table", name, parts, err)
		}
		d, err := SelectPartition(memDev(img), "auto", nil)
		if err != nil || d.Size() != int64(len(img)) {
			t.Errorf("%s: auto selected %v, %v; want the whole device", name, d, err)
		}
	}
	// An empty MBR is a table with no partitions.
	empty := make([]byte, 4096)
	empty[510], empty[511] = 0x55, 0xAA
	if parts, err := Partitions(memDev(empty)); err != nil || parts == nil || len(parts) != 0 {
		t.Errorf("empty MBR: %#v, %v", parts, err)
	}
}

// guid parses a GUID string into its mixed-endian on-disk form.
func guid(s string) []byte {
	h, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(h) != 16 {
		panic("bad guid " + s)
	}
	b := make([]byte, 16)
	binary.LittleEndian.PutUint32(b[0:], binary.BigEndian.Uint32(h[0:]))
	binary.LittleEndian.PutUint16(b[4:], binary.BigEndian.Uint16(h[4:]))
	binary.LittleEndian.PutUint16(b[6:], binary.BigEndian.Uint16(h[6:]))
	copy(b[8:], h[8:])
	return b
}

const (
	linuxFS = "0FC63DAF-8483-4772-8E79-3D69D8477DE4"
	efiSys  = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
)

type gptEntry struct {
	index      int // entry slot
	typ        string
	start, end uint64
	name       string
}

// craftGPT builds a GPT image of nblocks bs-byte blocks with a table of
// nent 128-byte entries: protective MBR, primary header at LBA 1 with its
// entries from LBA 2, backup entries just before the backup header at the
// last LBA.
func craftGPT(bs, nblocks, nent int, entries []gptEntry) []byte {
	img := make([]byte, bs*nblocks)
	putRecord(img, 0, 0, 0xEE, 1, uint32(min(nblocks-1, 0xFFFFFFFF)))
	arr := make([]byte, nent*128)
	for _, e := range entries {
		b := arr[e.index*128:]
		copy(b, guid(e.typ))
		copy(b[16:], guid("01020304-0506-0708-090A-0B0C0D0E0F10"))
		b[16] = byte(e.index)
		binary.LittleEndian.PutUint64(b[32:], e.start)
		binary.LittleEndian.PutUint64(b[40:], e.end)
		for i, c := range utf16.Encode([]rune(e.name)) {
			binary.LittleEndian.PutUint16(b[56+2*i:], c)
		}
	}
	arrBlocks := (len(arr) + bs - 1) / bs
	last := nblocks - 1
	firstUsable := 2 + arrBlocks
	lastUsable := last - 1 - arrBlocks
	put := func(my, alt, entryLBA int) {
		copy(img[entryLBA*bs:], arr)
		h := img[my*bs:]
		copy(h, gptSignature)
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[24:], uint64(my))
		binary.LittleEndian.PutUint64(h[32:], uint64(alt))
		binary.LittleEndian.PutUint64(h[40:], uint64(firstUsable))
		binary.LittleEndian.PutUint64(h[48:], uint64(lastUsable))
		copy(h[56:], guid("AAAAAAAA-BBBB-CCCC-DDDD-EEEEEEEEEEEE"))
		binary.LittleEndian.PutUint64(h[72:], uint64(entryLBA))
		binary.LittleEndian.PutUint32(h[80:], uint32(nent))
		binary.LittleEndian.PutUint32(h[84:], 128)
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(arr))
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
	}
	put(1, last, 2)
	put(last, 1, last-arrBlocks)
	return img
}

func testGPTEntries() []gptEntry {
	return []gptEntry{
		{0, efiSys, 40, 59, "EFI system"},
		{2, linuxFS, 60, 99, "root ✓"},
		{3, linuxFS, 100, 100, ""},
	}
}

func wantGPT(bs int64) []Partition {
	return []Partition{
		{Number: 1, Start: 40 * bs, Size: 20 * bs, Type: efiSys, Name: "EFI system"},
		{Number: 3, Start: 60 * bs, Size: 40 * bs, Type: linuxFS, Name: "root ✓"},
		{Number: 4, Start: 100 * bs, Size: 1 * bs, Type: linuxFS},
	}
}

func TestPartitionsGPT(t *testing.T) {
	for _, bs := range []int{512, 4096} {
		img := craftGPT(bs, 200, 8, testGPTEntries())
		parts, err := Partitions(memDev(img))
		if err != nil {
			t.Fatalf("bs %d: %v", bs, err)
		}
		if !reflect.DeepEqual(parts, wantGPT(int64(bs))) {
			t.Fatalf("bs %d: got %+v\nwant %+v", bs, parts, wantGPT(int64(bs)))
		}
	}
}

func TestPartitionsGPTBackup(t *testing.T) {
	cases := []struct {
		name   string
		mangle func(img []byte)
	}{
		{"primary header CRC", func(img []byte) { img[512+40]++ }},
		{"primary signature", func(img []byte) { img[512] = 'X' }},
		{"primary entries CRC", func(img []byte) { img[1024+32]++ }},
		{"primary MyLBA", func(img []byte) {
			h := img[512:1024]
			binary.LittleEndian.PutUint64(h[24:], 7)
			binary.LittleEndian.PutUint32(h[16:], 0)
			binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:92]))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := craftGPT(512, 200, 8, testGPTEntries())
			tc.mangle(img)
			parts, err := Partitions(memDev(img))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(parts, wantGPT(512)) {
				t.Fatalf("got %+v", parts)
			}
		})
	}
}

func TestPartitionsGPTBad(t *testing.T) {
	last := 199
	cases := []struct {
		name   string
		mangle func(img []byte)
		errSub string
	}{
		{"both header CRCs", func(img []byte) {
			img[512+40]++
			img[last*512+40]++
		}, "header CRC32"},
		{"both entry CRCs", func(img []byte) {
			img[1024+32]++
			img[(last-2)*512+32]++
		}, "entry array CRC32"},
		{"no GPT at all", func(img []byte) {
			clear(img[512:])
		}, "signature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img := craftGPT(512, 200, 8, testGPTEntries())
			tc.mangle(img)
			parts, err := Partitions(memDev(img))
			if err == nil {
				t.Fatalf("no error: %+v", parts)
			}
			if !errors.Is(err, ErrBadPartitionTable) || !strings.Contains(err.Error(), tc.errSub) ||
				!strings.Contains(err.Error(), "primary") || !strings.Contains(err.Error(), "backup") {
				t.Fatalf("error %q", err)
			}
		})
	}
	// An entry outside the usable range, with valid CRCs.
	img := craftGPT(512, 200, 8, []gptEntry{{0, linuxFS, 10, 250, "big"}})
	if _, err := Partitions(memDev(img)); !errors.Is(err, ErrBadPartitionTable) || !strings.Contains(err.Error(), "usable range") {
		t.Fatalf("entry past the end: %v", err)
	}
	// A device too small to hold a GPT behind its protective MBR.
	small := make([]byte, 1024)
	putRecord(small, 0, 0, 0xEE, 1, 1)
	if _, err := Partitions(memDev(small)); !errors.Is(err, ErrBadPartitionTable) {
		t.Fatalf("tiny GPT: %v", err)
	}
}

// magicProbe reports whether a window starts with magic.
func magicProbe(magic string) func(io.ReaderAt, int64) bool {
	return func(r io.ReaderAt, size int64) bool {
		b := make([]byte, len(magic))
		_, err := r.ReadAt(b, 0)
		return err == nil && size >= int64(len(magic)) && string(b) == magic
	}
}

func TestSelectPartition(t *testing.T) {
	img := craftGPT(512, 200, 8, testGPTEntries())
	copy(img[60*512:], "FSMAGIC-root")
	copy(img[40*512:], "VFAT")
	dev := NewMemDeviceFrom(img, false)

	if d, err := SelectPartition(dev, "", nil); err != nil || d != Device(dev) {
		t.Fatalf("whole device: %v %v", d, err)
	}
	check := func(d Device, err error, p Partition) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if d.Size() != p.Size || d.Name() != fmt.Sprintf("mem (partition %d)", p.Number) {
			t.Fatalf("selected %q size %d; want partition %d", d.Name(), d.Size(), p.Number)
		}
		b := make([]byte, 4)
		d.ReadAt(b, 0)
		if want := img[p.Start : p.Start+4]; !bytes.Equal(b, want) {
			t.Fatalf("window reads %q, want %q", b, want)
		}
	}
	want := wantGPT(512)
	d, err := SelectPartition(dev, "3", nil)
	check(d, err, want[1])
	d, err = SelectPartition(dev, "auto", magicProbe("FSMAGIC"))
	check(d, err, want[1])
	d, err = SelectPartition(dev, "auto", nil)
	check(d, err, want[0])

	_, err = SelectPartition(dev, "2", nil)
	if err == nil || err.Error() != "image mem has no partition 2 (partitions: 1 (type "+efiSys+", 10240 bytes at 20480), 3 (type "+linuxFS+", 20480 bytes at 30720), 4 (type "+linuxFS+", 512 bytes at 51200))" {
		t.Fatalf("absent partition: %v", err)
	}
	_, err = SelectPartition(dev, "auto", magicProbe("NOPE"))
	if err == nil || !strings.Contains(err.Error(), "partitions: 1 (") {
		t.Fatalf("probe never matches: %v", err)
	}
	for _, bad := range []string{"x", "0", "-1", "1a"} {
		if _, err := SelectPartition(dev, bad, nil); err == nil || !strings.Contains(err.Error(), "bad partition selector") {
			t.Fatalf("selector %q: %v", bad, err)
		}
	}

	// One partition: auto takes it without probing.
	one := craftGPT(512, 200, 4, []gptEntry{{1, linuxFS, 50, 59, ""}})
	d, err = SelectPartition(memDev(one), "auto", func(io.ReaderAt, int64) bool { t.Fatal("probe called"); return false })
	if err != nil || d.Size() != 10*512 || d.Name() != "mem (partition 2)" {
		t.Fatalf("single partition: %v %v", d, err)
	}
	// No partition table: "1" is an error naming the image.
	if _, err := SelectPartition(NewMemDevice(4096), "1", nil); err == nil || !strings.Contains(err.Error(), "image mem has no partition 1") {
		t.Fatalf("no table: %v", err)
	}
	// A corrupt table is an error for auto as well.
	bad := craftMBR()
	putRecord(sector(bad, 7096), 1, 0, 0x05, 0, 200)
	if _, err := SelectPartition(memDev(bad), "auto", nil); !errors.Is(err, ErrBadPartitionTable) {
		t.Fatalf("auto on a looping table: %v", err)
	}
}

func TestWindow(t *testing.T) {
	base := NewMemDeviceFrom([]byte("0123456789abcdef"), false)
	w := Window(base, 4, 8, "")
	if w.Size() != 8 || w.Name() != "mem" {
		t.Fatalf("size %d name %q", w.Size(), w.Name())
	}
	b := make([]byte, 4)
	if n, err := w.ReadAt(b, 2); n != 4 || err != nil || string(b) != "6789" {
		t.Fatalf("read inside: %d %v %q", n, err, b)
	}
	if n, err := w.ReadAt(b, 6); n != 2 || err != syscall.EIO || string(b[:2]) != "ab" {
		t.Fatalf("read across end: %d %v %q", n, err, b[:n])
	}
	if _, err := w.ReadAt(b, 8); err != syscall.EIO {
		t.Fatalf("read at end: %v", err)
	}
	if _, err := w.ReadAt(b, -1); err != syscall.EINVAL {
		t.Fatalf("read at -1: %v", err)
	}
	if n, err := w.WriteAt([]byte("XYZ"), 6); n != 0 || err != syscall.EIO {
		t.Fatalf("write across end: %d %v", n, err)
	}
	if _, err := w.WriteAt([]byte("XY"), 6); err != nil {
		t.Fatal(err)
	}
	if got := string(base.Bytes()); got != "0123456789XYcdef" {
		t.Fatalf("device holds %q", got)
	}
	// A window larger than its device is clipped.
	if w := Window(base, 10, 100, "w"); w.Size() != 6 || w.Name() != "w" {
		t.Fatalf("clipped window: %d %q", w.Size(), w.Name())
	}
	if w := Window(base, 100, 100, ""); w.Size() != 0 {
		t.Fatalf("window past the end: %d", w.Size())
	}
	ro := Window(NewMemDeviceFrom(make([]byte, 16), true), 0, 8, "")
	if _, err := ro.WriteAt([]byte("a"), 0); err != syscall.EROFS || !ro.ReadOnly() {
		t.Fatalf("read-only window: %v", err)
	}
	w.Close()
	if _, err := base.ReadAt(b, 0); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("window Close did not close its device: %v", err)
	}
}

// tool finds an external program; a missing one fails the test.
func tool(t *testing.T, name string) string {
	t.Helper()
	return hosttools.Need(t, name)
}

func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tool(t, name), args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sfdiskParts lists img's partitions as sfdisk --json sees them,
// extended containers left out, for comparison with Partitions.
func sfdiskParts(t *testing.T, img string) []Partition {
	t.Helper()
	var out struct {
		PartitionTable struct {
			Label      string
			SectorSize int64
			Partitions []struct {
				Node        string
				Start, Size int64
				Type        string
				Name        string
			}
		}
	}
	if err := json.Unmarshal([]byte(run(t, "", "sfdisk", "--json", img)), &out); err != nil {
		t.Fatal(err)
	}
	pt := out.PartitionTable
	var parts []Partition
	for _, p := range pt.Partitions {
		n, err := strconv.Atoi(strings.TrimPrefix(p.Node, img))
		if err != nil {
			t.Fatalf("sfdisk node %q", p.Node)
		}
		typ := p.Type
		if pt.Label == "dos" {
			v, err := strconv.ParseUint(typ, 16, 8)
			if err != nil {
				t.Fatalf("sfdisk type %q", typ)
			}
			if isExtendedType(byte(v)) {
				continue
			}
			typ = fmt.Sprintf("0x%02x", v)
		}
		parts = append(parts, Partition{Number: n, Start: p.Start * pt.SectorSize, Size: p.Size * pt.SectorSize, Type: typ, Name: p.Name})
	}
	return parts
}

func makeImage(t *testing.T, name string, size int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return p
}

func partitionsOf(t *testing.T, img string) []Partition {
	t.Helper()
	d := mustOpen(t, img, true)
	parts, err := Partitions(d)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	return parts
}

func TestSfdiskMBR(t *testing.T) {
	img := makeImage(t, "mbr.img", 40<<20)
	run(t, `label: dos
unit: sectors

start=2048, size=4096, type=83
start=6144, size=4096, type=c, bootable
start=10240, size=40000, type=5
start=12288, size=2048, type=83
start=16384, size=2048, type=82
start=20480, size=1024, type=7
start=30000, size=8000, type=83
`, "sfdisk", "--quiet", img)
	want := sfdiskParts(t, img)
	if len(want) != 6 || want[len(want)-1].Number != 8 {
		t.Fatalf("sfdisk made %+v", want)
	}
	got := partitionsOf(t, img)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Partitions %+v\nsfdisk     %+v", got, want)
	}

	// Write a marker into logical partition 6 through the image file and
	// read it back through a selected window.
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("SWAPSPACE2"), 16384*512+4086)
	f.Close()
	dev := mustOpen(t, img, true)
	w, err := SelectPartition(dev, "6", nil)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 10)
	if _, err := w.ReadAt(b, 4086); err != nil || string(b) != "SWAPSPACE2" {
		t.Fatalf("partition 6 reads %q, %v", b, err)
	}
	w, err = SelectPartition(dev, "auto", func(r io.ReaderAt, size int64) bool {
		b := make([]byte, 10)
		r.ReadAt(b, 4086)
		return string(b) == "SWAPSPACE2"
	})
	if err != nil || w.Name() != img+" (partition 6)" {
		t.Fatalf("auto: %v %v", w, err)
	}
	if _, err := SelectPartition(dev, "3", nil); err == nil || !strings.Contains(err.Error(), "partitions: 1 (type 0x83") {
		t.Fatalf("extended container selected: %v", err)
	}
}

func TestSfdiskGPT(t *testing.T) {
	img := makeImage(t, "gpt.img", 20<<20)
	run(t, `label: gpt

start=2048, size=4096, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4, name="root"
size=2048, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, name="EFI system"
size=1024, type=L
`, "sfdisk", "--quiet", img)
	want := sfdiskParts(t, img)
	if len(want) != 3 || want[1].Name != "EFI system" {
		t.Fatalf("sfdisk made %+v", want)
	}
	if got := partitionsOf(t, img); !reflect.DeepEqual(got, want) {
		t.Fatalf("Partitions %+v\nsfdisk     %+v", got, want)
	}

	// Destroy the primary header: the backup at the last LBA still works.
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("garbage!"), 512+24)
	f.Close()
	if got := partitionsOf(t, img); !reflect.DeepEqual(got, want) {
		t.Fatalf("from backup %+v\nsfdisk      %+v", got, want)
	}
}

func TestSgdiskGPT(t *testing.T) {
	img := makeImage(t, "sg.img", 16<<20)
	run(t, "", "sgdisk", "--clear",
		"--new=1:2048:+1M", "--typecode=1:ef00", "--change-name=1:boot",
		"--new=3:0:+2M", "--typecode=3:8300", "--change-name=3:data",
		"--new=2:0:0", "--typecode=2:8200", img)
	want := sfdiskParts(t, img)
	if len(want) != 3 {
		t.Fatalf("sfdisk sees %+v", want)
	}
	if got := partitionsOf(t, img); !reflect.DeepEqual(got, want) {
		t.Fatalf("Partitions %+v\nsfdisk     %+v", got, want)
	}
	// Corrupt the primary entry array: the backup header and array are used.
	f, err := os.OpenFile(img, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("X"), 1024+56) // the name of entry 1
	f.Close()
	if got := partitionsOf(t, img); !reflect.DeepEqual(got, want) {
		t.Fatalf("from backup %+v\nsfdisk      %+v", got, want)
	}
}

// fixGPTCRCs recomputes the CRCs of a 512-byte-block primary GPT header
// at LBA 1 and of the entry array it names, so that the fuzzer gets past
// them to the checks behind.
func fixGPTCRCs(img []byte) {
	if len(img) < 1024 || string(img[512:520]) != gptSignature {
		return
	}
	h := img[512:1024]
	lba := binary.LittleEndian.Uint64(h[72:])
	n := uint64(binary.LittleEndian.Uint32(h[80:])) * uint64(binary.LittleEndian.Uint32(h[84:]))
	if lba < uint64(len(img))/512 && n <= uint64(len(img))-lba*512 {
		binary.LittleEndian.PutUint32(h[88:], crc32.ChecksumIEEE(img[lba*512:lba*512+n]))
	}
	hs := int(binary.LittleEndian.Uint32(h[12:]))
	if hs >= 20 && hs <= 512 {
		binary.LittleEndian.PutUint32(h[16:], 0)
		binary.LittleEndian.PutUint32(h[16:], crc32.ChecksumIEEE(h[:hs]))
	}
}

// FuzzPartitions feeds arbitrary tables to Partitions and SelectPartition.
// The device is the input followed by pad sectors of zeros, so that small
// seeds can describe tables on larger devices; fixCRC makes the primary
// GPT's CRCs right.
func FuzzPartitions(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s.data, s.pad, s.fixCRC)
	}
	f.Fuzz(func(t *testing.T, data []byte, pad uint16, fixCRC bool) {
		if len(data) > 1<<20 {
			return
		}
		img := make([]byte, len(data)+int(pad%2049)*512)
		copy(img, data)
		if fixCRC {
			fixGPTCRCs(img)
		}
		dev := memDev(img)
		parts, err := Partitions(dev)
		if err != nil {
			if !errors.Is(err, ErrBadPartitionTable) {
				t.Fatalf("error %v does not match ErrBadPartitionTable", err)
			}
			return
		}
		seen := map[int]bool{}
		for _, p := range parts {
			if p.Start < 0 || p.Size <= 0 || p.Start > dev.Size()-p.Size {
				t.Fatalf("partition %+v outside a device of %d bytes", p, dev.Size())
			}
			if seen[p.Number] || p.Number < 1 {
				t.Fatalf("bad or duplicate number in %+v", parts)
			}
			seen[p.Number] = true
		}
		d, err := SelectPartition(dev, "auto", func(io.ReaderAt, int64) bool { return false })
		if len(parts) == 0 && (err != nil || d != dev) {
			t.Fatalf("auto without partitions: %v %v", d, err)
		}
		if len(parts) == 1 && (err != nil || d.Size() != parts[0].Size) {
			t.Fatalf("auto with one partition: %v %v", d, err)
		}
	})
}

type fuzzSeed struct {
	data   []byte
	pad    uint16
	fixCRC bool
}

// fuzzSeeds are small inputs that reach the MBR, EBR and GPT parsers; the
// files in testdata/fuzz/FuzzPartitions hold the same.
func fuzzSeeds() []fuzzSeed {
	mbr := make([]byte, 3*512)
	putRecord(mbr, 0, 0x80, 0x83, 8, 16)
	putRecord(mbr, 1, 0, 0x05, 1, 7)
	putRecord(mbr[512:], 0, 0, 0x83, 1, 2)
	putRecord(mbr[512:], 1, 0, 0x05, 1, 2)
	putRecord(mbr[1024:], 0, 0, 0x0c, 1, 2)
	loop := append([]byte(nil), mbr...)
	putRecord(loop[1024:], 1, 0, 0x05, 0, 2)
	gpt := craftGPT(512, 64, 4, []gptEntry{{1, linuxFS, 4, 30, "p"}})[:3*512]
	return []fuzzSeed{{mbr, 30, false}, {loop, 30, false}, {gpt, 61, true}}
}
