package drivers

import "context"

// PostRestorer is implemented by middleware drivers whose data, restored
// from a copy, needs a product step before the server may start on it. DB2
// is the example: a copy taken under `set write suspend` must go through
// `db2inidb <db> as snapshot` after it is restored. A restore calls it on
// every restored component whose driver implements it, before the start.
type PostRestorer interface {
	AfterRestore(ctx context.Context, t Target) (Evidence, error)
}
