package tests

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Bad input always gets a clear error naming the file, the field and what is
// wrong, and exit code 2, from the real binary. Each row is one mistake a
// user makes; the message is the one they get.

const goodPlan = `apiVersion: drover/v1
name: shop
rpo: 15m
rto: 1h
products: [shop]
sites:
  primary: {name: dc1}
  secondary: {name: dc2}
gates: [{name: start-secondary, approvers: none}, {name: failback, approvers: none}]
components:
  - name: db
    role: database
    driver: exec
    settings: {start: "true", stop: "true", status: "true"}
  - name: app
    role: app
    product: shop
    driver: exec
    settings: {start: "true", stop: "true", status: "true"}
`

func writePlan(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plan.yaml")
	require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
	return path
}

func runDrover(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command(droverBin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "TEMPORAL_ADDRESS=127.0.0.1:1") // nothing listens: no test reaches a server by accident
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return code, out.String(), errb.String()
}

func TestBadPlansExitTwoNamingFileLineAndField(t *testing.T) {
	dup := "  - name: app\n    role: app\n    product: shop\n    driver: exec\n    settings: {start: \"true\", stop: \"true\", status: \"true\"}\n"
	cases := []struct{ name, body, want string }{
		{"unknown field", strings.Replace(goodPlan, "rto: 1h\n", "rto: 1h\nrtoo: 2h\n", 1), `:5: rtoo: unknown field`},
		{"duplicate component", goodPlan + dup, `components[2].name: duplicate`},
		{"unknown role", strings.Replace(goodPlan, "role: app\n", "role: appserver\n", 1), `components[1].role: unknown role "appserver"`},
		{"unknown driver", strings.Replace(goodPlan, "role: database\n    driver: exec", "role: database\n    driver: was", 1), `components[0].driver: unknown middleware driver "was"`},
		{"missing product", strings.Replace(goodPlan, "    product: shop\n", "", 1), `components[1].product: required for role app`},
		{"after unknown", strings.Replace(goodPlan, "    product: shop\n", "    product: shop\n    after: [cache]\n", 1), `components[1].after[0]`},
		{"non-positive rpo", strings.Replace(goodPlan, "rpo: 15m", "rpo: 0s", 1), `rpo: must be > 0`},
		{"missing secondary", strings.Replace(goodPlan, "  secondary: {name: dc2}\n", "", 1), `sites.secondary: required`},
		{"secret in clear", strings.Replace(goodPlan, `status: "true"}`+"\n  - name: app", `status: "true", env: {DB2_PASSWORD: hunter2}}`+"\n  - name: app", 1), `DB2_PASSWORD`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writePlan(t, c.body)
			code, _, stderr := runDrover(t, "plan", "validate", path)
			require.Equal(t, 2, code, stderr)
			require.Contains(t, stderr, path, "the message names the file")
			require.Contains(t, stderr, c.want)
			require.NotContains(t, stderr, "hunter2", "a secret is never echoed")
		})
	}
}

func TestBadArgumentsExitTwo(t *testing.T) {
	plan := writePlan(t, goodPlan)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"plan", "validate"}, "accepts 1 arg"},
		{[]string{"plan", "validate", filepath.Join(t.TempDir(), "missing.yaml")}, "missing.yaml"},
		{[]string{"plan", "show", plan, "--output", "xml"}, `--output "xml": want text, json or yaml`},
		{[]string{"failover", "--plan", plan}, "exactly one of --planned or --unplanned"},
		{[]string{"failover", "--plan", plan, "--planned", "--unplanned"}, "exactly one of --planned or --unplanned"},
		{[]string{"failover", "--unplanned"}, "failover: give --plan F, or --site S with --plans F1,F2 or --all"},
		{[]string{"approve", "wf"}, "--gate and --as are required"},
		{[]string{"approve", "wf", "--gate", "g", "--as", "a", "--reject", "--decision", "skip"}, "give --reject or --decision, not both"},
		{[]string{"approve", "wf", "--gate", "g", "--as", "a", "--key", filepath.Join(t.TempDir(), "nokey")}, "--key"},
		{[]string{"drill", "--plan", plan}, "sites.sandbox: a drill needs an isolated sandbox site"},
		{[]string{"nosuchcommand"}, `unknown command "nosuchcommand"`},
		{[]string{"worker", "--tls-cert", "x.pem"}, "--tls-cert and --tls-key: give both"},
		{[]string{"report", "drover/shop/drill", "--plan", plan}, "storage.store"},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := runDrover(t, c.args...)
			require.Equal(t, 2, code, "stderr: %s", stderr)
			require.Contains(t, stderr, c.want)
			require.NotContains(t, stderr, "panic")
		})
	}
}
