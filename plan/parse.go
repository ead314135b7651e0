package plan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// source is what the parser learnt about where things were written.
type source struct {
	// lines holds the line of every field path the parser saw
	// ("components[3].role").
	lines map[string]int
	// bad holds the field paths that could not be decoded, so validation
	// does not report the same spot twice ("required" after "want a string").
	bad map[string]bool
	// none holds the approvers fields written as the word none.
	none map[string]bool
}

// maxNodes bounds the values one plan may expand to, so a few aliases
// cannot make the loader build a billion-element tree.
const maxNodes = 200_000

// Load reads and parses a plan file. It does not validate it; see
// LoadAndValidate.
func Load(path string) (*Plan, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes a plan from YAML strictly: an unknown field anywhere (except
// inside settings, which belong to drivers) is a problem, and every problem
// carries the file, line and field path. file names the source in problems.
//
// On error the returned plan holds whatever could be decoded (nil when the
// YAML itself is malformed) and the error is a Problems.
func Parse(file string, data []byte) (*Plan, error) {
	p, probs := parse(file, data)
	if len(probs) > 0 {
		sortProblems(probs)
		return p, probs
	}
	return p, nil
}

func parse(file string, data []byte) (*Plan, Problems) {
	var probs Problems
	root, err := parseYAML(data)
	var extra *extraDocError
	switch {
	case errors.As(err, &extra):
		probs.add(file, extra.line, "", "a plan file holds one YAML document; remove the second one (from this line)")
		return nil, probs
	case err != nil:
		line, msg := yamlErrorLine(err)
		probs.add(file, line, "", "%s", msg)
		return nil, probs
	}
	if root == nil {
		probs.add(file, 0, "", "the plan is empty (want a mapping starting with apiVersion: %s)", APIVersion)
		return nil, probs
	}
	d := &decoder{
		file:   file,
		src:    &source{lines: map[string]int{}, bad: map[string]bool{}, none: map[string]bool{}},
		active: map[*yaml.Node]bool{},
	}
	p := &Plan{Source: file, src: d.src}
	d.value(root, reflect.ValueOf(p).Elem(), "")
	applyDefaults(p)
	return p, d.probs
}

// parseYAML reads exactly one YAML document into a node tree. The YAML
// library can panic on some malformed input; that becomes an error here, so
// a bad file never crashes the CLI or a worker.
func parseYAML(data []byte) (root *yaml.Node, err error) {
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, fmt.Errorf("yaml: the YAML parser failed on this input: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, err
	default:
		return nil, &extraDocError{line: extra.Line}
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// extraDocError is a second YAML document in a plan file.
type extraDocError struct{ line int }

func (e *extraDocError) Error() string { return fmt.Sprintf("line %d: a second YAML document", e.line) }

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// yamlErrorLine splits the YAML library's "yaml: line N: msg" into its parts.
func yamlErrorLine(err error) (int, string) {
	m := yamlLineRE.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, "invalid YAML: " + err.Error()
	}
	line, _ := strconv.Atoi(m[1])
	if line == 0 {
		return 0, "invalid YAML: " + m[2]
	}
	// The YAML library often names the line where the enclosing block
	// starts rather than the broken one.
	return line, "invalid YAML at or near this line: " + m[2]
}

// applyDefaults fills the values a plan may leave out.
func applyDefaults(p *Plan) {
	for _, site := range []*Site{p.Sites.Primary, p.Sites.Secondary, p.Sites.Sandbox} {
		if site == nil {
			continue
		}
		for name, h := range site.Hosts {
			h.Name = name
			site.Hosts[name] = h
		}
	}
	// The stores' placement is drover's, not the backend's.
	p.Storage.StoreAt = takePlacement(p.Storage.Store)
	p.Storage.ReverseStoreAt = takePlacement(p.Storage.ReverseStore)
	if p.Storage.ReverseStoreAt.Site == "" && len(p.Storage.ReverseStore) > 0 && p.Sites.Primary != nil {
		p.Storage.ReverseStoreAt.Site = p.Sites.Primary.Name
	}
	if p.Storage.Schedule.Validate == "" {
		p.Storage.Schedule.Validate = "none"
		if p.Sites.Sandbox != nil {
			p.Storage.Schedule.Validate = "every"
		}
	}
	if p.Storage.StoreAt.Site == "" && p.Sites.Secondary != nil {
		p.Storage.StoreAt.Site = p.Sites.Secondary.Name
	}
	for i := range p.Gates {
		g := &p.Gates[i]
		path := fmt.Sprintf("gates[%d]", i)
		if _, written := p.src.lines[path+".quorum"]; !written && g.Quorum == 0 {
			g.Quorum = 1
		}
		if g.OnTimeout == "" {
			g.OnTimeout = EscalateAbort
		}
		g.NoApproval = p.src.none[path+".approvers"]
	}
}

type decoder struct {
	file   string
	src    *source
	probs  Problems
	nodes  int
	active map[*yaml.Node]bool // anchors being expanded, to stop self-reference
	full   bool                // maxNodes reached; stop decoding
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.probs.add(d.file, line, path, format, args...)
	d.src.bad[path] = true
}

var (
	durationType = reflect.TypeOf(Duration(0))
	settingsType = reflect.TypeOf(Settings(nil))
	approverType = reflect.TypeOf(Approvers(nil))
	posType      = reflect.TypeOf(Pos{})
)

// step counts one decoded node and reports false once the plan is too big.
func (d *decoder) step(n *yaml.Node, path string) bool {
	if d.full {
		return false
	}
	d.nodes++
	if d.nodes > maxNodes {
		d.full = true
		d.fail(n, path, "the plan expands to more than %d values (aliases?); stopped reading here", maxNodes)
		return false
	}
	return true
}

// deref follows an alias to its anchored value, and marks an anchored value
// as being decoded so an alias inside it cannot expand it again. The
// returned release must be called when the caller is done with the value.
func (d *decoder) deref(n *yaml.Node, path string) (*yaml.Node, func(), bool) {
	if n.Kind != yaml.AliasNode {
		if n.Anchor == "" || d.active[n] {
			return n, func() {}, true
		}
		d.active[n] = true
		return n, func() { delete(d.active, n) }, true
	}
	target := n.Alias
	if target == nil {
		d.fail(n, path, "alias *%s refers to no anchor", n.Value)
		return nil, nil, false
	}
	if d.active[target] {
		d.fail(n, path, "alias *%s refers to a value that contains it", n.Value)
		return nil, nil, false
	}
	d.active[target] = true
	inner, release, ok := d.deref(target, path)
	if !ok {
		delete(d.active, target)
		return nil, nil, false
	}
	return inner, func() { release(); delete(d.active, target) }, true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!int", "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		case "!!null":
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// value decodes n into v, which is addressable.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	if !d.step(n, path) {
		return
	}
	if _, seen := d.src.lines[path]; !seen && path != "" {
		d.src.lines[path] = n.Line
	}
	n, release, ok := d.deref(n, path)
	if !ok {
		return
	}
	defer release()

	switch v.Type() {
	case durationType:
		d.duration(n, v, path)
		return
	case approverType:
		// approvers: none says, in so many words, that a gate needs nobody.
		if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str" && n.Value == "none" {
			d.src.none[path] = true
			v.Set(reflect.ValueOf(Approvers{}))
			return
		}
	case settingsType:
		if isNull(n) {
			return
		}
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping of driver settings, got %s", kindName(n))
			return
		}
		m, ok := d.anyValue(n, path)
		if !ok {
			// The driver would only complain about what is missing.
			d.src.bad[path] = true
			return
		}
		v.Set(reflect.ValueOf(Settings(m.(map[string]any))))
		return
	}

	if isNull(n) {
		// Left out: the zero value; validation says whether that is allowed.
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		d.value(n, elem.Elem(), path)
		v.Set(elem)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		// Maps are keyed by name (a site's hosts): NAME: value.
		if n.Kind != yaml.MappingNode {
			d.fail(n, path, "want a mapping of NAME: ..., got %s", kindName(n))
			return
		}
		m := reflect.MakeMap(v.Type())
		for _, kv := range d.pairs(n, path) {
			fp := joinPath(path, kv.name)
			if _, seen := d.src.lines[fp]; !seen {
				d.src.lines[fp] = kv.key.Line
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			d.value(kv.val, elem, fp)
			m.SetMapIndex(reflect.ValueOf(kv.name), elem)
		}
		v.Set(m)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if n.Kind == yaml.ScalarNode {
				d.fail(n, path, "want a list, got %s (write [%s] for a list of one)", kindName(n), n.Value)
			} else {
				d.fail(n, path, "want a list, got %s", kindName(n))
			}
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, s.Index(i), fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		if s, ok := d.scalarText(n, path, "a string"); ok {
			v.SetString(s)
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			got := kindName(n)
			if n.Kind == yaml.ScalarNode {
				got = strconv.Quote(n.Value)
			}
			d.fail(n, path, "want a whole number, got %s", got)
			return
		}
		var i int
		if err := n.Decode(&i); err != nil {
			d.fail(n, path, "want a whole number, got %q", n.Value)
			return
		}
		v.SetInt(int64(i))
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			d.fail(n, path, "want true or false, got %s", kindName(n))
			return
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			d.fail(n, path, "want true or false, got %q", n.Value)
			return
		}
		v.SetBool(b)
	default:
		// Only reachable if types.go grows a field of a new kind.
		d.fail(n, path, "internal error: the loader cannot decode a %s", v.Type())
	}
}

