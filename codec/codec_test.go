package codec

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
)

type secretInput struct {
	Plan     string `json:"plan"`
	Password string `json:"password"`
}

const secret = "hunter2-the-db2-password"

func testKey(t *testing.T) Key {
	t.Helper()
	k, err := GenerateKey()
	require.NoError(t, err)
	return k
}

func testCodec(t *testing.T, primary Key, older ...Key) *Codec {
	t.Helper()
	c, err := NewCodec(primary, older...)
	require.NoError(t, err)
	return c
}

func TestDataConverterRoundTrip(t *testing.T) {
	dc := NewDataConverter(testCodec(t, testKey(t)))
	in := secretInput{Plan: "bpm-prod", Password: secret}
	p, err := dc.ToPayload(in)
	require.NoError(t, err)

	assert.Equal(t, EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
	assert.Len(t, p.Metadata[MetadataKeyID], 16)
	assert.NotContains(t, string(p.Data), secret)
	assert.NotContains(t, string(p.Data), "bpm-prod")
	assert.NotContains(t, string(p.Data), "json/plain", "the inner encoding is encrypted too")

	var out secretInput
	require.NoError(t, dc.FromPayload(p, &out))
	assert.Equal(t, in, out)

	// A fresh nonce per payload: the same value never encrypts alike.
	p2, err := dc.ToPayload(in)
	require.NoError(t, err)
	assert.NotEqual(t, p.Data, p2.Data)

	// Several values at once, and nil.
	ps, err := dc.ToPayloads("a", 2, nil)
	require.NoError(t, err)
	var a string
	var n int
	var nothing *secretInput
	require.NoError(t, dc.FromPayloads(ps, &a, &n, &nothing))
	assert.Equal(t, "a", a)
	assert.Equal(t, 2, n)
	assert.Nil(t, nothing)
}

func encryptOne(t *testing.T, c *Codec, v any) *commonpb.Payload {
	t.Helper()
	plain, err := converter.GetDefaultDataConverter().ToPayload(v)
	require.NoError(t, err)
	enc, err := c.Encode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	return enc[0]
}

func TestDecodeDetectsTampering(t *testing.T) {
	c := testCodec(t, testKey(t))
	good := encryptOne(t, c, secretInput{Password: secret})

	for name, mutate := range map[string]func(p *commonpb.Payload){
		"ciphertext bit": func(p *commonpb.Payload) { p.Data[len(p.Data)/2] ^= 1 },
		"nonce bit":      func(p *commonpb.Payload) { p.Data[0] ^= 0x80 },
		"tag bit":        func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 1 },
		"truncated":      func(p *commonpb.Payload) { p.Data = p.Data[:len(p.Data)-1] },
		"too short":      func(p *commonpb.Payload) { p.Data = p.Data[:10] },
	} {
		t.Run(name, func(t *testing.T) {
			p := &commonpb.Payload{Metadata: good.Metadata, Data: bytes.Clone(good.Data)}
			mutate(p)
			_, err := c.Decode([]*commonpb.Payload{p})
			require.Error(t, err)
			assert.NotContains(t, err.Error(), secret)
		})
	}
	_, err := c.Decode([]*commonpb.Payload{good})
	require.NoError(t, err, "the untouched payload still decodes")
}

func TestDecodeWrongKey(t *testing.T) {
	k1, k2 := testKey(t), testKey(t)
	p := encryptOne(t, testCodec(t, k1), "x")

	_, err := testCodec(t, k2).Decode([]*commonpb.Payload{p})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "encrypted with key \""+k1.ID()+"\"")
	assert.Contains(t, err.Error(), k2.ID())

	// Relabelling the payload with the other key's id does not help: the
	// id is authenticated and the key is wrong.
	forged := &commonpb.Payload{Metadata: map[string][]byte{
		converter.MetadataEncoding: []byte(EncodingEncrypted), MetadataKeyID: []byte(k2.ID()),
	}, Data: p.Data}
	_, err = testCodec(t, k2).Decode([]*commonpb.Payload{forged})
	require.ErrorContains(t, err, "authentication failed")

	// Through a data converter the error surfaces on FromPayload.
	var s string
	require.Error(t, NewDataConverter(testCodec(t, k2)).FromPayload(p, &s))
}

