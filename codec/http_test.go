package codec

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"google.golang.org/protobuf/encoding/protojson"
)

const uiOrigin = "http://127.0.0.1:8233"

func codecServer(t *testing.T, c *Codec, token string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHTTPHandler(c, HTTPOptions{AllowedOrigins: []string{uiOrigin + "/"}, Token: token}))
	t.Cleanup(srv.Close)
	return srv
}

func post(t *testing.T, url string, body []byte, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Namespace", "default")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func payloadsJSON(t *testing.T, ps ...*commonpb.Payload) []byte {
	t.Helper()
	b, err := protojson.Marshal(&commonpb.Payloads{Payloads: ps})
	require.NoError(t, err)
	return b
}

func decodeResponse(t *testing.T, resp *http.Response) []*commonpb.Payload {
	t.Helper()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "body: %s", body)
	var out commonpb.Payloads
	require.NoError(t, protojson.Unmarshal(body, &out), "body: %s", body)
	return out.Payloads
}

func TestHTTPDecodesForTheUI(t *testing.T) {
	c := testCodec(t, testKey(t))
	srv := codecServer(t, c, "")
	enc := encryptOne(t, c, secretInput{Plan: "bpm-prod", Password: secret})

	resp := post(t, srv.URL+"/decode", payloadsJSON(t, enc), map[string]string{"Origin": uiOrigin})
	assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	out := decodeResponse(t, resp)
	require.Len(t, out, 1)
	assert.Equal(t, "json/plain", string(out[0].Metadata[converter.MetadataEncoding]))
	var got secretInput
	require.NoError(t, json.Unmarshal(out[0].Data, &got))
	assert.Equal(t, secret, got.Password)

	// And encode, as the UI does for a signal typed into it.
	plain, err := converter.GetDefaultDataConverter().ToPayload("typed in the UI")
	require.NoError(t, err)
	encOut := decodeResponse(t, post(t, srv.URL+"/encode", payloadsJSON(t, plain), nil))
	require.Len(t, encOut, 1)
	assert.Equal(t, EncodingEncrypted, string(encOut[0].Metadata[converter.MetadataEncoding]))
	back, err := c.Decode(encOut)
	require.NoError(t, err)
	assert.Equal(t, plain.Data, back[0].Data)
}

// The UI allowed as http://127.0.0.1:8233 is just as often opened as
// http://localhost:8233 (or [::1]): each spelling gets its own origin back.
func TestHTTPAcceptsEveryLoopbackSpellingOfTheUI(t *testing.T) {
	c := testCodec(t, testKey(t))
	enc := encryptOne(t, c, secretInput{Plan: "bpm-prod", Password: secret})
	for _, allowed := range []string{"http://127.0.0.1:8233", "http://localhost:8233/"} {
		srv := httptest.NewServer(NewHTTPHandler(c, HTTPOptions{AllowedOrigins: []string{allowed}}))
		for _, origin := range []string{"http://127.0.0.1:8233", "http://localhost:8233", "http://[::1]:8233"} {
			resp := post(t, srv.URL+"/decode", payloadsJSON(t, enc), map[string]string{"Origin": origin})
			assert.Equal(t, origin, resp.Header.Get("Access-Control-Allow-Origin"), "allowed %s, origin %s", allowed, origin)
			out := decodeResponse(t, resp)
			require.Len(t, out, 1)
			assert.Contains(t, string(out[0].Data), secret)
		}
		// Another port, scheme or host is still another origin.
		for _, origin := range []string{"http://localhost:8234", "https://localhost:8233", "http://127.0.0.2:8233"} {
			resp := post(t, srv.URL+"/decode", payloadsJSON(t, enc), map[string]string{"Origin": origin})
			resp.Body.Close()
			assert.Equal(t, http.StatusForbidden, resp.StatusCode, "allowed %s, origin %s", allowed, origin)
		}
		srv.Close()
	}
	// A non-loopback origin allows only itself.
	srv := httptest.NewServer(NewHTTPHandler(c, HTTPOptions{AllowedOrigins: []string{"https://temporal.example.com"}}))
	defer srv.Close()
	resp := post(t, srv.URL+"/decode", payloadsJSON(t, enc), map[string]string{"Origin": "https://localhost"})
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestHTTPPreflight(t *testing.T) {
	srv := codecServer(t, testCodec(t, testKey(t)), "tok")
	req, err := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", uiOrigin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type,x-namespace,authorization")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	// The preflight carries no token and still succeeds.
	assert.Equal(t, http.StatusNoContent, resp.StatusCode)
	assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "true", resp.Header.Get("Access-Control-Allow-Credentials"))
	for _, h := range []string{"Content-Type", "X-Namespace", "Authorization"} {
		assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), h)
	}
	assert.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
}

