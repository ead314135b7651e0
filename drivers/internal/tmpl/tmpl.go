// Package tmpl renders the text/template strings that generic drivers take
// from a plan (commands, URLs, addresses), strictly: a field or key that does
// not exist is an error, found as early as possible. Field names are checked
// against the data type when the template is parsed, so a typo such as
// {{.Site.Nmae}} fails plan validation; a map key the site does not define
// fails when the template is rendered, naming the key.
package tmpl

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"text/template"
	"text/template/parse"

	"github.com/drover-dr/drover/drivers"
)

// MiddlewareData is what a middleware driver's templates see.
type MiddlewareData struct {
	Plan string
	Site drivers.Site
	// Host is the machine of the site the component runs on ({{.Host.Name}},
	// {{.Host.Address}}); empty on a site that is one machine.
	Host      drivers.Host
	Component drivers.Component
	// Vars are the driver's own free-form values (settings.vars).
	Vars map[string]any
}

// CheckInfo names the verification check a probe runs.
type CheckInfo struct {
	Name  string
	Level string
}

// ProbeData is what a probe driver's templates see.
type ProbeData struct {
	Plan  string
	Site  drivers.Site
	Host  drivers.Host
	Check CheckInfo
	Vars  map[string]any
}

// ForTarget builds the data a middleware template renders with.
func ForTarget(t drivers.Target, vars map[string]any) MiddlewareData {
	return MiddlewareData{Plan: t.Plan, Site: t.Site, Host: t.Host, Component: t.Component, Vars: vars}
}

// ForCheck builds the data a probe template renders with.
func ForCheck(r drivers.CheckRequest, vars map[string]any) ProbeData {
	return ProbeData{Plan: r.Plan, Site: r.Site, Host: r.Host, Check: CheckInfo{Name: r.Name, Level: r.Level}, Vars: vars}
}

// Template is a parsed, checked template.
type Template struct {
	field string
	src   string
	t     *template.Template
}

// Source returns the template text as written.
func (t *Template) Source() string { return t.src }

// Parse parses src as the template of settings field `field` and checks every
// field reference that starts at the root against the type of sample (a
// MiddlewareData or ProbeData value).
func Parse(field, src string, sample any) (*Template, error) {
	t, err := template.New(field).
		Option("missingkey=error").
		Funcs(Funcs()).
		Parse(src)
	if err != nil {
		return nil, cleanErr(err)
	}
	root := reflect.TypeOf(sample)
	for _, sub := range t.Templates() {
		if sub.Tree == nil || sub.Root == nil {
			continue
		}
		c := checker{tree: sub.Tree, root: root}
		// Only the main template is run with the root as dot; inside a
		// {{define}} dot is whatever the caller passed.
		c.walk(sub.Root, sub.Name() == field)
		if c.err != nil {
			return nil, c.err
		}
	}
	return &Template{field: field, src: src, t: t}, nil
}

// Render executes the template with data. Its errors (a key the site does
// not define) are marked drivers.ErrBadSettings: a retry cannot fix them.
func (t *Template) Render(data any) (string, error) {
	var b strings.Builder
	if err := t.t.Execute(&b, data); err != nil {
		return "", drivers.BadSettings(cleanErr(err))
	}
	return b.String(), nil
}

// cleanErr drops text/template's "template: " prefix; the rest starts with
// the template's name, which is the settings field, and its line:column.
func cleanErr(err error) error {
	msg := strings.TrimPrefix(err.Error(), "template: ")
	return fmt.Errorf("%s", msg)
}

// Funcs are the functions templates may call beyond the builtins: a strict
// index (a missing key is an error, not an empty string) and shquote for
// values pasted into a /bin/sh -c command.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"index":   strictIndex,
		"shquote": ShQuote,
	}
}

