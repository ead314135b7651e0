package tmpl

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/secret"
)

// Command is a command as a plan writes it: a list of argv strings, run
// directly, or one string, run by /bin/sh -c. Every element is a template.
type Command struct {
	Shell bool
	parts []*Template
}

// ParseCommand reads settings field `field`. A nil v means the field is
// absent and returns a nil Command.
func ParseCommand(field string, v any, sample any) (*Command, error) {
	switch c := v.(type) {
	case nil:
		return nil, nil
	case string:
		if strings.TrimSpace(c) == "" {
			return nil, fmt.Errorf("%s: empty command", field)
		}
		t, err := Parse(field, c, sample)
		if err != nil {
			return nil, err
		}
		return &Command{Shell: true, parts: []*Template{t}}, nil
	case []any:
		if len(c) == 0 {
			return nil, fmt.Errorf("%s: empty command list", field)
		}
		cmd := &Command{}
		for i, e := range c {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("%s[%d]: want a string, got %s", field, i, kindOf(e))
			}
			t, err := Parse(fmt.Sprintf("%s[%d]", field, i), s, sample)
			if err != nil {
				return nil, err
			}
			cmd.parts = append(cmd.parts, t)
		}
		return cmd, nil
	}
	return nil, fmt.Errorf("%s: want a command as one string (run by /bin/sh -c) or a list of argv strings, got %s", field, kindOf(v))
}

// Argv renders the command for data.
func (c *Command) Argv(data any) ([]string, error) {
	out := make([]string, 0, len(c.parts)+2)
	for _, p := range c.parts {
		s, err := p.Render(data)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if c.Shell {
		return []string{"/bin/sh", "-c", out[0]}, nil
	}
	if out[0] == "" {
		return nil, drivers.BadSettingsf("%s: the program name renders empty", c.parts[0].field)
	}
	return out, nil
}

// Display renders argv as a copy-pasteable shell line for evidence.
func Display(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = ShQuote(a)
	}
	return strings.Join(q, " ")
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64, int, int64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a map"
	}
	return fmt.Sprintf("%T", v)
}

// Values is a map of names to values (environment variables, HTTP headers)
// where each value is either a secret reference (env:NAME or file:PATH),
// resolved only when used and never shown, or a literal template for a value
// that is not secret. A literal under a name that looks like a secret
// (PASSWORD, TOKEN, Authorization...) is refused, so a secret cannot slip into
// a plan and from there into workflow history.
type Values struct {
	field   string
	names   []string
	literal map[string]*Template
	secret  map[string]secret.Ref
}

// ParseValues reads settings field `field`. nameErr, if not nil, checks each
// name.
func ParseValues(field string, m map[string]any, sample any, nameErr func(string) error) (*Values, error) {
	v := &Values{field: field, literal: map[string]*Template{}, secret: map[string]secret.Ref{}}
	for name := range m {
		v.names = append(v.names, name)
	}
	sort.Strings(v.names)
	for _, name := range v.names {
		path := field + "." + name
		if nameErr != nil {
			if err := nameErr(name); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
		}
		var s string
		switch x := m[name].(type) {
		case string:
			s = x
		case float64:
			s = strconv.FormatFloat(x, 'f', -1, 64)
		case int:
			s = strconv.Itoa(x)
		case bool:
			s = strconv.FormatBool(x)
		default:
			return nil, fmt.Errorf("%s: want a string, number or boolean, got %s", path, kindOf(m[name]))
		}
		if IsRef(s) {
			ref := secret.Ref(s)
			if err := ref.Check(); err != nil {
				return nil, fmt.Errorf("%s: %w", path, err)
			}
			v.secret[name] = ref
			continue
		}
		if s != "" && LooksSecret(name) {
			return nil, fmt.Errorf("%s looks like a secret: give a reference (env:NAME or file:PATH), not the value", path)
		}
		t, err := Parse(path, s, sample)
		if err != nil {
			return nil, err
		}
		v.literal[name] = t
	}
	return v, nil
}

// IsRef reports whether s is written as a secret reference.
func IsRef(s string) bool {
	return strings.HasPrefix(s, "env:") || strings.HasPrefix(s, "file:")
}

// LooksSecret reports whether a variable or header name suggests its value
// is a credential.
func LooksSecret(name string) bool {
	n := strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
	for _, w := range []string{"PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL", "AUTHORIZATION", "COOKIE"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Empty reports whether there are no values.
func (v *Values) Empty() bool { return v == nil || len(v.names) == 0 }

// Resolved is Values rendered for one call.
type Resolved struct {
	// Pairs are name/value in name order.
	Pairs [][2]string
	// Secrets are the resolved secret values, for redaction.
	Secrets []string
}

// Resolve renders the literals and resolves the secret references. Errors
// name the field and the reference, never a secret value. A secret that
// cannot be read is not marked permanent (a mounted file may appear, a
// variable may be set before a retry); a template error is.
func (v *Values) Resolve(data any) (Resolved, error) {
	var r Resolved
	if v == nil {
		return r, nil
	}
	for _, name := range v.names {
		if ref, ok := v.secret[name]; ok {
			val, err := ref.Resolve()
			if err != nil {
				return Resolved{}, fmt.Errorf("%s.%s: %w", v.field, name, err)
			}
			r.Pairs = append(r.Pairs, [2]string{name, val})
			r.Secrets = append(r.Secrets, val)
			continue
		}
		val, err := v.literal[name].Render(data)
		if err != nil {
			return Resolved{}, err
		}
		r.Pairs = append(r.Pairs, [2]string{name, val})
	}
	return r, nil
}

// Redacted is the text that replaces a secret value.
const Redacted = "[redacted]"

// Redact replaces every secret value in s. Values shorter than four
// characters are left alone: replacing them would mangle unrelated text and
// hide nothing worth hiding.
func Redact(s string, secrets []string) string {
	if len(secrets) == 0 {
		return s
	}
	// Longest first, so a secret that contains another is replaced whole.
	sorted := append([]string(nil), secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	for _, sec := range sorted {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, Redacted)
		}
	}
	return s
}

// EnvNameErr checks an environment variable name.
func EnvNameErr(name string) error {
	if name == "" {
		return fmt.Errorf("empty variable name")
	}
	for i, r := range name {
		if !(r == '_' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || i > 0 && r >= '0' && r <= '9') {
			return fmt.Errorf("%q is not a valid environment variable name", name)
		}
	}
	return nil
}
