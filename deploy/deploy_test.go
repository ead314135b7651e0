package deploy

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// composeService is what the wiring test reads of a docker-compose.yml
// service.
type composeService struct {
	Image     string   `yaml:"image"`
	Command   []string `yaml:"command"`
	Volumes   []string `yaml:"volumes"`
	Ports     []string `yaml:"ports"`
	DependsOn any      `yaml:"depends_on"`
}

// There is no Docker engine here: docker-compose.yml's Prometheus and
// Grafana are checked for their wiring. Every file they mount exists in
// deploy/, Prometheus scrapes the port the worker serves its metrics on and
// loads the rules promtool checks, and Grafana's data source is that
// Prometheus and its dashboard folder holds drover's dashboard.
func TestComposeWiresPrometheusAndGrafanaToTheWorker(t *testing.T) {
	b, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var compose struct {
		Services map[string]composeService `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(b, &compose), "docker-compose.yml")
	worker, prom, graf := compose.Services["drover-worker"], compose.Services["prometheus"], compose.Services["grafana"]
	require.NotEmpty(t, prom.Image, "a prometheus service")
	require.NotEmpty(t, graf.Image, "a grafana service")

	// The worker's --metrics-address.
	i := slices.Index(worker.Command, "--metrics-address")
	require.GreaterOrEqual(t, i, 0, "drover-worker serves metrics: %v", worker.Command)
	require.Less(t, i+1, len(worker.Command))
	_, metricsPort, err := net.SplitHostPort(worker.Command[i+1])
	require.NoError(t, err)

	// mounts maps each container path to its file here, checking it exists.
	mounts := func(s composeService) map[string]string {
		out := map[string]string{}
		for _, v := range s.Volumes {
			parts := strings.Split(v, ":")
			if !strings.HasPrefix(parts[0], "./") {
				continue // a named volume
			}
			host := filepath.Join("..", parts[0])
			_, err := os.Stat(host)
			require.NoError(t, err, "mounted file %s", parts[0])
			out[parts[1]] = host
		}
		return out
	}

	pm := mounts(prom)
	var pcfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, pm["/etc/prometheus/prometheus.yml"], &pcfg)
	var targets []string
	for _, sc := range pcfg.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
	}
	assert.Contains(t, targets, "drover-worker:"+metricsPort, "Prometheus scrapes the worker's --metrics-address")
	require.NotEmpty(t, pcfg.RuleFiles)
	for _, rf := range pcfg.RuleFiles {
		host, ok := pm[rf]
		require.True(t, ok, "rule file %s is mounted", rf)
		assert.Equal(t, filepath.Join("..", "deploy", "prometheus", "drover-rules.yml"), host, "the rules promtool checks")
	}

	gm := mounts(graf)
	var ds struct {
		Datasources []struct {
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	var dsFile string
	for container, host := range gm {
		if strings.HasPrefix(container, "/etc/grafana/provisioning/datasources/") {
			dsFile = host
		}
	}
	require.NotEmpty(t, dsFile, "a provisioned data source")
	readYAML(t, dsFile, &ds)
	require.Len(t, ds.Datasources, 1)
	assert.Equal(t, "prometheus", ds.Datasources[0].Type)
	promPort := strings.Split(prom.Ports[0], ":")[1]
	assert.Equal(t, "http://prometheus:"+promPort, ds.Datasources[0].URL, "Grafana reads the compose file's Prometheus")

	var providers struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	var provFile string
	for container, host := range gm {
		if strings.HasPrefix(container, "/etc/grafana/provisioning/dashboards/") {
			provFile = host
		}
	}
	require.NotEmpty(t, provFile, "a provisioned dashboard folder")
	readYAML(t, provFile, &providers)
	require.Len(t, providers.Providers, 1)
	dir := providers.Providers[0].Options.Path
	var dashboards []string
	for container, host := range gm {
		if filepath.Dir(container) == dir {
			dashboards = append(dashboards, host)
		}
	}
	assert.Equal(t, []string{filepath.Join("..", "deploy", "grafana", "drover.json")}, dashboards, "drover's dashboard in the provisioned folder")
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	require.NotEmpty(t, path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, v), path)
}
