package ukfs

import (
	"github.com/rump9p/rump9p/vnodeops"
)

// Info summarises a mounted image.
type Info struct {
	// Type is the driver that mounted the image (the probed one for
	// type auto).
	Type string
	// Image is the image file's absolute path; "" for tmpfs.
	Image string
	// Partition is the partition asked for ("" for the whole image).
	Partition string
	// ReadOnly tells whether the mount is read-only.
	ReadOnly bool
	// Statvfs is the file system's statvfs(2).
	Statvfs vnodeops.Statvfs
	// Layout is the driver's own summary (vnodeops.Describer), or nil
	// for a driver without one.
	Layout []vnodeops.InfoField
}

// Statfs describes the file system: sizes in Frsize units, inode counts,
// the longest name.
func (f *FS) Statfs() (vnodeops.Statvfs, error) {
	st, err := f.p.Statvfs(mountPoint)
	return st, pathErr("statfs", "/", err)
}

// Info returns the summary of the mounted image.
func (f *FS) Info() (Info, error) {
	st, err := f.Statfs()
	if err != nil {
		return Info{}, err
	}
	layout, err := f.k.Describe(f.mount.ID)
	if err != nil {
		return Info{}, pathErr("info", "/", err)
	}
	return Info{
		Type:      f.mount.Type,
		Image:     f.mount.Image,
		Partition: f.part,
		ReadOnly:  f.ReadOnly(),
		Statvfs:   st,
		Layout:    layout,
	}, nil
}
