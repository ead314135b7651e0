package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
)

// HTTP defaults.
const (
	DefaultHTTPTimeout = 10 * time.Second
	// maxBody bounds the response body read; a probe answer is small.
	maxBody = 1 << 20
)

// HTTP is the http probe: one request, and checks on its answer.
//
// Settings:
//
//	url:                template, http or https (required)
//	method:             GET (default), HEAD, POST, ...
//	body:               request body template
//	headers:            Name: value; "env:NAME"/"file:PATH" values are secret
//	                    references, resolved at call time and redacted
//	expectStatus:       200 (default) or a list [200, 204]; with passField
//	                    and no expectStatus, any status is accepted
//	bodyContains:       a substring the body must contain
//	bodyMatches:        a regular expression the body must match
//	expectJSON:         {field: value}: top-level fields of a JSON body must equal these
//	passField:          a top-level boolean field of a JSON body that decides
//	                    pass/fail, e.g. passed for {"passed":true,"summary":"..."}
//	summaryField:       the field whose string becomes the Summary (default summary)
//	timeout:            default 10s
//	insecureSkipVerify: skip TLS verification (lab only)
//	caFile:             PEM file of CAs to trust (template)
//	vars:               free-form values for templates
type HTTP struct {
	logger *zap.Logger
}

// NewHTTP returns the http probe.
func NewHTTP(logger *zap.Logger) *HTTP {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &HTTP{logger: logger}
}

type httpSettings struct {
	URL                string           `json:"url"`
	Method             string           `json:"method"`
	Body               string           `json:"body"`
	Headers            map[string]any   `json:"headers"`
	ExpectStatus       any              `json:"expectStatus"`
	BodyContains       string           `json:"bodyContains"`
	BodyMatches        string           `json:"bodyMatches"`
	ExpectJSON         map[string]any   `json:"expectJSON"`
	PassField          string           `json:"passField"`
	SummaryField       string           `json:"summaryField"`
	Timeout            drivers.Duration `json:"timeout"`
	InsecureSkipVerify bool             `json:"insecureSkipVerify"`
	CAFile             string           `json:"caFile"`
	Vars               map[string]any   `json:"vars"`
}

type httpConfig struct {
	url          *tmpl.Template
	method       string
	body         *tmpl.Template
	headers      *tmpl.Values
	expectStatus []int // empty: any status
	bodyContains string
	bodyMatches  *regexp.Regexp
	json         jsonCheck
	timeout      time.Duration
	insecure     bool
	caFile       *tmpl.Template
	vars         map[string]any
}

// CheckSettings parses the settings without sending anything.
func (p *HTTP) CheckSettings(s map[string]any) error {
	_, err := parseHTTP(s)
	return err
}

func parseHTTP(raw map[string]any) (*httpConfig, error) {
	var s httpSettings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, badSettings("http", err)
	}
	c, err := s.compile()
	if err != nil {
		return nil, badSettings("http", fmt.Errorf("settings: %w", err))
	}
	return c, nil
}

