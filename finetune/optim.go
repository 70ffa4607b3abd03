package finetune

import (
	"fmt"
	"math"
)

// Optimizer updates parameters from their gradients. Begin is called once
// per training step, before Update is called for each parameter.
type Optimizer interface {
	Begin()
	// Update changes w in place from gradient g at learning rate lr.
	Update(name string, w, g []float32, lr float64)
	// State and SetState save and restore everything the optimizer keeps
	// between steps (moments, step count), for checkpoints.
	State() OptimizerState
	SetState(OptimizerState) error
}

// OptimizerState is an optimizer's memory between steps.
type OptimizerState struct {
	Kind  string
	Step  int64
	Slots map[string][][]float32 // per parameter: momentum, or Adam's m and v
}

// OptimizerConfig selects and configures an optimizer.
type OptimizerConfig struct {
	Kind        string  // "sgd", "adam" or "adamw"
	Momentum    float64 // SGD
	Nesterov    bool    // SGD
	Beta1       float64 // Adam, AdamW (default 0.9)
	Beta2       float64 // Adam, AdamW (default 0.999)
	Eps         float64 // Adam, AdamW (default 1e-8)
	WeightDecay float64 // SGD and Adam: added to the gradient (L2); AdamW: decoupled
}

// NewOptimizer builds the optimizer cfg describes.
func NewOptimizer(cfg OptimizerConfig) (Optimizer, error) {
	if !(cfg.WeightDecay >= 0) || !(cfg.Momentum >= 0 && cfg.Momentum < 1) {
		return nil, fmt.Errorf("optimizer: weight decay must be >= 0 and momentum in [0, 1) (got %g and %g)", cfg.WeightDecay, cfg.Momentum)
	}
	if !(cfg.Eps >= 0) {
		return nil, fmt.Errorf("optimizer: eps %g must not be negative", cfg.Eps)
	}
	if cfg.Beta1 == 0 {
		cfg.Beta1 = 0.9
	}
	if cfg.Beta2 == 0 {
		cfg.Beta2 = 0.999
	}
	if cfg.Eps == 0 {
		cfg.Eps = 1e-8
	}
	switch cfg.Kind {
	case "sgd":
		if cfg.Nesterov && cfg.Momentum == 0 {
			return nil, fmt.Errorf("optimizer: Nesterov momentum needs --momentum > 0")
		}
		return &sgd{cfg: cfg, slots: map[string][][]float32{}}, nil
	case "adam", "adamw", "":
		if cfg.Kind == "" {
			cfg.Kind = "adam"
		}
		if cfg.Beta1 < 0 || cfg.Beta1 >= 1 || cfg.Beta2 < 0 || cfg.Beta2 >= 1 {
			return nil, fmt.Errorf("optimizer: betas must be in [0, 1)")
		}
		return &adam{cfg: cfg, slots: map[string][][]float32{}}, nil
	}
	return nil, fmt.Errorf("unknown optimizer %q: use sgd, adam or adamw", cfg.Kind)
}

type sgd struct {
	cfg   OptimizerConfig
	step  int64
	slots map[string][][]float32
}

func (o *sgd) Begin() { o.step++ }

func (o *sgd) Update(name string, w, g []float32, lr float64) {
	wd, mom := float32(o.cfg.WeightDecay), float32(o.cfg.Momentum)
	flr := float32(lr)
	if mom == 0 {
		for i := range w {
			w[i] -= flr * (g[i] + wd*w[i])
		}
		return
	}
	s, ok := o.slots[name]
	if !ok {
		s = [][]float32{make([]float32, len(w))}
		o.slots[name] = s
	}
	buf := s[0]
	for i := range w {
		d := g[i] + wd*w[i]
		buf[i] = mom*buf[i] + d // a new buffer is zero: the first step's is d, as in PyTorch
		if o.cfg.Nesterov {
			d += mom * buf[i]
		} else {
			d = buf[i]
		}
		w[i] -= flr * d
	}
}

func (o *sgd) State() OptimizerState {
	return OptimizerState{Kind: "sgd", Step: o.step, Slots: cloneSlots(o.slots)}
}

func (o *sgd) SetState(s OptimizerState) error {
	if s.Kind != "sgd" {
		return fmt.Errorf("checkpoint has %s optimizer state, the run uses sgd", s.Kind)
	}
	o.step, o.slots = s.Step, cloneSlots(s.Slots)
	return nil
}

type adam struct {
	cfg   OptimizerConfig
	step  int64
	slots map[string][][]float32
}

func (o *adam) Begin() { o.step++ }

