package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
)

// The validation-vector file is HDF5 in Salt's layout, readable with h5py:
//   - jets [N]: the raw jet variables, n_<group> (int32) per constituent
//     group, and each jet-level output the model must reproduce (float32,
//     named as the output);
//   - <group> [N, T] per constituent group: the raw constituent variables
//     (valid constituents first), valid, each per-constituent output of the
//     group (classes and vertices int8, -1 where invalid; regression values
//     float32, 0 where invalid) and, for class outputs, the probabilities it
//     was decided from (<output>_prob<k>);
//   - <group>_pairs [N, T·T] for a group with vertex outputs: the pair
//     probabilities each was grouped from (<output>_pair_prob, row-major
//     [T, T] per jet) and valid.

// probField names the probability of class k behind a class output.
func probField(output string, k int) string { return output + "_prob" + strconv.Itoa(k) }

// pairField names the pair probabilities behind a vertex output.
func pairField(output string) string { return output + "_pair_prob" }

// countField names a group's constituent count in the jets dataset:
// n_<group>, or, where a jet variable has that name (n_tracks is one of
// ATLAS's jet variables), n_<group>_valid.
func countField(group string, jetVars []string) string {
	name := "n_" + group
	for slices.Contains(jetVars, name) {
		name += "_valid"
	}
	return name
}

// pairsDataset names a group's pair dataset.
func pairsDataset(group string) string { return group + "_pairs" }

// vectorLayout says which outputs live where in a vector file.
type vectorLayout struct {
	outputs []model.DeployOutput
	classes map[string]int // classes behind each constituent class output
}

// jetOutputs returns the jet-level outputs.
func (l vectorLayout) jetOutputs() []model.DeployOutput {
	var outs []model.DeployOutput
	for _, o := range l.outputs {
		if !o.PerConstituent() {
			outs = append(outs, o)
		}
	}
	return outs
}

// groupOutputs returns the per-constituent outputs of a group, and its
// vertex outputs.
func (l vectorLayout) groupOutputs(group string) (all, vertex []model.DeployOutput) {
	for _, o := range l.outputs {
		if o.PerConstituent() && o.Group == group {
			all = append(all, o)
			if o.Kind == model.VertexIndex {
				vertex = append(vertex, o)
			}
		}
	}
	return all, vertex
}

// layoutOf reads the vector layout from a model's metadata.
func layoutOf(m *Metadata) (vectorLayout, error) {
	l := vectorLayout{classes: map[string]int{}}
	groups := map[string]bool{}
	for _, in := range m.Inputs[1:] {
		groups[in.Group] = true
	}
	for _, o := range m.ValidationOutputs {
		d := o.deployOutput()
		switch {
		case d.Kind == model.ClassProbability || d.Kind == model.RegressionValue || d.Kind == model.RegressionStddev || d.Kind == model.ObjectLeading:
			if o.Type != "float32" {
				return l, fmt.Errorf("deploy: output %s: %s of type %s, want float32", o.Name, o.Kind, o.Type)
			}
		case d.PerConstituent():
			want := "float32"
			if d.Int8() {
				want = "int8"
			}
			if o.Type != want {
				return l, fmt.Errorf("deploy: output %s: %s of type %s, want %s", o.Name, o.Kind, o.Type, want)
			}
			if !groups[o.Group] {
				return l, fmt.Errorf("deploy: output %s: the metadata has no constituent input of group %q", o.Name, o.Group)
			}
			if d.Kind == model.ConstituentClass {
				cs, ok := m.Classes[o.Task]
				if !ok {
					return l, fmt.Errorf("deploy: output %s: no classes recorded for task %s", o.Name, o.Task)
				}
				l.classes[o.Name] = len(cs)
			}
		default:
			return l, fmt.Errorf("deploy: output %s has unknown kind %q", o.Name, o.Kind)
		}
		l.outputs = append(l.outputs, d)
	}
	return l, nil
}

