package devserver_test

import (
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	serverschema "go.temporal.io/server/schema"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/devserver"
)

// docker-compose.yml cannot run here (no Docker engine), so it is held to
// the PostgreSQL shape the tests run instead: same plugin, databases, schema
// directories and versions, history shards, namespace, retention, search
// attributes, and images of the Temporal versions in go.mod.

type composeService struct {
	Image       string            `yaml:"image"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
}

func loadCompose(t *testing.T) map[string]composeService {
	t.Helper()
	b, err := os.ReadFile("../docker-compose.yml")
	require.NoError(t, err)
	var c struct {
		Services map[string]yaml.Node `yaml:"services"`
	}
	require.NoError(t, yaml.Unmarshal(b, &c), "docker-compose.yml must parse")
	out := map[string]composeService{}
	for name, node := range c.Services {
		var s composeService
		if name == "drover-worker" {
			continue // its shape (build, command) is tests/deploy_test.go's
		}
		require.NoError(t, node.Decode(&s), "service %s", name)
		out[name] = s
	}
	return out
}

// script is a one-shot service's shell script (entrypoint /bin/sh -c).
func script(t *testing.T, s composeService) string {
	t.Helper()
	require.Equal(t, []string{"/bin/sh", "-c"}, s.Entrypoint)
	require.Len(t, s.Command, 1)
	return s.Command[0]
}

// moduleVersion is module's version in go.mod (test binaries carry no
// dependency list in their build info).
func moduleVersion(t *testing.T, module string) string {
	t.Helper()
	b, err := os.ReadFile("../go.mod")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^\s*(?:require\s+)?` + regexp.QuoteMeta(module) + ` v(\S+)`).FindSubmatch(b)
	require.NotNil(t, m, "module %s is not in go.mod", module)
	return string(m[1])
}

func imageTag(t *testing.T, s composeService, repo string) string {
	t.Helper()
	name, tag, ok := strings.Cut(s.Image, ":")
	require.True(t, ok, "image %s has no tag", s.Image)
	require.Equal(t, repo, name)
	return tag
}

