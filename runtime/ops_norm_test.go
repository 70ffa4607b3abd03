package runtime

import (
	"math"
	"strings"
	"testing"
)

func TestBatchNormalization(t *testing.T) {
	for ti, shape := range [][]int{{2, 3}, {2, 3, 5}, {2, 4, 3, 5}, {1, 2, 2, 3, 4}, {3, 16, 20, 20}} {
		c := shape[1]
		x := nnRand(uint64(ti)+7000, shape...)
		scale := nnRand(uint64(ti)+7100, c)
		bias := nnRand(uint64(ti)+7200, c)
		mean := nnRand(uint64(ti)+7300, c)
		variance := nnRand(uint64(ti)+7400, c)
		for i := range variance.F32 {
			variance.F32[i] = variance.F32[i]*variance.F32[i] + 0.1
		}
		for _, eps := range []float32{1e-5, 0.5} {
			inner := NumElements(shape[2:])
			want := make([]float32, len(x.F32))
			for i, v := range x.F32 {
				ch := (i / inner) % c
				want[i] = float32(float64(scale.F32[ch])*(float64(v)-float64(mean.F32[ch]))/math.Sqrt(float64(variance.F32[ch])+float64(eps)) + float64(bias.F32[ch]))
			}
			n := nnNode("BatchNormalization", 5, map[string]any{"epsilon": eps, "momentum": float32(0.9)})
			nnCheckAll(t, n, []*Tensor{x, scale, bias, mean, variance}, shape, want)
		}
	}
}

func TestBatchNormalizationTraining(t *testing.T) {
	for ti, shape := range [][]int{{4, 3}, {2, 3, 5}, {3, 4, 3, 5}} {
		c := shape[1]
		x := nnRand(uint64(ti)+7500, shape...)
		scale, bias := nnRand(uint64(ti)+7600, c), nnRand(uint64(ti)+7700, c)
		mean, variance := nnRand(uint64(ti)+7800, c), nnRand(uint64(ti)+7900, c)
		inner := NumElements(shape[2:])
		bm, bv := make([]float64, c), make([]float64, c)
		cnt := float64(len(x.F32) / c)
		for i, v := range x.F32 {
			bm[(i/inner)%c] += float64(v) / cnt
		}
		for i, v := range x.F32 {
			d := float64(v) - bm[(i/inner)%c]
			bv[(i/inner)%c] += d * d / cnt
		}
		want := make([]float32, len(x.F32))
		for i, v := range x.F32 {
			ch := (i / inner) % c
			want[i] = float32(float64(scale.F32[ch])*(float64(v)-bm[ch])/math.Sqrt(bv[ch]+1e-5) + float64(bias.F32[ch]))
		}
		n := nnNode("BatchNormalization", 5, map[string]any{"training_mode": 1, "momentum": float32(0.8)})
		n.Outputs = append(n.Outputs, "rm", "rv")
		for _, threads := range []int{1, 2} {
			outs, err := nnRun(t, n, []*Tensor{x, scale, bias, mean, variance}, []int{1, 2, 3, 4}, threads)
			if err != nil {
				t.Fatal(err)
			}
			if err := nnClose(outs[0].F32, want, 1e-4); err != nil {
				t.Fatalf("Y: %v", err)
			}
			for ch := 0; ch < c; ch++ {
				rm := float64(mean.F32[ch])*0.8 + bm[ch]*0.2
				rv := float64(variance.F32[ch])*0.8 + bv[ch]*0.2
				if math.Abs(float64(outs[1].F32[ch])-rm) > 1e-5 || math.Abs(float64(outs[2].F32[ch])-rv) > 1e-5 {
					t.Fatalf("channel %d: running stats %v %v, want %v %v", ch, outs[1].F32[ch], outs[2].F32[ch], rm, rv)
				}
			}
		}
	}
}

func TestInstanceNormalization(t *testing.T) {
	for ti, shape := range [][]int{{2, 3, 5}, {2, 4, 3, 5}, {1, 2, 2, 3, 4}} {
		c := shape[1]
		x := nnRand(uint64(ti)+8000, shape...)
		scale := nnRand(uint64(ti)+8100, c)
		bias := nnRand(uint64(ti)+8200, c)
		inner := NumElements(shape[2:])
		want := make([]float32, len(x.F32))
		for p := 0; p < shape[0]*c; p++ {
			xs := x.F32[p*inner : (p+1)*inner]
			var m, v float64
			for _, e := range xs {
				m += float64(e)
			}
			m /= float64(inner)
			for _, e := range xs {
				v += (float64(e) - m) * (float64(e) - m)
			}
			v /= float64(inner)
			for i, e := range xs {
				want[p*inner+i] = float32(float64(scale.F32[p%c])*(float64(e)-m)/math.Sqrt(v+1e-5) + float64(bias.F32[p%c]))
			}
		}
		nnCheckAll(t, nnNode("InstanceNormalization", 3, nil), []*Tensor{x, scale, bias}, shape, want)
	}
}

func TestNormErrors(t *testing.T) {
	f := func(s ...int) ValueMeta { return ValueMeta{DType: Float32, Shape: s} }
	tests := []struct {
		name    string
		op      string
		attrs   map[string]any
		in      []ValueMeta
		outputs int
		want    string
	}{
		{"running outputs", "BatchNormalization", nil, []ValueMeta{f(1, 2, 3), f(2), f(2), f(2), f(2)}, 3, "only with training_mode=1"},
		{"training empty", "BatchNormalization", map[string]any{"training_mode": 1}, []ValueMeta{f(0, 2, 3), f(2), f(2), f(2), f(2)}, 1, "non-empty batch"},
		{"channels", "BatchNormalization", nil, []ValueMeta{f(1, 2, 3), f(2), f(3), f(2), f(2)}, 1, "B must have shape [2]"},
		{"rank", "BatchNormalization", nil, []ValueMeta{f(4), f(4), f(4), f(4), f(4)}, 1, "rank >= 2"},
		{"instance channels", "InstanceNormalization", nil, []ValueMeta{f(1, 2, 3), f(3), f(2)}, 1, "scale must have shape [2]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := nnNode(tc.op, len(tc.in), tc.attrs)
			for i := 1; i < tc.outputs; i++ {
				n.Outputs = append(n.Outputs, "extra"+string(rune('0'+i)))
			}
			_, _, err := CompileNode(n, tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
