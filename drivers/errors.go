package drivers

import (
	"errors"
	"fmt"
)

// ErrBadSettings marks an error a retry cannot fix: the plan gave a driver
// settings it cannot use (unknown field, bad template, a template key the
// site does not define). Activities test it with errors.Is and fail the step
// as non-retryable.
var ErrBadSettings = errors.New("bad driver settings")

// ErrUnsupported marks a call the driver cannot serve with the settings it
// was given (quiesce on a component with no quiesce command). Like
// ErrBadSettings, retrying does not help.
var ErrUnsupported = errors.New("not supported by this driver's settings")

// markedError keeps err's message unchanged while making errors.Is find the
// mark, so messages read "start: unknown field \"x\"" rather than repeating
// "bad driver settings" in every line.
type markedError struct {
	mark error
	err  error
}

func (e *markedError) Error() string   { return e.err.Error() }
func (e *markedError) Unwrap() []error { return []error{e.mark, e.err} }

// BadSettings marks err as ErrBadSettings. A nil err stays nil.
func BadSettings(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrBadSettings) {
		return err
	}
	return &markedError{mark: ErrBadSettings, err: err}
}

// BadSettingsf formats an error marked as ErrBadSettings.
func BadSettingsf(format string, args ...any) error {
	return &markedError{mark: ErrBadSettings, err: fmt.Errorf(format, args...)}
}

// Unsupported marks err as ErrUnsupported. A nil err stays nil.
func Unsupported(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrUnsupported) {
		return err
	}
	return &markedError{mark: ErrUnsupported, err: err}
}

// Permanent reports whether err is one a retry cannot fix.
func Permanent(err error) bool {
	return errors.Is(err, ErrBadSettings) || errors.Is(err, ErrUnsupported)
}
