package finetune

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	rt "github.com/compressml/compress/runtime"
)

// Pattern matches parameter and node names: a glob (path.Match syntax:
// `conv*`, `layer1.*.weight`) or, written between slashes, a regular
// expression (`/^layer[12]\./`).
type Pattern struct {
	src  string
	glob string
	re   *regexp.Regexp
}

// ParsePattern compiles a pattern.
func ParsePattern(s string) (Pattern, error) {
	if len(s) >= 2 && strings.HasPrefix(s, "/") && strings.HasSuffix(s, "/") {
		re, err := regexp.Compile(s[1 : len(s)-1])
		if err != nil {
			return Pattern{}, fmt.Errorf("pattern %q: %w", s, err)
		}
		return Pattern{src: s, re: re}, nil
	}
	if _, err := path.Match(s, ""); err != nil {
		return Pattern{}, fmt.Errorf("pattern %q: %w (write a regular expression between slashes: /.../)", s, err)
	}
	return Pattern{src: s, glob: s}, nil
}

// Match reports whether name matches.
func (p Pattern) Match(name string) bool {
	if p.re != nil {
		return p.re.MatchString(name)
	}
	ok, _ := path.Match(p.glob, name)
	return ok
}

func (p Pattern) String() string { return p.src }

// FreezeSpec says which parameters train. Freeze patterns freeze the
// parameters they match, by parameter name or by the name of a node that
// reads them; FreezeUntil freezes every parameter read by that node and the
// nodes before it (in graph order); TrainOnly, when given, freezes all
// parameters that none of its patterns match. Parameters that are not
// float32, and BatchNormalization running statistics, never train.
type FreezeSpec struct {
	Freeze      []string
	FreezeUntil string
	TrainOnly   []string
}

// Apply sets Param.Trainable on g. It returns the names of the trainable
// parameters, and an error for a pattern that matches nothing or a
// FreezeUntil node that does not exist.
func (f FreezeSpec) Apply(g *rt.Graph) ([]string, error) {
	readers := map[string][]string{} // param -> node names reading it
	stats := map[string]bool{}
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if _, ok := g.Params[in]; ok {
				readers[in] = append(readers[in], n.Name)
				if n.OpType == "BatchNormalization" && i >= 3 {
					stats[in] = true
				}
			}
		}
	}
	for name, p := range g.Params {
		p.Trainable = p.T.DType == rt.Float32 && !stats[name] && len(readers[name]) > 0 && !isShapeLike(g, name)
	}
	matchAny := func(pats []Pattern, name string) bool {
		if anyMatch(pats, name) {
			return true
		}
		for _, r := range readers[name] {
			if anyMatch(pats, r) {
				return true
			}
		}
		return false
	}
	freeze, err := parsePatterns(f.Freeze)
	if err != nil {
		return nil, err
	}
	only, err := parsePatterns(f.TrainOnly)
	if err != nil {
		return nil, err
	}
	for _, pats := range [][]Pattern{freeze, only} {
		for _, p := range pats {
			found := false
			for name := range g.Params {
				if matchAny([]Pattern{p}, name) {
					found = true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("pattern %q matches no parameter or node of the model that reads one (see `compress inspect` for names)", p)
			}
		}
	}
	if f.FreezeUntil != "" {
		idx := -1
		for i, n := range g.Nodes {
			if n.Name == f.FreezeUntil {
				idx = i
			}
		}
		if idx < 0 {
			return nil, fmt.Errorf("--freeze-until: the model has no node %q (see `compress inspect` for names)", f.FreezeUntil)
		}
		for _, n := range g.Nodes[:idx+1] {
			for _, in := range n.Inputs {
				if p, ok := g.Params[in]; ok {
					p.Trainable = false
				}
			}
		}
	}
	var trainable []string
	for _, name := range g.ParamNames() {
		p := g.Params[name]
		if p.Trainable && matchAny(freeze, name) {
			p.Trainable = false
		}
		if p.Trainable && len(only) > 0 && !matchAny(only, name) {
			p.Trainable = false
		}
		if p.Trainable {
			trainable = append(trainable, name)
		}
	}
	return trainable, nil
}

// isShapeLike reports parameters read only as shapes or indices (Reshape's
// shape and the like), which are not weights even when float.
func isShapeLike(g *rt.Graph, name string) bool {
	for _, n := range g.Nodes {
		spec, _ := rt.LookupOp(n.Domain, n.OpType)
		for i, in := range n.Inputs {
			if in != name {
				continue
			}
			shape := false
			for _, s := range spec.StaticInputs {
				shape = shape || s == i
			}
			for _, s := range spec.NonDiff {
				shape = shape || s == i
			}
			if !shape {
				return false
			}
		}
	}
	return true
}

func parsePatterns(srcs []string) ([]Pattern, error) {
	var out []Pattern
	for _, s := range srcs {
		p, err := ParsePattern(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func anyMatch(pats []Pattern, name string) bool {
	for _, p := range pats {
		if p.Match(name) {
			return true
		}
	}
	return false
}