// scalarText returns a scalar's text for a string field. Numbers and
// booleans are taken as written (name: 2024 is the name "2024").
func (d *decoder) scalarText(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.fail(n, path, "want %s, got %s", want, kindName(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		return n.Value, true
	}
	d.fail(n, path, "want %s, got a value tagged %s", want, n.Tag)
	return "", false
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	if isNull(n) {
		return
	}
	s, ok := d.scalarText(n, path, "a duration such as 15m")
	if !ok {
		return
	}
	dur, err := parseDuration(s)
	if err != nil {
		d.fail(n, path, "%v", err)
		return
	}
	v.SetInt(int64(dur))
}

type fieldInfo struct {
	index int
	name  string
}

type structInfo struct {
	fields map[string]fieldInfo
	names  []string // sorted, for messages
	pos    int      // index of the Pos field, or -1
}

// structCache holds structInfo by type; Parse may run on many goroutines.
var structCache sync.Map

func structFields(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{fields: map[string]fieldInfo{}, pos: -1}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type == posType && f.Name == "Pos" {
			si.pos = i
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || name == "" {
			continue
		}
		si.fields[name] = fieldInfo{index: i, name: name}
		si.names = append(si.names, name)
	}
	sort.Strings(si.names)
	structCache.Store(t, si)
	return si
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		if path == "" {
			d.fail(n, path, "a plan is a mapping (apiVersion: %s, name: ..., ...), got %s", APIVersion, kindName(n))
		} else {
			d.fail(n, path, "want a mapping, got %s", kindName(n))
		}
		return
	}
	si := structFields(v.Type())
	if si.pos >= 0 {
		line := n.Line
		if l, ok := d.src.lines[path]; ok && l > 0 {
			line = l
		}
		v.Field(si.pos).Set(reflect.ValueOf(Pos{File: d.file, Line: line}))
	}
	for _, kv := range d.pairs(n, path) {
		name := kv.name
		fp := joinPath(path, name)
		f, ok := si.fields[name]
		if !ok {
			msg := fmt.Sprintf("unknown field (known: %s)", strings.Join(si.names, ", "))
			if guess := closest(name, si.names); guess != "" {
				msg = fmt.Sprintf("unknown field; did you mean %q? (known: %s)", guess, strings.Join(si.names, ", "))
			}
			d.fail(kv.key, fp, "%s", msg)
			continue
		}
		// A field's line is its key's: a mapping or list written below
		// the key still points at the key.
		if _, seen := d.src.lines[fp]; !seen {
			d.src.lines[fp] = kv.key.Line
		}
		d.value(kv.val, v.Field(f.index), fp)
	}
}

