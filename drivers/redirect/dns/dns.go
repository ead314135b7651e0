// Package dns is the "dns" redirect driver: it points a DNS name at a site
// by RFC 2136 dynamic update, signed with TSIG, on the zone's primary server
// (BIND's named with an update-policy, or any server that speaks RFC 2136).
//
// Settings (the plan's redirect settings):
//
//	server:  host:port of the zone's primary server (required)
//	zone:    the zone the record is in (required)
//	name:    the record's name, absolute or relative to the zone (required)
//	type:    A, AAAA or CNAME (required)
//	ttl:     the record's TTL in seconds, default 60 (clients follow a
//	         switch within one TTL)
//	sites:   plan site name: [values] (addresses; one target name for CNAME)
//	tsig:    {name, algorithm (hmac-sha256 default, hmac-sha1/224/384/512),
//	          secret: env:NAME or file:PATH holding the base64 key}
//	timeout: per exchange, default 5s
//
// PointTo replaces the record set with the site's values in one update
// (delete the RRset, add the new records). Current asks the server for the
// record set and names the site whose values it holds; no record is "".
package dns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/secret"
)

// Defaults.
const (
	DefaultTTL     = 60
	DefaultTimeout = 5 * time.Second
	// fudge is the TSIG time window in seconds (RFC 8945 recommends 300).
	fudge = 300
)

type tsigSettings struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Secret    string `json:"secret"`
}

type settings struct {
	Server  string              `json:"server"`
	Zone    string              `json:"zone"`
	Name    string              `json:"name"`
	Type    string              `json:"type"`
	TTL     *int                `json:"ttl"`
	Sites   map[string][]string `json:"sites"`
	TSIG    *tsigSettings       `json:"tsig"`
	Timeout drivers.Duration    `json:"timeout"`
}

type config struct {
	server    string
	zone      string
	name      string
	rrtype    uint16
	ttl       uint32
	sites     map[string][]string // values in canonical form, sorted
	keyName   string
	algorithm string
	secretRef secret.Ref
	timeout   time.Duration
}

var algorithms = map[string]string{
	"hmac-sha1": dns.HmacSHA1, "hmac-sha224": dns.HmacSHA224, "hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384, "hmac-sha512": dns.HmacSHA512,
}

// Driver is the dns redirect driver. It holds no state between calls.
type Driver struct {
	logger *zap.Logger
}

var (
	_ drivers.Redirector      = (*Driver)(nil)
	_ drivers.SettingsChecker = (*Driver)(nil)
)

// New returns the dns redirect driver.
func New(logger *zap.Logger) *Driver {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Driver{logger: logger}
}

// CheckSettings checks the settings without resolving the secret or
// sending anything.
func (d *Driver) CheckSettings(raw map[string]any) error {
	_, err := parse(raw)
	return err
}

func parse(raw map[string]any) (*config, error) {
	var s settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, drivers.BadSettingsf("dns redirect %w", err)
	}
	bad := func(format string, args ...any) error {
		return drivers.BadSettingsf("dns redirect settings: "+format, args...)
	}
	c := &config{server: s.Server, timeout: s.Timeout.D(), sites: map[string][]string{}}
	if s.Server == "" {
		return nil, bad("server: required (host:port of the zone's primary)")
	}
	if _, _, err := net.SplitHostPort(s.Server); err != nil {
		return nil, bad("server: %q is not host:port", s.Server)
	}
	if s.Zone == "" {
		return nil, bad("zone: required")
	}
	if _, ok := dns.IsDomainName(s.Zone); !ok {
		return nil, bad("zone: %q is not a domain name", s.Zone)
	}
	c.zone = dns.CanonicalName(s.Zone)
	if s.Name == "" {
		return nil, bad("name: required")
	}
	name := s.Name
	if !dns.IsFqdn(name) {
		name = name + "." + c.zone
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, bad("name: %q is not a domain name", s.Name)
	}
	c.name = dns.CanonicalName(name)
	if !dns.IsSubDomain(c.zone, c.name) {
		return nil, bad("name: %s is not in zone %s", c.name, c.zone)
	}
	switch strings.ToUpper(s.Type) {
	case "A":
		c.rrtype = dns.TypeA
	case "AAAA":
		c.rrtype = dns.TypeAAAA
	case "CNAME":
		c.rrtype = dns.TypeCNAME
	case "":
		return nil, bad("type: required (A, AAAA or CNAME)")
	default:
		return nil, bad("type: %q (want A, AAAA or CNAME)", s.Type)
	}
	c.ttl = DefaultTTL
	if s.TTL != nil {
		if *s.TTL < 0 || *s.TTL > 1<<31-1 {
			return nil, bad("ttl: %d is out of range", *s.TTL)
		}
		c.ttl = uint32(*s.TTL)
	}
	if len(s.Sites) < 2 {
		return nil, bad("sites: name two or more sites, each with its values")
	}
	owner := map[string]string{}
	for _, site := range sortedKeys(s.Sites) {
		vals, err := c.canonical(s.Sites[site])
		if err != nil {
			return nil, bad("sites.%s: %v", site, err)
		}
		key := strings.Join(vals, " ")
		if other, dup := owner[key]; dup {
			return nil, bad("sites.%s: the same values as sites.%s, so Current could not tell them apart", site, other)
		}
		owner[key] = site
		c.sites[site] = vals
	}
	if s.TSIG == nil {
		return nil, bad("tsig: required ({name, algorithm, secret}): updates are signed")
	}
	if s.TSIG.Name == "" {
		return nil, bad("tsig.name: required")
	}
	if _, ok := dns.IsDomainName(s.TSIG.Name); !ok {
		return nil, bad("tsig.name: %q is not a key name", s.TSIG.Name)
	}
	c.keyName = dns.CanonicalName(s.TSIG.Name)
	alg := strings.TrimSuffix(strings.ToLower(s.TSIG.Algorithm), ".")
	if alg == "" {
		alg = "hmac-sha256"
	}
	if c.algorithm = algorithms[alg]; c.algorithm == "" {
		return nil, bad("tsig.algorithm: %q (want one of %s)", s.TSIG.Algorithm, strings.Join(sortedKeys(algorithms), ", "))
	}
	c.secretRef = secret.Ref(s.TSIG.Secret)
	if err := c.secretRef.Check(); err != nil {
		// The error says how long a literal was, never what it was.
		return nil, bad("tsig.secret: %v", err)
	}
	if s.Timeout < 0 {
		return nil, bad("timeout: must be positive")
	}
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	return c, nil
}