func TestKeyRotation(t *testing.T) {
	old, cur := testKey(t), testKey(t)
	p := encryptOne(t, testCodec(t, old), "from the old key")
	rotated := testCodec(t, cur, old)
	out, err := rotated.Decode([]*commonpb.Payload{p})
	require.NoError(t, err)
	var s string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(out[0], &s))
	assert.Equal(t, "from the old key", s)
	// New payloads use the new key.
	assert.Equal(t, cur.ID(), string(encryptOne(t, rotated, 1).Metadata[MetadataKeyID]))
}

func TestUnencryptedPayloadPassesThrough(t *testing.T) {
	// History written by a client without the key (or before encryption was
	// turned on) must stay readable.
	plain, err := converter.GetDefaultDataConverter().ToPayload(secretInput{Plan: "p"})
	require.NoError(t, err)
	dc := NewDataConverter(testCodec(t, testKey(t)))
	var out secretInput
	require.NoError(t, dc.FromPayload(plain, &out))
	assert.Equal(t, "p", out.Plan)

	raw, err := testCodec(t, testKey(t)).Decode([]*commonpb.Payload{plain})
	require.NoError(t, err)
	assert.Same(t, plain, raw[0])
}

func TestFailureConverterEncryptsMessages(t *testing.T) {
	dc := NewDataConverter(testCodec(t, testKey(t)))
	fc := NewFailureConverter(dc)
	err := temporal.NewApplicationError("connect to db2 with password "+secret, "DB2Error")
	f := fc.ErrorToFailure(err)
	assert.NotContains(t, f.GetMessage(), secret)
	assert.NotContains(t, f.GetStackTrace(), secret)
	require.NotNil(t, f.GetEncodedAttributes())
	assert.Equal(t, EncodingEncrypted, string(f.GetEncodedAttributes().GetMetadata()[converter.MetadataEncoding]))
	assert.NotContains(t, string(f.GetEncodedAttributes().GetData()), secret)

	back := fc.FailureToError(f)
	var app *temporal.ApplicationError
	require.True(t, errors.As(back, &app))
	assert.Contains(t, app.Error(), secret)
	assert.Equal(t, "DB2Error", app.Type())
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	raw := bytes.Repeat([]byte{0xab}, KeySize)
	want, err := NewKey(raw)
	require.NoError(t, err)
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	for name, data := range map[string][]byte{
		"raw":        raw,
		"hex":        []byte(hex.EncodeToString(raw) + "\n"),
		"base64":     []byte(base64.StdEncoding.EncodeToString(raw) + "\n"),
		"base64-raw": []byte("  " + base64.RawStdEncoding.EncodeToString(raw)),
		"base64-url": []byte(base64.URLEncoding.EncodeToString(raw)),
		"text":       want.Text(),
	} {
		k, err := LoadKey(write(name, data))
		require.NoError(t, err, name)
		assert.Equal(t, want.ID(), k.ID(), name)
	}

	for name, c := range map[string]struct {
		data []byte
		msg  string
	}{
		"empty":       {nil, "empty"},
		"short raw":   {raw[:31], "neither 32 raw bytes"},
		"short b64":   {[]byte(base64.StdEncoding.EncodeToString(raw[:16])), "decodes to 16 bytes"},
		"long hex":    {[]byte(hex.EncodeToString(append(raw, 1))), "neither"},
		"passphrase":  {[]byte("correct horse battery staple\n"), "neither"},
		"huge":        {bytes.Repeat([]byte("a"), 5000), "more than 4096 bytes"},
		"whitespaces": {[]byte("\n\n  \n"), "empty"},
	} {
		p := write(strings.ReplaceAll(name, " ", "-"), c.data)
		_, err := LoadKey(p)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), p, name)
		assert.Contains(t, err.Error(), c.msg, name)
	}
	_, err = LoadKey(filepath.Join(dir, "nope"))
	require.ErrorContains(t, err, "nope")
	_, err = NewCodec(Key{})
	require.Error(t, err)
	assert.NotContains(t, want.String(), hex.EncodeToString(raw))
}

func TestConverters(t *testing.T) {
	k := testKey(t)
	p := filepath.Join(t.TempDir(), "k")
	require.NoError(t, os.WriteFile(p, k.Text(), 0o600))
	dc, fc, err := Converters(p)
	require.NoError(t, err)
	pl, err := dc.ToPayload("x")
	require.NoError(t, err)
	assert.Equal(t, k.ID(), string(pl.Metadata[MetadataKeyID]))
	assert.NotNil(t, fc)
	_, _, err = Converters(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
}
