package tests

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"

	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/starter"
)

// There is no Docker engine on the build machines, so the compose file is
// checked for what can be checked: it parses, every service the worker needs
// is there, and its ports and environment agree with the worker's flags.

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       map[string]string `yaml:"build"`
		Command     any               `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		DependsOn   any               `yaml:"depends_on"`
	} `yaml:"services"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	require.NoError(t, err)
	var c composeFile
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	require.NoError(t, dec.Decode(&c), "docker-compose.yml must parse")
	return c
}

func TestComposeHasTheProductionShape(t *testing.T) {
	c := loadCompose(t)
	for _, name := range []string{"postgresql", "temporal", "temporal-setup", "temporal-ui", "drover-worker"} {
		require.Contains(t, c.Services, name)
	}
	require.Contains(t, c.Services["temporal"].Environment["DB"], "postgres", "Temporal persists to PostgreSQL")
	require.Equal(t, "postgresql", c.Services["temporal"].Environment["POSTGRES_SEEDS"])
	require.Equal(t, "Dockerfile", c.Services["drover-worker"].Build["dockerfile"])
}

func TestComposeWorkerAddressMatchesServerAndFlags(t *testing.T) {
	c := loadCompose(t)
	w := c.Services["drover-worker"]
	addr := w.Environment["TEMPORAL_ADDRESS"]
	host, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	require.Contains(t, c.Services, host, "the worker dials a service of this file")
	require.Contains(t, c.Services["temporal"].Ports, port+":"+port, "the frontend port is the one the worker dials")
	require.Equal(t, addr, c.Services["temporal-ui"].Environment["TEMPORAL_ADDRESS"])

	// The worker's flags read exactly these variables.
	t.Setenv("TEMPORAL_ADDRESS", addr)
	t.Setenv("TEMPORAL_NAMESPACE", w.Environment["TEMPORAL_NAMESPACE"])
	root, _ := starter.NewRootCommand(io.Discard, io.Discard)
	require.Equal(t, addr, root.PersistentFlags().Lookup("address").Value.String())
	require.Equal(t, w.Environment["TEMPORAL_NAMESPACE"], root.PersistentFlags().Lookup("namespace").Value.String())
	cmd, _, err := root.Find([]string{"worker"})
	require.NoError(t, err)
	require.Equal(t, "worker", cmd.Name(), "the compose command is a drover subcommand")
	args, ok := w.Command.([]any)
	require.True(t, ok, "command is a list: %v", w.Command)
	require.Equal(t, "worker", args[0])
	var flags []string
	for _, a := range args[1:] {
		flags = append(flags, fmt.Sprint(a))
	}
	require.NoError(t, cmd.ParseFlags(flags), "the compose command's flags are the worker's")
}

func TestComposeRegistersDroverSearchAttributes(t *testing.T) {
	c := loadCompose(t)
	setup := c.Services["temporal-setup"]
	cmd, ok := setup.Command.([]any)
	require.True(t, ok)
	script := cmd[0].(string)
	var names []string
	for name := range contract.SearchAttributes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		require.Contains(t, script, name, "search attribute %s must be registered in the compose setup", name)
	}
	require.Equal(t, "temporal:7233", setup.Environment["TEMPORAL_ADDRESS"])
}

func TestDockerfileBuildsTheCLI(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	require.NoError(t, err)
	df := string(b)
	require.Contains(t, df, "go build")
	require.Contains(t, df, "./cmd/drover")
	require.Contains(t, df, `ENTRYPOINT ["/usr/local/bin/drover"]`)
	_, err = os.Stat(filepath.Join("..", "cmd", "drover", "main.go"))
	require.NoError(t, err)
}
