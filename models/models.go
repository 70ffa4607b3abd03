package models

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/compressml/compress/runtime"
)

// Config parameterises a built-in architecture. The zero value of every
// field except Input and Classes means "the default".
type Config struct {
	// Input is the shape of one example, without the batch dimension:
	// [C, H, W] for the convolutional architectures, any shape for "mlp"
	// (it is flattened; [features] for tabular data).
	Input []int
	// Classes is the number of outputs of the final classifier (>= 1).
	Classes int
	// Width multiplies every channel count and hidden size (rounded half
	// away from zero, at least 1). 0 means 1.
	Width float64
	// Hidden are the hidden layer sizes of "mlp", before Width. nil means
	// [128]; a non-nil empty slice gives no hidden layer (softmax
	// regression).
	Hidden []int
	// Depth is the number of residual blocks per stage of "resnet"
	// (0 means DefaultDepth). Other architectures ignore it.
	Depth int
	// Seed seeds the weight initialisation (see NewRNG): the same Config
	// gives bit-identical weights.
	Seed uint64
	// Init names the initialiser of every Conv and Gemm weight (see
	// InitByName). "" means Kaiming normal for Conv weights and Xavier
	// uniform for Gemm weights. Biases start at 0; BatchNormalization
	// starts with scale 1, bias 0, running mean 0 and running variance 1.
	Init string
}

// Defaults used when the corresponding Config field is zero.
const (
	DefaultDepth = 1
	// MaxChannels bounds any channel count or hidden size after Width.
	MaxChannels = 1 << 20
	// MaxParams bounds the number of parameter values of a built model
	// (1 GiB of float32), so a mistyped size fails instead of exhausting
	// memory.
	MaxParams = 1 << 28
)

// defaultHidden are the hidden sizes of "mlp" when Config.Hidden is nil.
var defaultHidden = [...]int{128}

// Names of the graph's input and output, and of the final classifier
// (node "fc" with parameters "fc.weight" [Classes, in] and "fc.bias").
const (
	InputName      = "input"
	OutputName     = "logits"
	ClassifierName = "fc"
)

// Arch is one registered architecture.
type Arch struct {
	// Name is what Build and `compress models new --arch` accept.
	Name string
	// Summary is a one-line description for listings.
	Summary string
	// Build makes the graph from a Config already checked and defaulted by
	// the package-level Build (Width, Depth and Hidden are set, Input and
	// Classes are valid, Init is a known name or "").
	Build func(cfg Config) (*runtime.Graph, error)
}

var archs = struct {
	sync.RWMutex
	m map[string]Arch
}{m: map[string]Arch{}}

// Register adds an architecture. It is meant for init functions; an empty
// name, a nil Build or a name registered twice panics.
func Register(a Arch) {
	key := strings.ToLower(a.Name)
	if key == "" || a.Build == nil {
		panic("models.Register: an architecture needs a name and a Build function")
	}
	archs.Lock()
	defer archs.Unlock()
	if _, dup := archs.m[key]; dup {
		panic("models.Register: architecture registered twice: " + a.Name)
	}
	archs.m[key] = a
}

// Lookup finds a registered architecture by name (case-insensitive).
func Lookup(name string) (Arch, bool) {
	archs.RLock()
	defer archs.RUnlock()
	a, ok := archs.m[strings.ToLower(strings.TrimSpace(name))]
	return a, ok
}

// Archs lists the registered architectures sorted by name.
func Archs() []Arch {
	archs.RLock()
	defer archs.RUnlock()
	out := make([]Arch, 0, len(archs.m))
	for _, a := range archs.m {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ArchNames lists the registered architecture names, sorted.
func ArchNames() []string {
	var names []string
	for _, a := range Archs() {
		names = append(names, a.Name)
	}
	return names
}

// Build makes a freshly initialised graph of the architecture arch.
//
// The graph has one float32 input "input" of shape [N, Input...] with a
// dynamic batch dimension named "N", and one output "logits" of shape
// [N, Classes]. Parameters are named like a PyTorch state_dict
// ("conv1.weight", "layer1.0.bn1.running_mean", "fc.bias"); weights, biases
// and BatchNormalization scales and biases are trainable, running
// statistics are not. Gemm nodes use transB=1 with weights [out, in] like
// PyTorch's Linear. Nodes are in opset-18 form and topologically sorted.
func Build(arch string, cfg Config) (*runtime.Graph, error) {
	a, ok := Lookup(arch)
	if !ok {
		return nil, fmt.Errorf("models: unknown architecture %q: use one of %s", arch, strings.Join(ArchNames(), ", "))
	}
	cfg, err := cfg.normalize()
	if err != nil {
		return nil, fmt.Errorf("models: %s: %w", a.Name, err)
	}
	g, err := a.Build(cfg)
	if err != nil {
		return nil, fmt.Errorf("models: %s: %w", a.Name, err)
	}
	if err := g.TopoSort(); err != nil {
		return nil, fmt.Errorf("models: %s: built an invalid graph (a bug): %w", a.Name, err)
	}
	if g.Meta == nil {
		g.Meta = map[string]string{}
	}
	g.Meta["compress.arch"] = a.Name
	g.Meta["compress.config"] = cfg.String()
	if g.Doc == "" {
		g.Doc = a.Summary
	}
	return g, nil
}

// String renders a Config as flag-like text, e.g.
// "input=1x28x28 classes=10 width=1 depth=1 seed=0 init=default".
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "input=%s classes=%d width=%s", FormatShape(c.Input), c.Classes,
		strconv.FormatFloat(c.Width, 'g', -1, 64))
	if c.Hidden != nil {
		fmt.Fprintf(&b, " hidden=%s", joinInts(c.Hidden, ","))
	}
	fmt.Fprintf(&b, " depth=%d seed=%d init=", c.Depth, c.Seed)
	if c.Init == "" {
		b.WriteString("default")
	} else {
		b.WriteString(c.Init)
	}
	return b.String()
}

