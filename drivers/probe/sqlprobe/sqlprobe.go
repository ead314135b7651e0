// Package sqlprobe is the sql probe: one query against a database
// (PostgreSQL) whose answer is compared with what the plan expects, exact
// rows or thresholds on a number. It is how a plan writes the instance and
// consistency verification levels for its own application ("the orders
// table has rows", "no order is older than its payment", "the replica's
// count matches").
//
// Settings:
//
//	dsn:      secret reference (env:NAME or file:PATH, the reference itself a
//	          template, e.g. env:ORDERS_DSN_{{.Site.Name}}) to a libpq
//	          connection string or URL (required)
//	password: secret reference, overrides the DSN's password (optional)
//	host:     overrides the DSN's host (template, e.g. {{index .Site.Settings "dbhost"}})
//	port:     overrides the DSN's port (template)
//	database: overrides the DSN's database (template)
//	query:    one SQL statement (required); run in a read-only transaction
//	args:     values for $1, $2, ... (templates)
//	expect:   at least one of
//	            rows:     the exact rows, in order: [[1, "open"], [2, null]]
//	                      (numbers compare as numbers, strings exactly,
//	                      true/false as booleans, null as NULL)
//	            rowCount: the exact number of rows
//	            min, max: bounds on a scalar answer (one row, one column)
//	timeout:  connect and query, default 10s
//	vars:     free-form values for templates
//
// A check that ran and found a mismatch, an SQL error or a database that
// does not answer returns Passed=false with a summary. An error means the
// check could not run: bad settings (marked drivers.ErrBadSettings, a
// secret that does not resolve included) or a cancelled context. Neither
// the DSN nor the password ever appears in evidence, summaries or errors.
//
// The same connection settings also serve the environment rewrites that
// change values held in a database after a restore (Rewrite): one statement
// in its own read-write transaction, the rows it changed as evidence.
package sqlprobe

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.uber.org/zap"

	"github.com/drover-dr/drover/drivers"
	"github.com/drover-dr/drover/drivers/internal/tmpl"
	"github.com/drover-dr/drover/drivers/secret"
)

// Defaults and limits.
const (
	DefaultTimeout = 10 * time.Second
	// EvidenceLimit bounds the rows kept in evidence (workflow history).
	EvidenceLimit = 2000
	summaryLimit  = 300
)

// Probe is the sql probe.
type Probe struct {
	logger *zap.Logger
}

var (
	_ drivers.Probe           = (*Probe)(nil)
	_ drivers.SettingsChecker = (*Probe)(nil)
)

// New returns the sql probe.
func New(logger *zap.Logger) *Probe {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Probe{logger: logger}
}

type expectSettings struct {
	Rows     [][]any  `json:"rows"`
	RowCount *int     `json:"rowCount"`
	Min      *float64 `json:"min"`
	Max      *float64 `json:"max"`
}

type settings struct {
	DSN      string           `json:"dsn"`
	Password string           `json:"password"`
	Host     string           `json:"host"`
	Port     string           `json:"port"`
	Database string           `json:"database"`
	Query    string           `json:"query"`
	Args     []string         `json:"args"`
	Expect   *expectSettings  `json:"expect"`
	Timeout  drivers.Duration `json:"timeout"`
	Vars     map[string]any   `json:"vars"`
}

type config struct {
	dsn, password, host, port, database *tmpl.Template
	query                               string
	args                                []*tmpl.Template
	expect                              expectSettings
	timeout                             time.Duration
	vars                                map[string]any
}

// CheckSettings parses the settings without connecting.
func (p *Probe) CheckSettings(s map[string]any) error {
	_, err := parse(s)
	return err
}

func bad(err error) error { return drivers.BadSettingsf("sql probe: %w", err) }

