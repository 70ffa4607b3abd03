//go:build ort

package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/compressml/compress/crosscheck"
	"github.com/compressml/compress/runtime"
)

// ortModel is c's model in an onnxruntime session bound to fixed input and
// output tensors, so a run allocates nothing on the Go side.
type ortModel struct {
	sess *ort.AdvancedSession
	vals []ort.Value
	outs map[string]ort.Value
}

// close releases the session and its tensors.
func (m *ortModel) close() {
	m.sess.Destroy()
	m.closeVals()
}

// run runs the session once.
func (m *ortModel) run() error { return m.sess.Run() }

// loadORT opens c's model in onnxruntime with c.threads intra-op threads,
// fed with cm's inputs and with outputs shaped like cm's first outputs.
func loadORT(c modelCase, cm *compressModel) (*ortModel, error) {
	inNames, outNames := crosscheck.GraphNames(cm.g)
	m := &ortModel{outs: map[string]ort.Value{}}
	var ins, outs []ort.Value
	for _, name := range inNames {
		v, err := crosscheck.ToORT(cm.feeds[name])
		if err != nil {
			m.closeVals()
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		m.vals = append(m.vals, v)
		ins = append(ins, v)
	}
	for _, name := range outNames {
		t := cm.first[name]
		if t == nil || t.DType != runtime.Float32 {
			m.closeVals()
			return nil, fmt.Errorf("output %q: compress gave no float32 tensor", name)
		}
		v, err := crosscheck.ToORT(runtime.New(runtime.Float32, t.Shape...))
		if err != nil {
			m.closeVals()
			return nil, fmt.Errorf("output %q: %w", name, err)
		}
		m.vals = append(m.vals, v)
		outs = append(outs, v)
		m.outs[name] = v
	}
	opts, err := crosscheck.NewORTSessionOptions(c.threads)
	if err != nil {
		m.closeVals()
		return nil, err
	}
	defer opts.Destroy()
	m.sess, err = ort.NewAdvancedSession(c.path, inNames, outNames, ins, outs, opts)
	if err != nil {
		m.closeVals()
		return nil, fmt.Errorf("onnxruntime cannot load %s: %w", c.path, err)
	}
	return m, nil
}

// closeVals releases the bound tensors.
func (m *ortModel) closeVals() {
	for _, v := range m.vals {
		v.Destroy()
	}
}

// check runs both once more and compares their outputs, so a benchmark
// never times a runtime that computes something else. measure calls it
// before and after timing.
func check(cm *compressModel, om *ortModel) error {
	if err := om.run(); err != nil {
		return err
	}
	got, err := cm.ex.Run(context.Background(), cm.feeds)
	if err != nil {
		return err
	}
	for name, v := range om.outs {
		want, err := crosscheck.FromORT(v)
		if err != nil {
			return err
		}
		if err := crosscheck.Compare(got[name], want, crosscheck.RTol, crosscheck.ATol); err != nil {
			return fmt.Errorf("output %q: compress vs onnxruntime: %w", name, err)
		}
	}
	return nil
}

// sample is the mean cost of one call over a block of calls: wall-clock
// time and the process's CPU time (user+system, all threads).
type sample struct {
	wall, cpu time.Duration
}

// cpuTime returns the CPU time the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timeN returns the mean cost of n calls of f.
func timeN(f func() error, n int) (sample, error) {
	start, cpu0 := time.Now(), cpuTime()
	for i := 0; i < n; i++ {
		if err := f(); err != nil {
			return sample{}, err
		}
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	return sample{wall / time.Duration(n), cpu / time.Duration(n)}, nil
}

// itersFor returns how many calls of f fill about budget (at least 1),
// after warm-up calls.
func itersFor(f func() error, budget time.Duration) (int, error) {
	s, err := timeN(f, 3)
	if err != nil {
		return 0, err
	}
	d := s.wall
	if d < time.Microsecond {
		d = time.Microsecond
	}
	n := int(budget / d)
	if n < 1 {
		n = 1
	}
	if _, err := timeN(f, min(n, 50)); err != nil { // more warm-up
		return 0, err
	}
	return n, nil
}

// result is the measurement of one case.
type result struct {
	c                   modelCase
	compress, ort       time.Duration // median per-call latency over rounds
	cpuCompress, cpuORT time.Duration // median per-call CPU time over rounds
	ratios              []float64     // per-round compress/ORT latency ratios, sorted
	roundsC, roundsO    []sample
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// measure times compress and onnxruntime on c alternately: rounds rounds,
// each timing a block of calls of one then of the other (the order flips
// every round), and keeps each one's median per-call latency.
func measure(c modelCase, rounds int, budget time.Duration) (*result, error) {
	cm, err := loadCompress(c)
	if err != nil {
		return nil, err
	}
	om, err := loadORT(c, cm)
	if err != nil {
		return nil, err
	}
	defer om.close()
	if err := check(cm, om); err != nil {
		return nil, err
	}
	nc, err := itersFor(cm.run, budget)
	if err != nil {
		return nil, err
	}
	no, err := itersFor(om.run, budget)
	if err != nil {
		return nil, err
	}
	r := &result{c: c}
	for i := 0; i < rounds; i++ {
		var tc, to sample
		if i%2 == 0 {
			tc, err = timeN(cm.run, nc)
			if err == nil {
				to, err = timeN(om.run, no)
			}
		} else {
			to, err = timeN(om.run, no)
			if err == nil {
				tc, err = timeN(cm.run, nc)
			}
		}
		if err != nil {
			return nil, err
		}
		r.roundsC = append(r.roundsC, tc)
		r.roundsO = append(r.roundsO, to)
		r.ratios = append(r.ratios, float64(tc.wall)/float64(to.wall))
	}
	if err := check(cm, om); err != nil {
		return nil, fmt.Errorf("after timing: %w", err)
	}
	slices.Sort(r.ratios)
	wall := func(s []sample) (d []time.Duration) {
		for _, x := range s {
			d = append(d, x.wall)
		}
		return d
	}
	cpu := func(s []sample) (d []time.Duration) {
		for _, x := range s {
			d = append(d, x.cpu)
		}
		return d
	}
	r.compress, r.ort = median(wall(r.roundsC)), median(wall(r.roundsO))
	r.cpuCompress, r.cpuORT = median(cpu(r.roundsC)), median(cpu(r.roundsO))
	return r, nil
}

// envInt returns the integer environment variable name, or def.
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// fmtDur formats a latency in microseconds or milliseconds.
func fmtDur(d time.Duration) string {
	if d < time.Millisecond {
		return fmt.Sprintf("%.1f us", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// TestModelBench measures compress against onnxruntime on every case and
// writes a markdown table to the file named by COMPRESS_BENCH_OUT (it is
// skipped when that variable is unset, so `go test -tags ort ./...` stays
// fast). COMPRESS_BENCH_ROUNDS (default 9) and COMPRESS_BENCH_ROUND_MS
// (default 300, the time of one block of calls) tune it. bench/run.sh
// runs it.
func TestModelBench(t *testing.T) {
	out := os.Getenv("COMPRESS_BENCH_OUT")
	if out == "" {
		t.Skip("set COMPRESS_BENCH_OUT=FILE to run the whole-model benchmark (bench/run.sh does)")
	}
	lib, err := crosscheck.InitORT()
	if errors.Is(err, crosscheck.ErrNoORT) {
		t.Skipf("skipping the benchmark against onnxruntime: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	cases, missing, err := modelCases()
	if err != nil {
		t.Fatal(err)
	}
	rounds := envInt("COMPRESS_BENCH_ROUNDS", 9)
	budget := time.Duration(envInt("COMPRESS_BENCH_ROUND_MS", 300)) * time.Millisecond

	var b strings.Builder
	fmt.Fprintf(&b, "onnxruntime %s (%s) through github.com/yalue/onnxruntime_go; %s.\n", crosscheck.ORTVersion(), lib, goVersion())
	fmt.Fprintf(&b, "%d alternating rounds of about %v per runtime. Latency: median over rounds of the mean wall-clock time per call; "+
		"the ratio compress/ORT of these medians is the figure the target applies to. CPU: the same for the process's CPU time per call "+
		"(user+system, all threads; onnxruntime's idle pool threads spin, which counts here), less sensitive to other load on the machine.\n\n", rounds, budget)
	b.WriteString("| model | batch | threads | compress | onnxruntime | ratio compress/ORT | per-round ratio min..max | compress samples/s | ORT samples/s | CPU compress | CPU ORT | CPU ratio |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	var failed []string
	for _, c := range cases {
		r, err := measure(c, rounds, budget)
		if err != nil {
			t.Errorf("%s: %v", c.name(), err)
			failed = append(failed, fmt.Sprintf("%s: %v", c.name(), err))
			continue
		}
		ratio := float64(r.compress) / float64(r.ort)
		verdict := ""
		if ratio > 1.2 {
			verdict = " (over 1.2)"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %.2f%s | %.2f..%.2f | %.0f | %.0f | %s | %s | %.2f |\n",
			c.label, c.batch, c.threads, fmtDur(r.compress), fmtDur(r.ort), ratio, verdict,
			r.ratios[0], r.ratios[len(r.ratios)-1],
			float64(c.batch)/r.compress.Seconds(), float64(c.batch)/r.ort.Seconds(),
			fmtDur(r.cpuCompress), fmtDur(r.cpuORT), float64(r.cpuCompress)/float64(r.cpuORT))
		t.Logf("%s: compress %v, onnxruntime %v, ratio %.2f", c.name(), r.compress, r.ort, ratio)
	}
	for _, m := range missing {
		fmt.Fprintf(&b, "\nNot measured, model missing: %s\n", m)
	}
	for _, f := range failed {
		fmt.Fprintf(&b, "\nFailed: %s\n", f)
	}
	if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}

// goVersion returns the Go toolchain that built the test binary.
func goVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.GoVersion
	}
	return "Go"
}

// BenchmarkORT times onnxruntime alone on every case (compare with
// BenchmarkCompress through benchstat if wanted; TestModelBench is the
// same-run comparison).
func BenchmarkORT(b *testing.B) {
	if _, err := crosscheck.InitORT(); err != nil {
		b.Skip(err)
	}
	cases, _, err := modelCases()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range cases {
		b.Run(c.name(), func(b *testing.B) {
			cm, err := loadCompress(c)
			if err != nil {
				b.Fatal(err)
			}
			om, err := loadORT(c, cm)
			if err != nil {
				b.Fatal(err)
			}
			defer om.close()
			n := 0
			for b.Loop() {
				if err := om.run(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			b.ReportMetric(float64(c.batch*n)/b.Elapsed().Seconds(), "samples/s")
		})
	}
}