// ShQuote quotes v for /bin/sh so it stays one word whatever it holds.
func ShQuote(v any) string {
	s := fmt.Sprint(v)
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=@,+%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// strictIndex replaces the builtin index: the builtin returns the zero value
// for a missing map key, which would turn a typo into an empty argument.
func strictIndex(item any, keys ...any) (any, error) {
	v := reflect.ValueOf(item)
	for _, key := range keys {
		for v.IsValid() && (v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer) {
			if v.IsNil() {
				return nil, fmt.Errorf("index of nil value with %v", key)
			}
			v = v.Elem()
		}
		if !v.IsValid() {
			return nil, fmt.Errorf("index of nil value with %v", key)
		}
		switch v.Kind() {
		case reflect.Map:
			kv := reflect.ValueOf(key)
			if !kv.IsValid() {
				return nil, fmt.Errorf("index of map with a nil key")
			}
			if !kv.Type().AssignableTo(v.Type().Key()) {
				if !kv.Type().ConvertibleTo(v.Type().Key()) {
					return nil, fmt.Errorf("index of map with %v: key of type %s, want %s", key, kv.Type(), v.Type().Key())
				}
				kv = kv.Convert(v.Type().Key())
			}
			r := v.MapIndex(kv)
			if !r.IsValid() {
				return nil, fmt.Errorf("no entry for key %q%s", fmt.Sprint(key), knownKeys(v))
			}
			v = r
		case reflect.Slice, reflect.Array, reflect.String:
			i, ok := toInt(key)
			if !ok {
				return nil, fmt.Errorf("index of %s with %v: want an integer", v.Kind(), key)
			}
			if i < 0 || i >= v.Len() {
				return nil, fmt.Errorf("index %d out of range (length %d)", i, v.Len())
			}
			v = v.Index(i)
		default:
			return nil, fmt.Errorf("cannot index a value of type %s", v.Type())
		}
	}
	if !v.IsValid() {
		return nil, nil
	}
	return v.Interface(), nil
}

func knownKeys(m reflect.Value) string {
	if m.Len() == 0 {
		return " (the map is empty)"
	}
	var ks []string
	for _, k := range m.MapKeys() {
		ks = append(ks, fmt.Sprint(k.Interface()))
	}
	sort.Strings(ks)
	if len(ks) > 12 {
		ks = append(ks[:12], "…")
	}
	return " (have: " + strings.Join(ks, ", ") + ")"
}

func toInt(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int64:
		return int(n), true
	case int32:
		return int(n), true
	case float64:
		if n == float64(int(n)) {
			return int(n), true
		}
	}
	return 0, false
}

// checker walks a parsed template and checks field chains that start at the
// root data against its Go type.
type checker struct {
	tree *parse.Tree
	root reflect.Type
	err  error
}

func (c *checker) walk(n parse.Node, dotIsRoot bool) {
	if c.err != nil || n == nil {
		return
	}
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, sub := range n.Nodes {
			c.walk(sub, dotIsRoot)
		}
	case *parse.ActionNode:
		c.walk(n.Pipe, dotIsRoot)
	case *parse.IfNode:
		c.walk(n.Pipe, dotIsRoot)
		c.walk(n.List, dotIsRoot)
		c.walk(n.ElseList, dotIsRoot)
	case *parse.RangeNode:
		c.walk(n.Pipe, dotIsRoot)
		c.walk(n.List, false) // dot is each element
		c.walk(n.ElseList, dotIsRoot)
	case *parse.WithNode:
		c.walk(n.Pipe, dotIsRoot)
		c.walk(n.List, false) // dot is the pipeline's value
		c.walk(n.ElseList, dotIsRoot)
	case *parse.TemplateNode:
		c.walk(n.Pipe, dotIsRoot)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, cmd := range n.Cmds {
			c.walk(cmd, dotIsRoot)
		}
	case *parse.CommandNode:
		for _, arg := range n.Args {
			c.walk(arg, dotIsRoot)
		}
	case *parse.ChainNode:
		c.walk(n.Node, dotIsRoot)
	case *parse.FieldNode:
		if dotIsRoot {
			c.check(n, n.Ident, ".")
		}
	case *parse.VariableNode:
		// $ is always the root; other variables are not tracked.
		if len(n.Ident) > 1 && n.Ident[0] == "$" {
			c.check(n, n.Ident[1:], "$.")
		}
	}
}

func (c *checker) check(n parse.Node, idents []string, prefix string) {
	t := c.root
	for i, id := range idents {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch t.Kind() {
		case reflect.Struct:
			f, ok := t.FieldByName(id)
			if !ok || !f.IsExported() {
				loc, _ := c.tree.ErrorContext(n)
				c.err = fmt.Errorf("%s: %s%s: no field %q in %s (have: %s)",
					loc, prefix, strings.Join(idents[:i+1], "."), id, typeName(t, i), fieldNames(t))
				return
			}
			t = f.Type
		case reflect.Map, reflect.Interface:
			// Keys are data, known only when the template runs.
			return
		default:
			loc, _ := c.tree.ErrorContext(n)
			c.err = fmt.Errorf("%s: %s%s: %s%s is a %s, it has no field %q",
				loc, prefix, strings.Join(idents[:i+1], "."), prefix, strings.Join(idents[:i], "."), t.Kind(), id)
			return
		}
	}
}

func typeName(t reflect.Type, depth int) string {
	if depth == 0 {
		return "the template data"
	}
	return t.Name()
}

func fieldNames(t reflect.Type) string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() {
			names = append(names, f.Name)
		}
	}
	return strings.Join(names, ", ")
}
