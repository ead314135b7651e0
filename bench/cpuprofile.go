package bench

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"runtime/pprof"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// cpuByLabel profiles this process's CPU and sums it by the value of one
// goroutine label (stack.PartLabel): the embedded server and the worker
// share a process, and the label tells their CPU apart. Goroutines without
// the label (the runtime's, the benchmark's own) sum under "".
type cpuByLabel struct {
	key string
	buf bytes.Buffer
}

// startCPU starts the process's CPU profile; only one runs at a time.
func startCPU(key string) (*cpuByLabel, error) {
	p := &cpuByLabel{key: key}
	if err := pprof.StartCPUProfile(&p.buf); err != nil {
		return nil, fmt.Errorf("start the CPU profile: %w", err)
	}
	return p, nil
}

// stop ends the profile and returns the CPU time by label value.
func (p *cpuByLabel) stop() (map[string]time.Duration, error) {
	pprof.StopCPUProfile()
	return sumCPUByLabel(p.buf.Bytes(), p.key)
}

// sumCPUByLabel reads a gzipped pprof profile (profile.proto) and sums the
// value "cpu/nanoseconds" of its samples by the string label key. Only the
// few fields it needs are decoded: the sample types, the samples' values
// and labels, and the string table.
func sumCPUByLabel(gz []byte, key string) (map[string]time.Duration, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		return nil, fmt.Errorf("CPU profile: %w", err)
	}
	type label struct{ key, str int64 }
	type sample struct {
		values []int64
		labels []label
	}
	var strs []string
	var types []int64 // the type's string index of each value
	var samples []sample
	bad := func(what string) error { return fmt.Errorf("CPU profile: malformed %s", what) }
	err = eachField(raw, func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType: // sample_type
			var t int64
			if err := eachField(v, func(n protowire.Number, _ protowire.Type, _ []byte, u uint64) error {
				if n == 1 {
					t = int64(u)
				}
				return nil
			}); err != nil {
				return err
			}
			types = append(types, t)
		case num == 2 && typ == protowire.BytesType: // sample
			var s sample
			if err := eachField(v, func(n protowire.Number, t protowire.Type, b []byte, u uint64) error {
				switch {
				case n == 2 && t == protowire.BytesType: // packed values
					for len(b) > 0 {
						x, k := protowire.ConsumeVarint(b)
						if k < 0 {
							return bad("sample value")
						}
						s.values = append(s.values, int64(x))
						b = b[k:]
					}
				case n == 2 && t == protowire.VarintType:
					s.values = append(s.values, int64(u))
				case n == 3 && t == protowire.BytesType:
					var l label
					if err := eachField(b, func(n protowire.Number, _ protowire.Type, _ []byte, u uint64) error {
						switch n {
						case 1:
							l.key = int64(u)
						case 2:
							l.str = int64(u)
						}
						return nil
					}); err != nil {
						return err
					}
					s.labels = append(s.labels, l)
				}
				return nil
			}); err != nil {
				return err
			}
			samples = append(samples, s)
		case num == 6 && typ == protowire.BytesType: // string_table
			strs = append(strs, string(v))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	str := func(i int64) string {
		if i < 0 || int(i) >= len(strs) {
			return ""
		}
		return strs[i]
	}
	cpu := -1
	for i, t := range types {
		if str(t) == "cpu" {
			cpu = i
		}
	}
	if cpu < 0 {
		return nil, fmt.Errorf("CPU profile: no cpu sample type")
	}
	out := map[string]time.Duration{}
	for _, s := range samples {
		if cpu >= len(s.values) {
			return nil, bad("sample")
		}
		part := ""
		for _, l := range s.labels {
			if str(l.key) == key {
				part = str(l.str)
			}
		}
		out[part] += time.Duration(s.values[cpu])
	}
	return out, nil
}

// eachField calls f for every field of a protobuf message: v is a bytes
// field's content, u a varint's or fixed number's value.
func eachField(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("CPU profile: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var u uint64
		switch typ {
		case protowire.VarintType:
			u, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.Fixed64Type:
			u, n = protowire.ConsumeFixed64(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			u = uint64(x)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return fmt.Errorf("CPU profile: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if err := f(num, typ, v, u); err != nil {
			return err
		}
	}
	return nil
}
