// Package secret resolves secret references. A plan never holds a secret
// value, only a reference, so nothing secret reaches workflow history:
// activities resolve references right before a driver uses them.
package secret

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Ref is a secret reference: env:NAME or file:PATH.
type Ref string

// ErrNotReference is returned for a value that is not env: or file:.
var ErrNotReference = errors.New("not a secret reference (want env:NAME or file:PATH)")

// Check validates the form of a reference without resolving it.
func (r Ref) Check() error {
	s := string(r)
	switch {
	case strings.HasPrefix(s, "env:"):
		if strings.TrimPrefix(s, "env:") == "" {
			return fmt.Errorf("secret reference %q names no variable", s)
		}
		return nil
	case strings.HasPrefix(s, "file:"):
		if strings.TrimPrefix(s, "file:") == "" {
			return fmt.Errorf("secret reference %q names no file", s)
		}
		return nil
	}
	return fmt.Errorf("%w: got a value of %d characters", ErrNotReference, len(s))
}

// Resolve returns the secret's value. Errors name the reference, never the
// value.
func (r Ref) Resolve() (string, error) {
	if err := r.Check(); err != nil {
		return "", err
	}
	s := string(r)
	if name, ok := strings.CutPrefix(s, "env:"); ok {
		v, ok := os.LookupEnv(name)
		if !ok {
			return "", fmt.Errorf("secret %s: environment variable %s is not set", s, name)
		}
		return v, nil
	}
	path := strings.TrimPrefix(s, "file:")
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("secret %s: %w", s, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
