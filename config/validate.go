package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/rump9p/rump9p/vnodeops"
)

// maxUnixPath is the longest unix socket path: sun_path holds 108 bytes on
// Linux, one of which is the terminating NUL (an abstract name, written
// with a leading "@", uses the leading byte instead).
const maxUnixPath = 107

// Validate checks the meaning of every value of c and returns nil or an
// [Errors] listing every problem: listeners, size ranges, log level and
// format, the mounts (names, types, images, partitions, options) and the
// security limits. It reads the file system: every image must exist and be
// a regular file or a block device, and when the driver of the mount's type
// is registered in this binary ([vnodeops.Lookup]) and no partition is
// given, the image must carry that driver's magic ([vnodeops.Driver.Probe]);
// for type "auto", some registered driver must recognise it. Images are
// opened read-only and never written.
//
// Use Validate on a Config built in code; [Load] calls it itself.
func (c *Config) Validate() error {
	col := newCollector()
	validate(c, col)
	return col.err()
}

func validate(c *Config, col *collector) {
	validateListen(c.Listen, col)

	if c.Msize < MinMsize || c.Msize > MaxMsize {
		col.add("msize", "%s out of range (want %s .. %s)", sizeText(c.Msize), Size(MinMsize), Size(MaxMsize))
	}
	if c.Cache < MinCache {
		col.add("cache", "%s too small (want at least %s)", sizeText(c.Cache), Size(MinCache))
	}

	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		col.add("log.level", "unknown level %q (want one of debug, info, warn, error)", c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "text", "json":
	default:
		col.add("log.format", "unknown format %q (want text or json)", c.Log.Format)
	}

	validateMounts(c.Mounts, col)

	if c.Security.Squash != nil {
		if c.Security.Squash.UID == math.MaxUint32 {
			col.add("security.squash.uid", "4294967295 is not a uid (want 0 .. 4294967294)")
		}
		if c.Security.Squash.GID == math.MaxUint32 {
			col.add("security.squash.gid", "4294967295 is not a gid (want 0 .. 4294967294)")
		}
	}
	if c.Security.MaxConnections <= 0 {
		col.add("security.max_connections", "%d must be > 0", c.Security.MaxConnections)
	}
	if c.Security.MaxFidsPerConnection <= 0 {
		col.add("security.max_fids_per_connection", "%d must be > 0", c.Security.MaxFidsPerConnection)
	}
	if c.Security.MaxInflightPerConnection <= 0 {
		col.add("security.max_inflight_per_connection", "%d must be > 0", c.Security.MaxInflightPerConnection)
	}
	if c.Security.MaxMemoryPerConnection < MinMemoryBudget {
		col.add("security.max_memory_per_connection", "%s is below the minimum 64KiB", sizeText(c.Security.MaxMemoryPerConnection))
	}
	if c.Security.MaxMemory < MinMemoryBudget {
		col.add("security.max_memory", "%s is below the minimum 64KiB", sizeText(c.Security.MaxMemory))
	}
	switch c.Security.Identity {
	case "client", "host":
		if len(c.Security.Users) > 0 {
			col.add("security.users", "given, but security.identity is %q (users are read only with identity map)", c.Security.Identity)
		}
	case "map":
		if len(c.Security.Users) == 0 {
			col.add("security.users", "missing or empty (security.identity map takes the groups from it)")
		}
	default:
		col.add("security.identity", "unknown identity %q (want client, host or map)", c.Security.Identity)
	}
}

// sizeText shows a size as written in bytes and, when different, in units.
func sizeText(s Size) string {
	b := strconv.FormatInt(int64(s), 10)
	if u := s.String(); u != b {
		return b + " (" + u + ")"
	}
	return b
}

