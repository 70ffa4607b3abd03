package finetune

import (
	"slices"
	"strings"
	"testing"

	"github.com/compressml/compress/models"
	rt "github.com/compressml/compress/runtime"
)

// smallResNet is models' "resnet" at a quarter width on 1x8x8 inputs:
// conv1, bn1, layer1.0.{conv1,bn1,conv2,bn2,add}, layer2.0.{...,downsample.0,
// downsample.1}, layer3.0.{...}, avgpool, flatten, fc.
func smallResNet(t testing.TB) *rt.Graph {
	t.Helper()
	g, err := models.Build("resnet", models.Config{Input: []int{1, 8, 8}, Classes: 2, Width: 0.25, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func isStat(name string) bool { return strings.Contains(name, "running_") }

func TestFreezeSpecApply(t *testing.T) {
	all := func(name string) bool { return !isStat(name) }
	tests := []struct {
		name string
		spec FreezeSpec
		// trainable reports the parameters that must train; every other
		// parameter must be frozen.
		trainable func(name string) bool
	}{
		{"nothing frozen", FreezeSpec{}, all},
		{"glob on a parameter name", FreezeSpec{Freeze: []string{"conv1*"}},
			func(n string) bool { return all(n) && n != "conv1.weight" }},
		{"glob on a prefix", FreezeSpec{Freeze: []string{"layer1.*"}},
			func(n string) bool { return all(n) && !strings.HasPrefix(n, "layer1.") }},
		{"regex", FreezeSpec{Freeze: []string{`/^layer[12]\./`}},
			func(n string) bool {
				return all(n) && !strings.HasPrefix(n, "layer1.") && !strings.HasPrefix(n, "layer2.")
			}},
		{"node name freezes what the node reads", FreezeSpec{Freeze: []string{"bn1"}},
			func(n string) bool { return all(n) && !strings.HasPrefix(n, "bn1.") }},
		{"several patterns", FreezeSpec{Freeze: []string{"conv1", "/downsample/"}},
			func(n string) bool { return all(n) && n != "conv1.weight" && !strings.Contains(n, "downsample") }},
		{"freeze until a node", FreezeSpec{FreezeUntil: "layer1.0.add"},
			func(n string) bool {
				return all(n) && !strings.HasPrefix(n, "layer1.") && !strings.HasPrefix(n, "conv1.") && !strings.HasPrefix(n, "bn1.")
			}},
		{"freeze until the classifier freezes everything", FreezeSpec{FreezeUntil: "fc"},
			func(string) bool { return false }},
		{"train only a glob", FreezeSpec{TrainOnly: []string{"fc.*"}},
			func(n string) bool { return n == "fc.weight" || n == "fc.bias" }},
		{"train only a node", FreezeSpec{TrainOnly: []string{"fc"}},
			func(n string) bool { return n == "fc.weight" || n == "fc.bias" }},
		{"train only a regex", FreezeSpec{TrainOnly: []string{"/^layer3/", "fc"}},
			func(n string) bool { return all(n) && (strings.HasPrefix(n, "layer3.") || strings.HasPrefix(n, "fc.")) }},
		{"train only and freeze", FreezeSpec{TrainOnly: []string{"layer3.*", "fc"}, Freeze: []string{"*.bias"}},
			func(n string) bool {
				return all(n) && !strings.HasSuffix(n, ".bias") && (strings.HasPrefix(n, "layer3.") || strings.HasPrefix(n, "fc."))
			}},
		{"running statistics never train", FreezeSpec{TrainOnly: []string{"*running*", "fc"}},
			func(n string) bool { return n == "fc.weight" || n == "fc.bias" }},
		{"freeze until and train only", FreezeSpec{FreezeUntil: "layer2.0.add", TrainOnly: []string{"/bn/", "fc"}},
			func(n string) bool {
				return all(n) && (strings.HasPrefix(n, "layer3.0.bn") || strings.HasPrefix(n, "fc."))
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := smallResNet(t)
			got, err := tc.spec.Apply(g)
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, name := range g.ParamNames() {
				if tc.trainable(name) {
					want = append(want, name)
				}
				if g.Params[name].Trainable != tc.trainable(name) {
					t.Errorf("%s: Trainable = %v, want %v", name, g.Params[name].Trainable, tc.trainable(name))
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("Apply returned %v, want %v", got, want)
			}
		})
	}
}

// TestFreezeSpecApplyResets checks that Apply decides every flag afresh
// (a second spec does not inherit the first's freezing).
func TestFreezeSpecApplyResets(t *testing.T) {
	g := smallResNet(t)
	if _, err := (FreezeSpec{TrainOnly: []string{"fc"}}).Apply(g); err != nil {
		t.Fatal(err)
	}
	got, err := (FreezeSpec{Freeze: []string{"fc"}}).Apply(g)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(got, "conv1.weight") || slices.Contains(got, "fc.weight") {
		t.Errorf("second Apply gave %v", got)
	}
}

// TestFreezeSpecNonWeights checks that integer and shape-like parameters
// (here Reshape's shape) never train.
func TestFreezeSpecNonWeights(t *testing.T) {
	g := rt.NewGraph("reshape")
	g.Inputs = []rt.ValueInfo{{Name: "x", DType: rt.Float32, Shape: []int{-1, 2, 2}}}
	g.AddParam("shape", rt.FromInt64([]int64{-1, 4}, 2), true)
	g.AddParam("w", rt.New(rt.Float32, 4, 3), true)
	g.AddParam("unused", rt.New(rt.Float32, 3), true)
	g.Nodes = []*rt.Node{
		{Name: "flat", OpType: "Reshape", Inputs: []string{"x", "shape"}, Outputs: []string{"f"}},
		{Name: "mm", OpType: "MatMul", Inputs: []string{"f", "w"}, Outputs: []string{"y"}},
	}
	g.Outputs = []rt.ValueInfo{{Name: "y", DType: rt.Float32, Shape: []int{-1, 3}}}
	got, err := (FreezeSpec{}).Apply(g)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"w"}) {
		t.Errorf("trainable %v, want [w]", got)
	}
}

func TestFreezeSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		spec FreezeSpec
		want string
	}{
		{"freeze pattern matching nothing", FreezeSpec{Freeze: []string{"nosuchlayer*"}}, `pattern "nosuchlayer*" matches no parameter or node of the model that reads one`},
		{"train-only pattern matching nothing", FreezeSpec{TrainOnly: []string{"/^head/"}}, `pattern "/^head/" matches no parameter or node of the model that reads one`},
		{"node without parameters", FreezeSpec{Freeze: []string{"relu"}}, `pattern "relu" matches no parameter or node of the model that reads one`},
		{"one of several matching nothing", FreezeSpec{Freeze: []string{"conv1", "cnv2"}}, `"cnv2"`},
		{"bad regex", FreezeSpec{Freeze: []string{"/a(b/"}}, `pattern "/a(b/"`},
		{"bad glob", FreezeSpec{Freeze: []string{"conv[1"}}, `pattern "conv[1"`},
		{"unknown freeze-until node", FreezeSpec{FreezeUntil: "layer9"}, `no node "layer9"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.spec.Apply(smallResNet(t))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestPattern(t *testing.T) {
	tests := []struct {
		pat  string
		name string
		want bool
	}{
		{"conv*", "conv1.weight", true},
		{"conv*", "layer1.conv1.weight", false},
		{"*.bias", "fc.bias", true},
		{"layer?.*", "layer1.0.conv1.weight", true},
		{"fc", "fc.weight", false},
		{"/conv/", "layer1.conv1.weight", true},
		{"/^conv/", "layer1.conv1.weight", false},
		{"/", "/", true}, // a lone slash is a glob
		{"//", "anything", true},
	}
	for _, tc := range tests {
		p, err := ParsePattern(tc.pat)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tc.pat, err)
		}
		if got := p.Match(tc.name); got != tc.want {
			t.Errorf("%q matches %q: %v, want %v", tc.pat, tc.name, got, tc.want)
		}
		if p.String() != tc.pat {
			t.Errorf("String() = %q, want %q", p.String(), tc.pat)
		}
	}
}
