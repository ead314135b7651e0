package starter

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBenchRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"rto", "--n", "0"},
		{"rto", "--n", "2,2"},
		{"rto", "--time-scale", "0"},
		{"rto", "--time-scale", "3"},
		{"rto", "--rounds", "0"},
		{"rto", "--timeout=-1s"},
		{"backup", "--size", "tiny"},
		{"backup", "--snapshots", "0"},
		{"pgfailover", "--runs", "0"},
		{"pgfailover", "--clients", "0"},
		{"pgfailover", "--load", "0s"},
		{"pgfailover", "--timeout=-1s"},
	} {
		code, _, errs := runDrover(append([]string{"bench"}, args...)...)
		assert.Equal(t, ExitBadInput, code, "%v: %s", args, errs)
		assert.Contains(t, errs, strings.SplitN(args[1], "=", 2)[0], args)
	}
}