func TestComposeMatchesThePostgresServer(t *testing.T) {
	svc := loadCompose(t)
	for _, name := range []string{"postgresql", "temporal-admin-tools", "temporal", "temporal-setup", "temporal-ui"} {
		require.Contains(t, svc, name)
	}
	pgSvc, schemaSvc, server, setup, ui := svc["postgresql"], svc["temporal-admin-tools"], svc["temporal"], svc["temporal-setup"], svc["temporal-ui"]

	// The official layout: server image, schema set up by admin-tools first
	// (not the deprecated auto-setup image), namespace after the server.
	serverVersion := moduleVersion(t, "go.temporal.io/server")
	assert.Equal(t, serverVersion, imageTag(t, server, "temporalio/server"), "the server image is the go.mod server version")
	assert.Equal(t, serverVersion, imageTag(t, schemaSvc, "temporalio/admin-tools"))
	assert.Equal(t, serverVersion, imageTag(t, setup, "temporalio/admin-tools"))
	assert.Equal(t, moduleVersion(t, "github.com/temporalio/ui-server/v2"), imageTag(t, ui, "temporalio/ui"), "the UI image is the embedded UI's version")
	assert.Equal(t, "service_healthy", schemaSvc.DependsOn["postgresql"].Condition)
	assert.Equal(t, "service_completed_successfully", server.DependsOn["temporal-admin-tools"].Condition)
	assert.Equal(t, "service_healthy", setup.DependsOn["temporal"].Condition)
	for name, s := range svc {
		assert.NotContains(t, s.Image, "auto-setup", "service %s uses the deprecated auto-setup image", name)
	}

	// The server's persistence: what devserver runs on PostgreSQL.
	env := server.Environment
	assert.Equal(t, devserver.PostgresPlugin, env["DB"])
	assert.Equal(t, devserver.DefaultPostgresDatabase, env["DBNAME"])
	assert.Equal(t, devserver.DefaultPostgresDatabase+devserver.VisibilitySuffix, env["VISIBILITY_DBNAME"])
	assert.Equal(t, strconv.Itoa(devserver.PostgresHistoryShards), env["NUM_HISTORY_SHARDS"])
	assert.Equal(t, strconv.Itoa(devserver.DefaultPostgresPort), env["DB_PORT"])
	require.Contains(t, svc, env["POSTGRES_SEEDS"], "the server's database is a service of this file")
	assert.Equal(t, pgSvc.Environment["POSTGRES_USER"], env["POSTGRES_USER"])
	assert.Equal(t, pgSvc.Environment["POSTGRES_PASSWORD"], env["POSTGRES_PWD"])
	assert.Equal(t, pgSvc.Environment["POSTGRES_PASSWORD"], schemaSvc.Environment["SQL_PASSWORD"])

	// The schema steps: create, setup-schema -v 0.0, update-schema from the
	// same embedded schema directories devserver applies, per database.
	wantSteps := func(db, schema string) []string {
		return []string{"create", "setup-schema -v 0.0", "update-schema -d /etc/temporal/schema/" + schema + "/versioned"}
	}
	steps := map[string][]string{}
	tool := regexp.MustCompile(`^temporal-sql-tool --plugin (\S+) --ep (\S+) -p (\d+) -u (\S+) --db (\S+) (.+?);?$`)
	for _, stmt := range strings.Split(script(t, schemaSvc), ";") {
		stmt = strings.TrimSpace(stmt)
		if !strings.HasPrefix(stmt, "temporal-sql-tool") {
			continue
		}
		m := tool.FindStringSubmatch(stmt)
		require.NotNil(t, m, "temporal-sql-tool call not understood: %s", stmt)
		assert.Equal(t, devserver.PostgresPlugin, m[1], stmt)
		assert.Equal(t, env["POSTGRES_SEEDS"], m[2], stmt)
		assert.Equal(t, env["DB_PORT"], m[3], stmt)
		assert.Equal(t, env["POSTGRES_USER"], m[4], stmt)
		steps[m[5]] = append(steps[m[5]], m[6])
	}
	assert.Equal(t, map[string][]string{
		env["DBNAME"]:            wantSteps(env["DBNAME"], devserver.PostgresSchema),
		env["VISIBILITY_DBNAME"]: wantSteps(env["VISIBILITY_DBNAME"], devserver.PostgresVisibilitySchema),
	}, steps)

	// update-schema of those directories ends at the versions devserver
	// sets up and checks for.
	assert.Equal(t, devserver.PostgresSchemaVersion, newestVersionedDir(t, devserver.PostgresSchema))
	assert.Equal(t, devserver.PostgresVisibilitySchemaVersion, newestVersionedDir(t, devserver.PostgresVisibilitySchema))

	// Namespace, retention and search attributes: what `drover server`
	// registers (devserver defaults, contract.SearchAttributes).
	sh := script(t, setup)
	ns := regexp.MustCompile(`temporal operator namespace create --namespace (\S+) --retention (\S+?);`).FindStringSubmatch(sh)
	require.NotNil(t, ns, "no namespace create in temporal-setup:\n%s", sh)
	assert.Equal(t, devserver.DefaultNamespace, ns[1])
	retention, err := time.ParseDuration(ns[2])
	require.NoError(t, err)
	assert.Equal(t, devserver.DefaultRetention, retention)

	loop := regexp.MustCompile(`for sa in ([^;]+); do`).FindStringSubmatch(sh)
	require.NotNil(t, loop, "no search attribute loop in temporal-setup:\n%s", sh)
	typ := regexp.MustCompile(`search-attribute create --namespace (\S+) --name \$\$sa --type (\w+)`).FindStringSubmatch(sh)
	require.NotNil(t, typ)
	assert.Equal(t, devserver.DefaultNamespace, typ[1])
	got := map[string]enumspb.IndexedValueType{}
	for _, name := range strings.Fields(loop[1]) {
		got[name] = cliType(typ[2])
	}
	assert.Equal(t, contract.SearchAttributes, got)
	assert.Equal(t, server.Environment["BIND_ON_IP"], "0.0.0.0", "the frontend must listen beyond the container's loopback")
}

// cliType maps the temporal CLI's --type (Keyword, KeywordList, ...) to the
// API's enum.
func cliType(s string) enumspb.IndexedValueType {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return enumspb.IndexedValueType(enumspb.IndexedValueType_value["INDEXED_VALUE_TYPE_"+strings.ToUpper(b.String())])
}

// newestVersionedDir is the highest vX.Y directory of an embedded schema.
func newestVersionedDir(t *testing.T, schema string) string {
	t.Helper()
	entries, err := fs.ReadDir(serverschema.Assets(), path.Join(schema, "versioned"))
	require.NoError(t, err)
	var versions [][2]int
	for _, e := range entries {
		major, minor, ok := strings.Cut(strings.TrimPrefix(e.Name(), "v"), ".")
		a, err1 := strconv.Atoi(major)
		b, err2 := strconv.Atoi(minor)
		require.True(t, ok && err1 == nil && err2 == nil, "versioned dir %s", e.Name())
		versions = append(versions, [2]int{a, b})
	}
	require.NotEmpty(t, versions)
	newest := slices.MaxFunc(versions, func(x, y [2]int) int {
		if x[0] != y[0] {
			return x[0] - y[0]
		}
		return x[1] - y[1]
	})
	return strconv.Itoa(newest[0]) + "." + strconv.Itoa(newest[1])
}