func validateListen(ls []Listener, col *collector) {
	if len(ls) == 0 {
		col.add("listen", "empty (want at least one of tcp:HOST:PORT, unix:PATH, stdio)")
		return
	}
	seen := map[Listener]int{}
	for i, l := range ls {
		key := fmt.Sprintf("listen[%d]", i)
		if err := checkListener(l); err != nil {
			col.add(key, "%q: %v", l.String(), err)
			continue
		}
		if l.Network == "stdio" {
			l.Address = ""
		}
		if j, dup := seen[l]; dup {
			col.add(key, "%q duplicates listen[%d]", l.String(), j)
			continue
		}
		seen[l] = i
	}
}

func checkListener(l Listener) error {
	switch l.Network {
	case "stdio":
		if l.Address != "" {
			return errors.New("stdio takes no address")
		}
		return nil
	case "unix":
		switch {
		case l.Address == "":
			return errors.New("socket path missing")
		case strings.IndexByte(l.Address, 0) >= 0:
			return errors.New("socket path contains NUL")
		case len(l.Address) > maxUnixPath:
			return fmt.Errorf("socket path longer than %d bytes", maxUnixPath)
		}
		return nil
	case "tcp":
		host, port, err := net.SplitHostPort(l.Address)
		if err != nil {
			var ae *net.AddrError
			if errors.As(err, &ae) {
				return fmt.Errorf("bad host:port (%s)", ae.Err)
			}
			return fmt.Errorf("bad host:port (%v)", err)
		}
		if host == "" {
			return errors.New("host missing (write 0.0.0.0 or [::] to listen on every address)")
		}
		if !validHost(host) {
			return fmt.Errorf("bad host %q (want an IP address or a host name)", host)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return fmt.Errorf("bad port %q (want 0 .. 65535)", port)
		}
		return nil
	}
	return fmt.Errorf("unknown network %q (want tcp, unix or stdio)", l.Network)
}

// validHost accepts an IP address (an IPv6 one may carry a %zone) or a DNS
// host name.
func validHost(h string) bool {
	ip := h
	if i := strings.IndexByte(h, '%'); i >= 0 && strings.Contains(h[:i], ":") && i+1 < len(h) {
		ip = h[:i]
	}
	if net.ParseIP(ip) != nil {
		return true
	}
	if len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-') {
				return false
			}
		}
	}
	return true
}

// fsTypes is every accepted mount type.
func fsTypes() []string {
	return append(append([]string{}, vnodeops.KnownTypes...), "auto")
}

func knownType(t string) bool {
	for _, k := range fsTypes() {
		if t == k {
			return true
		}
	}
	return false
}

func validateMounts(ms []Mount, col *collector) {
	if len(ms) == 0 {
		col.add("mounts", "no mounts configured (want at least one)")
		return
	}
	names := map[string]int{}
	for i := range ms {
		m := &ms[i]
		key := fmt.Sprintf("mounts[%d]", i)
		if col.bad[key] {
			continue // not a map: decoding said so
		}

		if err := checkName(m.Name); err != nil {
			col.add(key+".name", "%v", err)
		} else if j, dup := names[m.Name]; dup {
			col.add(key+".name", "duplicate name %q (also mounts[%d])", m.Name, j)
		} else {
			names[m.Name] = i
		}

		typeOK := false
		switch {
		case m.Type == "":
			col.add(key+".type", "missing (want one of %s)", strings.Join(fsTypes(), ", "))
		case !knownType(m.Type):
			col.add(key+".type", "unknown file system type %q (want one of %s)", m.Type, strings.Join(fsTypes(), ", "))
		default:
			typeOK = true
		}

		switch p := m.Partition; p {
		case "", "auto":
		default:
			if n, err := strconv.ParseUint(p, 10, 31); err != nil || n == 0 || strconv.FormatUint(n, 10) != p {
				col.add(key+".partition", "bad partition %q (want \"\", \"auto\" or a positive partition number)", p)
			}
		}

		for _, k := range sortedOptionKeys(m.Options) {
			v := m.Options[k]
			switch {
			case k == "":
				col.add(key+".options", "empty option name")
			case strings.IndexByte(k, 0) >= 0:
				col.add(key+".options", "option name %q contains NUL", k)
			case strings.IndexByte(v, 0) >= 0:
				col.add(key+".options."+k, "value %q contains NUL", v)
			}
		}

		if m.Type == "tmpfs" {
			if m.Image != "" {
				col.add(key+".image", "tmpfs takes no image (got %q)", m.Image)
			}
			if m.Partition != "" {
				col.add(key+".partition", "tmpfs takes no partition (got %q)", m.Partition)
			}
			continue
		}
		if m.Image == "" {
			if m.Type != "" {
				col.add(key+".image", "missing (type %s needs an image file)", m.Type)
			}
			continue
		}
		checkImage(key, m, typeOK, col)
	}
}