func (s httpSettings) compile() (*httpConfig, error) {
	sample := tmpl.ProbeData{}
	c := &httpConfig{vars: s.Vars, insecure: s.InsecureSkipVerify, bodyContains: s.BodyContains}
	var err error
	if s.URL == "" {
		return nil, errors.New("url: required")
	}
	if c.url, err = tmpl.Parse("url", s.URL, sample); err != nil {
		return nil, err
	}
	c.method = strings.ToUpper(s.Method)
	if c.method == "" {
		c.method = http.MethodGet
	}
	if strings.IndexFunc(c.method, func(r rune) bool { return r < 'A' || r > 'Z' }) >= 0 {
		return nil, fmt.Errorf("method: %q is not an HTTP method", s.Method)
	}
	if s.Body != "" {
		if c.body, err = tmpl.Parse("body", s.Body, sample); err != nil {
			return nil, err
		}
	}
	if c.headers, err = tmpl.ParseValues("headers", s.Headers, sample, headerNameErr); err != nil {
		return nil, err
	}
	if c.expectStatus, err = parseStatuses(s.ExpectStatus); err != nil {
		return nil, err
	}
	if s.ExpectStatus == nil && s.PassField == "" {
		c.expectStatus = []int{http.StatusOK}
	}
	if s.BodyMatches != "" {
		if c.bodyMatches, err = regexp.Compile(s.BodyMatches); err != nil {
			return nil, fmt.Errorf("bodyMatches: %w", err)
		}
	}
	c.json = jsonCheck{expect: s.ExpectJSON, passField: s.PassField, summaryField: s.SummaryField}
	if c.json.summaryField == "" {
		c.json.summaryField = "summary"
	}
	if s.SummaryField != "" && s.PassField == "" {
		return nil, errors.New("summaryField: only used with passField")
	}
	if c.timeout, err = timeoutOr(s.Timeout, DefaultHTTPTimeout); err != nil {
		return nil, err
	}
	if s.CAFile != "" {
		if s.InsecureSkipVerify {
			return nil, errors.New("caFile and insecureSkipVerify: give one or the other")
		}
		if c.caFile, err = tmpl.Parse("caFile", s.CAFile, sample); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func headerNameErr(name string) error {
	if name == "" || strings.ContainsAny(name, " \t\r\n:") {
		return fmt.Errorf("%q is not a valid header name", name)
	}
	return nil
}

// parseStatuses reads expectStatus: a number or a list of numbers.
func parseStatuses(v any) ([]int, error) {
	var raw []any
	switch x := v.(type) {
	case nil:
		return nil, nil
	case float64:
		raw = []any{x}
	case []any:
		if len(x) == 0 {
			return nil, errors.New("expectStatus: empty list")
		}
		raw = x
	default:
		return nil, fmt.Errorf("expectStatus: want a status code or a list of them, got %v", v)
	}
	out := make([]int, 0, len(raw))
	for _, e := range raw {
		f, ok := e.(float64)
		if !ok || f != float64(int(f)) || f < 100 || f > 599 {
			return nil, fmt.Errorf("expectStatus: %v is not an HTTP status code (100-599)", e)
		}
		out = append(out, int(f))
	}
	return out, nil
}

// Check sends the request and judges the answer.
func (p *HTTP) Check(ctx context.Context, req drivers.CheckRequest) (drivers.CheckResult, error) {
	c, err := parseHTTP(req.Settings)
	if err != nil {
		return drivers.CheckResult{}, err
	}
	data := tmpl.ForCheck(req, c.vars)
	rawURL, err := c.url.Render(data)
	if err != nil {
		return drivers.CheckResult{}, badSettings("http", err)
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return drivers.CheckResult{}, drivers.BadSettingsf("http probe: url %q: want http:// or https:// with a host", redactURL(rawURL))
	}
	shown := u.Redacted()
	var body io.Reader
	if c.body != nil {
		b, err := c.body.Render(data)
		if err != nil {
			return drivers.CheckResult{}, badSettings("http", err)
		}
		body = strings.NewReader(b)
	}
	headers, err := c.headers.Resolve(data)
	if err != nil {
		return drivers.CheckResult{}, fmt.Errorf("http probe: %w", err)
	}
	client, err := c.client(data)
	if err != nil {
		return drivers.CheckResult{}, err
	}

	res := drivers.CheckResult{
		Details:  map[string]string{"url": shown, "method": c.method},
		Evidence: drivers.Evidence{Action: c.method + " " + shown},
	}
	rctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	hreq, err := http.NewRequestWithContext(rctx, c.method, u.String(), body)
	if err != nil {
		return drivers.CheckResult{}, drivers.BadSettingsf("http probe: request: %w", err)
	}
	for _, h := range headers.Pairs {
		if strings.EqualFold(h[0], "Host") {
			hreq.Host = h[1]
			continue
		}
		hreq.Header.Set(h[0], h[1])
	}

	start := time.Now()
	resp, err := client.Do(hreq)
	if err != nil {
		res.Evidence.Duration = time.Since(start)
		if cerr := callerDone(ctx); cerr != nil {
			return res, cerr
		}
		res.Summary = fmt.Sprintf("%s: %s", res.Evidence.Action, transportCause(err, c.timeout, headers.Secrets))
		return res, nil
	}
	defer resp.Body.Close()
	b, readErr := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	res.Evidence.Duration = time.Since(start)
	truncatedBody := len(b) > maxBody
	if truncatedBody {
		b = b[:maxBody]
	}
	shownBody := tmpl.Redact(string(b), headers.Secrets)
	res.Evidence.Output = drivers.Truncate(shownBody, BodyEvidenceLimit)
	res.Details["status"] = strconv.Itoa(resp.StatusCode)
	p.logger.Debug("http probe", zap.String("check", req.Name), zap.String("url", shown),
		zap.Int("status", resp.StatusCode), zap.Duration("took", res.Evidence.Duration))
	if readErr != nil {
		if cerr := callerDone(ctx); cerr != nil {
			return res, cerr
		}
		res.Summary = fmt.Sprintf("%s: status %d, reading body: %s", res.Evidence.Action, resp.StatusCode, transportCause(readErr, c.timeout, headers.Secrets))
		return res, nil
	}

	res.Passed, res.Summary = c.judge(resp.StatusCode, b, truncatedBody, res.Details)
	res.Summary = tmpl.Redact(short(res.Summary), headers.Secrets)
	if res.Passed && res.Summary == "" {
		res.Summary = fmt.Sprintf("%s: %d %s in %s", res.Evidence.Action, resp.StatusCode,
			http.StatusText(resp.StatusCode), res.Evidence.Duration.Round(time.Millisecond))
	} else if !res.Passed {
		res.Summary = res.Evidence.Action + ": " + res.Summary
	}
	return res, nil
}

// judge applies the checks in order; the first failure is the summary.
func (c *httpConfig) judge(status int, body []byte, truncated bool, details map[string]string) (bool, string) {
	if len(c.expectStatus) > 0 && !slices.Contains(c.expectStatus, status) {
		return false, fmt.Sprintf("status %d (want %s)", status, joinInts(c.expectStatus))
	}
	if c.bodyContains != "" && !bytes.Contains(body, []byte(c.bodyContains)) {
		return false, fmt.Sprintf("status %d, body does not contain %q", status, c.bodyContains)
	}
	if c.bodyMatches != nil && !c.bodyMatches.Match(body) {
		return false, fmt.Sprintf("status %d, body does not match /%s/", status, c.bodyMatches)
	}
	if c.json.active() {
		if truncated {
			return false, fmt.Sprintf("status %d, body larger than %d bytes, not judged as JSON", status, maxBody)
		}
		ok, summary, fromBody := c.json.judge(body, details)
		if !ok && !fromBody {
			return false, fmt.Sprintf("status %d, %s", status, summary)
		}
		return ok, summary
	}
	return true, ""
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, " or ")
}

// client builds a one-shot client: no connection is kept after the check.
func (c *httpConfig) client(data tmpl.ProbeData) (*http.Client, error) {
	tr := &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		DialContext:       (&net.Dialer{Timeout: c.timeout}).DialContext,
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: c.insecure}, //nolint:gosec // opt-in, for labs
	}
	if c.caFile != nil {
		path, err := c.caFile.Render(data)
		if err != nil {
			return nil, badSettings("http", err)
		}
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, drivers.BadSettingsf("http probe: caFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, drivers.BadSettingsf("http probe: caFile %s: no PEM certificate in it", path)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: c.timeout}, nil
}

// transportCause says why a request got no answer, without the URL (the
// summary already has it, redacted).
func transportCause(err error, timeout time.Duration, secrets []string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return short(tmpl.Redact(err.Error(), secrets))
}

func redactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return "(unparseable)"
}

