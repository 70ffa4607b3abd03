package models

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/compressml/compress/runtime"
)

// This file holds the weight initialisers. They follow torch.nn.init with
// its default arguments (Xavier gain 1; Kaiming with a = 0, mode "fan_in",
// nonlinearity "relu"), so a model built here starts from the same
// distributions as its PyTorch twin (not the same numbers: the generators
// differ).

// pcgStream is the second PCG seed word of NewRNG; fixed so that one
// uint64 seed names one stream.
const pcgStream = 0x9e3779b97f4a7c15

// NewRNG returns the deterministic generator every builder of this package
// draws from: math/rand/v2's PCG seeded with (seed, 0x9e3779b97f4a7c15).
// The same seed gives the same sequence, so a model built twice with the
// same Config has bit-identical weights (for one Go release: math/rand/v2
// fixes PCG's output, and NormFloat64 has been stable, but the Go 1 promise
// does not cover derived distributions).
func NewRNG(seed uint64) *rand.Rand {
	return rand.New(rand.NewPCG(seed, pcgStream))
}

// Initializer fills a float32 tensor in place from rng, given the fans of
// the layer it belongs to (see Fans).
type Initializer func(t *runtime.Tensor, fanIn, fanOut int, rng *rand.Rand) error

// Names of the initialisers (Config.Init and InitByName).
const (
	InitXavierUniform  = "xavier_uniform"
	InitXavierNormal   = "xavier_normal"
	InitKaimingUniform = "kaiming_uniform"
	InitKaimingNormal  = "kaiming_normal"
)

var initializers = map[string]Initializer{
	InitXavierUniform:  XavierUniform,
	InitXavierNormal:   XavierNormal,
	InitKaimingUniform: KaimingUniform,
	InitKaimingNormal:  KaimingNormal,
}

var initAliases = map[string]string{
	"glorot_uniform": InitXavierUniform,
	"glorot_normal":  InitXavierNormal,
	"he_uniform":     InitKaimingUniform,
	"he_normal":      InitKaimingNormal,
}

// InitNames lists the canonical initialiser names, sorted.
func InitNames() []string {
	names := make([]string, 0, len(initializers))
	for n := range initializers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// InitByName returns the initialiser called name: one of InitNames, or the
// aliases glorot_uniform, glorot_normal, he_uniform and he_normal
// (case-insensitive, "-" accepted for "_").
func InitByName(name string) (Initializer, error) {
	key := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(name)), "-", "_")
	if a, ok := initAliases[key]; ok {
		key = a
	}
	if f, ok := initializers[key]; ok {
		return f, nil
	}
	return nil, fmt.Errorf("unknown initialiser %q: use one of %s (or glorot_*/he_* aliases)",
		name, strings.Join(InitNames(), ", "))
}

// Fans returns the fan-in and fan-out of a weight of the given shape, as
// PyTorch computes them: for [out, in, k...] (a Conv weight, or a Gemm
// weight with transB=1 like PyTorch's Linear) fanIn = in * prod(k) and
// fanOut = out * prod(k). A grouped Conv's weight is [out, in/groups, k...],
// so its fan-in is per group, as in PyTorch. Shapes of rank < 2 have no fans.
func Fans(shape []int) (fanIn, fanOut int, err error) {
	if len(shape) < 2 {
		return 0, 0, fmt.Errorf("fans need a weight of rank 2 or more, got shape %v", shape)
	}
	if err := runtime.CheckShape(shape); err != nil {
		return 0, 0, err
	}
	rf := runtime.NumElements(shape[2:])
	fanIn, fanOut = shape[1]*rf, shape[0]*rf
	if fanIn <= 0 || fanOut <= 0 {
		return 0, 0, fmt.Errorf("weight shape %v has an empty dimension", shape)
	}
	return fanIn, fanOut, nil
}

func checkInitArgs(who string, t *runtime.Tensor, fanIn, fanOut int, rng *rand.Rand) error {
	switch {
	case t == nil:
		return fmt.Errorf("%s: tensor is nil", who)
	case t.DType != runtime.Float32:
		return fmt.Errorf("%s: tensor is %v, only float32 weights can be initialised", who, t.DType)
	case len(t.F32) != t.Len():
		return fmt.Errorf("%s: tensor of shape %v holds %d values", who, t.Shape, len(t.F32))
	case fanIn <= 0 || fanOut <= 0:
		return fmt.Errorf("%s: fans must be positive, got fanIn=%d fanOut=%d", who, fanIn, fanOut)
	case rng == nil:
		return fmt.Errorf("%s: rng is nil (use models.NewRNG(seed))", who)
	}
	return nil
}

func fillUniform(t *runtime.Tensor, bound float64, rng *rand.Rand) {
	for i := range t.F32 {
		t.F32[i] = float32((2*rng.Float64() - 1) * bound)
	}
}

func fillNormal(t *runtime.Tensor, std float64, rng *rand.Rand) {
	for i := range t.F32 {
		t.F32[i] = float32(rng.NormFloat64() * std)
	}
}

// XavierUniform (Glorot uniform) fills t from U(-a, a) with
// a = sqrt(6 / (fanIn + fanOut)), like torch.nn.init.xavier_uniform_.
// It is the default for Gemm (fully connected) weights.
func XavierUniform(t *runtime.Tensor, fanIn, fanOut int, rng *rand.Rand) error {
	if err := checkInitArgs(InitXavierUniform, t, fanIn, fanOut, rng); err != nil {
		return err
	}
	fillUniform(t, math.Sqrt(6/float64(fanIn+fanOut)), rng)
	return nil
}

// XavierNormal (Glorot normal) fills t from N(0, std²) with
// std = sqrt(2 / (fanIn + fanOut)), like torch.nn.init.xavier_normal_.
func XavierNormal(t *runtime.Tensor, fanIn, fanOut int, rng *rand.Rand) error {
	if err := checkInitArgs(InitXavierNormal, t, fanIn, fanOut, rng); err != nil {
		return err
	}
	fillNormal(t, math.Sqrt(2/float64(fanIn+fanOut)), rng)
	return nil
}

// KaimingUniform (He uniform) fills t from U(-b, b) with b = sqrt(6 / fanIn),
// like torch.nn.init.kaiming_uniform_(nonlinearity="relu"). fanOut is only
// checked.
func KaimingUniform(t *runtime.Tensor, fanIn, fanOut int, rng *rand.Rand) error {
	if err := checkInitArgs(InitKaimingUniform, t, fanIn, fanOut, rng); err != nil {
		return err
	}
	fillUniform(t, math.Sqrt(6/float64(fanIn)), rng)
	return nil
}

// KaimingNormal (He normal) fills t from N(0, std²) with std = sqrt(2 / fanIn),
// like torch.nn.init.kaiming_normal_(nonlinearity="relu"). It is the default
// for Conv weights. fanOut is only checked.
func KaimingNormal(t *runtime.Tensor, fanIn, fanOut int, rng *rand.Rand) error {
	if err := checkInitArgs(InitKaimingNormal, t, fanIn, fanOut, rng); err != nil {
		return err
	}
	fillNormal(t, math.Sqrt(2/float64(fanIn)), rng)
	return nil
}
