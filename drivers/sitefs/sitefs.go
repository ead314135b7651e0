// Package sitefs is the driver for a site's own files: the environment
// rewrite of restored data (the seed's step 5), the sandbox wipe, and the
// site's installation manifest. It runs at the site whose files it touches,
// like every other driver.
package sitefs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// MarkerFile is the file drover writes into a data root it restored into,
// naming the site. Only a data root that carries it, for the same site, is
// ever wiped: drover removes only what it put there.
const MarkerFile = ".drover-site.json"

// Marker is what the marker file says.
type Marker struct {
	Site string `json:"site"`
	Plan string `json:"plan,omitempty"`
	// Note says what the file is for, to whoever finds it.
	Note string `json:"note"`
}

// Mark records that drover restores into site's data root.
func Mark(site drivers.Site, planName string) error {
	root, err := storage.DataRoot(site)
	if err != nil {
		return drivers.BadSettings(err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(Marker{Site: site.Name, Plan: planName,
		Note: "drover restored recovery points into this folder; drills and validations may empty it"})
	if err != nil {
		return err
	}
	return catalog.WriteFileAtomic(filepath.Join(root, MarkerFile), data, 0o644)
}

// Wipe empties a site's data root and returns how many entries it removed;
// a missing root is created empty. It refuses a root that holds anything
// without drover's marker for this site: it could be data drover did not
// put there (a production folder named by mistake).
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
	var names []string
	for _, e := range entries {
		if e.Name() != MarkerFile {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		return 0, nil
	}
	if err := owned(root, site.Name); err != nil {
		return 0, drivers.BadSettings(fmt.Errorf("refusing to wipe %s (data root of site %s, %d entries such as %s): %w",
			root, site.Name, len(names), names[0], err))
	}
	for _, name := range names {
		if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
			return 0, fmt.Errorf("wipe %s: %w", site.Name, err)
		}
	}
	return len(names), nil
}

// owned checks root carries drover's marker for site.
func owned(root, site string) error {
	data, err := os.ReadFile(filepath.Join(root, MarkerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("it carries no %s: drover did not restore into it, so what it holds may not be drover's", MarkerFile)
	}
	if err != nil {
		return err
	}
	var m Marker
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("its %s is not drover's: %w", MarkerFile, err)
	}
	if m.Site != site {
		return fmt.Errorf("its %s says it belongs to site %q", MarkerFile, m.Site)
	}
	return nil
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

// Fingerprint is the checksum of a cell's configuration at a site: its
// installation manifest and the files under the watched folders.
type Fingerprint struct {
	Sum string
	// Parts say what went into the sum, one line each.
	Parts []string
}

// ConfigurationFingerprint fingerprints the installation manifest (when
// installation is not empty) and every regular file under the paths
// matching the patterns (globs relative to the site's data root), by
// relative name and content, in sorted order: the same configuration gives
// the same sum at any time, any change to a file, a name or the manifest
// gives another.
func ConfigurationFingerprint(site drivers.Site, installation string, patterns []string) (Fingerprint, error) {
	var fp Fingerprint
	h := sha256.New()
	if installation != "" {
		data, err := Installation(site.Name, installation)
		if err != nil {
			return fp, err
		}
		sum := sha256.Sum256(data)
		fmt.Fprintf(h, "installation %x\n", sum)
		fp.Parts = append(fp.Parts, fmt.Sprintf("installation manifest %x", sum[:6]))
	}
	if len(patterns) > 0 {
		root, err := storage.DataRoot(site)
		if err != nil {
			return fp, drivers.BadSettings(err)
		}
		for _, pattern := range patterns {
			if filepath.IsAbs(pattern) || strings.Contains(pattern, "..") {
				return fp, drivers.BadSettings(fmt.Errorf("pattern %q must be relative to the data root", pattern))
			}
			matches, err := filepath.Glob(filepath.Join(root, pattern))
			if err != nil {
				return fp, drivers.BadSettings(err)
			}
			sort.Strings(matches)
			files := 0
			for _, m := range matches {
				n, err := hashTree(h, root, m)
				if err != nil {
					return fp, fmt.Errorf("fingerprint %s: %w", pattern, err)
				}
				files += n
			}
			fmt.Fprintf(h, "pattern %s %d\n", pattern, files)
			fp.Parts = append(fp.Parts, fmt.Sprintf("%s: %d files", pattern, files))
		}
	}
	fp.Sum = hex.EncodeToString(h.Sum(nil))
	return fp, nil
}

// hashTree adds every regular file under path (or path itself) to h by
// its name relative to root and its content's checksum.
func hashTree(h io.Writer, root, path string) (int, error) {
	files := 0
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fh := sha256.New()
		if _, err := io.Copy(fh, f); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "file %s %x\n", filepath.ToSlash(rel), fh.Sum(nil))
		files++
		return nil
	})
	return files, err
}