// jsonCheck judges a JSON body: expected field values, and a pass field.
type jsonCheck struct {
	expect       map[string]any
	passField    string
	summaryField string
}

func (j jsonCheck) active() bool { return len(j.expect) > 0 || j.passField != "" }

// judge returns whether the body passes and a summary, and whether that
// summary is the body's own words (its summaryField, with a passField).
// Otherwise the summary says what failed (which field differs) or is empty
// on a pass. details receives the body's scalar "details" entries, if any.
func (j jsonCheck) judge(body []byte, details map[string]string) (passed bool, summary string, fromBody bool) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return false, "body is not a JSON object: " + short(err.Error()), false
	}
	if _, err := dec.Token(); err != io.EOF {
		return false, "body is not one JSON object: data after it", false
	}
	if doc == nil {
		return false, "body is JSON null, not an object", false
	}
	keys := make([]string, 0, len(j.expect))
	for k := range j.expect {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		got, ok := doc[k]
		if !ok {
			return false, fmt.Sprintf("JSON field %q missing", k), false
		}
		if !jsonEqual(got, j.expect[k]) {
			return false, fmt.Sprintf("JSON field %q is %s (want %s)", k, compact(got), compact(j.expect[k])), false
		}
	}
	if j.passField == "" {
		return true, "", false
	}
	if d, ok := doc["details"].(map[string]any); ok && details != nil {
		for k, v := range d {
			switch v.(type) {
			case string, json.Number, bool:
				details[k] = short(fmt.Sprint(v))
			}
		}
	}
	v, ok := doc[j.passField]
	if !ok {
		return false, fmt.Sprintf("JSON field %q missing", j.passField), false
	}
	passed, ok = v.(bool)
	if !ok {
		return false, fmt.Sprintf("JSON field %q is %s, not a boolean", j.passField, compact(v)), false
	}
	if s, _ := doc[j.summaryField].(string); strings.TrimSpace(s) != "" {
		return passed, short(s), true
	}
	if !passed {
		return false, fmt.Sprintf("JSON field %q is false", j.passField), false
	}
	return true, "", false
}

// jsonEqual compares a decoded body value with an expected one from
// settings; numbers compare by value whatever their spelling.
func jsonEqual(got, want any) bool {
	return reflect.DeepEqual(normalize(got), normalize(want))
}

func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return v
	}
	var out any
	_ = json.Unmarshal(b, &out) // numbers become float64 on both sides
	return out
}

func compact(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return drivers.Truncate(string(b), 80)
}
