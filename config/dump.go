package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
)

// Dump writes c as a YAML configuration file that Load reads back to an
// equal Config: every key, with defaults filled in, in the order of
// REFERENCE.md. Strings are double-quoted, sizes written with their unit.
func (c *Config) Dump(w io.Writer) error {
	var b bytes.Buffer
	b.WriteString("listen:\n")
	if len(c.Listen) == 0 {
		b.WriteString("  []\n")
	}
	for _, l := range c.Listen {
		fmt.Fprintf(&b, "  - %s\n", quote(l.String()))
	}
	fmt.Fprintf(&b, "msize: %s\n", c.Msize)
	fmt.Fprintf(&b, "cache: %s\n", c.Cache)
	fmt.Fprintf(&b, "log:\n  level: %s\n  format: %s\n", quote(c.Log.Level), quote(c.Log.Format))
	b.WriteString("mounts:\n")
	if len(c.Mounts) == 0 {
		b.WriteString("  []\n")
	}
	for _, m := range c.Mounts {
		fmt.Fprintf(&b, "  - name: %s\n", quote(m.Name))
		fmt.Fprintf(&b, "    type: %s\n", quote(m.Type))
		if m.Image != "" {
			fmt.Fprintf(&b, "    image: %s\n", quote(m.Image))
		}
		if m.Partition != "" {
			fmt.Fprintf(&b, "    partition: %s\n", quote(m.Partition))
		}
		fmt.Fprintf(&b, "    readonly: %t\n", m.ReadOnly)
		if len(m.Options) > 0 {
			b.WriteString("    options:\n")
			for _, k := range sortedOptionKeys(m.Options) {
				fmt.Fprintf(&b, "      %s: %s\n", quote(k), quote(m.Options[k]))
			}
		}
	}
	b.WriteString("security:\n")
	if s := c.Security.Squash; s != nil {
		fmt.Fprintf(&b, "  squash:\n    uid: %d\n    gid: %d\n", s.UID, s.GID)
	} else {
		b.WriteString("  squash: false\n")
	}
	fmt.Fprintf(&b, "  readonly: %t\n", c.Security.ReadOnly)
	fmt.Fprintf(&b, "  max_connections: %d\n", c.Security.MaxConnections)
	fmt.Fprintf(&b, "  max_fids_per_connection: %d\n", c.Security.MaxFidsPerConnection)
	fmt.Fprintf(&b, "  max_inflight_per_connection: %d\n", c.Security.MaxInflightPerConnection)
	fmt.Fprintf(&b, "  max_memory_per_connection: %s\n", c.Security.MaxMemoryPerConnection)
	fmt.Fprintf(&b, "  max_memory: %s\n", c.Security.MaxMemory)
	fmt.Fprintf(&b, "  identity: %s\n", quote(c.Security.Identity))
	if len(c.Security.Users) > 0 {
		b.WriteString("  users:\n")
		uids := make([]uint32, 0, len(c.Security.Users))
		for uid := range c.Security.Users {
			uids = append(uids, uid)
		}
		slices.Sort(uids)
		for _, uid := range uids {
			u := c.Security.Users[uid]
			fmt.Fprintf(&b, "    %d: {gid: %d, groups: [", uid, u.GID)
			for i, g := range u.Groups {
				if i > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "%d", g)
			}
			b.WriteString("]}\n")
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// String returns the YAML that Dump writes.
func (c *Config) String() string {
	var b bytes.Buffer
	_ = c.Dump(&b)
	return b.String()
}

// quote writes s as a YAML double-quoted scalar. JSON's escapes are a
// subset of YAML's, so a JSON string is one; invalid UTF-8 becomes U+FFFD.
func quote(s string) string {
	q, err := json.Marshal(s)
	if err != nil {
		return strconv.Quote(s)
	}
	return string(q)
}
