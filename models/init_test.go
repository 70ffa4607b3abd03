package models

import (
	"math"
	"strings"
	"testing"

	rt "github.com/compressml/compress/runtime"
)

func TestInitializers(t *testing.T) {
	const fanIn, fanOut = 300, 100
	cases := []struct {
		name    string
		uniform bool
		scale   float64 // bound for uniform, std for normal
	}{
		{InitXavierUniform, true, math.Sqrt(6.0 / (fanIn + fanOut))},
		{InitXavierNormal, false, math.Sqrt(2.0 / (fanIn + fanOut))},
		{InitKaimingUniform, true, math.Sqrt(6.0 / fanIn)},
		{InitKaimingNormal, false, math.Sqrt(2.0 / fanIn)},
	}
	for i, c := range cases {
		f, err := InitByName(c.name)
		if err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		w := rt.New(rt.Float32, fanOut, fanIn)
		if err := f(w, fanIn, fanOut, NewRNG(9)); err != nil {
			t.Fatalf("%d %s: %v", i, c.name, err)
		}
		var mean float64
		for _, x := range w.F32 {
			mean += float64(x)
		}
		mean /= float64(len(w.F32))
		std := stddev(w.F32)
		wantStd := c.scale
		if c.uniform {
			wantStd = c.scale / math.Sqrt(3)
			for _, x := range w.F32 {
				if math.Abs(float64(x)) > c.scale {
					t.Fatalf("%d %s: value %v outside ±%v", i, c.name, x, c.scale)
				}
			}
		}
		if math.Abs(mean) > 0.02*wantStd*10 || math.Abs(std-wantStd) > 0.02*wantStd {
			t.Errorf("%d %s: mean %v std %v, want 0 and %v", i, c.name, mean, std, wantStd)
		}
		// Same seed, same values.
		w2 := rt.New(rt.Float32, fanOut, fanIn)
		_ = f(w2, fanIn, fanOut, NewRNG(9))
		for k := range w.F32 {
			if math.Float32bits(w.F32[k]) != math.Float32bits(w2.F32[k]) {
				t.Fatalf("%d %s: not deterministic at %d", i, c.name, k)
			}
		}
	}
}

func TestInitErrors(t *testing.T) {
	good := rt.New(rt.Float32, 2, 3)
	cases := []struct {
		t            *rt.Tensor
		fanIn, fanOu int
		nilRNG       bool
		want         string
	}{
		{nil, 3, 2, false, "tensor is nil"},
		{rt.New(rt.Int8, 2, 3), 3, 2, false, "only float32"},
		{good, 0, 2, false, "fans must be positive"},
		{good, 3, -1, false, "fans must be positive"},
		{good, 3, 2, true, "rng is nil"},
		{&rt.Tensor{DType: rt.Float32, Shape: []int{2, 3}}, 3, 2, false, "holds 0 values"},
	}
	for _, f := range []Initializer{XavierUniform, XavierNormal, KaimingUniform, KaimingNormal} {
		for i, c := range cases {
			rng := NewRNG(1)
			if c.nilRNG {
				rng = nil
			}
			err := f(c.t, c.fanIn, c.fanOu, rng)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%d: error %v, want %q", i, err, c.want)
			}
		}
	}
}

func TestInitByName(t *testing.T) {
	for _, name := range []string{"xavier_uniform", "Xavier-Normal", "KAIMING_UNIFORM", "kaiming_normal", "glorot_uniform", "he_normal"} {
		if _, err := InitByName(name); err != nil {
			t.Errorf("InitByName(%q): %v", name, err)
		}
	}
	if _, err := InitByName("zeros"); err == nil || !strings.Contains(err.Error(), "kaiming_normal") {
		t.Errorf("InitByName(zeros) error %v should list the names", err)
	}
}

func TestFans(t *testing.T) {
	cases := []struct {
		shape      []int
		in, out    int
		shouldFail bool
	}{
		{shape: []int{10, 84}, in: 84, out: 10},            // Gemm [out, in]
		{shape: []int{16, 6, 5, 5}, in: 150, out: 400},     // Conv
		{shape: []int{32, 1, 3, 3}, in: 9, out: 288},       // depthwise Conv
		{shape: []int{8, 4, 3}, in: 12, out: 24},           // Conv1d
		{shape: []int{10}, shouldFail: true},               // bias
		{shape: []int{0, 3}, shouldFail: true},             // empty
		{shape: []int{-1, 3}, shouldFail: true},            // negative
		{shape: []int{1 << 40, 1 << 40}, shouldFail: true}, // too big
	}
	for i, c := range cases {
		in, out, err := Fans(c.shape)
		if (err != nil) != c.shouldFail || (!c.shouldFail && (in != c.in || out != c.out)) {
			t.Errorf("%d Fans(%v) = %d, %d, %v", i, c.shape, in, out, err)
		}
	}
}
