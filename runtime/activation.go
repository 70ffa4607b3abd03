package runtime

import (
	"math"
	"strconv"
)

// Activation names an elementwise float32 activation that kernels (Conv,
// Gemm, ...) can apply to their output in place, so that the fusion pass can
// drop the separate activation node. The standalone operators of the same
// names use the same element functions, so fused and unfused graphs give
// bit-identical results.
type Activation uint8

// The fusable activations. Parameters go in ApplyActivation's alpha and
// beta; the defaults are those of the ONNX operators.
const (
	ActNone        Activation = iota // identity
	ActRelu                          // max(x, 0)
	ActLeakyRelu                     // x < 0 ? alpha*x : x (alpha default 0.01)
	ActSigmoid                       // 1 / (1 + exp(-x))
	ActTanh                          // tanh(x)
	ActClip                          // min(max(x, alpha), beta): alpha is the lower bound, beta the upper (Relu6: 0, 6)
	ActHardSigmoid                   // max(0, min(1, alpha*x + beta)) (alpha 0.2, beta 0.5)
	ActHardSwish                     // x * max(0, min(1, x/6 + 0.5))
)

var activationNames = [...]string{"None", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "HardSigmoid", "HardSwish"}

// String returns the ONNX op type of the activation ("None" for ActNone).
func (a Activation) String() string {
	if int(a) < len(activationNames) {
		return activationNames[a]
	}
	return "Activation(" + strconv.Itoa(int(a)) + ")"
}

// ParseActivation maps an ONNX op type ("Relu", "Clip", ...) to its
// Activation; "" and "None" give ActNone.
func ParseActivation(opType string) (Activation, bool) {
	if opType == "" {
		return ActNone, true
	}
	for i, n := range activationNames {
		if n == opType {
			return Activation(i), true
		}
	}
	return ActNone, false
}

// DefaultActivationParams returns the alpha and beta an activation uses
// when its ONNX node sets no attributes (Clip: no bounds, -Inf and +Inf).
func DefaultActivationParams(a Activation) (alpha, beta float32) {
	switch a {
	case ActLeakyRelu:
		return 0.01, 0
	case ActHardSigmoid:
		return 0.2, 0.5
	case ActClip:
		return float32(math.Inf(-1)), float32(math.Inf(1))
	}
	return 0, 0
}

// NodeActivation recognizes a float32 activation node: it returns its kind
// and parameters, or ok false when n is not a fusable activation. For Clip,
// constInput resolves the bound inputs (1 and 2) to their constant values;
// a bound that is present but not constant (nil), not a one-element float32
// tensor, makes the node not fusable.
func NodeActivation(n *Node, constInput func(name string) *Tensor) (kind Activation, alpha, beta float32, ok bool) {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return ActNone, 0, 0, false
	}
	kind, ok = ParseActivation(n.OpType)
	if !ok || kind == ActNone {
		return ActNone, 0, 0, false
	}
	alpha, beta = DefaultActivationParams(kind)
	switch kind {
	case ActLeakyRelu:
		alpha = n.AttrFloat("alpha", alpha)
	case ActHardSigmoid:
		alpha = n.AttrFloat("alpha", alpha)
		beta = n.AttrFloat("beta", beta)
	case ActClip:
		for i, dst := range []*float32{&alpha, &beta} {
			name := n.Input(1 + i)
			if name == "" {
				continue
			}
			var t *Tensor
			if constInput != nil {
				t = constInput(name)
			}
			if t == nil || t.DType != Float32 || len(t.F32) != 1 {
				return ActNone, 0, 0, false
			}
			*dst = t.F32[0]
		}
	}
	return kind, alpha, beta, true
}

// ApplyActivation applies an activation to x in place. alpha and beta are
// the activation's parameters (see the Act constants); use
// DefaultActivationParams for the ONNX defaults. It does not allocate and
// runs on the calling goroutine.
func ApplyActivation(kind Activation, alpha, beta float32, x []float32) {
	actApply(kind, alpha, beta, x, x)
}

// actApply writes act(s) to d (d and s may be the same slice).
func actApply(kind Activation, alpha, beta float32, d, s []float32) {
	s = s[:len(d)]
	switch kind {
	case ActNone:
		copy(d, s)
	case ActRelu:
		// The builtin max compiles to a branch-free MAXSS; a compare and
		// branch mispredicts on data of random sign (about 7x slower).
		for i, v := range s {
			d[i] = max(v, 0)
		}
	case ActLeakyRelu:
		for i, v := range s {
			if v < 0 {
				v *= alpha
			}
			d[i] = v
		}
	case ActSigmoid:
		for i, v := range s {
			d[i] = actSigmoid(v)
		}
	case ActTanh:
		for i, v := range s {
			d[i] = float32(math.Tanh(float64(v)))
		}
	case ActClip:
		for i, v := range s {
			// NaN stays NaN; when alpha > beta every element becomes beta,
			// like numpy.clip and onnxruntime.
			if v < alpha {
				v = alpha
			}
			if v > beta {
				v = beta
			}
			d[i] = v
		}
	case ActHardSigmoid:
		for i, v := range s {
			d[i] = actHardSigmoid(v, alpha, beta)
		}
	case ActHardSwish:
		for i, v := range s {
			d[i] = v * actHardSigmoid(v, 1.0/6, 0.5)
		}
	}
}

// actSigmoid is 1/(1+exp(-x)) evaluated in float64, which neither
// overflows nor loses precision for any float32 x.
func actSigmoid(v float32) float32 {
	return float32(1 / (1 + math.Exp(-float64(v))))
}

// actHardSigmoid is max(0, min(1, alpha*x + beta)) in float32, NaN
// preserving. The explicit conversion keeps the compiler from fusing the
// multiply-add (results stay the same whatever GOAMD64 level).
func actHardSigmoid(v, alpha, beta float32) float32 {
	y := float32(alpha*v) + beta
	if y > 1 {
		y = 1
	}
	if y < 0 {
		y = 0
	}
	return y
}
