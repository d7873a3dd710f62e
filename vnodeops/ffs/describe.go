package ffs

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/rump9p/rump9p/vnodeops"
)

var _ vnodeops.Describer = (*fsys)(nil)

// Describe implements vnodeops.Describer with the superblock fields
// NetBSD's dumpfs prints first (sys/ufs/ffs/fs.h names in parentheses).
func (fs *fsys) Describe() ([]vnodeops.InfoField, error) {
	fs.mu.RLock()
	defer fs.mu.RUnlock()
	sb := fs.sb
	format := "UFS1"
	if sb.ufs2 {
		format = "UFS2"
	}
	order := "little endian"
	if sb.bo == binary.BigEndian {
		order = "big endian"
	}
	clean := "no"
	if sb.clean != 0 {
		clean = "yes"
	}
	f := func(k string, v any) vnodeops.InfoField { return vnodeops.InfoField{Key: k, Value: fmt.Sprint(v)} }
	return []vnodeops.InfoField{
		f("Format", format+", "+order),
		f("Superblock at (byte)", sb.loc),
		f("Last written (fs_time)", time.Unix(sb.time, 0).UTC().Format(time.RFC3339)),
		f("Clean (fs_clean)", clean),
		f("Flags (fs_flags)", fmt.Sprintf("%#x", sb.flags)),
		f("Size in fragments (fs_size)", sb.size),
		f("Data fragments (fs_dsize)", sb.dsize),
		f("Block size (fs_bsize)", sb.bsize),
		f("Fragment size (fs_fsize)", sb.fsize),
		f("Cylinder groups (fs_ncg)", sb.ncg),
		f("Fragments per group (fs_fpg)", sb.fpg),
		f("Inodes per group (fs_ipg)", sb.ipg),
		f("Minimum free (fs_minfree, %)", sb.minfree),
		f("Directories (cs_ndir)", sb.cstotal.ndir),
		f("Free blocks (cs_nbfree)", sb.cstotal.nbfree),
		f("Free fragments (cs_nffree)", sb.cstotal.nffree),
		f("Free inodes (cs_nifree)", sb.cstotal.nifree),
	}, nil
}
