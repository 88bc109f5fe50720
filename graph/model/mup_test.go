package model_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// tinyMuP is tiny() in Salt's μP: mup on the init net and the encoder, the
// embedding (8) twice the base width (4).
func tinyMuP() model.Spec {
	s := tiny()
	s.Inputs[0].MuP = true
	s.Encoder.MuP = true
	s.MuP = &model.MuP{BaseEmbedDim: 4}
	return s
}

// TestMuPWidthMults checks the width multipliers mup's base shapes give:
// only the encoder's attention and feed-forward weights have two
// dimensions that follow the embedding; their multiplier is the fan-in's.
func TestMuPWidthMults(t *testing.T) {
	cases := []struct {
		name  string
		spec  func() model.Spec
		embed int
		want  map[string]float64
	}{
		{"width 8 over 4", tinyMuP, 8, map[string]float64{
			"encoder/layer0/attn/in_proj/weight":  2,
			"encoder/layer0/attn/out_proj/weight": 2,
			"encoder/layer0/dense/0/weight":       2,
			"encoder/layer0/dense/1/weight":       2,
		}},
		{"width 4 over 4", tinyMuP, 4, map[string]float64{
			"encoder/layer0/attn/in_proj/weight":  1,
			"encoder/layer0/attn/out_proj/weight": 1,
			"encoder/layer0/dense/0/weight":       1,
			"encoder/layer0/dense/1/weight":       1,
		}},
		{"no μP", tiny, 8, map[string]float64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := c.spec()
			s.EmbedDim = c.embed
			got, err := s.MuPWidthMults()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("multipliers %v, want %v", got, c.want)
			}
			for name, w := range c.want {
				if got[name] != w {
					t.Errorf("%s: %g, want %g", name, got[name], w)
				}
			}
		})
	}
}

// TestMuPModel checks what μP changes in the graphs: the init net's μP
// initialisation, and the readout factor 1/width_mult in the evaluation and
// deployment graphs, which a model without μP does not have.
func TestMuPModel(t *testing.T) {
	s := tinyMuP()
	g, layout, err := s.Eval(4)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range layout {
		switch {
		case strings.HasPrefix(p.Name, "init/tracks/") && strings.HasSuffix(p.Name, "/weight"):
			if want := nn.MuPDenseInit(int(p.Shape[len(p.Shape)-1])); p.Init != want {
				t.Errorf("%s: init %+v, want %+v", p.Name, p.Init, want)
			}
			checked++
		case strings.HasPrefix(p.Name, "init/tracks/") && strings.HasSuffix(p.Name, "/bias"):
			if p.Init.Kind != "zeros" {
				t.Errorf("%s: init %+v, want zeros", p.Name, p.Init)
			}
			checked++
		}
	}
	if checked != 4 {
		t.Errorf("checked %d init net parameters, want 4 (two layers' weights and biases)", checked)
	}
	readout := func(g *graph.Graph) bool {
		for _, n := range g.Nodes() {
			if n.Op == "Mul" && strings.HasPrefix(n.Name, "encoder/out_proj/") {
				return true
			}
		}
		return false
	}
	if !readout(g) {
		t.Error("the μP evaluation graph has no readout factor")
	}
	d, err := s.Deploy(tinyNorm(s), model.DeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !readout(d) {
		t.Error("the μP deployment graph has no readout factor")
	}
	plain := tiny()
	if g, _, err := plain.Eval(4); err != nil || readout(g) {
		t.Errorf("a model without μP: err %v, readout factor %v", err, err == nil && readout(g))
	}
}

// TestMuPValidate checks the μP settings a model refuses.
func TestMuPValidate(t *testing.T) {
	cases := []struct {
		name string
		edit func(*model.Spec)
		want string
	}{
		{"no base widths", func(s *model.Spec) { s.MuP = nil }, "base widths"},
		{"no readout", func(s *model.Spec) { s.Encoder.OutDim = 0 }, "out_dim"},
		{"base not divisible by heads", func(s *model.Spec) { s.MuP.BaseEmbedDim = 3 }, "divisible"},
		{"legacy encoder", func(s *model.Spec) { s.Encoder.Kind = nn.LegacyKind }, "legacy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := tinyMuP()
			c.edit(&s)
			if err := s.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// TestMuPOneJet checks that Deploy builds a μP model in its one-jet
// operators (no reference fallback) and that they compute what the
// reference graph computes, on random parameters (μP's initialisation
// zeroes the queries and the readout, which would hide the score scale
// and the readout factor).
func TestMuPOneJet(t *testing.T) {
	s := tinyMuP()
	_, layout, err := s.Eval(1)
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(6, 2))
	values := map[string][]byte{}
	for _, sl := range layout {
		f := make([]float32, sl.Size)
		for i := range f {
			f[i] = float32(0.5 * r.NormFloat64())
		}
		values[sl.Name] = graph.Float32Bytes(f)
	}
	fast, err := s.Deploy(tinyNorm(s), model.DeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range fast.Nodes() {
		if n.Op == "LayerNormalization" {
			t.Fatalf("Deploy built the reference graph (it has %s)", n.Name)
		}
	}
	ref, err := s.Deploy(tinyNorm(s), model.DeployOptions{Reference: true})
	if err != nil {
		t.Fatal(err)
	}
	fastRun := graphtest.Compile(t, fast, graph.ModelOptions{ParamValues: values})
	refRun := graphtest.Compile(t, ref, graph.ModelOptions{ParamValues: values})
	outs, err := s.DeployOutputs(model.DeployOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 4} {
		grp := s.Inputs[0]
		name := model.DeployInputName(grp.Name)
		in := map[string][]float64{model.JetFeaturesInput: {50, -1}, name: make([]float64, n*len(grp.Vars))}
		for i := range in[name] {
			in[name][i] = 3 * r.NormFloat64()
		}
		shapes := map[string][]int64{name: {int64(n), int64(len(grp.Vars))}}
		got, err := fastRun.RunShaped(in, shapes)
		if err != nil {
			t.Fatal(err)
		}
		want, err := refRun.RunShaped(in, shapes)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range outs {
			if o.PerConstituent() {
				continue
			}
			for i := range want[o.Name] {
				if g, w := got[o.Name][i], want[o.Name][i]; math.Abs(g-w) > 1e-5*math.Max(1, math.Abs(w)) {
					t.Errorf("%d constituents: %s[%d] = %v, reference %v", n, o.Name, i, g, w)
				}
			}
		}
	}
}
