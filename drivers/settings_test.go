package drivers

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestTruncateKeepsLimitAndRunes(t *testing.T) {
	s := strings.Repeat("é", 500) // two bytes each
	for _, max := range []int{40, 41, 100, 333} {
		got := Truncate(s, max)
		require.LessOrEqual(t, len(got), max)
		require.True(t, utf8.ValidString(got), "max %d cut a character", max)
		require.Contains(t, got, "[truncated]")
	}
	require.Equal(t, "short", Truncate("short", 100))
}

func TestDecodeSettingsStrict(t *testing.T) {
	var out struct {
		Timeout Duration `json:"timeout"`
	}
	require.NoError(t, DecodeSettings(map[string]any{"timeout": "30s"}, &out))
	require.Equal(t, "30s", out.Timeout.D().String())
	err := DecodeSettings(map[string]any{"timeuot": "30s"}, &out)
	require.EqualError(t, err, `settings: unknown field "timeuot"`)
	require.ErrorContains(t, DecodeSettings(map[string]any{"timeout": "soon"}, &out), `invalid duration "soon"`)
}

func TestExpandPathRefusesUnsetVariables(t *testing.T) {
	t.Setenv("DROVER_T_DIR", "/srv/dr")
	got, err := ExpandPath("${DROVER_T_DIR}/primary")
	require.NoError(t, err)
	require.Equal(t, "/srv/dr/primary", got)
	_, err = ExpandPath("${DROVER_T_UNSET_X}/primary")
	require.ErrorContains(t, err, "DROVER_T_UNSET_X is not set")
}

func TestDecodeSettingsNamesTheFieldOfABadValue(t *testing.T) {
	var out struct {
		Timeout Duration `json:"timeout"`
		Port    int      `json:"port"`
	}
	err := DecodeSettings(map[string]any{"port": 5, "timeout": "soon"}, &out)
	if err == nil || err.Error() != `settings: timeout: invalid duration "soon" (want e.g. 30s, 5m)` {
		t.Fatalf("bad duration: %v", err)
	}
	err = DecodeSettings(map[string]any{"port": "five"}, &out)
	if err == nil || err.Error() != `settings: port: want whole number, got a string` {
		t.Fatalf("bad port: %v", err)
	}
}
