package tmpl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
)

func target() drivers.Target {
	return drivers.Target{
		Plan: "bpm-golden",
		Site: drivers.Site{Name: "dc2", Role: "secondary", Settings: map[string]any{"host": "db2b.example", "port": float64(50000)}},
		Component: drivers.Component{Name: "db2", Role: "database", Product: "", Settings: map[string]any{
			"instance": "db2inst1",
		}},
	}
}

func render(t *testing.T, src string) (string, error) {
	t.Helper()
	tp, err := Parse("start", src, MiddlewareData{})
	require.NoError(t, err)
	return tp.Render(ForTarget(target(), map[string]any{"profile": "/opt/p"}))
}

func TestRenderFields(t *testing.T) {
	out, err := render(t, `{{.Plan}} {{.Site.Name}} {{.Site.Role}} {{index .Site.Settings "host"}}:{{.Site.Settings.port}} {{.Component.Name}} {{.Component.Role}} {{index .Component.Settings "instance"}} {{.Vars.profile}} {{$.Component.Name}}`)
	require.NoError(t, err)
	assert.Equal(t, "bpm-golden dc2 secondary db2b.example:50000 db2 database db2inst1 /opt/p db2", out)
}

func TestRenderMissingKeysFail(t *testing.T) {
	for _, src := range []string{
		`{{index .Site.Settings "hots"}}`,
		`{{.Site.Settings.hots}}`,
		`{{index .Component.Settings "x"}}`,
		`{{.Vars.nope}}`,
	} {
		_, err := render(t, src)
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), "start")
	}
	_, err := render(t, `{{index .Site.Settings "hots"}}`)
	assert.ErrorContains(t, err, `no entry for key "hots" (have: host, port)`)
}

func TestParseChecksFieldNames(t *testing.T) {
	for src, want := range map[string]string{
		`{{.Site.Nmae}}`:                  `no field "Nmae" in Site (have: Name, Role, Settings)`,
		`{{.Compnent.Name}}`:              `no field "Compnent" in the template data`,
		`{{if .Plan}}{{.Sitee}}{{end}}`:   `no field "Sitee"`,
		`{{$.Check.Name}}`:                `no field "Check"`,
		`{{.Plan.Foo}}`:                   `.Plan is a string, it has no field "Foo"`,
		`{{index .Site.Settigns "host"}}`: `no field "Settigns"`,
	} {
		_, err := Parse("start", src, MiddlewareData{})
		require.Error(t, err, src)
		assert.Contains(t, err.Error(), want, src)
		assert.Contains(t, err.Error(), "start", src)
	}
	// Inside range and with, dot is not the root: not checked there.
	_, err := Parse("start", `{{range .Site.Settings}}{{.Anything}}{{end}}{{with .Site}}{{.Name}}{{end}}`, MiddlewareData{})
	require.NoError(t, err)
	// Probe data has Check, not Component.
	_, err = Parse("url", `{{.Check.Name}} {{.Check.Level}}`, ProbeData{})
	require.NoError(t, err)
	_, err = Parse("url", `{{.Component.Name}}`, ProbeData{})
	require.Error(t, err)
}