func parse(raw map[string]any) (*config, error) {
	var s settings
	if err := drivers.DecodeSettings(raw, &s); err != nil {
		return nil, bad(err)
	}
	var errs []error
	sample := tmpl.ProbeData{}
	tpl := func(field, src string) *tmpl.Template {
		if src == "" {
			return nil
		}
		t, err := tmpl.Parse(field, src, sample)
		if err != nil {
			errs = append(errs, err)
		}
		return t
	}
	c := &config{
		host: tpl("host", s.Host), port: tpl("port", s.Port), database: tpl("database", s.Database),
		query: strings.TrimSpace(s.Query), vars: s.Vars,
	}
	// The references are templates; what they render to is checked at call
	// time. Their form is checked now so a literal DSN is refused early.
	for _, f := range []struct {
		field, src string
		dst        **tmpl.Template
		required   bool
	}{{"dsn", s.DSN, &c.dsn, true}, {"password", s.Password, &c.password, false}} {
		if f.src == "" {
			if f.required {
				errs = append(errs, fmt.Errorf("settings: %s: required (a secret reference, env:NAME or file:PATH)", f.field))
			}
			continue
		}
		if !strings.HasPrefix(f.src, "env:") && !strings.HasPrefix(f.src, "file:") {
			errs = append(errs, fmt.Errorf("settings: %s: %w", f.field, secret.ErrNotReference))
			continue
		}
		*f.dst = tpl(f.field, f.src)
	}
	if c.query == "" {
		errs = append(errs, errors.New("settings: query: required"))
	}
	for i, a := range s.Args {
		c.args = append(c.args, tpl(fmt.Sprintf("args[%d]", i), a))
	}
	if s.Expect == nil || s.Expect.Rows == nil && s.Expect.RowCount == nil && s.Expect.Min == nil && s.Expect.Max == nil {
		errs = append(errs, errors.New("settings: expect: give at least one of rows, rowCount, min, max"))
	} else {
		c.expect = *s.Expect
		if c.expect.RowCount != nil && *c.expect.RowCount < 0 {
			errs = append(errs, errors.New("settings: expect.rowCount: must not be negative"))
		}
		if c.expect.Min != nil && c.expect.Max != nil && *c.expect.Min > *c.expect.Max {
			errs = append(errs, fmt.Errorf("settings: expect: min %v is above max %v", *c.expect.Min, *c.expect.Max))
		}
		for i, row := range c.expect.Rows {
			for j, v := range row {
				switch v.(type) {
				case nil, string, float64, bool:
				default:
					errs = append(errs, fmt.Errorf("settings: expect.rows[%d][%d]: want a string, number, boolean or null, got %T", i, j, v))
				}
			}
		}
	}
	switch {
	case s.Timeout < 0:
		errs = append(errs, errors.New("settings: timeout: must be positive"))
	case s.Timeout == 0:
		c.timeout = DefaultTimeout
	default:
		c.timeout = s.Timeout.D()
	}
	if len(errs) > 0 {
		return nil, bad(errors.Join(errs...))
	}
	return c, nil
}

