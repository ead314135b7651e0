package deploy

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dr/drover/metrics"
)

func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("promtool not found (CI installs Debian's prometheus package): %v", err)
		}
		t.Skip("promtool not found: apt-get install prometheus")
	}
	return path
}

func TestRulesCheck(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", "prometheus/drover-rules.yml").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "SUCCESS")
}

func TestRulesUnitTests(t *testing.T) {
	out, err := exec.Command(promtool(t), "test", "rules", "prometheus/drover-rules.test.yml").CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "SUCCESS")
}

// exported lists the metric names drover's collector describes, with the
// series names a histogram adds.
func exported(t *testing.T) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 64)
	metrics.NewCollector(metrics.Config{}).Describe(ch)
	close(ch)
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	var names []string
	for d := range ch {
		m := re.FindStringSubmatch(d.String())
		require.NotNil(t, m, d.String())
		names = append(names, m[1], m[1]+"_bucket", m[1]+"_sum", m[1]+"_count")
	}
	return names
}

// promqlWords are the functions, keywords and label names our expressions
// may contain besides metric names.
var promqlWords = []string{
	"time", "vector", "count", "sum", "by", "on", "unless", "and", "or", "group_left", "increase", "rate",
	"histogram_quantile", "le", "plan", "mode", "gate", "kind", "outcome", "site", "trust", "source", "workflow_id",
}

// metricNames returns the identifiers of a PromQL expression that are not
// PromQL words: the metrics it reads.
func metricNames(expr string) []string {
	expr = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(expr, " ")  // label matchers
	expr = regexp.MustCompile(`\[[^\]]*\]`).ReplaceAllString(expr, " ") // ranges
	expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, " ")
	var out []string
	for _, id := range regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`).FindAllString(expr, -1) {
		if !slices.Contains(promqlWords, id) {
			out = append(out, id)
		}
	}
	return out
}

func TestMetricNamesOfExpressions(t *testing.T) {
	assert.Equal(t, []string{"drover_rpo_age_seconds", "drover_rpo_target_seconds"},
		metricNames(`drover_rpo_age_seconds{plan=~"$plan"} / on(plan) drover_rpo_target_seconds`))
	assert.Equal(t, []string{"up"}, metricNames(`sum by (plan) (increase(up[1h]))`))
}

func TestRulesUseOnlyExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("prometheus/drover-rules.yml")
	require.NoError(t, err)
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	require.NoError(t, yaml.Unmarshal(data, &f))
	known := exported(t)
	n := 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			n++
			for _, m := range metricNames(r.Expr) {
				assert.Contains(t, known, m, "alert %s reads %s, which drover does not export", r.Alert, m)
			}
		}
	}
	assert.GreaterOrEqual(t, n, 5)
}

func TestDashboardUsesOnlyExportedMetrics(t *testing.T) {
	data, err := os.ReadFile("grafana/drover.json")
	require.NoError(t, err)
	var d map[string]any
	require.NoError(t, json.Unmarshal(data, &d))
	var exprs []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || (k == "query" && strings.Contains(s, "("))) {
					exprs = append(exprs, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(d)
	require.GreaterOrEqual(t, len(exprs), 10)
	known := append(exported(t), "label_values")
	perPlan, allPlans := 0, 0
	for _, e := range exprs {
		for _, m := range metricNames(e) {
			assert.Contains(t, known, m, "dashboard query %q reads %s, which drover does not export", e, m)
		}
		if strings.Contains(e, `plan=~"$plan"`) {
			perPlan++
		} else {
			allPlans++
		}
	}
	assert.Positive(t, perPlan, "panels for the chosen plan")
	assert.Positive(t, allPlans, "panels for all plans")

	// The plan variable: templated, multi-valued, with All.
	vars := d["templating"].(map[string]any)["list"].([]any)
	var planVar map[string]any
	for _, v := range vars {
		if v.(map[string]any)["name"] == "plan" {
			planVar = v.(map[string]any)
		}
	}
	require.NotNil(t, planVar)
	assert.Equal(t, true, planVar["includeAll"])
	assert.Equal(t, true, planVar["multi"])
}
