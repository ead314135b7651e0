package drivers

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"
)

// DecodeSettings decodes a driver's settings into out strictly: an unknown
// field is an error that names it. Durations in out should use the Duration
// type so "30s" decodes.
func DecodeSettings(settings map[string]any, out any) error {
	if settings == nil {
		settings = map[string]any{}
	}
	raw, err := json.Marshal(settings)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		msg := err.Error()
		// encoding/json says `json: unknown field "x"`; users wrote YAML.
		msg = strings.TrimPrefix(msg, "json: ")
		return fmt.Errorf("settings: %s", msg)
	}
	return nil
}

// Duration is a time.Duration that decodes from "30s" or from a number of
// seconds.
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads "30s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q (want e.g. 30s, 5m)", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("invalid duration %s (want e.g. 30s, 5m)", string(b))
	}
	*d = Duration(time.Duration(secs * float64(time.Second)))
	return nil
}

// Truncate keeps the head and tail of long command output so evidence stays
// small in workflow history. The result is at most max bytes and never
// splits a UTF-8 character.
func Truncate(s string, max int) string {
	const marker = "\n…[truncated]…\n"
	if len(s) <= max || max < len(marker)+2 {
		return s
	}
	half := (max - len(marker)) / 2
	head := s[:half]
	for len(head) > 0 && !utf8.RuneStart(s[len(head)]) {
		head = head[:len(head)-1]
	}
	tail := s[len(s)-half:]
	for len(tail) > 0 && !utf8.RuneStart(tail[0]) {
		tail = tail[1:]
	}
	return head + marker + tail
}

// ExpandPath expands ${VAR} and $VAR in a path setting from the worker's
// environment. Unlike os.ExpandEnv an unset or empty variable is an error:
// "${DROVER_LAB_DIR}/primary" must never quietly become "/primary".
func ExpandPath(s string) (string, error) {
	var missing []string
	out := os.Expand(s, func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("path %q: environment variable %s is not set", s, strings.Join(missing, ", "))
	}
	return out, nil
}