func TestParseSyntaxError(t *testing.T) {
	_, err := Parse("stop", `{{.Site.Name`, MiddlewareData{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stop")
}

func TestShQuote(t *testing.T) {
	assert.Equal(t, "plain-word_1.2/x:y", ShQuote("plain-word_1.2/x:y"))
	assert.Equal(t, "''", ShQuote(""))
	assert.Equal(t, `'a b'`, ShQuote("a b"))
	assert.Equal(t, `'it'\''s; rm -rf /'`, ShQuote("it's; rm -rf /"))
	out, err := render(t, `echo {{shquote .Site.Name}} {{index .Site.Settings "host" | shquote}}`)
	require.NoError(t, err)
	assert.Equal(t, "echo dc2 db2b.example", out)
}

func TestParseCommand(t *testing.T) {
	c, err := ParseCommand("start", "echo {{.Component.Name}}", MiddlewareData{})
	require.NoError(t, err)
	argv, err := c.Argv(ForTarget(target(), nil))
	require.NoError(t, err)
	assert.Equal(t, []string{"/bin/sh", "-c", "echo db2"}, argv)

	c, err = ParseCommand("start", []any{"/opt/bin/start", "{{.Component.Name}}", "a b"}, MiddlewareData{})
	require.NoError(t, err)
	argv, err = c.Argv(ForTarget(target(), nil))
	require.NoError(t, err)
	assert.Equal(t, []string{"/opt/bin/start", "db2", "a b"}, argv)
	assert.Equal(t, "/opt/bin/start db2 'a b'", Display(argv))

	c, err = ParseCommand("start", nil, MiddlewareData{})
	require.NoError(t, err)
	assert.Nil(t, c)

	for v, want := range map[string]any{
		"start: empty command":                 "  ",
		"start: empty command list":            []any{},
		"start[1]: want a string":              []any{"a", float64(3)},
		"want a command as one":                map[string]any{"x": 1},
		`start[0]:1:2: .Nope: no field "Nope"`: []any{"{{.Nope}}"},
		"start: want a command as o":           true,
	} {
		_, err := ParseCommand("start", want, MiddlewareData{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), v)
	}
}

func TestValues(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	require.NoError(t, os.WriteFile(pwFile, []byte("file-secret-value\n"), 0o600))
	t.Setenv("DROVER_TEST_TOKEN", "env-secret-value")

	v, err := ParseValues("env", map[string]any{
		"DB_PASSWORD": "file:" + pwFile,
		"API_TOKEN":   "env:DROVER_TEST_TOKEN",
		"SITE":        "{{.Site.Name}}",
		"PORT":        float64(9080),
		"DEBUG":       true,
	}, MiddlewareData{}, EnvNameErr)
	require.NoError(t, err)
	r, err := v.Resolve(ForTarget(target(), nil))
	require.NoError(t, err)
	assert.Equal(t, [][2]string{
		{"API_TOKEN", "env-secret-value"},
		{"DB_PASSWORD", "file-secret-value"},
		{"DEBUG", "true"},
		{"PORT", "9080"},
		{"SITE", "dc2"},
	}, r.Pairs)
	assert.ElementsMatch(t, []string{"env-secret-value", "file-secret-value"}, r.Secrets)
	assert.Equal(t, "pw=[redacted] tok=[redacted] ab", Redact("pw=file-secret-value tok=env-secret-value ab", r.Secrets))
}

func TestValuesRejectLiteralSecrets(t *testing.T) {
	_, err := ParseValues("env", map[string]any{"DB2_PASSWORD": "hunter2"}, MiddlewareData{}, EnvNameErr)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "env.DB2_PASSWORD looks like a secret")
	assert.NotContains(t, err.Error(), "hunter2")

	_, err = ParseValues("headers", map[string]any{"Authorization": "Bearer abc"}, ProbeData{}, nil)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "abc")

	_, err = ParseValues("env", map[string]any{"BAD-NAME": "x"}, MiddlewareData{}, EnvNameErr)
	assert.ErrorContains(t, err, "not a valid environment variable name")

	_, err = ParseValues("env", map[string]any{"X": "env:"}, MiddlewareData{}, EnvNameErr)
	assert.ErrorContains(t, err, "env.X")

	_, err = ParseValues("env", map[string]any{"X": []any{"a"}}, MiddlewareData{}, EnvNameErr)
	assert.ErrorContains(t, err, "env.X: want a string, number or boolean, got a list")
}

func TestValuesResolveErrorNamesReferenceOnly(t *testing.T) {
	v, err := ParseValues("env", map[string]any{"PW": "env:DROVER_TEST_SURELY_UNSET_VAR"}, MiddlewareData{}, EnvNameErr)
	require.NoError(t, err)
	_, err = v.Resolve(ForTarget(target(), nil))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "env.PW")
	assert.Contains(t, err.Error(), "DROVER_TEST_SURELY_UNSET_VAR")
}

func TestRedactLongestFirstAndShortSecrets(t *testing.T) {
	assert.Equal(t, "[redacted]", Redact("abcdefgh", []string{"abcd", "abcdefgh"}))
	assert.Equal(t, "ab ab", Redact("ab ab", []string{"ab"}))
}

// Templates see the host a component is placed on.
func TestTemplatesSeeTheHost(t *testing.T) {
	tpl, err := Parse("start", "ssh-less start on {{.Host.Name}} at {{.Host.Address}}", MiddlewareData{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := tpl.Render(ForTarget(drivers.Target{Host: drivers.Host{Name: "machine2", Address: "10.1.0.12"}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if out != "ssh-less start on machine2 at 10.1.0.12" {
		t.Fatalf("got %q", out)
	}
}
