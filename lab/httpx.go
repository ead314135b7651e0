package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Every lab server says which site and server answered, so a server whose
// configuration still names another site notices instead of quietly using
// that site's database (the two sites are separate networks in reality).
const (
	headerSite   = "X-Lab-Site"
	headerServer = "X-Lab-Server"
)

// ErrUnreachable marks a server that did not answer.
var ErrUnreachable = errors.New("not reachable")

// ErrWrongSite marks an answer from a server at another site.
var ErrWrongSite = errors.New("answers for another site")

// httpError is a non-2xx answer.
type httpError struct {
	Status int
	Msg    string
}

func (e *httpError) Error() string { return e.Msg }

func newHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConns:        64,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     60 * time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// client calls one lab server.
type client struct {
	hc   *http.Client
	addr string
	name string
	// site, when set, is the only site whose answers are accepted.
	site string
}

func (c *client) url(path string) string { return "http://" + c.addr + path }

// call sends in as JSON (GET when in is nil) and decodes the answer into out.
func (c *client) call(ctx context.Context, path string, in, out any) error {
	method := http.MethodGet
	var body io.Reader
	if in != nil {
		method = http.MethodPost
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url(path), body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s at %s did not answer: %w", c.describe(), c.addr, ctx.Err())
		}
		return fmt.Errorf("%s at %s is %w (%s)", c.describe(), c.addr, ErrUnreachable, shortNetErr(err))
	}
	defer resp.Body.Close()
	if c.site != "" {
		if got := resp.Header.Get(headerSite); got != c.site {
			io.Copy(io.Discard, resp.Body)
			return fmt.Errorf("%s at %s %w (site %s, not %s): the configuration still points at another site", c.describe(), c.addr, ErrWrongSite, got, c.site)
		}
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s at %s: read answer: %w", c.describe(), c.addr, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error string `json:"error"`
		}
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &httpError{Status: resp.StatusCode, Msg: fmt.Sprintf("%s at %s: %s", c.describe(), c.addr, msg)}
	}
	if out == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%s at %s: decode answer: %w", c.describe(), c.addr, err)
	}
	return nil
}

func (c *client) describe() string {
	if c.name == "" {
		return "server"
	}
	return c.name
}

// shortNetErr keeps the useful end of a net error ("connection refused").
func shortNetErr(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		s := op.Err.Error()
		if i := strings.LastIndex(s, ": "); i >= 0 {
			s = s[i+2:]
		}
		return s
	}
	if errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "Client.Timeout") {
		return "timed out"
	}
	return err.Error()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<20))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("bad request body: %w", err)
	}
	return nil
}

// jsonInt reads an integer that JSON decoding left as json.Number or float.
func jsonInt(v any) int64 {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return int64(f)
	case float64:
		return int64(x)
	case int64:
		return x
	case int:
		return int64(x)
	}
	return 0
}

func jsonString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return fmt.Sprint(v)
}
