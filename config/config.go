// Package config turns rump9p's configuration — a YAML, TOML or JSON file,
// RUMP9P_* environment variables and command-line flags — into typed,
// validated values. It is the only package that reads configuration; the
// command builds the kernel and the server from a [*Config].
//
// # Layers
//
// [Load] merges, from lowest to highest precedence: the built-in defaults,
// the file, the environment, and the flags that were set explicitly. A
// later layer replaces a scalar or a list of an earlier one as a whole and
// merges into maps key by key (so RUMP9P_LOG_LEVEL changes log.level and
// keeps the file's log.format).
//
// # Errors
//
// Load reports every problem it finds at once, as an [Errors] value whose
// entries are [*Error]s naming the key path (listen[1], mounts[2].type,
// security.squash.uid) and the bad value. Problems reading or parsing the
// file itself are returned as plain errors naming the file.
//
// The key reference, with every default and rule, is REFERENCE.md beside
// this file.
package config

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// Default values of the scalar keys.
const (
	DefaultListen               = "tcp:127.0.0.1:5640"
	DefaultMsize                = 1 << 20  // 1 MiB
	DefaultCache                = 64 << 20 // 64 MiB
	DefaultLogLevel             = "info"
	DefaultLogFormat            = "text"
	DefaultMaxConnections       = 64
	DefaultMaxFidsPerConnection = 4096
	DefaultIdentity             = "client"
	DefaultMaxInflight          = 64
	DefaultMaxConnectionMemory  = 32 << 20  // 32 MiB
	DefaultMaxMemory            = 256 << 20 // 256 MiB
	// MinMemoryBudget is the smallest max_memory or
	// max_memory_per_connection accepted.
	MinMemoryBudget = 64 << 10
)

// Limits checked by validation.
const (
	MinMsize = 8 << 10   // 8 KiB
	MaxMsize = 4 << 20   // 4 MiB
	MinCache = 256 << 10 // 256 KiB
	// MaxNameLen is the longest mount name, in bytes.
	MaxNameLen = 255
)

// Config is the effective configuration. The zero value is not useful;
// start from [Defaults] or [Load].
type Config struct {
	// Listen is key `listen`: where the 9P server accepts connections, a
	// list of "tcp:HOST:PORT", "unix:PATH" or "stdio". Default
	// ["tcp:127.0.0.1:5640"]: loopback only. A non-loopback address is
	// used only when written explicitly, and an empty HOST ("tcp::5640")
	// is rejected rather than read as "every address". At least one
	// listener; no duplicates; at most one stdio.
	Listen []Listener

	// Msize is key `msize`: the largest 9P message the server negotiates.
	// A size (see [ParseSize]); default 1 MiB; valid range 8 KiB .. 4 MiB.
	Msize Size

	// Cache is key `cache`: the buffer cache budget of each image mount.
	// A size; default 64 MiB; at least 256 KiB.
	Cache Size

	// Log is key `log`.
	Log Log

	// Mounts is key `mounts`: the file systems to serve, each attachable
	// by its name. When no configuration file is given at all, the
	// default is one empty tmpfs called "tmp"; a file that gives no mounts
	// is an error (a server with nothing to serve).
	Mounts []Mount

	// Security is key `security`.
	Security Security
}

// Listener is one parsed entry of `listen`.
type Listener struct {
	// Network is "tcp", "unix" or "stdio".
	Network string
	// Address is HOST:PORT for tcp (as net.Listen takes it; IPv6 hosts in
	// brackets), the socket path for unix (a leading "@" names a Linux
	// abstract socket), and "" for stdio.
	Address string
}

// String returns the listener in the syntax of the `listen` key.
func (l Listener) String() string {
	if l.Network == "stdio" {
		return "stdio"
	}
	return l.Network + ":" + l.Address
}

// Log is key `log`.
type Log struct {
	// Level is key `log.level`: "debug", "info", "warn" or "error"
	// (case-insensitive, stored in lower case). Default "info".
	Level string
	// Format is key `log.format`: "text" or "json" (case-insensitive,
	// stored in lower case). Default "text".
	Format string
}

