package starter

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/storage"
	"github.com/drover-dr/drover/drivers/storage/archive"
)

// planWithStore writes the golden plan with its store moved to a temp dir.
func planWithStore(t *testing.T, store string) string {
	t.Helper()
	b, err := os.ReadFile(goldenPlan)
	require.NoError(t, err)
	s := strings.Replace(string(b), "path: /drover/recovery-points", "path: "+store, 1)
	require.NotEqual(t, string(b), s, "the golden plan's store path moved; update this test")
	f := filepath.Join(t.TempDir(), "plan.yaml")
	require.NoError(t, os.WriteFile(f, []byte(s), 0o644))
	return f
}

func makePoint(t *testing.T, store *catalog.Store, data, id string, mode catalog.Mode, base string) {
	t.Helper()
	makePointPaused(t, store, data, id, mode, base, nil)
}

// makePointPaused makes a point whose capture paused writes for window q.
func makePointPaused(t *testing.T, store *catalog.Store, data, id string, mode catalog.Mode, base string, q *catalog.QuiesceWindow) {
	t.Helper()
	d := archive.New(nil)
	req := storage.Request{Plan: "bpm-golden", PointID: id, Store: store.Root, Mode: mode, BaseID: base, Quiesced: true,
		Site:  drivers.Site{Settings: map[string]any{"dataRoot": data}},
		Group: storage.Group{Name: "cell", Driver: "archive", Components: []string{"db2"}}}
	_, err := d.Capture(context.Background(), req, nil)
	require.NoError(t, err)
	_, err = store.Commit("bpm-golden", id, catalog.CommitInfo{Mode: mode, BaseID: base, Started: time.Now(), Ended: time.Now(), Groups: []string{"cell"}, Quiesce: q})
	require.NoError(t, err)
}