type pair struct {
	name     string
	key, val *yaml.Node
}

// pairs lists a mapping's entries with YAML merge keys (<<: *base) applied:
// entries written in the mapping win over merged ones, earlier merge sources
// over later ones. A key written twice is a problem.
func (d *decoder) pairs(n *yaml.Node, path string) []pair {
	// Merges can fan out like aliases; count every entry against maxNodes.
	if !d.step(n, path) {
		return nil
	}
	var out []pair
	seen := map[string]int{} // name -> line first written
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			merges = append(merges, val)
			continue
		}
		kd, release, ok := d.deref(k, path)
		if !ok {
			continue
		}
		name, isStr := "", kd.Kind == yaml.ScalarNode && !isNull(kd)
		if isStr {
			name = kd.Value
		}
		release()
		if !isStr {
			d.fail(k, path, "keys must be plain names, got %s", kindName(kd))
			continue
		}
		if first, dup := seen[name]; dup {
			d.fail(k, joinPath(path, name), "written twice (first at line %d)", first)
			continue
		}
		seen[name] = k.Line
		out = append(out, pair{name: name, key: k, val: val})
	}
	for _, m := range merges {
		for _, src := range d.mergeSources(m, path) {
			for _, kv := range src {
				if !d.step(kv.key, path) {
					return out
				}
				if _, dup := seen[kv.name]; dup {
					continue
				}
				seen[kv.name] = kv.key.Line
				out = append(out, kv)
			}
		}
	}
	return out
}

