package ffs

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/rumpcore"
	"github.com/rump9p/rump9p/vnodeops"
)

// seedImages caches one image of the source tree per variant.
var seedImages = map[string]string{}

// seedImage returns the image of sourceTree made for v (once per binary,
// read-only afterwards).
func seedImage(t *testing.T, v variant) string {
	t.Helper()
	if img, ok := seedImages[v.name]; ok {
		return img
	}
	src := sourceTree(t)
	img := filepath.Join(filepath.Dir(src), v.name+".img")
	makefs(t, img, src, v, "48m")
	seedImages[v.name] = img
	return img
}

// TestReadTree mounts makefs images of the source tree in every variant
// and finds the tree exactly; the images also pass checkImage, which
// checks the checker against makefs.
func TestReadTree(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			img := seedImage(t, v)
			mustCheck(t, img)
			fs := mountImage(t, img, true, nil, nil)
			c := newClient(t, fs)
			compareTree(t, c, sourceTree(t))
			st, err := fs.Statvfs()
			if err != nil || st.Flags&vnodeops.StRdonly == 0 || st.Files == 0 || st.Ffree >= st.Files || st.Bfree >= st.Blocks {
				t.Errorf("statvfs %+v, %v", st, err)
			}
			ffs := fs.(*fsys)
			if ffs.sb.ufs2 != (v.version == 2) {
				t.Errorf("ufs2 %v for version %d", ffs.sb.ufs2, v.version)
			}
			if (ffs.sb.bo.Uint16([]byte{1, 0}) == 1) != (v.order == "le") {
				t.Errorf("byte order %v for %s", ffs.sb.bo, v.order)
			}
		})
	}
}

// TestProbe: every variant is recognised, as the registry's auto type;
// garbage and other formats are not.
func TestProbe(t *testing.T) {
	for _, v := range variants[:2] {
		img := seedImage(t, v)
		dev, err := blkdev.Open(img, true)
		if err != nil {
			t.Fatal(err)
		}
		if name, err := vnodeops.Probe(dev, dev.Size()); err != nil || name != "ffs" {
			t.Errorf("%s: Probe: %q %v", v.name, name, err)
		}
		dev.Close()
	}
	junk := bytes.Repeat([]byte{0x19, 0x54, 0x01, 0x19}, 1<<17)
	if Probe(bytes.NewReader(junk), int64(len(junk))) {
		t.Error("Probe accepts a repeated magic number")
	}
	if Probe(bytes.NewReader(nil), 0) {
		t.Error("Probe accepts an empty device")
	}
}

// TestStableInodes: the same path gives the same inode number across
// mounts, and a hard link's names share one.
func TestStableInodes(t *testing.T) {
	img := seedImage(t, variants[0])
	inoOf := func() (uint64, uint64) {
		fs := mountImage(t, img, true, nil, nil)
		c := newClient(t, fs)
		_, a, err := c.walk("small")
		_, b, err2 := c.walk("d1/hard")
		if err != nil || err2 != nil {
			t.Fatal(err, err2)
		}
		c.release()
		fs.Unmount(false)
		return a, b
	}
	a1, b1 := inoOf()
	a2, b2 := inoOf()
	if a1 != b1 || a1 != a2 || b1 != b2 {
		t.Errorf("inode numbers %d %d then %d %d", a1, b1, a2, b2)
	}
}

// TestUnclean: a dirty image mounts read-only with a warning naming the
// reason, or is refused with unclean=refuse; an unknown flag refuses a
// read-write mount by name unless ro_fallback is set.
func TestUnclean(t *testing.T) {
	for _, v := range []variant{variants[0], variants[len(variants)-1]} {
		t.Run(v.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			data, err := os.ReadFile(seedImage(t, v))
			if err != nil {
				t.Fatal(err)
			}
			fs := mountImage(t, seedImage(t, v), true, nil, nil)
			sb := fs.(*fsys).sb
			loc := sb.loc
			fs.Unmount(false)
			data[loc+sbClean] = 0
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
			var log logBuf
			fs = mountImage(t, img, false, nil, &log)
			if st, _ := fs.Statvfs(); st.Flags&vnodeops.StRdonly == 0 {
				t.Error("dirty image mounted read-write")
			}
			if !bytes.Contains([]byte(log.String()), []byte("not cleanly unmounted")) {
				t.Errorf("log does not name the reason: %s", log.String())
			}
			fs.Unmount(false)
			if _, err := mountErrOf(img, false, map[string]string{"unclean": "refuse"}, nil); err == nil {
				t.Error("unclean=refuse mounted a dirty image")
			}
			data[loc+sbClean] = fsIsClean
			flags := sb.bo.Uint32(data[loc+sbFlags:])
			sb.bo.PutUint32(data[loc+sbFlags:], flags|fsGJournal)
			data[loc+sbOldFlags] |= fsFlagsUpdated
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
			// FreeBSD soft updates journaling with work pending.
			d2 := append([]byte(nil), data...)
			sb.bo.PutUint32(d2[loc+sbFlags:], flags|fsSUJ|fsDoSoftDep)
			d2[loc+sbClean] = 0
			suj := filepath.Join(t.TempDir(), "suj")
			if err := os.WriteFile(suj, d2, 0o644); err != nil {
				t.Fatal(err)
			}
			var sujLog logBuf
			fs = mountImage(t, suj, false, nil, &sujLog)
			if st, _ := fs.Statvfs(); st.Flags&vnodeops.StRdonly == 0 || !bytes.Contains([]byte(sujLog.String()), []byte("SUJ")) {
				t.Errorf("SUJ pending: flags %#x, log %s", st.Flags, sujLog.String())
			}
			fs.Unmount(false)
			_, err = mountErrOf(img, false, nil, nil)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte("GJOURNAL")) {
				t.Errorf("unknown flag: mount error %v", err)
			}
			fs = mountImage(t, img, false, map[string]string{"ro_fallback": "true"}, nil)
			if st, _ := fs.Statvfs(); st.Flags&vnodeops.StRdonly == 0 {
				t.Error("ro_fallback mounted read-write")
			}
		})
	}
}