// FormatShape renders a shape as "1x28x28".
func FormatShape(s []int) string { return joinInts(s, "x") }

// ParseShape parses "1x28x28" (also "1,28,28" or "784") into a shape of
// positive dimensions.
func ParseShape(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, fmt.Errorf("empty shape: write it like 1x28x28 (C x H x W) or 784 (features)")
	}
	parts := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return r == 'x' || r == ',' || r == '*' })
	out := make([]int, 0, len(parts))
	for _, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || v < 1 {
			return nil, fmt.Errorf("bad shape %q: dimension %q is not a positive integer (write it like 1x28x28)", s, p)
		}
		out = append(out, v)
	}
	return out, nil
}

func joinInts(v []int, sep string) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = strconv.Itoa(x)
	}
	return strings.Join(parts, sep)
}

// normalize checks c and fills in defaults.
func (c Config) normalize() (Config, error) {
	if len(c.Input) == 0 {
		return c, fmt.Errorf("the input shape is empty: give the shape of one example, e.g. [1 28 28] (C, H, W) or [784]")
	}
	for i, d := range c.Input {
		if d < 1 {
			return c, fmt.Errorf("input dimension %d is %d in %v: every dimension must be at least 1", i, d, c.Input)
		}
	}
	if err := runtime.CheckShape(c.Input); err != nil {
		return c, fmt.Errorf("input shape: %w", err)
	}
	c.Input = append([]int{}, c.Input...)
	if c.Classes < 1 {
		return c, fmt.Errorf("classes must be at least 1, got %d", c.Classes)
	}
	if c.Classes > MaxChannels {
		return c, fmt.Errorf("classes is %d, more than the limit of %d", c.Classes, MaxChannels)
	}
	if math.IsNaN(c.Width) || math.IsInf(c.Width, 0) || c.Width < 0 {
		return c, fmt.Errorf("width multiplier must be a positive number, got %v", c.Width)
	}
	if c.Width == 0 {
		c.Width = 1
	}
	if c.Depth < 0 {
		return c, fmt.Errorf("depth must be at least 1 (0 for the default %d), got %d", DefaultDepth, c.Depth)
	}
	if c.Depth == 0 {
		c.Depth = DefaultDepth
	}
	if c.Hidden == nil {
		c.Hidden = append([]int{}, defaultHidden[:]...)
	} else {
		c.Hidden = append([]int{}, c.Hidden...)
	}
	for i, h := range c.Hidden {
		if h < 1 {
			return c, fmt.Errorf("hidden layer %d has size %d: sizes must be at least 1", i, h)
		}
	}
	if c.Init != "" {
		if _, err := InitByName(c.Init); err != nil {
			return c, err
		}
	}
	return c, nil
}

// scaled applies the width multiplier to a channel count or hidden size.
func (c Config) scaled(n int) (int, error) {
	v := math.Round(float64(n) * c.Width)
	if v > MaxChannels {
		return 0, fmt.Errorf("width %v makes %d channels/units into %.0f, more than the limit of %d", c.Width, n, v, MaxChannels)
	}
	if v < 1 {
		v = 1
	}
	return int(v), nil
}

// scaledAll applies scaled to every element.
func (c Config) scaledAll(ns []int) ([]int, error) {
	out := make([]int, len(ns))
	for i, n := range ns {
		v, err := c.scaled(n)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// imageInput checks that the input is [C, H, W] and returns it.
func (c Config) imageInput(arch string) (ch, h, w int, err error) {
	if len(c.Input) != 3 {
		return 0, 0, 0, fmt.Errorf("%s needs an image input [C H W] (e.g. 1x28x28), got %s", arch, FormatShape(c.Input))
	}
	return c.Input[0], c.Input[1], c.Input[2], nil
}

// CountParams returns the number of parameter values of g (all of them, and
// the trainable ones). Trainable matches PyTorch's
// sum(p.numel() for p in model.parameters()); total adds buffers such as
// BatchNormalization running statistics.
func CountParams(g *runtime.Graph) (total, trainable int64) {
	for _, p := range g.Params {
		if p.T == nil {
			continue
		}
		n := int64(p.T.Len())
		total += n
		if p.Trainable {
			trainable += n
		}
	}
	return total, trainable
}