// canonical checks a site's values for the record type and returns them in
// the form the server answers with, sorted.
func (c *config) canonical(vals []string) ([]string, error) {
	if len(vals) == 0 {
		return nil, errors.New("no values")
	}
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		switch c.rrtype {
		case dns.TypeA, dns.TypeAAAA:
			ip := net.ParseIP(v)
			if ip == nil || (c.rrtype == dns.TypeA) != (ip.To4() != nil) {
				return nil, fmt.Errorf("%q is not an %s address", v, dns.TypeToString[c.rrtype])
			}
			out = append(out, ip.String())
		case dns.TypeCNAME:
			if len(vals) > 1 {
				return nil, errors.New("a CNAME has one target")
			}
			if _, ok := dns.IsDomainName(v); !ok {
				return nil, fmt.Errorf("%q is not a domain name", v)
			}
			out = append(out, dns.CanonicalName(dns.Fqdn(v)))
		}
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (c *config) records(vals []string) []dns.RR {
	hdr := dns.RR_Header{Name: c.name, Rrtype: c.rrtype, Class: dns.ClassINET, Ttl: c.ttl}
	rrs := make([]dns.RR, 0, len(vals))
	for _, v := range vals {
		switch c.rrtype {
		case dns.TypeA:
			rrs = append(rrs, &dns.A{Hdr: hdr, A: net.ParseIP(v).To4()})
		case dns.TypeAAAA:
			rrs = append(rrs, &dns.AAAA{Hdr: hdr, AAAA: net.ParseIP(v)})
		case dns.TypeCNAME:
			rrs = append(rrs, &dns.CNAME{Hdr: hdr, Target: v})
		}
	}
	return rrs
}

// lookup asks the server for the record set: its values, sorted, and TTL.
// The query is signed with the key too, so Current proves the key works
// and a server that answers only signed queries is served.
func (c *config) lookup(ctx context.Context, key string) ([]string, uint32, error) {
	m := new(dns.Msg)
	m.SetQuestion(c.name, c.rrtype)
	m.RecursionDesired = false
	r, err := c.exchange(ctx, m, key)
	if err != nil {
		return nil, 0, fmt.Errorf("query %s %s: %w", c.name, dns.TypeToString[c.rrtype], err)
	}
	if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
		return nil, 0, fmt.Errorf("query %s %s: %w", c.name, dns.TypeToString[c.rrtype], c.rcodeError(r.Rcode))
	}
	var vals []string
	var ttl uint32
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != c.rrtype || !strings.EqualFold(rr.Header().Name, c.name) {
			continue
		}
		ttl = rr.Header().Ttl
		switch v := rr.(type) {
		case *dns.A:
			vals = append(vals, v.A.String())
		case *dns.AAAA:
			vals = append(vals, v.AAAA.String())
		case *dns.CNAME:
			vals = append(vals, dns.CanonicalName(v.Target))
		}
	}
	sort.Strings(vals)
	return vals, ttl, nil
}

// exchange signs m with the key and sends it over TCP.
func (c *config) exchange(ctx context.Context, m *dns.Msg, key string) (*dns.Msg, error) {
	m.SetTsig(c.keyName, c.algorithm, fudge, time.Now().Unix())
	client := &dns.Client{Net: "tcp", Timeout: c.timeout, TsigSecret: map[string]string{c.keyName: key}}
	r, _, err := client.ExchangeContext(ctx, m, c.server)
	switch {
	case err == nil:
		return r, nil
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case errors.Is(err, dns.ErrSig), errors.Is(err, dns.ErrSecret), errors.Is(err, dns.ErrKeyAlg), errors.Is(err, dns.ErrTime):
		return nil, drivers.BadSettingsf("tsig: %s's answer does not verify with key %s: %v", c.server, c.keyName, err)
	}
	if r != nil && r.Rcode != dns.RcodeSuccess {
		return nil, c.rcodeError(r.Rcode)
	}
	return nil, fmt.Errorf("at %s: %w", c.server, err)
}

