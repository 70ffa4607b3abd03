//go:build ort

package crosscheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/compressml/compress/runtime"
)

// ortLibRel is where onnxruntime-node (npm install --ignore-scripts
// onnxruntime-node@1.30.0) puts the CPU library, relative to the directory
// holding node_modules.
var ortLibRel = filepath.Join("node_modules", "onnxruntime-node", "bin", "napi-v6", "linux", "x64", "libonnxruntime.so.1")

// ErrNoORT is returned (wrapped) by InitORT when the onnxruntime shared
// library cannot be found.
var ErrNoORT = errors.New("onnxruntime library not found")

// LibraryPath returns the onnxruntime shared library to load: the
// ONNXRUNTIME_LIB environment variable if set, else the onnxruntime-node
// package's library in node_modules of the repository root or of one of its
// parent directories (the way Node resolves packages).
func LibraryPath() (string, error) {
	if p := os.Getenv("ONNXRUNTIME_LIB"); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: ONNXRUNTIME_LIB=%s: %v", ErrNoORT, p, err)
		}
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	var tried []string
	for dir := root; ; dir = filepath.Dir(dir) {
		p := filepath.Join(dir, ortLibRel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		tried = append(tried, p)
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", fmt.Errorf("%w (tried %v); run `npm install --ignore-scripts onnxruntime-node@1.30.0` in %s or set ONNXRUNTIME_LIB", ErrNoORT, tried, root)
}

var (
	ortOnce sync.Once
	ortErr  error
	ortPath string
)

// InitORT loads the onnxruntime library and creates its environment, once
// per process. It returns the library path. The error wraps ErrNoORT when
// the library is absent, so callers can skip.
func InitORT() (string, error) {
	ortOnce.Do(func() {
		ortPath, ortErr = LibraryPath()
		if ortErr != nil {
			return
		}
		ort.SetSharedLibraryPath(ortPath)
		if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
			ortErr = fmt.Errorf("initialising onnxruntime from %s: %w", ortPath, err)
		}
	})
	return ortPath, ortErr
}

// ORTVersion returns the version string of the loaded onnxruntime.
func ORTVersion() string { return ort.GetVersion() }

// ORTSession is an onnxruntime inference session on the CPU with a fixed
// number of intra-op threads, fed and read with compress tensors.
type ORTSession struct {
	s       *ort.DynamicAdvancedSession
	inputs  []string
	outputs []string
}

// NewORTSessionOptions returns session options for threads intra-op
// threads, sequential execution and all graph optimisations.
func NewORTSessionOptions(threads int) (*ort.SessionOptions, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	for _, f := range []func() error{
		func() error { return opts.SetIntraOpNumThreads(threads) },
		func() error { return opts.SetInterOpNumThreads(1) },
		func() error { return opts.SetExecutionMode(ort.ExecutionModeSequential) },
		func() error { return opts.SetGraphOptimizationLevel(ort.GraphOptimizationLevelEnableAll) },
	} {
		if err := f(); err != nil {
			opts.Destroy()
			return nil, err
		}
	}
	return opts, nil
}

// NewORTSession opens modelPath in onnxruntime. inputs and outputs name the
// graph's data inputs and outputs, in the order Run uses. InitORT must have
// succeeded.
func NewORTSession(modelPath string, inputs, outputs []string, threads int) (*ORTSession, error) {
	opts, err := NewORTSessionOptions(threads)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime session options: %w", err)
	}
	defer opts.Destroy()
	s, err := ort.NewDynamicAdvancedSession(modelPath, inputs, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("onnxruntime cannot load %s: %w", modelPath, err)
	}
	return &ORTSession{s: s, inputs: inputs, outputs: outputs}, nil
}

// Close releases the session.
func (s *ORTSession) Close() error { return s.s.Destroy() }

// Run feeds one tensor per input name and returns every output by name.
func (s *ORTSession) Run(feeds map[string]*runtime.Tensor) (map[string]*runtime.Tensor, error) {
	ins := make([]ort.Value, len(s.inputs))
	defer func() {
		for _, v := range ins {
			if v != nil {
				v.Destroy()
			}
		}
	}()
	for i, name := range s.inputs {
		t, ok := feeds[name]
		if !ok {
			return nil, fmt.Errorf("no tensor for onnxruntime input %q", name)
		}
		v, err := ToORT(t)
		if err != nil {
			return nil, fmt.Errorf("input %q: %w", name, err)
		}
		ins[i] = v
	}
	outs := make([]ort.Value, len(s.outputs))
	if err := s.s.Run(ins, outs); err != nil {
		return nil, fmt.Errorf("onnxruntime run: %w", err)
	}
	res := map[string]*runtime.Tensor{}
	var errs []error
	for i, v := range outs {
		if v == nil {
			continue
		}
		t, err := FromORT(v)
		v.Destroy()
		if err != nil {
			errs = append(errs, fmt.Errorf("output %q: %w", s.outputs[i], err))
			continue
		}
		res[s.outputs[i]] = t
	}
	return res, errors.Join(errs...)
}

// ToORT wraps a compress tensor's data (not copied) as an onnxruntime
// tensor. The caller destroys it.
func ToORT(t *runtime.Tensor) (ort.Value, error) {
	shape := make(ort.Shape, len(t.Shape))
	for i, d := range t.Shape {
		shape[i] = int64(d)
	}
	switch t.DType {
	case runtime.Float32:
		return ort.NewTensor(shape, t.F32)
	case runtime.Int64:
		return ort.NewTensor(shape, t.I64)
	case runtime.Int32:
		return ort.NewTensor(shape, t.I32)
	case runtime.Int8:
		return ort.NewTensor(shape, t.I8)
	case runtime.Uint8:
		return ort.NewTensor(shape, t.U8)
	case runtime.Bool:
		return ort.NewTensor(shape, t.B)
	}
	return nil, fmt.Errorf("dtype %v has no onnxruntime equivalent here", t.DType)
}

// FromORT copies an onnxruntime tensor into a compress tensor.
func FromORT(v ort.Value) (*runtime.Tensor, error) {
	shape := make([]int, len(v.GetShape()))
	for i, d := range v.GetShape() {
		shape[i] = int(d)
	}
	t := &runtime.Tensor{Shape: shape}
	switch ov := v.(type) {
	case *ort.Tensor[float32]:
		t.DType, t.F32 = runtime.Float32, append([]float32(nil), ov.GetData()...)
	case *ort.Tensor[int64]:
		t.DType, t.I64 = runtime.Int64, append([]int64(nil), ov.GetData()...)
	case *ort.Tensor[int32]:
		t.DType, t.I32 = runtime.Int32, append([]int32(nil), ov.GetData()...)
	case *ort.Tensor[int8]:
		t.DType, t.I8 = runtime.Int8, append([]int8(nil), ov.GetData()...)
	case *ort.Tensor[uint8]:
		t.DType, t.U8 = runtime.Uint8, append([]uint8(nil), ov.GetData()...)
	case *ort.Tensor[bool]:
		t.DType, t.B = runtime.Bool, append([]bool(nil), ov.GetData()...)
	default:
		return nil, fmt.Errorf("onnxruntime value of type %T is not supported", v)
	}
	return t, nil
}

// GraphNames returns the names of g's data inputs and of its outputs, as
// NewORTSession takes them.
func GraphNames(g *runtime.Graph) (inputs, outputs []string) {
	for _, in := range DataInputs(g) {
		inputs = append(inputs, in.Name)
	}
	for _, o := range g.Outputs {
		outputs = append(outputs, o.Name)
	}
	return inputs, outputs
}
