package eval

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	rt "github.com/compressml/compress/runtime"
)

// BenchOptions configure Benchmark.
type BenchOptions struct {
	// Batch is the size of the inputs' batch dimension (1 if 0).
	Batch int
	// Warmup runs are made first and not measured (DefaultWarmup if 0,
	// none if negative).
	Warmup int
	// Iters measured runs are made when positive; otherwise runs are made
	// for Duration (DefaultBenchDuration if 0), and at least MinBenchIters.
	Iters    int
	Duration time.Duration
	// Seed seeds the random inputs.
	Seed uint64
}

// Defaults of BenchOptions.
const (
	DefaultWarmup        = 5
	DefaultBenchDuration = 2 * time.Second
	MinBenchIters        = 10
)

// BenchReport holds latency and throughput measurements. Field names in
// JSON are stable.
type BenchReport struct {
	Batch       int              `json:"batch"`
	Threads     int              `json:"threads"`
	Warmup      int              `json:"warmup"`
	Iterations  int              `json:"iterations"`
	InputShapes map[string][]int `json:"input_shapes"`
	MeanMs      float64          `json:"latency_mean_ms"`
	P50Ms       float64          `json:"latency_p50_ms"`
	P95Ms       float64          `json:"latency_p95_ms"`
	MinMs       float64          `json:"latency_min_ms"`
	MaxMs       float64          `json:"latency_max_ms"`
	// Throughput is examples per second: batch × iterations / total time.
	Throughput float64 `json:"throughput_samples_per_sec"`
}

// BenchShapes returns the shape of every model input with the batch
// dimension (dimension 0) set to batch. It refuses a fixed batch dimension
// of another size and other dynamic dimensions, naming the input.
func BenchShapes(g *rt.Graph, batch int) (map[string][]int, error) {
	if batch <= 0 {
		return nil, fmt.Errorf("batch %d: must be positive", batch)
	}
	shapes := map[string][]int{}
	for _, in := range g.Inputs {
		if _, isParam := g.Params[in.Name]; isParam {
			continue
		}
		if in.Shape == nil {
			return nil, fmt.Errorf("model input %q has no declared shape; it cannot be benchmarked with generated inputs", in.Name)
		}
		s := append([]int{}, in.Shape...)
		for i, d := range s {
			switch {
			case i == 0 && d < 0:
				s[i] = batch
			case i == 0 && d != batch:
				return nil, fmt.Errorf("model input %q has a fixed batch dimension of %d (shape %s); use batch %d", in.Name, d, FormatShape(in.Shape, in.DimNames), d)
			case d < 0:
				return nil, fmt.Errorf("model input %q has dynamic dimension %d (shape %s) besides the batch; compress cannot guess its size", in.Name, i, FormatShape(in.Shape, in.DimNames))
			}
		}
		shapes[in.Name] = s
	}
	return shapes, nil
}

// RandomInputs makes one tensor per shape: float32 values uniform in [0, 1)
// drawn from seed (the same seed gives the same values), zeros for other
// element types.
func RandomInputs(g *rt.Graph, shapes map[string][]int, seed uint64) map[string]*rt.Tensor {
	r := rand.New(rand.NewPCG(seed, 0x62656e6368)) // "bench"
	names := make([]string, 0, len(shapes))
	for n := range shapes {
		names = append(names, n)
	}
	sort.Strings(names)
	dtypes := map[string]rt.DType{}
	for _, in := range g.Inputs {
		dtypes[in.Name] = in.DType
	}
	out := map[string]*rt.Tensor{}
	for _, n := range names {
		dt := dtypes[n]
		if dt == rt.Undefined {
			dt = rt.Float32
		}
		t := rt.New(dt, shapes[n]...)
		for i := range t.F32 {
			t.F32[i] = r.Float32()
		}
		out[n] = t
	}
	return out
}

// Benchmark measures the latency of ex on random inputs of the model's input
// shapes at opts.Batch, after warm-up runs.
func Benchmark(ctx context.Context, ex *rt.Executor, opts BenchOptions) (*BenchReport, error) {
	if opts.Batch == 0 {
		opts.Batch = 1
	}
	if opts.Warmup == 0 {
		opts.Warmup = DefaultWarmup
	} else if opts.Warmup < 0 {
		opts.Warmup = 0
	}
	if opts.Iters < 0 || opts.Duration < 0 {
		return nil, fmt.Errorf("iterations (%d) and duration (%v) must not be negative", opts.Iters, opts.Duration)
	}
	if opts.Iters == 0 && opts.Duration == 0 {
		opts.Duration = DefaultBenchDuration
	}
	shapes, err := BenchShapes(ex.Graph(), opts.Batch)
	if err != nil {
		return nil, err
	}
	inputs := RandomInputs(ex.Graph(), shapes, opts.Seed)
	run := func() (time.Duration, error) {
		start := time.Now()
		_, err := ex.Run(ctx, inputs)
		return time.Since(start), err
	}
	for range opts.Warmup {
		if _, err := run(); err != nil {
			return nil, err
		}
	}
	var lat []time.Duration
	var total time.Duration
	for {
		if opts.Iters > 0 && len(lat) >= opts.Iters {
			break
		}
		if opts.Iters == 0 && total >= opts.Duration && len(lat) >= MinBenchIters {
			break
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := run()
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
		total += d
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	r := &BenchReport{
		Batch: opts.Batch, Threads: ex.Threads(), Warmup: opts.Warmup, Iterations: len(lat), InputShapes: shapes,
		MeanMs: ms(total) / float64(len(lat)),
		P50Ms:  ms(percentile(lat, 0.50)),
		P95Ms:  ms(percentile(lat, 0.95)),
		MinMs:  ms(lat[0]),
		MaxMs:  ms(lat[len(lat)-1]),
	}
	if total > 0 {
		r.Throughput = float64(opts.Batch*len(lat)) / total.Seconds()
	}
	return r, nil
}

// percentile is the nearest-rank percentile of sorted values (p in (0, 1]).
func percentile(sorted []time.Duration, p float64) time.Duration {
	k := int(math.Ceil(p*float64(len(sorted)))) - 1
	k = max(0, min(k, len(sorted)-1))
	return sorted[k]
}

// WriteText writes the report for a terminal.
func (r *BenchReport) WriteText(w io.Writer) error {
	var b strings.Builder
	names := make([]string, 0, len(r.InputShapes))
	for n := range r.InputShapes {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(&b, "input       %s %v\n", n, r.InputShapes[n])
	}
	fmt.Fprintf(&b, "batch       %d, %d threads, %d warm-up runs, %d measured runs\n", r.Batch, r.Threads, r.Warmup, r.Iterations)
	fmt.Fprintf(&b, "latency     p50 %.3f ms  p95 %.3f ms  mean %.3f ms  (min %.3f, max %.3f)\n", r.P50Ms, r.P95Ms, r.MeanMs, r.MinMs, r.MaxMs)
	fmt.Fprintf(&b, "throughput  %.1f samples/s\n", r.Throughput)
	_, err := io.WriteString(w, b.String())
	return err
}
