package lvm

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// LV is one line of `lvs --noheadings --separator '|' -o lv_name,origin,lv_attr,lv_time VG`.
type LV struct {
	Name   string
	Origin string
	Attr   string
	Time   time.Time // zero when lvs did not print it
}

// Snapshot reports whether the volume is a snapshot (attr 's' or 'S').
func (lv LV) Snapshot() bool {
	return len(lv.Attr) > 0 && (lv.Attr[0] == 's' || lv.Attr[0] == 'S')
}

// Invalid reports a snapshot that overflowed its copy-on-write space
// (state 'I' in the fifth attr character, or 'S' for a merging invalid one):
// its content can no longer be trusted.
func (lv LV) Invalid() bool {
	return len(lv.Attr) >= 5 && lv.Attr[4] == 'I' || len(lv.Attr) > 0 && lv.Attr[0] == 'S'
}

// lvsFields are the columns ParseLVS reads, in order.
var lvsFields = []string{"lv_name", "origin", "lv_attr", "lv_time"}

// ParseLVS reads lvs output in the format above. Blank lines are skipped;
// a line with the wrong number of fields, an empty or odd name or a bad
// time is an error naming the line.
func ParseLVS(out string) ([]LV, error) {
	var lvs []LV
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Split(line, "|")
		if len(f) != len(lvsFields) {
			return nil, fmt.Errorf("lvs line %d: %d fields, want %d (%s): %q", n, len(f), len(lvsFields), strings.Join(lvsFields, ","), line)
		}
		for i := range f {
			f[i] = strings.TrimSpace(f[i])
		}
		lv := LV{Name: f[0], Origin: f[1], Attr: f[2]}
		if !validLVName(lv.Name) {
			return nil, fmt.Errorf("lvs line %d: bad volume name %q", n, lv.Name)
		}
		if lv.Origin != "" && !validLVName(lv.Origin) {
			return nil, fmt.Errorf("lvs line %d: bad origin %q", n, lv.Origin)
		}
		if f[3] != "" {
			t, err := time.Parse("2006-01-02 15:04:05 -0700", f[3])
			if err != nil {
				return nil, fmt.Errorf("lvs line %d: time %q: %w", n, f[3], err)
			}
			lv.Time = t
		}
		lvs = append(lvs, lv)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lvs: %w", err)
	}
	return lvs, nil
}

// validLVName follows lvm's rule: letters, digits, "+_.-", not starting
// with '-', at most 127 characters.
func validLVName(s string) bool {
	if s == "" || len(s) > 127 || s[0] == '-' || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.ContainsRune("+_.-", c):
		default:
			return false
		}
	}
	return true
}

// ParseMountinfo returns the mount points listed in /proc/self/mountinfo
// (the fifth field, with the kernel's octal escapes undone).
func ParseMountinfo(data string) (map[string]bool, error) {
	out := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 10 {
			return nil, fmt.Errorf("mountinfo line %d: %d fields, want at least 10", n, len(f))
		}
		p, err := unescapeOctal(f[4])
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}
		out[p] = true
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return out, nil
}

// unescapeOctal undoes the kernel's \NNN escapes (space, tab, newline,
// backslash) in mountinfo paths.
func unescapeOctal(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+4 > len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		v, err := strconv.ParseUint(s[i+1:i+4], 8, 8)
		if err != nil {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		b.WriteByte(byte(v))
		i += 3
	}
	return b.String(), nil
}
