package probe

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/drover-dr/drover/drivers"
)

func TestTCPListenerPasses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	accepted := make(chan struct{})
	go func() {
		if c, err := ln.Accept(); err == nil {
			_ = c.Close()
			close(accepted)
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	res, err := NewTCP(nil).Check(context.Background(), request(map[string]any{
		"address": `{{index .Site.Settings "host"}}:{{.Vars.port}}`,
		"vars":    map[string]any{"port": float64(port)},
	}))
	require.NoError(t, err)
	assert.True(t, res.Passed, res.Summary)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	assert.Contains(t, res.Summary, "connected to "+addr)
	assert.Equal(t, "tcp connect "+addr, res.Evidence.Action)
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the listener never saw the probe's connection")
	}
}

func TestTCPClosedPortFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	res, err := NewTCP(nil).Check(context.Background(), request(map[string]any{"address": addr, "timeout": "2s"}))
	require.NoError(t, err)
	assert.False(t, res.Passed)
	assert.Equal(t, "connect "+addr+": connection refused", res.Summary)
}

func TestTCPBadSettings(t *testing.T) {
	p := NewTCP(nil)
	for want, s := range map[string]map[string]any{
		"address: required":         {},
		`unknown field "adress"`:    {"adress": "127.0.0.1:1"},
		"invalid duration":          {"address": "127.0.0.1:1", "timeout": "fast"},
		`no field "Adress" in Site`: {"address": "{{.Site.Adress}}:1"},
	} {
		err := p.CheckSettings(s)
		require.Error(t, err, want)
		assert.Contains(t, err.Error(), want)
		assert.ErrorIs(t, err, drivers.ErrBadSettings)
	}
	_, err := p.Check(context.Background(), request(map[string]any{"address": "{{.Site.Name}}"}))
	assert.ErrorContains(t, err, `address "dc2": want host:port`)
	assert.True(t, drivers.Permanent(err))
}

func TestTCPCallerCancelIsError(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := NewTCP(nil).Check(ctx, request(map[string]any{"address": "127.0.0.1:1"}))
	require.ErrorIs(t, err, context.Canceled)
}