// writeVectors writes v as a validation-vector file.
func writeVectors(path string, v *Vectors, l vectorLayout) error {
	w, err := loader.Create(path)
	if err != nil {
		return err
	}
	defer w.Close()

	var jf []loader.Field
	for _, name := range v.JetVars {
		jf = append(jf, loader.Field{Name: name, Type: loader.Float32})
	}
	for _, g := range v.Groups {
		jf = append(jf, loader.Field{Name: countField(g.Name, v.JetVars), Type: loader.Int32})
	}
	jetOuts := l.jetOutputs()
	for _, o := range jetOuts {
		jf = append(jf, loader.Field{Name: o.Name, Type: loader.Float32})
	}
	if err := writeTable(w, "jets", []int{v.Jets}, jf, func(row int, set func(string, float64)) {
		for k, name := range v.JetVars {
			set(name, float64(v.JetRaw[row*len(v.JetVars)+k]))
		}
		for _, g := range v.Groups {
			set(countField(g.Name, v.JetVars), float64(g.N[row]))
		}
		for _, o := range jetOuts {
			set(o.Name, float64(v.Expected[o.Name][row]))
		}
	}); err != nil {
		return err
	}

	for gi := range v.Groups {
		g := &v.Groups[gi]
		t, nv := g.MaxLen, len(g.Vars)
		outs, vertex := l.groupOutputs(g.Name)
		var sf []loader.Field
		for _, name := range g.Vars {
			sf = append(sf, loader.Field{Name: name, Type: loader.Float32})
		}
		sf = append(sf, loader.Field{Name: "valid", Type: loader.Bool})
		for _, o := range outs {
			ft := loader.Float32
			if o.Int8() {
				ft = loader.Int8
			}
			sf = append(sf, loader.Field{Name: o.Name, Type: ft})
			for k := 0; k < l.classes[o.Name]; k++ {
				sf = append(sf, loader.Field{Name: probField(o.Name, k), Type: loader.Float32})
			}
		}
		if err := writeTable(w, g.Name, []int{v.Jets, t}, sf, func(row int, set func(string, float64)) {
			for k, name := range g.Vars {
				set(name, float64(g.Raw[row*nv+k]))
			}
			set("valid", b2f(row%t < g.N[row/t]))
			for _, o := range outs {
				set(o.Name, float64(v.Expected[o.Name][row]))
				c := l.classes[o.Name]
				for k := 0; k < c; k++ {
					set(probField(o.Name, k), float64(v.Probs[o.Name][row*c+k]))
				}
			}
		}); err != nil {
			return err
		}
		if len(vertex) == 0 {
			continue
		}
		pf := []loader.Field{{Name: "valid", Type: loader.Bool}}
		for _, o := range vertex {
			pf = append(pf, loader.Field{Name: pairField(o.Name), Type: loader.Float32})
		}
		if err := writeTable(w, pairsDataset(g.Name), []int{v.Jets, t * t}, pf, func(row int, set func(string, float64)) {
			j, ij := row/(t*t), row%(t*t)
			set("valid", b2f(ij/t < g.N[j] && ij%t < g.N[j]))
			for _, o := range vertex {
				set(pairField(o.Name), float64(v.Pairs[o.Name][row]))
			}
		}); err != nil {
			return err
		}
	}
	return w.Close()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// writeTable writes a compound table whose rows fill sets by field name.
func writeTable(w *loader.Writer, name string, dims []int, fields []loader.Field, row func(int, func(string, float64))) error {
	layout, err := loader.NewRowLayout(fields...)
	if err != nil {
		return err
	}
	tab, err := w.CreateTable(name, layout, dims, loader.TableOptions{})
	if err != nil {
		return err
	}
	rows := 1
	for _, d := range dims {
		rows *= d
	}
	buf := make([]byte, rows*layout.Size)
	for r := 0; r < rows; r++ {
		b := buf[r*layout.Size:]
		row(r, func(field string, v float64) { layout.Put(b, layout.Index(field), v) })
	}
	if err := tab.WriteRows(0, buf); err != nil {
		return err
	}
	return tab.Close()
}

// readVectors reads a validation-vector file written for the model that
// m describes.
func readVectors(path string, m *Metadata, l vectorLayout) (*Vectors, error) {
	n := m.ValidationJets
	v := &Vectors{Jets: n, Expected: map[string][]float32{}, Probs: map[string][]float32{}, Pairs: map[string][]float32{}}
	for _, vr := range m.Inputs[0].Variables {
		v.JetVars = append(v.JetVars, vr.Name)
	}
	jetVars := []string{}
	for _, g := range m.Inputs[1:] {
		gv := GroupVectors{Name: g.Group, Input: g.Name}
		for _, vr := range g.Variables {
			gv.Vars = append(gv.Vars, vr.Name)
		}
		v.Groups = append(v.Groups, gv)
		jetVars = append(jetVars, countField(g.Group, v.JetVars))
	}
	jetOuts := l.jetOutputs()
	for _, o := range jetOuts {
		jetVars = append(jetVars, o.Name)
	}
	groups := []loader.Group{{Name: "jets", Dataset: "jets", Variables: v.JetVars}}
	if len(jetVars) > 0 {
		groups = append(groups, loader.Group{Name: "jet_outputs", Dataset: "jets", Variables: jetVars})
	}
	for _, g := range v.Groups {
		groups = append(groups, loader.Group{Name: g.Name, Dataset: g.Name, Variables: g.Vars})
		var fields []string
		outs, vertex := l.groupOutputs(g.Name)
		for _, o := range outs {
			fields = append(fields, o.Name)
			for k := 0; k < l.classes[o.Name]; k++ {
				fields = append(fields, probField(o.Name, k))
			}
		}
		if len(fields) > 0 {
			groups = append(groups, loader.Group{Name: g.Name + "/outputs", Dataset: g.Name, Variables: fields})
		}
		fields = nil
		for _, o := range vertex {
			fields = append(fields, pairField(o.Name))
		}
		if len(fields) > 0 {
			groups = append(groups, loader.Group{Name: pairsDataset(g.Name), Dataset: pairsDataset(g.Name), Variables: fields})
		}
	}
	ds, err := loader.Open(loader.Config{Files: []string{path}, Groups: groups, BatchSize: max(n, 1)})
	if err != nil {
		return nil, fmt.Errorf("deploy: validation vectors: %w", err)
	}
	defer ds.Close()
	if ds.Len() != n {
		return nil, fmt.Errorf("deploy: %s holds %d jets, the model's metadata says %d", path, ds.Len(), n)
	}
	ch, errc := ds.Batches(context.Background(), 0, 0)
	b, ok := <-ch
	for range ch {
	}
	if err := <-errc; err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("deploy: %s holds no jets", path)
	}
	// columns splits a group's interleaved fields into one slice each.
	columns := func(group string, names []string) {
		data := b.Inputs[group].Data
		per := len(names)
		for k, f := range names {
			col := make([]float32, len(data)/per)
			for i := range col {
				col[i] = data[i*per+k]
			}
			v.Expected[f] = col
		}
	}
	v.JetRaw = b.Inputs["jets"].Data
	if len(jetVars) > 0 {
		columns("jet_outputs", jetVars)
	}
	for gi := range v.Groups {
		g := &v.Groups[gi]
		g.MaxLen = ds.Shape(g.Name)[1]
		g.Raw = b.Inputs[g.Name].Data
		g.N = make([]int, n)
		for j, c := range v.Expected[countField(g.Name, v.JetVars)] {
			g.N[j] = int(c)
		}
		valid := b.Inputs[g.Name].Valid
		for j := 0; j < n; j++ {
			for i := 0; i < g.MaxLen; i++ {
				if valid[j*g.MaxLen+i] != (i < g.N[j]) {
					return nil, fmt.Errorf("deploy: %s: jet %d of %s: %s says %d valid constituents first, valid disagrees at slot %d", path, j, g.Name, countField(g.Name, v.JetVars), g.N[j], i)
				}
			}
		}
		outs, vertex := l.groupOutputs(g.Name)
		var fields []string
		for _, o := range outs {
			fields = append(fields, o.Name)
			for k := 0; k < l.classes[o.Name]; k++ {
				fields = append(fields, probField(o.Name, k))
			}
		}
		if len(fields) > 0 {
			columns(g.Name+"/outputs", fields)
		}
		for _, o := range outs {
			c := l.classes[o.Name]
			if c == 0 {
				continue
			}
			probs := make([]float32, n*g.MaxLen*c)
			for k := 0; k < c; k++ {
				col := v.Expected[probField(o.Name, k)]
				for i, p := range col {
					probs[i*c+k] = p
				}
				delete(v.Expected, probField(o.Name, k))
			}
			v.Probs[o.Name] = probs
		}
		fields = nil
		for _, o := range vertex {
			fields = append(fields, pairField(o.Name))
		}
		if len(fields) > 0 {
			columns(pairsDataset(g.Name), fields)
			for _, o := range vertex {
				v.Pairs[o.Name] = v.Expected[pairField(o.Name)]
				delete(v.Expected, pairField(o.Name))
			}
		}
		delete(v.Expected, countField(g.Name, v.JetVars))
	}
	return v, nil
}

// removeAll removes files, ignoring those that do not exist.
func removeAll(paths ...string) {
	for _, p := range paths {
		if p != "" {
			os.Remove(p)
		}
	}
}

// tempPath is where a file bound for path is written before it is
// renamed into place.
func tempPath(path string) string {
	return filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
}