// checkName checks that a mount name is one path component.
func checkName(n string) error {
	switch {
	case n == "":
		return errors.New("missing or empty (want a name of one path component)")
	case n == "." || n == "..":
		return fmt.Errorf("%q is not a name", n)
	case strings.IndexByte(n, '/') >= 0:
		return fmt.Errorf("%q contains \"/\" (want one path component)", n)
	case strings.IndexByte(n, 0) >= 0:
		return fmt.Errorf("%q contains NUL", n)
	case len(n) > MaxNameLen:
		return fmt.Errorf("name of %d bytes is longer than %d", len(n), MaxNameLen)
	}
	return nil
}

// checkImage checks that the image of m exists, is a regular file or a
// block device, and (when it can tell) holds the file system of m.Type.
func checkImage(key string, m *Mount, typeOK bool, col *collector) {
	// O_NONBLOCK: a FIFO swapped in after a stat must not hang the open.
	f, err := os.OpenFile(m.Image, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			col.add(key+".image", "%q does not exist", m.Image)
		} else {
			col.add(key+".image", "cannot open %q: %v", m.Image, unwrapPath(err))
		}
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		col.add(key+".image", "cannot stat %q: %v", m.Image, unwrapPath(err))
		return
	}
	mode := st.Mode()
	isBlock := mode&fs.ModeDevice != 0 && mode&fs.ModeCharDevice == 0
	if !mode.IsRegular() && !isBlock {
		col.add(key+".image", "%q is not a regular file or a block device (it is %s)", m.Image, modeName(mode))
		return
	}
	if !typeOK || m.Partition != "" {
		return // partition tables are the kernel's business
	}
	size := st.Size()
	if isBlock {
		if size, err = f.Seek(0, io.SeekEnd); err != nil {
			col.add(key+".image", "cannot size %q: %v", m.Image, unwrapPath(err))
			return
		}
	}
	if m.Type == "auto" {
		if _, err := probeAny(f, size); err != nil {
			col.add(key+".image", "%q: %v", m.Image, err)
		}
		return
	}
	d, ok := vnodeops.Lookup(m.Type)
	if !ok || d.Probe == nil {
		return // the kernel reports a missing driver at mount time
	}
	match, err := probeOne(d, f, size)
	if err != nil {
		col.add(key+".image", "%q: %v", m.Image, err)
		return
	}
	if !match {
		hint := ""
		if other, err := probeAny(f, size); err == nil {
			hint = fmt.Sprintf(" (it looks like %s)", other)
		}
		col.add(key+".type", "image %q does not hold a %s file system%s", m.Image, m.Type, hint)
	}
}

// probeOne runs a driver's probe, turning a panic of a buggy probe into an
// error.
func probeOne(d vnodeops.Driver, r io.ReaderAt, size int64) (match bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("probe of driver %s panicked: %v", d.Name, p)
		}
	}()
	return d.Probe(r, size), nil
}

// probeAny is vnodeops.Probe with the same protection as probeOne.
func probeAny(r io.ReaderAt, size int64) (name string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("probing panicked: %v", p)
		}
	}()
	return vnodeops.Probe(r, size)
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func modeName(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file"
}

func sortedOptionKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
