package lab

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServerExecutableHonoursTheOverride(t *testing.T) {
	t.Setenv(EnvExe, "/opt/drover/bin/drover-lab")
	exe, err := ServerExecutable()
	require.NoError(t, err)
	assert.Equal(t, "/opt/drover/bin/drover-lab", exe)
}

func TestServerExecutableIgnoresALeanProgramItCannotProveCurrent(t *testing.T) {
	t.Setenv(EnvExe, "")
	self, err := os.Executable()
	require.NoError(t, err)
	// A test binary carries no VCS stamp, so nothing proves a drover-lab
	// beside it was built from the same source: the launcher keeps itself.
	exe, err := ServerExecutable()
	require.NoError(t, err)
	assert.Equal(t, self, exe)
	assert.False(t, sameBuild(self, self), "builds without a revision are never taken as the same")
	assert.False(t, sameBuild(self, filepath.Join(t.TempDir(), LeanExe)), "a missing program is not the same build")
	notGo := filepath.Join(t.TempDir(), "script")
	require.NoError(t, os.WriteFile(notGo, []byte("#!/bin/sh\n"), 0o755))
	assert.False(t, sameBuild(self, notGo), "a program that is not a Go binary is not the same build")
}
