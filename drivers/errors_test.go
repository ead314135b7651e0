package drivers

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBadSettingsKeepsMessageAndChain(t *testing.T) {
	base := errors.New(`settings: unknown field "stpo"`)
	err := BadSettings(base)
	assert.Equal(t, base.Error(), err.Error())
	assert.ErrorIs(t, err, ErrBadSettings)
	assert.ErrorIs(t, err, base)
	assert.True(t, Permanent(err))

	wrapped := fmt.Errorf("start db2 on dc2: %w", err)
	assert.True(t, Permanent(wrapped))
	assert.Same(t, err, BadSettings(err), "marking twice adds nothing")
	assert.NoError(t, BadSettings(nil))

	f := BadSettingsf("exec driver %w", base)
	assert.ErrorIs(t, f, base)
	assert.Equal(t, `exec driver settings: unknown field "stpo"`, f.Error())
}

func TestUnsupportedAndTransient(t *testing.T) {
	err := Unsupported(errors.New("no quiesce command"))
	assert.ErrorIs(t, err, ErrUnsupported)
	assert.NotErrorIs(t, err, ErrBadSettings)
	assert.True(t, Permanent(err))
	assert.NoError(t, Unsupported(nil))
	assert.False(t, Permanent(errors.New("connection refused")))
	assert.False(t, Permanent(nil))
}
