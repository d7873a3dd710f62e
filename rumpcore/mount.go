package rumpcore

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"syscall"

	"github.com/rump9p/rump9p/blkdev"
	"github.com/rump9p/rump9p/vnodeops"
)

// MountSpec says what to mount.
type MountSpec struct {
	Type       string // driver name, or "auto" to probe the image
	Image      string // image file path; empty for tmpfs
	Partition  string // "" (whole device), "auto", or a partition number "1", "2", ...
	ReadOnly   bool
	CacheBytes int64 // 0: the kernel's default
	Options    map[string]string
	// Name names the mount in log lines; default: the target path.
	Name string
}

// MountInfo describes a mount in the mount table.
type MountInfo struct {
	ID       uint32
	Path     string
	Name     string
	Type     string
	Image    string
	ReadOnly bool
}

type mount struct {
	id    uint32
	path  string // where it is mounted in the namespace
	name  string
	typ   string
	image string
	ro    bool
	fs    vnodeops.FS

	root    *Vnode // referenced by the mount
	covered *Vnode // referenced by the mount; nil for the root file system

	renameMu sync.Mutex // serialises renames on this file system
	// gate is held shared by every operation that calls the driver and
	// exclusively by a forced unmount, which then sets dead.
	gate sync.RWMutex

	// guarded by Kernel.mu
	nvnodes int
	dead    bool
}

var errDeadMount = syscall.EIO

// enter holds m's gate shared for one driver call and returns the
// function that releases it: a forced unmount (which takes the gate
// exclusively) never runs during the call. It fails with EIO, holding
// nothing, once m has been force-unmounted.
func (m *mount) enter() (exit func(), err error) {
	m.gate.RLock()
	if m.dead {
		m.gate.RUnlock()
		return nil, errDeadMount
	}
	return m.gate.RUnlock, nil
}

func (m *mount) sync() error {
	exit, err := m.enter()
	if err != nil {
		return nil
	}
	defer exit()
	if m.ro {
		return nil
	}
	return errno(m.fs.Sync())
}

// Mount mounts the file system spec describes at target, an absolute path
// whose missing directories are created. Errors name the image and say
// what is wrong; they wrap a syscall.Errno where one applies (EBUSY when
// target is already a mount point, ENOTDIR, ENODEV for an unknown type).
func (k *Kernel) Mount(target string, spec MountSpec) error {
	name := spec.Name
	if name == "" {
		name = target
	}
	typ := spec.Type
	args := vnodeops.MountArgs{
		Name:       name,
		ReadOnly:   spec.ReadOnly,
		CacheBytes: spec.CacheBytes,
		Options:    spec.Options,
		Now:        k.now,
		Log:        k.log.With("mount", name),
	}
	if args.CacheBytes == 0 {
		args.CacheBytes = k.cacheBytes
	}
	var dev blkdev.Device
	if spec.Image != "" {
		d, err := blkdev.Open(spec.Image, spec.ReadOnly)
		if err != nil {
			return err
		}
		sel, err := blkdev.SelectPartition(d, spec.Partition, probeAny)
		if err != nil {
			d.Close()
			return err
		}
		dev = sel
		if typ == "auto" {
			t, err := vnodeops.Probe(dev, dev.Size())
			if err != nil {
				dev.Close()
				return fmt.Errorf("mount %s: image %s: %w", name, spec.Image, err)
			}
			typ = t
		}
	} else if typ == "auto" {
		return fmt.Errorf("mount %s: type auto needs an image: %w", name, syscall.EINVAL)
	}
	drv, ok := vnodeops.Lookup(typ)
	if !ok {
		if dev != nil {
			dev.Close()
		}
		return fmt.Errorf("mount %s: file system type %q is not available (have %s): %w",
			name, typ, strings.Join(vnodeops.Drivers(), ", "), syscall.ENODEV)
	}
	if drv.NeedsDevice && dev == nil {
		return fmt.Errorf("mount %s: type %s needs an image: %w", name, typ, syscall.EINVAL)
	}
	if !drv.NeedsDevice && dev != nil {
		dev.Close()
		return fmt.Errorf("mount %s: type %s takes no image: %w", name, typ, syscall.EINVAL)
	}
	args.Dev = dev
	fs, err := drv.Mount(args)
	if err != nil {
		if dev != nil {
			dev.Close()
		}
		if spec.Image != "" {
			return fmt.Errorf("mount %s: %s image %s: %w", name, typ, spec.Image, err)
		}
		return fmt.Errorf("mount %s: %s: %w", name, typ, err)
	}
	if err := k.attach(target, name, typ, spec.Image, fs, spec.ReadOnly); err != nil {
		fs.Unmount(true)
		return fmt.Errorf("mount %s on %s: %w", name, target, err)
	}
	k.log.Info("mounted", "mount", name, "type", typ, "image", spec.Image, "on", target, "readonly", spec.ReadOnly)
	return nil
}

// probeAny reports whether any registered driver recognises r.
func probeAny(r io.ReaderAt, size int64) bool {
	_, err := vnodeops.Probe(r, size)
	return err == nil
}

