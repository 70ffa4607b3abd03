package finetune

import (
	"math"
	"strings"
	"testing"
)

// TestOptimizersAgainstPyTorch runs two steps of every optimizer on one
// parameter. The expected values were computed once with PyTorch 1.13
// (Debian's /usr/bin/python3) in float32:
//
//	p = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
//	opt = torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01) # etc.
//	for g in ([0.1, -0.2, 0.3], [-0.05, 0.4, 0.1]):
//	    p.grad = torch.tensor(g); opt.step(); print(p)
func TestOptimizersAgainstPyTorch(t *testing.T) {
	w0 := []float32{0.5, -1.0, 2.0}
	grads := [][]float32{{0.1, -0.2, 0.3}, {-0.05, 0.4, 0.1}}
	tests := []struct {
		name string
		cfg  OptimizerConfig
		lr   float64
		want [2][]float64 // after step 1 and step 2
	}{
		{"sgd", OptimizerConfig{Kind: "sgd"}, 0.1,
			[2][]float64{{0.49000001, -0.980000019, 1.97000003}, {0.495000005, -1.01999998, 1.96000004}}},
		{"sgd weight decay", OptimizerConfig{Kind: "sgd", WeightDecay: 0.01}, 0.1,
			[2][]float64{{0.489499986, -0.978999972, 1.96800005}, {0.494010478, -1.01802099, 1.95603204}}},
		{"sgd momentum", OptimizerConfig{Kind: "sgd", Momentum: 0.9}, 0.1,
			[2][]float64{{0.49000001, -0.980000019, 1.97000003}, {0.486000001, -1.00199997, 1.93299997}}},
		{"sgd nesterov weight decay", OptimizerConfig{Kind: "sgd", Momentum: 0.9, Nesterov: true, WeightDecay: 0.01}, 0.1,
			[2][]float64{{0.480049998, -0.960099995, 1.93920004}, {0.480132908, -1.0172658, 1.89059556}}},
		{"adam", OptimizerConfig{Kind: "adam"}, 0.1,
			[2][]float64{{0.400000006, -0.899999976, 1.89999998}, {0.373366296, -0.936610341, 1.81289363}}},
		{"adam default kind", OptimizerConfig{}, 0.1,
			[2][]float64{{0.400000006, -0.899999976, 1.89999998}, {0.373366296, -0.936610341, 1.81289363}}},
		{"adam L2 weight decay", OptimizerConfig{Kind: "adam", WeightDecay: 0.1}, 0.1,
			[2][]float64{{0.400000036, -0.900000036, 1.89999998}, {0.338095158, -0.906901538, 1.80469644}}},
		{"adamw decoupled weight decay", OptimizerConfig{Kind: "adamw", WeightDecay: 0.1}, 0.1,
			[2][]float64{{0.395000011, -0.889999986, 1.88}, {0.364416301, -0.917710364, 1.77409363}}},
		{"adam betas eps", OptimizerConfig{Kind: "adam", Beta1: 0.8, Beta2: 0.99, Eps: 1e-6}, 0.01,
			[2][]float64{{0.490000099, -0.990000069, 1.99000001}, {0.487888753, -0.994210064, 1.98153567}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt, err := NewOptimizer(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			w := append([]float32{}, w0...)
			for step, g := range grads {
				opt.Begin()
				opt.Update("p", w, append([]float32{}, g...), tc.lr)
				for i, want := range tc.want[step] {
					// About two float32 ulps.
					if math.Abs(float64(w[i])-want) > 2.5e-7*math.Max(1, math.Abs(want)) {
						t.Errorf("step %d: w[%d] = %.9g, PyTorch gives %.9g", step+1, i, w[i], want)
					}
				}
			}
		})
	}
}

// TestOptimizerHandValues checks single steps worked out by hand.
func TestOptimizerHandValues(t *testing.T) {
	tests := []struct {
		name string
		cfg  OptimizerConfig
		lr   float64
		w, g []float32
		want []float32
	}{
		// w - lr*g
		{"sgd", OptimizerConfig{Kind: "sgd"}, 0.5, []float32{1, 2}, []float32{1, -2}, []float32{0.5, 3}},
		// w - lr*(g + wd*w) = 1 - 0.5*(0 + 0.5*1)
		{"sgd weight decay only", OptimizerConfig{Kind: "sgd", WeightDecay: 0.5}, 0.5, []float32{1}, []float32{0}, []float32{0.75}},
		// Adam's first step moves every weight by lr*sign(g) (eps aside).
		{"adam first step", OptimizerConfig{Kind: "adam"}, 0.25, []float32{1, 1}, []float32{3, -0.5}, []float32{0.75, 1.25}},
		// AdamW with a zero gradient only decays: w*(1 - lr*wd).
		{"adamw zero gradient", OptimizerConfig{Kind: "adamw", WeightDecay: 0.1}, 0.5, []float32{2}, []float32{0}, []float32{1.9}},
		// lr 0 changes nothing, whatever the decay.
		{"adamw lr 0", OptimizerConfig{Kind: "adamw", WeightDecay: 0.1}, 0, []float32{2}, []float32{1}, []float32{2}},
		{"sgd lr 0", OptimizerConfig{Kind: "sgd", Momentum: 0.9, WeightDecay: 0.1}, 0, []float32{2}, []float32{1}, []float32{2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opt, err := NewOptimizer(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			opt.Begin()
			opt.Update("p", tc.w, tc.g, tc.lr)
			for i := range tc.want {
				if !approx(float64(tc.w[i]), float64(tc.want[i]), 1e-6) {
					t.Errorf("w[%d] = %.9g, want %.9g", i, tc.w[i], tc.want[i])
				}
			}
		})
	}
}

// TestOptimizerState checks that saving the state after one step and
// restoring it into a fresh optimizer gives the same second step.
func TestOptimizerState(t *testing.T) {
	for _, cfg := range []OptimizerConfig{
		{Kind: "sgd", Momentum: 0.9, Nesterov: true},
		{Kind: "adam"},
		{Kind: "adamw", WeightDecay: 0.01},
	} {
		t.Run(cfg.Kind, func(t *testing.T) {
			a, _ := NewOptimizer(cfg)
			w := []float32{1, -1}
			a.Begin()
			a.Update("p", w, []float32{0.3, 0.1}, 0.1)
			st := a.State()
			b, _ := NewOptimizer(cfg)
			if err := b.SetState(st); err != nil {
				t.Fatal(err)
			}
			w2 := append([]float32{}, w...)
			a.Begin()
			a.Update("p", w, []float32{-0.2, 0.5}, 0.1)
			b.Begin()
			b.Update("p", w2, []float32{-0.2, 0.5}, 0.1)
			if w[0] != w2[0] || w[1] != w2[1] {
				t.Errorf("restored optimizer gives %v, original %v", w2, w)
			}
			other := "sgd"
			if cfg.Kind == "sgd" {
				other = "adam"
			}
			c, _ := NewOptimizer(OptimizerConfig{Kind: other})
			if err := c.SetState(st); err == nil {
				t.Errorf("%s optimizer accepted %s state", other, cfg.Kind)
			}
		})
	}
}

func TestNewOptimizerErrors(t *testing.T) {
	tests := []struct {
		cfg  OptimizerConfig
		want string
	}{
		{OptimizerConfig{Kind: "rmsprop"}, "unknown optimizer"},
		{OptimizerConfig{Kind: "sgd", Nesterov: true}, "Nesterov"},
		{OptimizerConfig{Kind: "sgd", Momentum: 1}, "momentum"},
		{OptimizerConfig{Kind: "sgd", Momentum: -0.1}, "momentum"},
		{OptimizerConfig{Kind: "adam", WeightDecay: -1}, "weight decay"},
		{OptimizerConfig{Kind: "adam", Beta1: 1}, "betas"},
		{OptimizerConfig{Kind: "adam", Beta2: 1.5}, "betas"},
		{OptimizerConfig{Kind: "adam", Eps: -1}, "eps"},
	}
	for _, tc := range tests {
		_, err := NewOptimizer(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewOptimizer(%+v): error %v, want one containing %q", tc.cfg, err, tc.want)
		}
	}
}

func TestSchedules(t *testing.T) {
	const base = 0.1
	cos := func(min, f float64) float64 { return min + (base-min)*0.5*(1+math.Cos(math.Pi*f)) }
	tests := []struct {
		name  string
		s     Schedule
		steps []int
		want  []float64
	}{
		{"zero value is constant", Schedule{}, []int{0, 1, 1000}, []float64{base, base, base}},
		{"constant", Schedule{Kind: "constant"}, []int{0, 5}, []float64{base, base}},
		{"step default gamma", Schedule{Kind: "step", StepSize: 10}, []int{0, 9, 10, 19, 20, 35},
			[]float64{base, base, base * 0.1, base * 0.1, base * 0.01, base * 0.001}},
		{"step gamma 0.5", Schedule{Kind: "step", StepSize: 2, Gamma: 0.5}, []int{0, 1, 2, 3, 4},
			[]float64{base, base, base / 2, base / 2, base / 4}},
		{"cosine", Schedule{Kind: "cosine", TotalSteps: 100}, []int{0, 25, 50, 75, 100, 150},
			[]float64{base, cos(0, 0.25), base / 2, cos(0, 0.75), 0, 0}},
		{"cosine min lr", Schedule{Kind: "cosine", TotalSteps: 10, MinLR: 0.01}, []int{0, 5, 10, 11},
			[]float64{base, 0.055, 0.01, 0.01}},
		{"cosine without total", Schedule{Kind: "cosine"}, []int{0, 7}, []float64{base, base}},
		{"warm-up then constant", Schedule{WarmupSteps: 4}, []int{0, 1, 2, 3, 4, 100},
			[]float64{base / 4, base / 2, base * 3 / 4, base, base, base}},
		{"warm-up then step", Schedule{Kind: "step", StepSize: 3, Gamma: 0.5, WarmupSteps: 2}, []int{0, 1, 2, 4, 5, 8},
			[]float64{base / 2, base, base, base, base / 2, base / 4}},
		{"warm-up then cosine", Schedule{Kind: "cosine", TotalSteps: 12, WarmupSteps: 2}, []int{0, 1, 2, 7, 12},
			[]float64{base / 2, base, base, base / 2, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); err != nil {
				t.Fatal(err)
			}
			for i, step := range tc.steps {
				if got := tc.s.LR(base, step); !approx(got, tc.want[i], 1e-12) {
					t.Errorf("LR at step %d = %.12g, want %.12g", step, got, tc.want[i])
				}
			}
		})
	}
}

func TestScheduleValidate(t *testing.T) {
	tests := []struct {
		s    Schedule
		want string
	}{
		{Schedule{Kind: "exponential"}, "unknown learning-rate schedule"},
		{Schedule{Kind: "step"}, "positive step size"},
		{Schedule{WarmupSteps: -1}, "warm-up"},
		{Schedule{Kind: "step", StepSize: 1, Gamma: -0.5}, "gamma"},
		{Schedule{Kind: "cosine", TotalSteps: -3}, "total"},
		{Schedule{Kind: "cosine", MinLR: -1}, "minimum"},
	}
	for _, tc := range tests {
		err := tc.s.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v): error %v, want one containing %q", tc.s, err, tc.want)
		}
	}
}
