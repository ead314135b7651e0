package archive

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/catalog/blob"
	"github.com/drover-dr/drover/catalog/seal"
	"github.com/drover-dr/drover/drivers/storage/internal/tarzst"
)

// BenchmarkShipSealed prices encryption at rest on the backup path: the
// same data (64 MiB of member data) captured and shipped into an object
// store in a folder, once in clear (the baseline) and once sealed, in the
// same run; only Ship is timed, and the ratio is what sealing adds to it.
func BenchmarkShipSealed(b *testing.B) {
	e := newBenchEnv(b)
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	key, err := seal.NewKey("bench", raw)
	if err != nil {
		b.Fatal(err)
	}
	ring, err := seal.NewRing(key)
	if err != nil {
		b.Fatal(err)
	}
	var clearTime, sealTime time.Duration
	var stored int64
	ship := func(name string, r *seal.Ring) time.Duration {
		dir := filepath.Join(e.dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		bucket, err := blob.NewDir(dir)
		if err != nil {
			b.Fatal(err)
		}
		st := catalog.OpenObjects(bucket, r, filepath.Join(e.dir, name+"-staging"), 0)
		// Capture into the store's local staging folder, untimed.
		if _, _, err := tarzst.WriteGroup(context.Background(), st, e.req("p1", catalog.ModeFull, ""), tarzst.WriteSpec{Root: e.data, Members: e.ds.Members,
			Method: Method, Driver: "archive", Consistency: catalog.ConsistencyQuiesced, Instant: time.Now()}, nil); err != nil {
			b.Fatal(err)
		}
		settle()
		t0 := time.Now()
		g, _, err := st.ShipGroup(context.Background(), "bench", "p1", "g", nil)
		if err != nil {
			b.Fatal(err)
		}
		d := time.Since(t0)
		stored = g.Size
		_ = os.RemoveAll(dir)
		return d
	}
	for i := 0; b.Loop(); i++ {
		clearTime += ship(fmt.Sprintf("clear%d", i), nil)
		sealTime += ship(fmt.Sprintf("sealed%d", i), ring)
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * float64(stored) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(clearTime), "clear-MB/s")
	b.ReportMetric(mbps(sealTime), "sealed-MB/s")
	b.ReportMetric(sealTime.Seconds()/clearTime.Seconds(), "sealed/clear")
	b.Logf("ship %.1f MiB of archives x %d: in clear %.0f MB/s, sealed %.0f MB/s: sealed takes %.2fx the time of clear",
		float64(stored)/(1<<20), b.N, mbps(clearTime), mbps(sealTime), sealTime.Seconds()/clearTime.Seconds())
}