// Check connects, runs the query and compares its answer.
func (p *Probe) Check(ctx context.Context, req drivers.CheckRequest) (drivers.CheckResult, error) {
	c, err := parse(req.Settings)
	if err != nil {
		return drivers.CheckResult{}, err
	}
	if err := ctx.Err(); err != nil {
		return drivers.CheckResult{}, fmt.Errorf("check cancelled: %w", err)
	}
	data := tmpl.ForCheck(req, c.vars)
	var secrets []string
	redact := func(s string) string { return tmpl.Redact(s, secrets) }

	cfg, err := c.connConfig(data, &secrets)
	if err != nil {
		// Redacted text, the mark kept: these are all settings problems.
		return drivers.CheckResult{}, drivers.BadSettingsf("%s", redact(err.Error()))
	}
	params := make([][]byte, len(c.args))
	for i, a := range c.args {
		v, err := a.Render(data)
		if err != nil {
			return drivers.CheckResult{}, bad(err)
		}
		params[i] = []byte(v)
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	res := drivers.CheckResult{
		Details:  map[string]string{"database": where},
		Evidence: drivers.Evidence{Action: "sql query on " + where + ": " + short(c.query)},
	}
	qctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	rows, cols, qerr := run(qctx, cfg, c.query, params)
	res.Evidence.Duration = time.Since(start)
	p.logger.Debug("sql probe", zap.String("check", req.Name), zap.String("database", where), zap.Error(qerr))
	if qerr != nil {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("check cancelled: %w", err)
		}
		msg := redact(qerr.Error())
		if errors.Is(qerr, context.DeadlineExceeded) || qctx.Err() != nil {
			msg = fmt.Sprintf("no answer within %s", c.timeout)
		}
		res.Summary = short("query on " + where + " failed: " + msg)
		res.Evidence.Output = drivers.Truncate(msg, EvidenceLimit)
		res.Evidence.ExitCode = 1
		return res, nil
	}
	res.Evidence.Output = drivers.Truncate(redact(render(cols, rows)), EvidenceLimit)
	res.Details["rows"] = strconv.Itoa(len(rows))
	problem := c.expect.compare(cols, rows, res.Details)
	if problem != "" {
		res.Summary = short(redact(problem))
		return res, nil
	}
	res.Passed = true
	res.Summary = short(redact(fmt.Sprintf("%d row(s) from %s as expected%s", len(rows), where, scalarNote(res.Details))))
	return res, nil
}

func scalarNote(d map[string]string) string {
	if v, ok := d["value"]; ok {
		return " (value " + v + ")"
	}
	return ""
}

// connConfig resolves the DSN and password references and applies the
// overrides. Every resolved value joins secrets, for redaction.
func (c *config) connConfig(data tmpl.ProbeData, secrets *[]string) (*pgx.ConnConfig, error) {
	resolve := func(field string, t *tmpl.Template) (string, error) {
		ref, err := t.Render(data)
		if err != nil {
			return "", bad(err)
		}
		v, err := secret.Ref(ref).Resolve()
		if err != nil {
			return "", bad(fmt.Errorf("%s: %w", field, err))
		}
		*secrets = append(*secrets, v)
		return v, nil
	}
	dsn, err := resolve("dsn", c.dsn)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx quotes the connection string in its errors: never repeat it.
		return nil, bad(errors.New("dsn: not a valid PostgreSQL connection string or URL"))
	}
	if cfg.Password != "" {
		*secrets = append(*secrets, cfg.Password)
	}
	if c.password != nil {
		pw, err := resolve("password", c.password)
		if err != nil {
			return nil, err
		}
		cfg.Password = pw
	}
	for _, o := range []struct {
		field string
		t     *tmpl.Template
		set   func(string) error
	}{
		{"host", c.host, func(v string) error {
			cfg.Host = v
			for _, fb := range cfg.Fallbacks {
				fb.Host = v
			}
			return nil
		}},
		{"port", c.port, func(v string) error {
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n == 0 {
				return fmt.Errorf("port: %q is not a port number", v)
			}
			cfg.Port = uint16(n)
			for _, fb := range cfg.Fallbacks {
				fb.Port = uint16(n)
			}
			return nil
		}},
		{"database", c.database, func(v string) error { cfg.Database = v; return nil }},
	} {
		if o.t == nil {
			continue
		}
		v, err := o.t.Render(data)
		if err != nil {
			return nil, bad(err)
		}
		if err := o.set(strings.TrimSpace(v)); err != nil {
			return nil, bad(err)
		}
	}
	cfg.ConnectTimeout = c.timeout
	// A probe only looks: the server refuses any write the query attempts.
	cfg.RuntimeParams["default_transaction_read_only"] = "on"
	cfg.RuntimeParams["application_name"] = "drover-sql-probe"
	return cfg, nil
}

