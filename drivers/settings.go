package drivers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
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
	if err := decodeStrict(raw, out); err != nil {
		if strings.Contains(err.Error(), "unknown field") {
			return fmt.Errorf("settings: %s", decodeMessage(err))
		}
		// A value's own decoder (a Duration) does not know its field's
		// name: find the first key that fails alone, so the error names it.
		keys := make([]string, 0, len(settings))
		for k := range settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			one, mErr := json.Marshal(map[string]any{k: settings[k]})
			if mErr != nil {
				return fmt.Errorf("settings: %s: %w", k, mErr)
			}
			fresh := reflect.New(reflect.TypeOf(out).Elem()).Interface()
			if kErr := decodeStrict(one, fresh); kErr != nil {
				return fmt.Errorf("settings: %s: %s", k, decodeMessage(kErr))
			}
		}
		return fmt.Errorf("settings: %s", decodeMessage(err))
	}
	return nil
}

func decodeStrict(raw []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	return dec.Decode(out)
}

// decodeMessage says what is wrong in the words of the plan's author, who
// wrote YAML, not Go: no "json:" prefix and no Go type names.
func decodeMessage(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("want %s, got a %s", typeName(typeErr.Type), typeErr.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "whole number"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "mapping"
	}
	return t.String()
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
