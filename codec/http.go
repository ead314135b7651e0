package codec

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"go.temporal.io/sdk/converter"
)

// HTTPOptions configure the remote codec endpoint.
type HTTPOptions struct {
	// AllowedOrigins are the Web UI origins (scheme://host:port) whose
	// pages may call the endpoint from a browser. A request carrying any
	// other Origin is refused; requests without an Origin (the temporal
	// CLI, curl) are not browser requests and are let through. A loopback
	// origin allows its other spellings too: a UI on 127.0.0.1:8233 is
	// opened as http://localhost:8233 as often as not.
	AllowedOrigins []string
	// Token, when set, must come as "Authorization: Bearer TOKEN" on every
	// encode and decode request.
	Token string
	// MaxBodyBytes bounds a request body; 0 means 16 MiB.
	MaxBodyBytes int64
}

// allowedHeaders are what the Temporal Web UI sends to a codec endpoint.
const allowedHeaders = "Content-Type, X-Namespace, Authorization"

// NewHTTPHandler serves Temporal's remote codec protocol for c: POST
// .../encode and .../decode with a {"payloads": [...]} JSON body, as the
// Web UI's "codec endpoint" setting and `temporal --codec-endpoint` call it.
// CORS is answered only for the allowed origins.
func NewHTTPHandler(c converter.PayloadCodec, o HTTPOptions) http.Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 16 << 20
	}
	allowed := make(map[string]bool, len(o.AllowedOrigins))
	for _, origin := range o.AllowedOrigins {
		for _, o := range loopbackAliases(normalizeOrigin(origin)) {
			allowed[o] = true
		}
	}
	inner := converter.NewPayloadCodecHTTPHandler(c)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" {
			if !allowed[normalizeOrigin(origin)] {
				// No CORS headers: the browser blocks the page from
				// reading anything, and the request does no work.
				http.Error(w, "origin not allowed", http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Add("Vary", "Origin")
		}
		if r.Method == http.MethodOptions {
			// Preflight: browsers send it without credentials, so it is
			// answered before the token check.
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", allowedHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodPost || !(strings.HasSuffix(r.URL.Path, "/encode") || strings.HasSuffix(r.URL.Path, "/decode")) {
			http.NotFound(w, r)
			return
		}
		if o.Token != "" && !bearerMatches(r.Header.Get("Authorization"), o.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="drover codec"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, o.MaxBodyBytes)
		inner.ServeHTTP(w, r)
	})
}

func bearerMatches(header, token string) bool {
	const prefix = "Bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got := strings.TrimSpace(header[len(prefix):])
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// normalizeOrigin makes "http://127.0.0.1:8233/" and "HTTP://127.0.0.1:8233"
// the same origin, as browsers send it without a path.
func normalizeOrigin(o string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
}

// loopbackNames are the spellings of this machine's loopback address in a
// browser's address bar.
var loopbackNames = []string{"localhost", "127.0.0.1", "[::1]"}

// loopbackAliases returns origin and, when its host is a loopback name, the
// same origin under the other loopback names.
func loopbackAliases(origin string) []string {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return []string{origin}
	}
	host, port := u.Hostname(), u.Port()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if !slices.Contains(loopbackNames, host) {
		return []string{origin}
	}
	out := make([]string, 0, len(loopbackNames))
	for _, name := range loopbackNames {
		a := u.Scheme + "://" + name
		if port != "" {
			a += ":" + port
		}
		out = append(out, a)
	}
	return out
}