// TestDisklabelImage: an FFS in partition a of a NetBSD disklabel inside
// an MBR partition mounts by partition number and by auto, as a NetBSD
// disk image does.
func TestDisklabelImage(t *testing.T) {
	fsImg, err := os.ReadFile(seedImage(t, variants[0]))
	if err != nil {
		t.Fatal(err)
	}
	const start = 63
	n := uint32(len(fsImg) / 512)
	disk := make([]byte, (start+int(n)+64)*512)
	copy(disk[start*512:], fsImg)
	le := binary.LittleEndian
	rec := disk[446:]
	rec[0], rec[4] = 0x80, 0xA9
	le.PutUint32(rec[8:], start)
	le.PutUint32(rec[12:], n+64)
	disk[510], disk[511] = 0x55, 0xAA
	// NetBSD sys/sys/disklabel.h: magic, sector size, magic2, partition
	// count, then a (4.2BSD) and c (the slice); checksum XORs to 0.
	lab := disk[(start+1)*512 : (start+2)*512]
	le.PutUint32(lab[0:], 0x82564557)
	le.PutUint32(lab[40:], 512)
	le.PutUint32(lab[132:], 0x82564557)
	le.PutUint16(lab[138:], 3)
	for i, p := range [][3]uint32{{n, start, 7}, {0, 0, 0}, {n + 64, start, 0}} {
		le.PutUint32(lab[148+16*i:], p[0])
		le.PutUint32(lab[152+16*i:], p[1])
		lab[160+16*i] = byte(p[2])
	}
	var sum uint16
	for i := 0; i < 148+3*16; i += 2 {
		sum ^= le.Uint16(lab[i:])
	}
	le.PutUint16(lab[136:], sum)
	img := filepath.Join(t.TempDir(), "disk")
	if err := os.WriteFile(img, disk, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{"5", "auto"} {
		k, err := rumpcore.Init(rumpcore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := k.Mount("/mnt", rumpcore.MountSpec{Type: "auto", Image: img, Partition: part, ReadOnly: true}); err != nil {
			t.Fatalf("partition %s: %v", part, err)
		}
		p := k.NewProc(vnodeops.Root)
		fd, err := p.Open("/mnt/small", vnodeops.ORdonly, 0)
		if err != nil {
			t.Fatalf("partition %s: open: %v", part, err)
		}
		buf := make([]byte, 16)
		if n, _ := p.Pread(fd, buf, 0); n != 5 {
			t.Errorf("partition %s: read %d bytes", part, n)
		}
		p.Close(fd)
		k.Shutdown()
	}
}

// TestXattrs: the extended attribute area of a UFS2 inode (FreeBSD
// extattr.h records, here written by hand into an image's last block)
// is served read-only: user names as user.*, system names as trusted.*.
func TestXattrs(t *testing.T) {
	for _, v := range []variant{variants[4], variants[7]} {
		t.Run(v.name, func(t *testing.T) {
			data, sb, inos := corruptBase(t, v)
			a := (sb.size - sb.frag) &^ (sb.frag - 1)
			area := data[a<<sb.fshift:]
			rec := func(off int, ns byte, name, value string) int {
				hdr := (7 + len(name) + 7) &^ 7
				l := (hdr + len(value) + 7) &^ 7
				sb.bo.PutUint32(area[off:], uint32(l))
				area[off+4], area[off+5], area[off+6] = ns, byte(l-hdr-len(value)), byte(len(name))
				copy(area[off+7:], name)
				copy(area[off+hdr:], value)
				return off + l
			}
			end := rec(0, eaNamespaceUser, "comment", "hello, world")
			end = rec(end, eaNamespaceSystem, "posix1e.acl_access", "\x01\x02\x03")
			d := inodeAt(data, sb, inos["small"])
			d.put32(d2Extsize, uint32(end))
			d.put64(d2Extb, uint64(a))
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
			c := newClient(t, mountImage(t, img, true, nil, nil))
			x := c.must("small").(vnodeops.Xattrs)
			names, err := x.Listxattr()
			if err != nil || len(names) != 2 || names[0] != "user.comment" || names[1] != "trusted.posix1e.acl_access" {
				t.Fatalf("Listxattr: %q %v", names, err)
			}
			if val, err := x.Getxattr("user.comment"); err != nil || string(val) != "hello, world" {
				t.Errorf("Getxattr: %q %v", val, err)
			}
			if _, err := x.Getxattr("user.none"); err != syscall.ENODATA {
				t.Errorf("Getxattr of a missing name: %v", err)
			}
			if names, err := c.must("dir").(vnodeops.Xattrs).Listxattr(); err != nil || len(names) != 0 {
				t.Errorf("Listxattr without an area: %q %v", names, err)
			}
		})
	}
}

// TestWAPBL: a NetBSD image with a WAPBL log (FS_DOWAPBL) mounts
// read-write when the log is empty and read-only, naming the log, when
// it holds transactions.
func TestWAPBL(t *testing.T) {
	v := variants[4]
	data, sb, _ := corruptBase(t, v)
	// The log: 2 sectors at the image's last block (wapbl_wc_header:
	// generation at 12, log_dev_bshift at 40, tail at 56).
	a := (sb.size - sb.frag) << sb.fshift
	loc, bo := sb.loc, sb.bo
	bo.PutUint32(data[loc+sbFlags:], bo.Uint32(data[loc+sbFlags:])|fsDoWAPBL)
	data[loc+sbJournalVersion], data[loc+sbJournalLocation] = 1, wapblInFilesystem
	bo.PutUint64(data[loc+sbJournallocs:], uint64(a/512))
	bo.PutUint64(data[loc+sbJournallocs+16:], 512)
	bo.PutUint32(data[a+40:], 9)
	for _, tail := range []uint64{0, 4096} {
		bo.PutUint64(data[a+56:], tail)
		img := filepath.Join(t.TempDir(), "img")
		if err := os.WriteFile(img, data, 0o644); err != nil {
			t.Fatal(err)
		}
		var log logBuf
		fs := mountImage(t, img, false, nil, &log)
		st, _ := fs.Statvfs()
		if ro := st.Flags&vnodeops.StRdonly != 0; ro != (tail != 0) {
			t.Errorf("log tail %d: read-only %v; log: %s", tail, ro, log.String())
		}
		if tail != 0 && !bytes.Contains([]byte(log.String()), []byte("WAPBL log")) {
			t.Errorf("log does not name WAPBL: %s", log.String())
		}
		fs.Unmount(false)
	}
}

// TestOldDirectoryFormat: a UFS1 file system from before 4.4BSD
// (fs_old_inodefmt below FS_44INODEFMT) keeps a 16-bit d_namlen and no
// d_type in its entries; here a makefs image rewritten so. Names resolve
// and Readdir takes each entry's type from its inode.
func TestOldDirectoryFormat(t *testing.T) {
	for _, v := range []variant{variants[0], variants[3]} {
		t.Run(v.name, func(t *testing.T) {
			data, sb, inos := corruptBase(t, v)
			sb.bo.PutUint32(data[sb.loc+sbOldInodefmt:], uint32(0xffffffff)) // FS_42INODEFMT
			sb.bo.PutUint32(data[sb.loc+sbMaxsymlinklen:], 0)
			for _, dir := range []string{"", "dir"} {
				di := inodeAt(data, sb, inos[dir])
				a := di.addr(0) << sb.fshift
				for o := int64(0); o < int64(di.size()); {
					e := data[a+o:]
					n := e[7]
					sb.bo.PutUint16(e[6:], uint16(n))
					o += int64(sb.bo.Uint16(e[4:]))
				}
			}
			img := filepath.Join(t.TempDir(), "img")
			if err := os.WriteFile(img, data, 0o644); err != nil {
				t.Fatal(err)
			}
			c := newClient(t, mountImage(t, img, true, nil, nil))
			if got, err := readAll(c.must("dir/file")); err != nil || len(got) != 14*v.bsize+3 {
				t.Errorf("dir/file: %d bytes, %v", len(got), err)
			}
			if s, err := c.must("link").Readlink(); err != nil || s != "small" {
				t.Errorf("link: %q %v", s, err)
			}
			ents, err := readDir(c.must(""))
			if err != nil {
				t.Fatal(err)
			}
			types := map[string]uint8{}
			for _, e := range ents {
				types[e.Name] = e.Type
			}
			if types["dir"] != vnodeops.DT_DIR || types["small"] != vnodeops.DT_REG || types["link"] != vnodeops.DT_LNK {
				t.Errorf("types %v", types)
			}
		})
	}
}
