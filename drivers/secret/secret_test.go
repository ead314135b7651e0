package secret

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestResolveEnvAndFile(t *testing.T) {
	t.Setenv("DROVER_TEST_SECRET", "s3cret")
	v, err := Ref("env:DROVER_TEST_SECRET").Resolve()
	require.NoError(t, err)
	require.Equal(t, "s3cret", v)

	f := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(f, []byte("from-file\n"), 0o600))
	v, err = Ref("file:" + f).Resolve()
	require.NoError(t, err)
	require.Equal(t, "from-file", v, "a trailing newline is not part of the secret")
}

func TestErrorsNameTheReferenceNeverTheValue(t *testing.T) {
	_, err := Ref("env:DROVER_TEST_UNSET_SECRET").Resolve()
	require.EqualError(t, err, "secret env:DROVER_TEST_UNSET_SECRET: environment variable DROVER_TEST_UNSET_SECRET is not set")

	_, err = Ref("hunter2").Resolve()
	require.ErrorIs(t, err, ErrNotReference)
	require.NotContains(t, err.Error(), "hunter2")

	require.Error(t, Ref("env:").Check())
	require.Error(t, Ref("file:").Check())
	_, err = Ref("file:/nonexistent/drover/pw").Resolve()
	require.ErrorContains(t, err, "secret file:/nonexistent/drover/pw")
}
