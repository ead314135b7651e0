package tests

import (
	"context"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/contract"
	labkeys "github.com/drover-dr/drover/examples/keys/lab"
	"github.com/drover-dr/drover/workflows"
)

// chromiumPath finds Debian's chromium: a missing browser skips the test,
// except in CI, which installs it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found (CI installs Debian's chromium): %v", err)
		}
		t.Skip("chromium not found: apt-get install chromium")
	}
	return path
}

// A gate that needs two of three people, as the first gate of a planned
// failover.
const twoOfThreeGate = `
  - name: planned-failover-primary
    approvers: [alice, bob, carol]
    quorum: 2
    timeout: 30m
    onTimeout: abort
    checklist:
      - Tell the users of dc1 it is drained for the switchover
`

// TestWebUIShowsTheWaitingGate opens a planned failover waiting at a
// two-of-three gate, approved once by alice, in the Temporal Web UI in
// headless Chromium: the run's page names the gate, its approvers, the
// quorum reached so far and who approved, its checklist and the command
// to approve, without anyone sending a query.
func TestWebUIShowsTheWaitingGate(t *testing.T) {
	if testing.Short() {
		t.Skip("lab end-to-end test")
	}
	chromium := chromiumPath(t)
	e := newLabEnv(t, envOptions{name: "webui", webUI: true, edit: func(s string) string {
		return strings.Replace(s, "\ngates:\n", "\ngates:"+twoOfThreeGate, 1)
	}})
	e.up()
	e.enable()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	id := contract.SwitchoverID(e.p.Name)
	run, err := e.start(ctx, id, contract.KindFailover, workflows.FailoverWorkflow, workflows.FailoverInput{Plan: *e.p, Planned: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.c.TerminateWorkflow(context.Background(), id, "", "the Web UI test is over") })
	waitGate(t, ctx, e.c, id, contract.GatePlannedPrimary, 2*time.Minute)
	payload, err := labkeys.Payload(ctx, e.c, id, contract.GatePlannedPrimary, "alice", contract.DecisionApprove, "dc1's users are told")
	require.NoError(t, err)
	require.NoError(t, e.c.SignalWorkflow(ctx, id, "", contract.SignalApprove, payload))
	require.Eventually(t, func() bool {
		st, err := queryStatus(ctx, e.c, id)
		if err != nil {
			return false
		}
		for _, g := range st.Gates {
			if g.Name == contract.GatePlannedPrimary && len(g.Approvals) == 1 {
				return true
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "alice's approval counted")

	page := e.srv.UIURL() + "/namespaces/" + url.PathEscape(e.srv.Namespace()) + "/workflows/" +
		url.PathEscape(id) + "/" + url.PathEscape(run.GetRunID()) + "/history"
	// The run's current details are on its User Metadata tab.
	text := pageText(t, ctx, chromium, page, "User Metadata", "Waiting at gate")
	for _, want := range []string{
		contract.GatePlannedPrimary,
		"alice, bob, carol",
		"1 of 2",
		"alice (approve)",
		"Tell the users of dc1 it is drained for the switchover",
		"drover approve " + id + " --gate " + contract.GatePlannedPrimary,
	} {
		assert.Contains(t, text, want, "the run's page in the Web UI")
	}
}

// pageText opens page in headless Chromium, opens its tab labelled tab (if
// given) and returns the page's text once it contains want (the UI renders
// after it loads), or fails with what it showed.
func pageText(t *testing.T, ctx context.Context, chromium, page, tab, want string) string {
	t.Helper()
	dir := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(filepath.Join(dir, "profile")), chromedp.WindowSize(1400, 2000))
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	_, err := chromedp.Run(bctx, chromedp.Navigate(page))
	require.NoError(t, err, "open %s", page)
	var text string
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		// The UI renders user markdown (current details) in sandboxed
		// iframes: their text is read from their srcdoc.
		got, err := chromedp.Run(bctx, chromedp.Evaluate[string](`(document.body ? document.body.innerText : "") + "\n" +
			[...document.querySelectorAll('iframe')].map(f => {
				try { return f.contentDocument.body.innerText; } catch (e) { return f.srcdoc || ""; }
			}).join("\n")`))
		if err == nil {
			text = got
			if strings.Contains(text, want) {
				return text
			}
		}
		if tab != "" {
			// Open the tab (a link or button labelled so) once it is drawn.
			_, _ = chromedp.Run(bctx, chromedp.Evaluate[bool](`(() => {
				const el = [...document.querySelectorAll('a, button, [role=tab]')].find(e => e.innerText.trim() === `+strconv.Quote(tab)+`);
				if (el) { el.click(); return true; }
				return false;
			})()`))
		}
		time.Sleep(time.Second)
	}
	if shot, err := chromedp.Run(bctx, chromedp.FullScreenshot(80)); err == nil {
		path := filepath.Join(os.TempDir(), "drover-webui-"+time.Now().Format("150405")+".jpg")
		if os.WriteFile(path, shot, 0o644) == nil {
			t.Logf("screenshot: %s", path)
		}
	}
	t.Fatalf("%s never showed %q; it shows:\n%s", page, want, text)
	return ""
}
