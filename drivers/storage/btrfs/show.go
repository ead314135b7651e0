package btrfs

import (
	"bufio"
	"fmt"
	"strings"
	"time"
)

// SubvolumeInfo is what `btrfs subvolume show PATH` reports that the
// driver uses.
type SubvolumeInfo struct {
	Name         string
	UUID         string
	ParentUUID   string
	ReceivedUUID string
	Created      time.Time
	ReadOnly     bool
	Generation   string
}

// ParseSubvolumeShow reads the output of `btrfs subvolume show` (btrfs-progs
// 5.x and 6.x print "Key:<tabs>value" lines after the path). Unknown lines
// are ignored; a missing UUID or creation time is an error.
func ParseSubvolumeShow(out string) (SubvolumeInfo, error) {
	var info SubvolumeInfo
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	seenUUID, seenCreated := false, false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch strings.TrimSpace(key) {
		case "Name":
			info.Name = val
		case "UUID":
			if err := checkUUID(val); err != nil {
				return info, fmt.Errorf("btrfs subvolume show: UUID: %w", err)
			}
			info.UUID = val
			seenUUID = true
		case "Parent UUID":
			info.ParentUUID = noneDash(val)
		case "Received UUID":
			info.ReceivedUUID = noneDash(val)
		case "Creation time":
			t, err := time.Parse("2006-01-02 15:04:05 -0700", val)
			if err != nil {
				return info, fmt.Errorf("btrfs subvolume show: creation time %q: %w", val, err)
			}
			info.Created = t
			seenCreated = true
		case "Flags":
			for _, fl := range strings.FieldsFunc(val, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
				if fl == "readonly" {
					info.ReadOnly = true
				}
			}
		case "Generation":
			info.Generation = val
		}
	}
	if err := sc.Err(); err != nil {
		return info, fmt.Errorf("btrfs subvolume show: %w", err)
	}
	if !seenUUID {
		return info, fmt.Errorf("btrfs subvolume show: no UUID line (not a subvolume?)")
	}
	if !seenCreated {
		return info, fmt.Errorf("btrfs subvolume show: no creation time line")
	}
	return info, nil
}

func noneDash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func checkUUID(s string) error {
	if len(s) != 36 {
		return fmt.Errorf("%q is not a UUID", s)
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return fmt.Errorf("%q is not a UUID", s)
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", c) {
				return fmt.Errorf("%q is not a UUID", s)
			}
		}
	}
	return nil
}