// SlogLevel returns Level as a slog.Level; an invalid level gives
// slog.LevelInfo (Load never returns one).
func (l Log) SlogLevel() slog.Level {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Mount is one entry of `mounts`.
type Mount struct {
	// Name is key `mounts[i].name`: the attach name (aname) a 9P client
	// gives to reach this file system. Required; one path component:
	// not empty, not "." or "..", no "/" or NUL, at most 255 bytes; unique
	// among the mounts.
	Name string

	// Type is key `mounts[i].type`: one of tmpfs, ffs, ext2fs, msdosfs,
	// cd9660 ([vnodeops.KnownTypes]) or "auto" (probe the image).
	// Required. When the driver of the type is registered in this binary
	// and no partition is given, the image must carry that file system's
	// magic; for "auto" some registered driver must recognise it. A type
	// whose driver is not in this binary is accepted here and reported by
	// the kernel at mount time.
	Type string

	// Image is key `mounts[i].image`: the image file or block device.
	// Required for every type but tmpfs, forbidden for tmpfs. A relative
	// path is taken relative to the directory of the configuration file
	// (and stored resolved). Load checks that it exists and is a regular
	// file or a block device.
	Image string

	// Partition is key `mounts[i].partition`: "" (the whole image, the
	// default), "auto" (the first partition holding a known file system)
	// or a positive partition number, 1-based, written as an integer or a
	// string and stored as its decimal string. When set, the magic check
	// of Type is skipped: partition tables are the kernel's business.
	Partition string

	// ReadOnly is key `mounts[i].readonly`: mount read-only (the image is
	// opened read-only and every write fails with EROFS). Default false.
	ReadOnly bool

	// Options is key `mounts[i].options`: driver-specific options, a map
	// of string to string; numbers and booleans are turned into their
	// decimal / "true" / "false" strings and a null value into "". Keys
	// must be non-empty; keys and values may not contain NUL. The driver
	// rejects keys it does not know, at mount time.
	Options map[string]string
}

// Security is key `security`.
type Security struct {
	// Squash is key `security.squash`: absent or false for none, or a map
	// {uid, gid}: every request then acts as that uid and gid, whatever
	// the client attached as (diod's allsquash). Both uid and gid are
	// required, each in 0 .. 4294967294.
	Squash *Squash

	// ReadOnly is key `security.readonly`: serve every mount read-only,
	// whatever its own readonly says. Default false.
	ReadOnly bool

	// MaxConnections is key `security.max_connections`: the most client
	// connections served at once. Default 64; must be > 0.
	MaxConnections int

	// MaxFidsPerConnection is key `security.max_fids_per_connection`: the
	// most fids one connection may hold. Default 4096; must be > 0.
	MaxFidsPerConnection int

	// MaxInflightPerConnection is key
	// `security.max_inflight_per_connection`: the most requests of one
	// connection being handled or answered at once; past it the server
	// reads no more from that connection until replies drain. Default 64;
	// must be > 0.
	MaxInflightPerConnection int

	// MaxMemoryPerConnection is key `security.max_memory_per_connection`:
	// the buffer memory the requests in flight on one connection may hold
	// (each request counts its message and the largest reply it may get);
	// past it the server stops reading that connection. One request is
	// always admitted, so a connection never stalls for good. A size;
	// default 32 MiB; at least 64 KiB.
	MaxMemoryPerConnection Size

	// MaxMemory is key `security.max_memory`: the same budget across every
	// connection of the server; a connection that would pass it waits
	// (others go on) unless it has nothing in flight. A size; default
	// 256 MiB; at least 64 KiB.
	MaxMemory Size

	// Identity is key `security.identity`: where the groups of the uid a
	// client attaches as come from, since 9P2000.L carries no groups.
	// "client" (default): the client's word, consistently — group checks
	// pass as the client's kernel already made them, and the gid a create
	// names is used as given. "host": the primary gid and supplementary
	// groups of /etc/passwd and /etc/group, as diod does. "map": from
	// security.users. Under host and map a uid not listed has only gid
	// 65534, and a create gets the gid it names only if the caller holds
	// it (else the directory's). Squash, when set, overrides all three.
	Identity string

	// Users is key `security.users`, for identity "map": a map from uid to
	// {gid, groups}, e.g. {1000: {gid: 1000, groups: [4242]}}.
	Users map[uint32]User
}

// User is one entry of security.users.
type User struct {
	GID    uint32
	Groups []uint32
}

// Squash is the identity every request acts as when squashing.
type Squash struct {
	UID uint32
	GID uint32
}

// Defaults returns the built-in configuration: the defaults of every key,
// with the mounts used when no configuration file is given (one tmpfs
// called "tmp").
func Defaults() *Config {
	return &Config{
		Listen: []Listener{{Network: "tcp", Address: "127.0.0.1:5640"}},
		Msize:  DefaultMsize,
		Cache:  DefaultCache,
		Log:    Log{Level: DefaultLogLevel, Format: DefaultLogFormat},
		Mounts: []Mount{{Name: "tmp", Type: "tmpfs"}},
		Security: Security{
			MaxConnections:           DefaultMaxConnections,
			MaxFidsPerConnection:     DefaultMaxFidsPerConnection,
			MaxInflightPerConnection: DefaultMaxInflight,
			MaxMemoryPerConnection:   DefaultMaxConnectionMemory,
			MaxMemory:                DefaultMaxMemory,
			Identity:                 DefaultIdentity,
		},
	}
}

// ParseListener parses one `listen` entry: "tcp:HOST:PORT", "unix:PATH" or
// "stdio". It checks only the syntax of the entry's network; [Validate]
// checks the address.
func ParseListener(s string) (Listener, error) {
	switch {
	case s == "stdio":
		return Listener{Network: "stdio"}, nil
	case strings.HasPrefix(s, "tcp:"):
		return Listener{Network: "tcp", Address: s[len("tcp:"):]}, nil
	case strings.HasPrefix(s, "unix:"):
		return Listener{Network: "unix", Address: s[len("unix:"):]}, nil
	}
	return Listener{}, fmt.Errorf("bad listener %q (want tcp:HOST:PORT, unix:PATH or stdio)", s)
}

// Size is a byte count. In configuration it is written as a non-negative
// integer (bytes) or a string: digits, optional spaces, and an optional
// case-insensitive suffix b, k/kb/kib, m/mb/mib, g/gb/gib or t/tb/tib.
// Every suffix is a power of 1024: "512k", "512KB" and "512KiB" are all
// 524288 bytes.
type Size int64

// String returns the size in the largest binary unit that divides it
// exactly ("64MiB", "1536KiB"), or as plain bytes; the result parses back
// with [ParseSize].
func (s Size) String() string {
	units := []struct {
		suffix string
		shift  uint
	}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}}
	if s > 0 {
		for _, u := range units {
			if s%(1<<u.shift) == 0 {
				return strconv.FormatInt(int64(s>>u.shift), 10) + u.suffix
			}
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// ParseSize parses the string form of a [Size]. It fails on a sign, a
// fraction, an unknown suffix and on overflow of int64.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("bad size %q (want an integer with an optional suffix such as 64KiB, 1M)", s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q (too large)", s)
	}
	if i < len(t) && (t[i] == '.' || t[i] == ',') {
		return 0, fmt.Errorf("bad size %q (want a whole number; write 1536KiB, not 1.5MiB)", s)
	}
	var shift uint
	switch strings.ToLower(strings.TrimSpace(t[i:])) {
	case "", "b":
		shift = 0
	case "k", "kb", "kib":
		shift = 10
	case "m", "mb", "mib":
		shift = 20
	case "g", "gb", "gib":
		shift = 30
	case "t", "tb", "tib":
		shift = 40
	default:
		return 0, fmt.Errorf("bad size %q (unknown suffix %q; want b, k, m, g, t, optionally followed by b or ib)", s, strings.TrimSpace(t[i:]))
	}
	if n > (1<<63-1)>>shift {
		return 0, fmt.Errorf("bad size %q (too large)", s)
	}
	return Size(n << shift), nil
}
