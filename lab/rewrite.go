package lab

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

// RewriteHosts replaces one host with another in every server's
// configuration files under a data root: the seed's step 5 ("update the
// host name, point the data source at the secondary database"). drover's
// workflows do this through the plan's environment rewrites; the lab's own
// tests and drills use this. It returns how many files changed.
func RewriteHosts(dataRoot, from, to string) (int, error) {
	if from == "" || to == "" {
		return 0, fmt.Errorf("rewrite hosts: from and to must be set")
	}
	files, err := filepath.Glob(filepath.Join(dataRoot, "*", "config", "*.json"))
	if err != nil {
		return 0, err
	}
	changed := 0
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			return changed, fmt.Errorf("rewrite hosts: %w", err)
		}
		out := bytes.ReplaceAll(data, []byte(from), []byte(to))
		if bytes.Equal(out, data) {
			continue
		}
		if err := writeFileAtomic(path, out, 0o644); err != nil {
			return changed, err
		}
		changed++
	}
	return changed, nil
}