func (o *adam) Update(name string, w, g []float32, lr float64) {
	s, ok := o.slots[name]
	if !ok {
		s = [][]float32{make([]float32, len(w)), make([]float32, len(w))}
		o.slots[name] = s
	}
	m, v := s[0], s[1]
	// As in PyTorch, 1-beta is computed in float64 and then rounded (the
	// float32 beta's own complement would be off by ~1e-5 relative for
	// beta2 = 0.999).
	b1, b2 := float32(o.cfg.Beta1), float32(o.cfg.Beta2)
	omb1, omb2 := float32(1-o.cfg.Beta1), float32(1-o.cfg.Beta2)
	bc1 := 1 - math.Pow(o.cfg.Beta1, float64(o.step))
	bc2 := 1 - math.Pow(o.cfg.Beta2, float64(o.step))
	stepSize := float32(lr / bc1)
	sqrtBc2 := float32(math.Sqrt(bc2))
	eps := float32(o.cfg.Eps)
	wd := float32(o.cfg.WeightDecay)
	decoupled := o.cfg.Kind == "adamw"
	if decoupled && wd != 0 {
		f := float32(1 - lr*o.cfg.WeightDecay)
		for i := range w {
			w[i] *= f
		}
	}
	for i := range w {
		gi := g[i]
		if !decoupled {
			gi += wd * w[i]
		}
		m[i] = b1*m[i] + omb1*gi
		v[i] = b2*v[i] + omb2*gi*gi
		denom := float32(math.Sqrt(float64(v[i])))/sqrtBc2 + eps
		w[i] -= stepSize * m[i] / denom
	}
}

func (o *adam) State() OptimizerState {
	return OptimizerState{Kind: o.cfg.Kind, Step: o.step, Slots: cloneSlots(o.slots)}
}

func (o *adam) SetState(s OptimizerState) error {
	if s.Kind != o.cfg.Kind {
		return fmt.Errorf("checkpoint has %s optimizer state, the run uses %s", s.Kind, o.cfg.Kind)
	}
	o.step, o.slots = s.Step, cloneSlots(s.Slots)
	return nil
}

// cloneSlots deep-copies optimizer slots, so that a saved state does not
// change with later steps (and a restored one does not alias the source).
func cloneSlots(s map[string][][]float32) map[string][][]float32 {
	out := make(map[string][][]float32, len(s))
	for name, bufs := range s {
		c := make([][]float32, len(bufs))
		for i, b := range bufs {
			c[i] = append([]float32(nil), b...)
		}
		out[name] = c
	}
	return out
}

// Schedule gives the learning rate at a step (0-based, counted over the
// whole run) from the base rate.
type Schedule struct {
	Kind        string  // "constant" (default), "step", "cosine"
	StepSize    int     // step: decay every StepSize steps
	Gamma       float64 // step: multiply by Gamma (default 0.1)
	TotalSteps  int     // cosine: steps to anneal over
	MinLR       float64 // cosine: final rate
	WarmupSteps int     // linear warm-up from 0 over this many steps, then the schedule
}

// Validate checks the schedule's settings.
func (s Schedule) Validate() error {
	switch s.Kind {
	case "", "constant", "cosine":
	case "step":
		if s.StepSize <= 0 {
			return fmt.Errorf("step schedule needs a positive step size")
		}
	default:
		return fmt.Errorf("unknown learning-rate schedule %q: use constant, step or cosine", s.Kind)
	}
	if s.WarmupSteps < 0 {
		return fmt.Errorf("warm-up steps must not be negative")
	}
	if !(s.Gamma >= 0) {
		return fmt.Errorf("step schedule: gamma %g must not be negative", s.Gamma)
	}
	if s.TotalSteps < 0 {
		return fmt.Errorf("cosine schedule: total steps %d must not be negative", s.TotalSteps)
	}
	if !(s.MinLR >= 0) {
		return fmt.Errorf("cosine schedule: minimum learning rate %g must not be negative", s.MinLR)
	}
	return nil
}

// LR returns the learning rate at step.
func (s Schedule) LR(base float64, step int) float64 {
	if step < s.WarmupSteps {
		return base * float64(step+1) / float64(s.WarmupSteps)
	}
	t := step - s.WarmupSteps
	switch s.Kind {
	case "step":
		g := s.Gamma
		if g == 0 {
			g = 0.1
		}
		return base * math.Pow(g, float64(t/s.StepSize))
	case "cosine":
		total := s.TotalSteps - s.WarmupSteps
		if total <= 0 {
			return base
		}
		f := math.Min(float64(t)/float64(total), 1)
		return s.MinLR + (base-s.MinLR)*0.5*(1+math.Cos(math.Pi*f))
	}
	return base
}