// run returns the rows as text (NULL as nil) and the column names.
func run(ctx context.Context, cfg *pgx.ConnConfig, query string, params [][]byte) ([][]*string, []string, error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(context.Background())
	// Text results: the server's own rendering of every type, compared
	// with what the plan wrote.
	r := conn.PgConn().ExecParams(ctx, query, params, nil, nil, nil).Read()
	if r.Err != nil {
		return nil, nil, r.Err
	}
	cols := make([]string, len(r.FieldDescriptions))
	for i, f := range r.FieldDescriptions {
		cols[i] = f.Name
	}
	rows := make([][]*string, len(r.Rows))
	for i, row := range r.Rows {
		rows[i] = make([]*string, len(row))
		for j, v := range row {
			if v != nil {
				s := string(v)
				rows[i][j] = &s
			}
		}
	}
	return rows, cols, nil
}

// compare returns what does not match, or "".
func (e expectSettings) compare(cols []string, rows [][]*string, details map[string]string) string {
	if e.RowCount != nil && len(rows) != *e.RowCount {
		return fmt.Sprintf("%d row(s), want %d", len(rows), *e.RowCount)
	}
	if e.Min != nil || e.Max != nil {
		if len(rows) != 1 || len(cols) != 1 {
			return fmt.Sprintf("want one number (one row, one column) to compare with min/max, got %d row(s) of %d column(s)", len(rows), len(cols))
		}
		if rows[0][0] == nil {
			return "the value is NULL, want a number"
		}
		s := *rows[0][0]
		details["value"] = s
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(v) {
			return fmt.Sprintf("the value %q is not a number", s)
		}
		if e.Min != nil && v < *e.Min {
			return fmt.Sprintf("%s = %s, below the minimum %v", cols[0], s, *e.Min)
		}
		if e.Max != nil && v > *e.Max {
			return fmt.Sprintf("%s = %s, above the maximum %v", cols[0], s, *e.Max)
		}
	}
	if e.Rows != nil {
		if len(rows) != len(e.Rows) {
			return fmt.Sprintf("%d row(s), want %d", len(rows), len(e.Rows))
		}
		for i, want := range e.Rows {
			if len(rows[i]) != len(want) {
				return fmt.Sprintf("row %d has %d column(s), want %d", i+1, len(rows[i]), len(want))
			}
			for j, w := range want {
				if !cellMatches(rows[i][j], w) {
					return fmt.Sprintf("row %d column %s: got %s, want %s", i+1, cols[j], show(rows[i][j]), showWant(w))
				}
			}
		}
	}
	return ""
}

func cellMatches(got *string, want any) bool {
	if want == nil || got == nil {
		return want == nil && got == nil
	}
	g := *got
	switch w := want.(type) {
	case string:
		return g == w
	case float64:
		v, err := strconv.ParseFloat(strings.TrimSpace(g), 64)
		return err == nil && v == w
	case bool:
		switch strings.ToLower(g) {
		case "t", "true":
			return w
		case "f", "false":
			return !w
		}
	}
	return false
}

func show(v *string) string {
	if v == nil {
		return "NULL"
	}
	return strconv.Quote(*v)
}

func showWant(v any) string {
	switch w := v.(type) {
	case nil:
		return "NULL"
	case string:
		return strconv.Quote(w)
	}
	return fmt.Sprint(v)
}

// render writes the answer as a small table for the evidence.
func render(cols []string, rows [][]*string) string {
	var b strings.Builder
	b.WriteString(strings.Join(cols, " | "))
	for i, row := range rows {
		if b.Len() > EvidenceLimit {
			fmt.Fprintf(&b, "\n… %d more row(s)", len(rows)-i)
			break
		}
		b.WriteByte('\n')
		for j, v := range row {
			if j > 0 {
				b.WriteString(" | ")
			}
			if v == nil {
				b.WriteString("NULL")
			} else {
				b.WriteString(*v)
			}
		}
	}
	fmt.Fprintf(&b, "\n(%d row(s))", len(rows))
	return b.String()
}

func short(s string) string {
	return drivers.Truncate(strings.Join(strings.Fields(s), " "), summaryLimit)
}