// pointsFixture is an empty store, a member's data to capture into it, and
// the golden plan pointing at the store.
func pointsFixture(t *testing.T) (store *catalog.Store, data, planFile string) {
	t.Helper()
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	data = filepath.Join(dir, "data")
	require.NoError(t, os.MkdirAll(storeDir, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(data, "db2"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(data, "db2", "t.dat"), []byte("rows"), 0o644))
	store, err := catalog.Open(storeDir)
	require.NoError(t, err)
	return store, data, planWithStore(t, storeDir)
}

func TestPointsList(t *testing.T) {
	store, data, planFile := pointsFixture(t)

	code, out, errs := runDrover("points", "list", "--plan", planFile)
	require.Equal(t, ExitOK, code, errs)
	assert.Contains(t, out, "no recovery points of plan bpm-golden")

	makePoint(t, store, data, "20260302T100000Z-000001", catalog.ModeFull, "")
	paused := time.Date(2026, 3, 2, 11, 0, 0, 0, time.UTC)
	makePointPaused(t, store, data, "20260302T110000Z-000002", catalog.ModeCumulative, "20260302T100000Z-000001",
		&catalog.QuiesceWindow{Start: paused, End: paused.Add(1750 * time.Millisecond), Components: []string{"db2"}})
	makePoint(t, store, data, "20260302T120000Z-000003", catalog.ModeFull, "")
	require.NoError(t, store.SetValidity("bpm-golden", "20260302T100000Z-000001", catalog.Validity{State: catalog.Valid, Run: "v1"}))
	require.NoError(t, store.SetValidity("bpm-golden", "20260302T120000Z-000003", catalog.Validity{State: catalog.Invalid, Reason: "consistency level: ledger mismatch"}))
	// A damaged manifest is listed, not fatal.
	require.NoError(t, os.MkdirAll(store.PointDir("bpm-golden", "broken"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(store.PointDir("bpm-golden", "broken"), catalog.ManifestFile), []byte("{"), 0o644))

	code, out, errs = runDrover("points", "list", "--plan", planFile)
	require.Equal(t, ExitOK, code, errs)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.GreaterOrEqual(t, len(lines), 5, out)
	assert.Regexp(t, `^ID\s+AGE\s+MODE\s+CONSISTENCY\s+PAUSED\s+VALIDITY\s+SIZE$`, lines[0])
	assert.Regexp(t, `^20260302T120000Z-000003\s+\d+\w+\s+full\s+quiesced\s+-\s+invalid\s+\d`, lines[1], "newest first")
	assert.Regexp(t, `^20260302T110000Z-000002\s+\S+\s+cumulative of 20260302T100000Z-000001\s+quiesced\s+1\.75s\s+unverified`, lines[2], "how long writes were paused")
	assert.Regexp(t, `^20260302T100000Z-000001\s+\S+\s+full\s+quiesced\s+-\s+valid`, lines[3])
	assert.Contains(t, out, "broken")
	assert.Contains(t, out, "unreadable")
	assert.Contains(t, out, "invalid: consistency level: ledger mismatch")

	code, out, errs = runDrover("points", "list", "--plan", planFile, "--output", "json")
	require.Equal(t, ExitOK, code, errs)
	var doc struct {
		Plan   string
		Points []map[string]any
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	assert.Equal(t, "bpm-golden", doc.Plan)
	require.Len(t, doc.Points, 4)
	byID := map[string]map[string]any{}
	for _, p := range doc.Points {
		byID[p["id"].(string)] = p
	}
	assert.Equal(t, "valid", byID["20260302T100000Z-000001"]["validity"].(map[string]any)["state"])
	assert.Equal(t, 1.75e9, byID["20260302T110000Z-000002"]["quiesce"].(map[string]any)["duration"], "the window in nanoseconds")
	assert.Greater(t, byID["20260302T100000Z-000001"]["ageSeconds"].(float64), 0.0)
	assert.NotEmpty(t, byID["broken"]["problem"])
}

func TestPointsDescribeShowsHowLongWritesWerePaused(t *testing.T) {
	store, data, planFile := pointsFixture(t)
	paused := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	makePointPaused(t, store, data, "20260302T100000Z-000001", catalog.ModeFull, "",
		&catalog.QuiesceWindow{Start: paused, End: paused.Add(2345 * time.Millisecond), Components: []string{"db2"}})
	makePoint(t, store, data, "20260302T110000Z-000002", catalog.ModeCumulative, "20260302T100000Z-000001")

	code, out, errs := runDrover("points", "describe", "20260302T100000Z-000001", "--plan", planFile)
	require.Equal(t, ExitOK, code, errs)
	assert.Regexp(t, `(?m)^writes paused\s+2\.345s \(db2\), 10:00:00\.000 to 10:00:02\.345Z$`, out)
	assert.Regexp(t, `(?m)^mode\s+full$`, out)
	assert.Regexp(t, `(?m)^cell\s+archive\s+tar\+zstd\s+quiesced\s+db2\s+1\s`, out, "the group with its members and files")

	code, out, errs = runDrover("points", "describe", "20260302T110000Z-000002", "--plan", planFile)
	require.Equal(t, ExitOK, code, errs)
	assert.Regexp(t, `(?m)^writes paused\s+none recorded`, out)
	assert.Regexp(t, `(?m)^mode\s+cumulative of 20260302T100000Z-000001$`, out)

	code, out, errs = runDrover("points", "describe", "20260302T100000Z-000001", "--plan", planFile, "--output", "json")
	require.Equal(t, ExitOK, code, errs)
	var doc struct {
		ID      string
		Quiesce *catalog.QuiesceWindow
		Groups  []struct{ Name string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	require.NotNil(t, doc.Quiesce)
	assert.Equal(t, 2345*time.Millisecond, doc.Quiesce.Duration)
	assert.Len(t, doc.Groups, 1)

	code, _, errs = runDrover("points", "describe", "20260302T990000Z-000009", "--plan", planFile)
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "no such recovery point")
}

func TestPointsListBadInput(t *testing.T) {
	code, _, errs := runDrover("points", "list")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, "--plan: required")

	code, _, errs = runDrover("points", "list", "--plan", filepath.Join(t.TempDir(), "nope.yaml"))
	assert.Equal(t, ExitBadInput, code, errs)

	// A store that is not there (an NFS mount that is not mounted) is a
	// failed run, not bad input.
	code, _, errs = runDrover("points", "list", "--plan", planWithStore(t, filepath.Join(t.TempDir(), "not-mounted")))
	assert.Equal(t, ExitRunFailed, code)
	assert.Contains(t, errs, "not-mounted")
}

func TestPointsValidateBadInput(t *testing.T) {
	useFakePlanChecker(t)
	t.Setenv("TEMPORAL_ADDRESS", "127.0.0.1:1") // nothing listens
	code, _, errs := runDrover("points", "validate", "p1")
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, `required flag(s) "plan" not set`)

	missing := filepath.Join(t.TempDir(), "nope.yaml")
	code, _, errs = runDrover("points", "validate", "p1", "--plan", missing)
	assert.Equal(t, ExitBadInput, code)
	assert.Contains(t, errs, missing)

	b, err := os.ReadFile(goldenPlan)
	require.NoError(t, err)
	noSandbox := regexp.MustCompile(`(?m)^  sandbox:\n(^    .*\n|^      .*\n)+`).ReplaceAllString(string(b), "")
	require.NotEqual(t, string(b), noSandbox, "the golden plan's sandbox moved; update this test")
	f := filepath.Join(t.TempDir(), "no-sandbox.yaml")
	require.NoError(t, os.WriteFile(f, []byte(noSandbox), 0o644))
	code, out, errs := runDrover("points", "validate", "p1", "--plan", f)
	assert.Equal(t, ExitBadInput, code, errs)
	assert.Contains(t, errs, f+": sites.sandbox: validation restores into an isolated sandbox site; the plan has none")
	assert.Empty(t, out)

	// The plan is fine; Temporal is not there: a failed run.
	code, _, errs = runDrover("points", "validate", "p1", "--plan", goldenPlan)
	assert.Equal(t, ExitRunFailed, code)
	assert.Contains(t, errs, "connect to Temporal at 127.0.0.1:1")
}

func TestFormatAge(t *testing.T) {
	assert.Equal(t, "42s", formatAge(42*time.Second))
	assert.Equal(t, "17m", formatAge(17*time.Minute+3*time.Second))
	assert.Equal(t, "3h05m", formatAge(3*time.Hour+5*time.Minute))
	assert.Equal(t, "2d04h", formatAge(52*time.Hour))
}
