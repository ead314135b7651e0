// Package starter is the drover command line: flags, output and exit codes.
// Every command lives in its own file and adds itself with register, so the
// command tree grows without one file every change must touch.
package starter

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Exit codes, as the README documents them.
const (
	ExitOK        = 0
	ExitRunFailed = 1
	ExitBadInput  = 2
)

// BadInputError is an error in what the user gave: a flag, a file, a field.
// It exits with code 2.
type BadInputError struct{ Err error }

func (e *BadInputError) Error() string { return e.Err.Error() }
func (e *BadInputError) Unwrap() error { return e.Err }

// BadInput wraps err as bad input (exit 2).
func BadInput(err error) error {
	if err == nil {
		return nil
	}
	return &BadInputError{Err: err}
}

// BadInputf formats a bad-input error (exit 2).
func BadInputf(format string, args ...any) error {
	return &BadInputError{Err: fmt.Errorf(format, args...)}
}

// Globals are the flags every command shares and what they build.
type Globals struct {
	Address   string
	Namespace string
	Output    string
	LogLevel  string
	TLS       TLSFlags
	// APIKey authenticates to the frontend (Temporal Cloud); it turns TLS on.
	APIKey string
	// EncryptionKeyFile turns on AES-256-GCM encryption of payloads and
	// failure messages in Temporal's history.
	EncryptionKeyFile string

	Stdout io.Writer
	Stderr io.Writer
	logger *zap.Logger
}

// Logger returns the one zap logger handed down to everything the command
// runs. It writes to stderr so stdout stays clean for --output json.
func (g *Globals) Logger() *zap.Logger {
	if g.logger != nil {
		return g.logger
	}
	g.LogTo(g.Stderr)
	return g.logger
}

// LogTo sends the command's log lines to w from now on (drover demo keeps
// them in a file so its narrative stays readable).
func (g *Globals) LogTo(w io.Writer) {
	level := zapcore.InfoLevel
	if err := level.Set(g.LogLevel); err != nil {
		level = zapcore.InfoLevel
	}
	cfg := zap.NewDevelopmentEncoderConfig()
	cfg.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(cfg), zapcore.AddSync(w), level)
	g.logger = zap.New(core)
}

// JSON reports whether --output json was asked for.
func (g *Globals) JSON() bool { return g.Output == "json" }

type commandFactory func(g *Globals) *cobra.Command

var factories []commandFactory

// register adds a top-level command; each command file calls it from init.
func register(f commandFactory) { factories = append(factories, f) }

// NewRootCommand builds the command tree.
func NewRootCommand(stdout, stderr io.Writer) (*cobra.Command, *Globals) {
	g := &Globals{Stdout: stdout, Stderr: stderr}
	root := &cobra.Command{
		Use:           "drover",
		Short:         "Disaster-recovery runbook automation on Temporal",
		Long:          "drover runs a cell's DR runbook (backups, restore, ordered restart, six-level verification,\nfailover, failback and drills) as durable Temporal workflows.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return checkOutput(g.Output)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	pf := root.PersistentFlags()
	addConnectionFlags(pf, g)
	pf.StringVarP(&g.Output, "output", "o", OutputText, "output format: text, json or yaml")
	pf.StringVar(&g.LogLevel, "log-level", envOr("DROVER_LOG_LEVEL", "info"), "log level: debug, info, warn, error")
	pf.StringVar(&g.EncryptionKeyFile, "encryption-key-file", os.Getenv("DROVER_ENCRYPTION_KEY_FILE"),
		"AES-256 key file: encrypt payloads and failure messages in Temporal's history (env DROVER_ENCRYPTION_KEY_FILE)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error { return BadInput(err) })

	for _, f := range factories {
		root.AddCommand(f(g))
	}
	grammar(root, g)
	return root, g
}

// Main runs the CLI and returns the process exit code. No panic escapes it.
func Main(args []string, stdout, stderr io.Writer) (code int) {
	root, g := NewRootCommand(stdout, stderr)
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "drover: internal error: %v\n", r)
			code = ExitRunFailed
		}
		if g.logger != nil {
			_ = g.logger.Sync()
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(stderr, "drover: %v\n", err)
	return ExitCode(err)
}

// ExitCode maps an error to the documented exit code.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var bad *BadInputError
	if errors.As(err, &bad) || isCobraUsageError(err) {
		return ExitBadInput
	}
	return ExitRunFailed
}

// isCobraUsageError catches cobra's own argument errors (unknown command,
// wrong number of args), which it returns as plain errors.
func isCobraUsageError(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand flag", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument", "required flag"} {
		if len(msg) >= len(p) && containsFold(msg, p) {
			return true
		}
	}
	return false
}

func containsFold(s, sub string) bool {
	return len(sub) <= len(s) && (indexFold(s, sub) >= 0)
}

func indexFold(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if equalFoldASCII(s[i:i+len(sub)], sub) {
			return i
		}
	}
	return -1
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		ca, cb := a[i], b[i]
		if 'A' <= ca && ca <= 'Z' {
			ca += 'a' - 'A'
		}
		if 'A' <= cb && cb <= 'Z' {
			cb += 'a' - 'A'
		}
		if ca != cb {
			return false
		}
	}
	return true
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