func TestHTTPRefusesOtherOrigins(t *testing.T) {
	c := testCodec(t, testKey(t))
	srv := codecServer(t, c, "")
	enc := encryptOne(t, c, secretInput{Password: secret})
	for _, origin := range []string{"http://evil.example", "http://127.0.0.1:8234", "https://127.0.0.1:8233", "null"} {
		resp := post(t, srv.URL+"/decode", payloadsJSON(t, enc), map[string]string{"Origin": origin})
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, resp.StatusCode, origin)
		assert.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"), origin)
		assert.NotContains(t, string(body), secret)

		req, err := http.NewRequest(http.MethodOptions, srv.URL+"/decode", nil)
		require.NoError(t, err)
		req.Header.Set("Origin", origin)
		pre, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		pre.Body.Close()
		assert.Empty(t, pre.Header.Get("Access-Control-Allow-Origin"), origin)
		assert.Empty(t, pre.Header.Get("Access-Control-Allow-Headers"), origin)
	}
}

func TestHTTPToken(t *testing.T) {
	c := testCodec(t, testKey(t))
	srv := codecServer(t, c, "s3cret-token")
	enc := encryptOne(t, c, secretInput{Password: secret})
	body := payloadsJSON(t, enc)

	for name, auth := range map[string]string{"missing": "", "wrong": "Bearer nope", "not bearer": "Basic czNjcmV0LXRva2Vu", "prefix only": "Bearer "} {
		h := map[string]string{"Origin": uiOrigin}
		if auth != "" {
			h["Authorization"] = auth
		}
		resp := post(t, srv.URL+"/decode", body, h)
		got, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, name)
		assert.NotContains(t, string(got), secret, name)
		// The UI can read the 401 and say why.
		assert.Equal(t, uiOrigin, resp.Header.Get("Access-Control-Allow-Origin"), name)
	}
	out := decodeResponse(t, post(t, srv.URL+"/decode", body, map[string]string{"Authorization": "Bearer s3cret-token"}))
	assert.Contains(t, string(out[0].Data), secret)
}

func TestHTTPBadRequests(t *testing.T) {
	c := testCodec(t, testKey(t))
	srv := httptest.NewServer(NewHTTPHandler(c, HTTPOptions{MaxBodyBytes: 1024}))
	defer srv.Close()

	resp := post(t, srv.URL+"/decode", []byte("{not json"), nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)

	resp = post(t, srv.URL+"/decode", []byte(`{"payloads":[{"data":"`+strings.Repeat("A", 2000)+`"}]}`), nil)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "over MaxBodyBytes")

	resp = post(t, srv.URL+"/other", []byte(`{}`), nil)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)

	get, err := http.Get(srv.URL + "/decode")
	require.NoError(t, err)
	get.Body.Close()
	assert.Equal(t, http.StatusNotFound, get.StatusCode)

	// A tampered payload is refused, not passed through.
	enc := encryptOne(t, c, "x")
	enc.Data[len(enc.Data)-1] ^= 1
	resp = post(t, srv.URL+"/decode", payloadsJSON(t, enc), nil)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(body), "authentication failed")
}
