package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/rump9p/rump9p/config"
	"github.com/rump9p/rump9p/p9srv"
	"github.com/rump9p/rump9p/vnodeops"
)

// Host user database files, read for security.identity "host".
var (
	passwdFile = "/etc/passwd"
	groupFile  = "/etc/group"
)

// identityOptions sets the identity policy of o from cfg's security
// section: "client" as it is, "map" from security.users, "host" from the
// host's passwd and group files.
func identityOptions(cfg *config.Config, o *p9srv.Options) error {
	switch cfg.Security.Identity {
	case "host":
		users, err := hostUsers(passwdFile, groupFile)
		if err != nil {
			return err
		}
		o.Identity, o.Users = p9srv.IdentityListed, users
	case "map":
		o.Identity = p9srv.IdentityListed
		o.Users = make(map[uint32]vnodeops.Cred, len(cfg.Security.Users))
		for uid, u := range cfg.Security.Users {
			o.Users[uid] = vnodeops.Cred{UID: uid, GID: u.GID, Groups: append([]uint32(nil), u.Groups...)}
		}
	default:
		o.Identity = p9srv.IdentityClient
	}
	return nil
}

// hostUsers reads a passwd(5) and a group(5) file and returns every uid's
// primary gid and supplementary groups (the groups whose member list names
// the user). Lines that do not parse are skipped; the first entry of a
// uid wins, as getpwuid does.
func hostUsers(passwdPath, groupPath string) (map[uint32]vnodeops.Cred, error) {
	names := map[string]uint32{} // user name -> uid
	users := map[uint32]vnodeops.Cred{}
	err := readColonFile(passwdPath, func(f []string) {
		// name:password:uid:gid:gecos:home:shell
		if len(f) < 4 {
			return
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			return
		}
		if _, dup := users[uint32(uid)]; dup {
			return
		}
		users[uint32(uid)] = vnodeops.Cred{UID: uint32(uid), GID: uint32(gid)}
		if _, dup := names[f[0]]; !dup {
			names[f[0]] = uint32(uid)
		}
	})
	if err != nil {
		return nil, err
	}
	err = readColonFile(groupPath, func(f []string) {
		// name:password:gid:member,member
		if len(f) < 4 || f[3] == "" {
			return
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return
		}
		for _, member := range strings.Split(f[3], ",") {
			uid, ok := names[strings.TrimSpace(member)]
			if !ok {
				continue
			}
			c := users[uid]
			if !c.InGroup(uint32(gid)) {
				c.Groups = append(c.Groups, uint32(gid))
				users[uid] = c
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return users, nil
}

// readColonFile calls fn with the fields of every line of a colon
// separated file, skipping blank lines and comments.
func readColonFile(path string, fn func([]string)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("security.identity host: %w", err)
	}
	defer f.Close()
	return scanColonLines(f, path, fn)
}

func scanColonLines(r io.Reader, path string, fn func([]string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fn(strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("security.identity host: reading %s: %w", path, err)
	}
	return nil
}