// MountFS mounts an already mounted driver FS at target. name names it in
// log lines and MountInfo; ro marks the mount read-only to the kernel
// (the FS should have been mounted read-only too).
func (k *Kernel) MountFS(target, name string, fs vnodeops.FS, ro bool) error {
	return k.attach(target, name, "", "", fs, ro)
}

// attach enters fs into the mount table at target.
func (k *Kernel) attach(target, name, typ, image string, fs vnodeops.FS, ro bool) error {
	k.mu.Lock()
	if k.down && len(k.mounts) > 0 {
		k.mu.Unlock()
		return syscall.ESHUTDOWN
	}
	k.nextMountID++
	m := &mount{id: k.nextMountID, path: target, name: name, typ: typ, image: image, ro: ro, fs: fs}
	first := len(k.mounts) == 0
	k.mu.Unlock()

	var covered *Vnode
	if !first {
		if !strings.HasPrefix(target, "/") {
			return syscall.EINVAL
		}
		p := k.NewProc(vnodeops.Root)
		defer p.exit()
		if err := p.mkdirAll(target); err != nil {
			return err
		}
		v, err := p.namei(target, true)
		if err != nil {
			return err
		}
		a, err := v.Getattr()
		if err != nil {
			v.Release()
			return err
		}
		if !a.IsDir() {
			v.Release()
			return syscall.ENOTDIR
		}
		covered = v
	}
	root, err := k.vget(m, fs.Root())
	if err != nil {
		if covered != nil {
			covered.Release()
		}
		return fmt.Errorf("root inode %d: %w", fs.Root(), err)
	}
	k.mu.Lock()
	if covered != nil && covered.coveredBy != nil {
		// Someone mounted here meanwhile.
		k.mu.Unlock()
		root.Release()
		covered.Release()
		return syscall.EBUSY
	}
	m.root = root
	m.covered = covered
	if covered != nil {
		covered.coveredBy = m
	}
	k.mounts = append(k.mounts, m)
	k.mu.Unlock()
	return nil
}

// Unmount unmounts the file system mounted at target. EBUSY while any of
// its files is referenced (open, a working directory, a 9P fid) or another
// mount lies below it, unless force: then its remaining vnodes answer EIO
// from then on. EINVAL when target is not a mount point.
func (k *Kernel) Unmount(target string, force bool) error {
	p := k.NewProc(vnodeops.Root)
	v, err := p.namei(target, true)
	p.exit()
	if err != nil {
		return err
	}
	m := v.m
	isRoot := v == m.root
	v.Release()
	if !isRoot || m.covered == nil {
		return syscall.EINVAL
	}
	return k.detach(m, force)
}

// detach removes m from the mount table and unmounts its FS.
func (k *Kernel) detach(m *mount, force bool) error {
	k.mu.Lock()
	idx := -1
	for i, mm := range k.mounts {
		if mm == m {
			idx = i
		}
	}
	if idx < 0 {
		k.mu.Unlock()
		return syscall.EINVAL
	}
	busy := m.nvnodes > 1 || m.root.refs > 1
	if busy && !force {
		k.mu.Unlock()
		return syscall.EBUSY
	}
	k.mounts = append(k.mounts[:idx], k.mounts[idx+1:]...)
	if m.covered != nil {
		m.covered.coveredBy = nil
	}
	k.mu.Unlock()

	if busy {
		m.gate.Lock()
		k.mu.Lock()
		m.dead = true
		k.mu.Unlock()
		k.reclaimAll(m)
		m.gate.Unlock()
		k.log.Warn("forced unmount with files in use", "mount", m.name)
	}
	m.root.Release()
	err := m.fs.Unmount(busy)
	if m.covered != nil {
		m.covered.Release()
	}
	if err != nil {
		k.log.Error("unmount", "mount", m.name, "err", err)
		return errno(err)
	}
	k.log.Info("unmounted", "mount", m.name)
	return nil
}

// Describe returns the layout summary of the file system mounted with
// the given ID (MountInfo.ID), from its driver's vnodeops.Describer: nil
// and no error when the driver has none, ENOENT for no such mount, EIO
// once it is force-unmounted.
func (k *Kernel) Describe(id uint32) ([]vnodeops.InfoField, error) {
	k.mu.Lock()
	var m *mount
	for _, mm := range k.mounts {
		if mm.id == id {
			m = mm
		}
	}
	k.mu.Unlock()
	if m == nil {
		return nil, syscall.ENOENT
	}
	d, ok := m.fs.(vnodeops.Describer)
	if !ok {
		return nil, nil
	}
	exit, err := m.enter()
	if err != nil {
		return nil, err
	}
	defer exit()
	fields, err := d.Describe()
	return fields, errno(err)
}

// Mounts lists the mount table in mount order, the root file system first.
func (k *Kernel) Mounts() []MountInfo {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]MountInfo, 0, len(k.mounts))
	for _, m := range k.mounts {
		out = append(out, MountInfo{ID: m.id, Path: m.path, Name: m.name, Type: m.typ, Image: m.image, ReadOnly: m.ro})
	}
	return out
}