// rcodeError says what a refusal means. A key, zone or policy refusal is
// permanent: no retry changes the server's mind.
func (c *config) rcodeError(rcode int) error {
	name := dns.RcodeToString[rcode]
	switch rcode {
	case dns.RcodeNotAuth, dns.RcodeRefused, dns.RcodeNotZone, dns.RcodeBadSig, dns.RcodeBadKey, dns.RcodeBadTime:
		return drivers.BadSettingsf("server %s refused (%s): check tsig.name, the key's secret, the zone and the server's update-policy for %s %s",
			c.server, name, c.name, dns.TypeToString[c.rrtype])
	}
	return fmt.Errorf("server %s answered %s", c.server, name)
}

func (c *config) siteOf(vals []string) (string, bool) {
	for _, site := range sortedKeys(c.sites) {
		if slices.Equal(c.sites[site], vals) {
			return site, true
		}
	}
	return "", false
}

// PointTo replaces the record set with the site's values.
func (d *Driver) PointTo(ctx context.Context, req drivers.RedirectRequest) (drivers.Evidence, error) {
	begin := time.Now()
	c, err := parse(req.Settings)
	if err != nil {
		return drivers.Evidence{}, err
	}
	want, ok := c.sites[req.Site.Name]
	if !ok {
		return drivers.Evidence{}, drivers.BadSettingsf("dns redirect settings: sites: site %q is not listed (known: %s)",
			req.Site.Name, strings.Join(sortedKeys(c.sites), ", "))
	}
	typ := dns.TypeToString[c.rrtype]
	ev := drivers.Evidence{Action: fmt.Sprintf("dns update %s %s → %s (site %s) at %s, zone %s, key %s",
		c.name, typ, strings.Join(want, " "), req.Site.Name, c.server, c.zone, c.keyName)}
	fail := func(err error) (drivers.Evidence, error) {
		ev.Duration = time.Since(begin)
		return ev, fmt.Errorf("point %s %s to %s: %w", c.name, typ, req.Site.Name, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	key, err := c.secretRef.Resolve()
	if err != nil {
		// A reference that does not resolve is the plan's or the worker's
		// to fix; the message names the reference, never a value.
		return fail(drivers.BadSettingsf("dns redirect settings: tsig.secret: %v", err))
	}
	have, ttl, err := c.lookup(ctx, key)
	if err != nil {
		return fail(err)
	}
	if slices.Equal(have, want) && ttl == c.ttl {
		ev.AlreadyDone = true
		ev.Output = fmt.Sprintf("%s %s already %s with ttl %d; no update sent", c.name, typ, strings.Join(want, " "), ttl)
		ev.Duration = time.Since(begin)
		return ev, nil
	}
	m := new(dns.Msg)
	m.SetUpdate(c.zone)
	m.RemoveRRset([]dns.RR{&dns.ANY{Hdr: dns.RR_Header{Name: c.name, Rrtype: c.rrtype}}})
	m.Insert(c.records(want))
	r, err := c.exchange(ctx, m, key)
	ev.Duration = time.Since(begin)
	if err != nil {
		return fail(err)
	}
	rcode := dns.RcodeToString[r.Rcode]
	ev.Output = fmt.Sprintf("was %s, now %s, ttl %d: %s", orNone(have), strings.Join(want, " "), c.ttl, rcode)
	if r.Rcode != dns.RcodeSuccess {
		return fail(c.rcodeError(r.Rcode))
	}
	d.logger.Info("dns redirect", zap.String("name", c.name), zap.String("type", typ), zap.String("site", req.Site.Name),
		zap.Duration("took", ev.Duration))
	return ev, nil
}

func orNone(vals []string) string {
	if len(vals) == 0 {
		return "no record"
	}
	return strings.Join(vals, " ")
}

// Current asks the server for the record set and names the site whose
// values it holds.
func (d *Driver) Current(ctx context.Context, req drivers.RedirectRequest) (string, error) {
	c, err := parse(req.Settings)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	key, err := c.secretRef.Resolve()
	if err != nil {
		return "", drivers.BadSettingsf("dns redirect settings: tsig.secret: %v", err)
	}
	have, _, err := c.lookup(ctx, key)
	if err != nil {
		return "", err
	}
	if len(have) == 0 {
		return "", nil
	}
	site, ok := c.siteOf(have)
	if !ok {
		return "", fmt.Errorf("%s %s is %s, which no site in the settings lists", c.name, dns.TypeToString[c.rrtype], strings.Join(have, " "))
	}
	return site, nil
}
