package p2k

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/rump9p/rump9p/vnodeops"
)

// credTTL is how long the supplementary groups read for a (pid, uid, gid)
// are reused.
const credTTL = time.Second

type credKey struct {
	pid, uid, gid uint32
}

type credEntry struct {
	groups []uint32
	at     time.Time
}

// cred is the credential of the caller of a request.
func (s *Server) cred(h *fuse.InHeader) vnodeops.Cred {
	c := vnodeops.Cred{UID: h.Uid, GID: h.Gid}
	if h.Uid == 0 || h.Pid == 0 {
		return c
	}
	key := credKey{h.Pid, h.Uid, h.Gid}
	now := time.Now()
	s.credMu.Lock()
	e, ok := s.credCache[key]
	s.credMu.Unlock()
	if ok && now.Sub(e.at) < credTTL {
		c.Groups = e.groups
		return c
	}
	groups := procGroups(h.Pid)
	s.credMu.Lock()
	if len(s.credCache) > 4096 {
		for k, e := range s.credCache {
			if now.Sub(e.at) >= credTTL {
				delete(s.credCache, k)
			}
		}
	}
	s.credCache[key] = credEntry{groups: groups, at: now}
	s.credMu.Unlock()
	c.Groups = groups
	return c
}

// procGroups reads the supplementary groups of thread pid from the
// "Groups:" line of /proc/PID/status; nil when it cannot.
func procGroups(pid uint32) []uint32 {
	data, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return nil
	}
	return parseGroups(data)
}

// parseGroups finds the "Groups:" line of a /proc/PID/status text.
func parseGroups(status []byte) []uint32 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "Groups:")
		if !ok {
			continue
		}
		var out []uint32
		for _, f := range strings.Fields(rest) {
			g, err := strconv.ParseUint(f, 10, 32)
			if err != nil {
				return out
			}
			out = append(out, uint32(g))
		}
		return out
	}
	return nil
}

// execFusermount runs fusermount3 (or fusermount) with args.
func execFusermount(args ...string) (string, error) {
	bin, err := exec.LookPath("fusermount3")
	if err != nil {
		if bin, err = exec.LookPath("fusermount"); err != nil {
			return "", fmt.Errorf("fusermount3 not found: %w", err)
		}
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}