func isMergeKey(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Value == "<<" && n.ShortTag() == "!!merge"
}

// mergeSources returns the entries of a merge value: a mapping, or a list of
// mappings, usually aliases.
func (d *decoder) mergeSources(m *yaml.Node, path string) [][]pair {
	mv, release, ok := d.deref(m, path)
	if !ok {
		return nil
	}
	defer release()
	switch mv.Kind {
	case yaml.MappingNode:
		return [][]pair{d.pairs(mv, path)}
	case yaml.SequenceNode:
		var out [][]pair
		for _, item := range mv.Content {
			iv, rel, ok := d.deref(item, path)
			if !ok {
				continue
			}
			if iv.Kind != yaml.MappingNode {
				d.fail(item, path, "<< merges mappings, got %s", kindName(iv))
				rel()
				continue
			}
			out = append(out, d.pairs(iv, path))
			rel()
		}
		return out
	}
	d.fail(m, path, "<< merges a mapping or a list of mappings, got %s", kindName(mv))
	return nil
}

// anyValue converts driver settings to plain Go values that encode to JSON:
// maps with string keys, lists, strings, numbers, booleans and nil.
func (d *decoder) anyValue(n *yaml.Node, path string) (any, bool) {
	if !d.step(n, path) {
		return nil, false
	}
	n, release, ok := d.deref(n, path)
	if !ok {
		return nil, false
	}
	defer release()
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		good := true
		for _, kv := range d.pairs(n, path) {
			fp := joinPath(path, kv.name)
			if _, seen := d.src.lines[fp]; !seen {
				d.src.lines[fp] = kv.key.Line
			}
			v, ok := d.anyValue(kv.val, fp)
			if !ok {
				good = false
				continue
			}
			m[kv.name] = v
		}
		return m, good
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		good := true
		for i, c := range n.Content {
			v, ok := d.anyValue(c, fmt.Sprintf("%s[%d]", path, i))
			if !ok {
				good = false
				continue
			}
			l = append(l, v)
		}
		return l, good
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return nil, true
		case "!!str", "!!timestamp", "!!binary":
			// Timestamps stay as written; drivers parse what they need.
			return n.Value, true
		case "!!bool":
			var b bool
			if err := n.Decode(&b); err != nil {
				d.fail(n, path, "want true or false, got %q", n.Value)
				return nil, false
			}
			return b, true
		case "!!int", "!!float":
			var x any
			if err := n.Decode(&x); err != nil {
				d.fail(n, path, "not a number: %q", n.Value)
				return nil, false
			}
			if f, isFloat := x.(float64); isFloat && (math.IsInf(f, 0) || math.IsNaN(f)) {
				d.fail(n, path, "%s is not a finite number (plans travel as JSON)", n.Value)
				return nil, false
			}
			return x, true
		}
		d.fail(n, path, "values tagged %s are not supported in settings", n.Tag)
		return nil, false
	}
	d.fail(n, path, "unsupported YAML value")
	return nil, false
}

// closest returns the candidate within a small edit distance of s, or "".
// Past a few hundred candidates a guess costs more than it helps.
func closest(s string, candidates []string) string {
	if len(candidates) > 300 {
		return ""
	}
	best, bestD := "", 3
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if dist := editDistance(ls, strings.ToLower(c)); dist < bestD {
			best, bestD = c, dist
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return math.MaxInt32
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// takePlacement moves a store's site and host keys out of its settings.
func takePlacement(store Settings) StoreSite {
	var at StoreSite
	if v, ok := store["site"].(string); ok {
		at.Site = v
		delete(store, "site")
	}
	if v, ok := store["host"].(string); ok {
		at.Host = v
		delete(store, "host")
	}
	return at
}
