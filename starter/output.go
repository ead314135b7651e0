package starter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/drover-dr/drover/catalog"
)

// Output formats every listing or describing command accepts with -o.
const (
	OutputText = "text"
	OutputJSON = "json"
	OutputYAML = "yaml"
)

// checkOutput refuses an --output value no command prints (exit 2).
func checkOutput(v string) error {
	switch v {
	case OutputText, OutputJSON, OutputYAML:
		return nil
	}
	return BadInputf("--output %q: want text, json or yaml", v)
}

// Print writes v as JSON or YAML when -o asks for it, else calls text. It
// is the one printer of every command that lists or describes: JSON and
// YAML carry the same fields (YAML is made from the JSON, so the json tags
// name both), and a list is printed in the order the caller sorted it, the
// same in every format.
func (g *Globals) Print(v any, text func(w io.Writer) error) error {
	switch g.Output {
	case OutputJSON:
		return writeJSON(g.Stdout, v)
	case OutputYAML:
		return writeYAML(g.Stdout, v)
	}
	return text(g.Stdout)
}

// Structured reports whether -o asks for JSON or YAML rather than text.
func (g *Globals) Structured() bool { return g.Output == OutputJSON || g.Output == OutputYAML }

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	return nil
}

// writeYAML converts v through its JSON form: YAML 1.2 reads JSON, so the
// node tree keeps the JSON's field order; block style is set on every node
// so people read it as YAML.
func writeYAML(w io.Writer, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("write YAML output: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("write YAML output: %w", err)
	}
	blockStyle(&doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("write YAML output: %w", err)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("write YAML output: %w", err)
	}
	_, err = w.Write(b.Bytes())
	return err
}

func blockStyle(n *yaml.Node) {
	if n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode {
		n.Style &^= yaml.FlowStyle
	}
	if n.Kind == yaml.ScalarNode && n.Style&(yaml.DoubleQuotedStyle) != 0 && n.Tag == "!!str" {
		// JSON quotes every string; YAML needs quotes only where a plain
		// scalar would read as something else, and the encoder adds them.
		n.Style &^= yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		blockStyle(c)
	}
}

// Human formatting for text output: no raw Go values.

// humanDuration prints a duration rounded to what a person reads: "850ms",
// "42s", "3m07s", "2h05m", "3d04h".
func humanDuration(d time.Duration) string {
	if d < 0 {
		return "-" + humanDuration(-d)
	}
	switch {
	case d == 0:
		return "0s"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%dd%02dh", int(d.Hours())/24, int(d.Hours())%24)
}

// humanTime prints an instant in the reader's local zone with the zone, or
// "-" when unknown.
func humanTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05 MST")
}

// humanBytes prints a size the way the store's reports do (KiB, MiB, …).
func humanBytes(n int64) string { return catalog.HumanBytes(n) }

// orDash prints "-" for an empty value in a table cell.
func orDash(s string) string {
	if strings.TrimSpace(s) == "" {
		return "-"
	}
	return s
}
