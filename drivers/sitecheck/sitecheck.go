// Package sitecheck checks, at the site it runs at, the prerequisites of a
// restore there that the BPM seed lists (000 §3): host names that answer
// with the same addresses at both sites, the shared file systems mounted,
// the installation paths present. It only reads (a writable mount is tried
// with a file it removes at once).
package sitecheck

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Resolve returns the sorted addresses name resolves to here.
func Resolve(ctx context.Context, name string) ([]string, error) {
	addrs, err := net.DefaultResolver.LookupHost(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", name, err)
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}

// Mount is a mount point as the kernel lists it.
type Mount struct {
	Path   string
	Type   string
	Source string
}

// MountsFile is the kernel's list of this process's mounts.
const MountsFile = "/proc/self/mountinfo"

// FindMount returns the mount whose mount point is path exactly (symlinks
// resolved), or false when path is not a mount point.
func FindMount(path string) (Mount, bool, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return Mount{}, false, err
	}
	f, err := os.Open(MountsFile)
	if err != nil {
		return Mount{}, false, err
	}
	defer f.Close()
	var found Mount
	ok := false
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		m, good := parseMountInfo(sc.Text())
		// The last mount on a point is the one in effect.
		if good && m.Path == real {
			found, ok = m, true
		}
	}
	return found, ok, sc.Err()
}

// parseMountInfo reads one line of /proc/self/mountinfo: the mount point is
// the fifth field; after the " - " separator come the type and source.
func parseMountInfo(line string) (Mount, bool) {
	left, right, ok := strings.Cut(line, " - ")
	if !ok {
		return Mount{}, false
	}
	lf, rf := strings.Fields(left), strings.Fields(right)
	if len(lf) < 5 || len(rf) < 2 {
		return Mount{}, false
	}
	return Mount{Path: unescape(lf[4]), Type: rf[0], Source: unescape(rf[1])}, true
}

// unescape undoes the kernel's octal escapes of spaces and the like.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// TypeMatches says whether a mount's type is the one wanted: nfs stands
// for every NFS version.
func TypeMatches(got, want string) bool {
	if want == "" || got == want {
		return true
	}
	return want == "nfs" && strings.HasPrefix(got, "nfs")
}

// Writable tries to create and remove a file in dir.
func Writable(dir string) error {
	f, err := os.CreateTemp(dir, ".drover-sitecheck-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}
