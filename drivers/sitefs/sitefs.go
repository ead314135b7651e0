// Package sitefs is the driver for a site's own files: the environment
// rewrite of restored data (the seed's step 5), the sandbox wipe, and the
// site's installation manifest. It runs at the site whose files it touches,
// like every other driver.
package sitefs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
)

// Rewrite replaces from with to in every regular file matching the patterns
// (globs relative to the site's data root). It returns how many files
// matched and which changed, relative to the root. Running it twice changes
// nothing more.
func Rewrite(site drivers.Site, patterns []string, from, to string) (files int, changed []string, err error) {
	root, err := storage.DataRoot(site)
	if err != nil {
		return 0, nil, drivers.BadSettings(err)
	}
	for _, pattern := range patterns {
		if filepath.IsAbs(pattern) || strings.Contains(pattern, "..") {
			return files, changed, drivers.BadSettings(fmt.Errorf("pattern %q must be relative to the data root", pattern))
		}
		matches, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			return files, changed, drivers.BadSettings(err)
		}
		sort.Strings(matches)
		for _, f := range matches {
			did, err := rewriteFile(f, from, to)
			if err != nil {
				return files, changed, err
			}
			files++
			if did {
				rel, _ := filepath.Rel(root, f)
				changed = append(changed, rel)
			}
		}
	}
	return files, changed, nil
}

func rewriteFile(path, from, to string) (bool, error) {
	st, err := os.Stat(path)
	if err != nil || !st.Mode().IsRegular() {
		return false, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	if from == to || !bytes.Contains(data, []byte(from)) {
		return false, nil
	}
	out := bytes.ReplaceAll(data, []byte(from), []byte(to))
	return true, catalog.WriteFileAtomic(path, out, st.Mode().Perm())
}

// Wipe empties a site's data root and returns how many entries it removed;
// a missing root is created empty.
func Wipe(site drivers.Site) (int, error) {
	root, err := storage.DataRoot(site)
	if err != nil {
		return 0, drivers.BadSettings(err)
	}
	entries, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, os.MkdirAll(root, 0o755)
	}
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(root, e.Name())); err != nil {
			return 0, fmt.Errorf("wipe %s: %w", site.Name, err)
		}
	}
	return len(entries), nil
}

// Installation reads a site's installation manifest. The reference may end
// in #key.path to keep only part of the document (the product versions, not
// the host name or when it was written).
func Installation(site, reference string) ([]byte, error) {
	ref, sel, _ := strings.Cut(reference, "#")
	path, err := drivers.ExpandPath(ref)
	if err != nil {
		return nil, drivers.BadSettings(fmt.Errorf("site %s installation: %w", site, err))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("site %s installation manifest: %w", site, err)
	}
	if sel == "" {
		return data, nil
	}
	var doc any
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, drivers.BadSettings(fmt.Errorf("installation manifest of %s is not JSON: %w", site, err))
	}
	for _, k := range strings.Split(sel, ".") {
		m, ok := doc.(map[string]any)
		if !ok {
			return nil, drivers.BadSettings(fmt.Errorf("installation manifest of %s has no %q", site, sel))
		}
		if doc, ok = m[k]; !ok {
			return nil, drivers.BadSettings(fmt.Errorf("installation manifest of %s has no %q", site, sel))
		}
	}
	return json.Marshal(doc)
}
