package starter

import (
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/drover-dr/drover/devserver"
	"github.com/drover-dr/drover/drivers/secret"
)

// dbFlags choose where the embedded Temporal server keeps its state: SQLite
// (in memory, or --db-file) by default, or PostgreSQL with --db.
type dbFlags struct {
	DB         string
	DBPassword string
}

func (f *dbFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.DB, "db", "sqlite",
		"Temporal persistence: sqlite (in memory, or --db-file), or a PostgreSQL URL postgres://USER@HOST:PORT/DATABASE\n"+
			"(the visibility store goes to DATABASE_visibility; databases and schemas are created when missing)")
	cmd.Flags().StringVar(&f.DBPassword, "db-password", "",
		"the PostgreSQL password as a secret reference, env:NAME or file:PATH (never the password itself)")
}

// postgres returns the PostgreSQL the flags name, nil for SQLite, or a
// bad-input error (exit 2) naming the flag.
func (f dbFlags) postgres(dbFile string) (*devserver.Postgres, error) {
	if f.DB == "" || f.DB == "sqlite" {
		if f.DBPassword != "" {
			return nil, BadInputf("--db-password: only with --db postgres://...")
		}
		return nil, nil
	}
	if !strings.HasPrefix(f.DB, "postgres://") && !strings.HasPrefix(f.DB, "postgresql://") {
		return nil, BadInputf("--db: want sqlite or postgres://USER@HOST:PORT/DATABASE, got %s", prefix(f.DB))
	}
	if dbFile != "" {
		return nil, BadInputf("--db-file is SQLite's; it does not go with --db %s", prefix(f.DB))
	}
	p := &devserver.Postgres{URL: f.DB, Password: secret.Ref(f.DBPassword)}
	if err := p.Check(); err != nil {
		return nil, BadInputf("--db: %v", err)
	}
	if f.DBPassword != "" {
		// Resolved here only to report a missing variable or file as bad
		// input; the server resolves it again when it connects.
		if _, err := p.Password.Resolve(); err != nil {
			return nil, BadInputf("--db-password: %v", err)
		}
	}
	return p, nil
}

// prefix is the scheme part of a --db value: enough to say what was given
// without echoing anything that could be a secret.
func prefix(s string) string {
	if i := strings.Index(s, "://"); i >= 0 {
		return strconv.Quote(s[:i+3] + "...")
	}
	return "a value that is not a URL"
}
