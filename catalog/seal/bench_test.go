package seal

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
	"time"
)

// BenchmarkSealCost prints what sealing costs beside a plain copy of the
// same bytes measured in the same run: the ratio is the price of
// encryption at rest on this machine.
func BenchmarkSealCost(b *testing.B) {
	data := make([]byte, 64<<20)
	_, _ = rand.Read(data)
	r := ring(b, testKey(b, "bench"))
	var copyTime, sealTime, openTime time.Duration
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		t0 := time.Now()
		if _, err := io.Copy(io.Discard, onlyReader{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
		copyTime += time.Since(t0)
		var sealed bytes.Buffer
		sealed.Grow(len(data) + 1<<20)
		t0 = time.Now()
		w, _ := r.NewWriter(&sealed)
		if _, err := io.Copy(w, onlyReader{bytes.NewReader(data)}); err != nil {
			b.Fatal(err)
		}
		_ = w.Close()
		sealTime += time.Since(t0)
		t0 = time.Now()
		rd, err := r.NewReader(&sealed)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rd); err != nil {
			b.Fatal(err)
		}
		openTime += time.Since(t0)
	}
	mbps := func(d time.Duration) float64 { return float64(b.N) * float64(len(data)) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(sealTime), "seal-MB/s")
	b.ReportMetric(mbps(openTime), "open-MB/s")
	b.ReportMetric(mbps(copyTime), "copy-MB/s")
	b.ReportMetric(sealTime.Seconds()/copyTime.Seconds(), "seal/copy")
	b.ReportMetric(openTime.Seconds()/copyTime.Seconds(), "open/copy")
	b.Logf("64 MiB x %d: plain copy %.0f MB/s, seal %.0f MB/s (%.1fx the copy's time), open %.0f MB/s (%.1fx)",
		b.N, mbps(copyTime), mbps(sealTime), sealTime.Seconds()/copyTime.Seconds(), mbps(openTime), openTime.Seconds()/copyTime.Seconds())
}

// onlyReader hides WriterTo so io.Copy moves the bytes through a buffer in
// both the baseline and the sealed run.
type onlyReader struct{ io.Reader }
