package deploy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/salt-ort/salt-ort/loader"
)

// The validation-vector file is HDF5 in Salt's layout, readable with h5py:
//   - jets [N]: the raw jet variables, n_<group> (int32), and each
//     jet-level output the model must reproduce (float32, named as the
//     output);
//   - <group> [N, T]: the raw constituent variables, valid, each
//     constituent-level output (int8, -1 where invalid) and, for class
//     outputs, the probabilities it was decided from (<output>_prob<k>);
//   - pairs [N, T·T]: for a vertex output, the pair probabilities it was
//     grouped from (<output>_pair_prob, row-major [T, T] per jet) and valid.

// seqField names the probability of class k behind a class output.
func probField(output string, k int) string { return output + "_prob" + strconv.Itoa(k) }

// pairField names the pair probabilities behind a vertex output.
func pairField(output string) string { return output + "_pair_prob" }

// vectorLayout says which outputs live where in a vector file.
type vectorLayout struct {
	group      string
	jetOutputs []string       // float32 per jet
	seqOutputs []string       // int8 per constituent
	classes    map[string]int // classes behind each constituent class output
	vertex     string         // the vertex output ("" if none)
}

func layoutOf(m *Metadata) (vectorLayout, error) {
	l := vectorLayout{classes: map[string]int{}}
	if len(m.Inputs) == 2 {
		l.group = m.Inputs[1].Group // the jet input comes first
	}
	for _, o := range m.ValidationOutputs {
		switch {
		case o.Type == "float32":
			l.jetOutputs = append(l.jetOutputs, o.Name)
		case o.Type == "int8" && o.Meaning == vertexMeaning:
			l.vertex = o.Name
			l.seqOutputs = append(l.seqOutputs, o.Name)
		case o.Type == "int8":
			l.seqOutputs = append(l.seqOutputs, o.Name)
			task := ""
			for t, cs := range m.Classes {
				if classOutputMeaning(t) == o.Meaning {
					task = t
					l.classes[o.Name] = len(cs)
				}
			}
			if task == "" {
				return l, fmt.Errorf("deploy: output %s: no classes recorded", o.Name)
			}
		default:
			return l, fmt.Errorf("deploy: output %s has unsupported type %s", o.Name, o.Type)
		}
	}
	if l.group == "" {
		return l, fmt.Errorf("deploy: the metadata names no constituent input")
	}
	return l, nil
}

// writeVectors writes v as a validation-vector file (atomically).
func writeVectors(path string, v *Vectors, l vectorLayout) error {
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err := writeVectorsTo(tmp, v, l); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("deploy: %w", err)
	}
	return nil
}

func writeVectorsTo(path string, v *Vectors, l vectorLayout) error {
	n, t := v.Jets, v.MaxLen
	w, err := loader.Create(path)
	if err != nil {
		return err
	}
	defer w.Close()

	var jf []loader.Field
	for _, name := range v.JetVars {
		jf = append(jf, loader.Field{Name: name, Type: loader.Float32})
	}
	jf = append(jf, loader.Field{Name: "n_" + l.group, Type: loader.Int32})
	for _, o := range l.jetOutputs {
		jf = append(jf, loader.Field{Name: o, Type: loader.Float32})
	}
	if err := writeTable(w, "jets", []int{n}, jf, func(row int, set func(string, float64)) {
		for k, name := range v.JetVars {
			set(name, float64(v.JetRaw[row*len(v.JetVars)+k]))
		}
		set("n_"+l.group, float64(v.NTracks[row]))
		for _, o := range l.jetOutputs {
			set(o, float64(v.Expected[o][row]))
		}
	}); err != nil {
		return err
	}

	var sf []loader.Field
	for _, name := range v.SeqVars {
		sf = append(sf, loader.Field{Name: name, Type: loader.Float32})
	}
	sf = append(sf, loader.Field{Name: "valid", Type: loader.Bool})
	for _, o := range l.seqOutputs {
		sf = append(sf, loader.Field{Name: o, Type: loader.Int8})
		for k := 0; k < l.classes[o]; k++ {
			sf = append(sf, loader.Field{Name: probField(o, k), Type: loader.Float32})
		}
	}
	nv := len(v.SeqVars)
	if err := writeTable(w, l.group, []int{n, t}, sf, func(row int, set func(string, float64)) {
		for k, name := range v.SeqVars {
			set(name, float64(v.SeqRaw[row*nv+k]))
		}
		valid := v.Valid[row]
		set("valid", b2f(valid))
		for _, o := range l.seqOutputs {
			set(o, float64(v.Expected[o][row]))
			c := l.classes[o]
			for k := 0; k < c; k++ {
				set(probField(o, k), float64(v.Expected[o+"/probs"][row*c+k]))
			}
		}
	}); err != nil {
		return err
	}

	if l.vertex != "" {
		pf := []loader.Field{{Name: pairField(l.vertex), Type: loader.Float32}, {Name: "valid", Type: loader.Bool}}
		pairs := v.Expected[l.vertex+"/pair_probs"]
		if err := writeTable(w, "pairs", []int{n, t * t}, pf, func(row int, set func(string, float64)) {
			j, ij := row/(t*t), row%(t*t)
			set(pairField(l.vertex), float64(pairs[row]))
			set("valid", b2f(ij/t < v.NTracks[j] && ij%t < v.NTracks[j]))
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
	var jetVars, seqVars []string
	for i, in := range m.Inputs { // the jet input comes first
		for _, v := range in.Variables {
			if i == 0 {
				jetVars = append(jetVars, v.Name)
			} else {
				seqVars = append(seqVars, v.Name)
			}
		}
	}
	n := m.ValidationJets
	expSeq := []string{}
	for _, o := range l.seqOutputs {
		expSeq = append(expSeq, o)
		for k := 0; k < l.classes[o]; k++ {
			expSeq = append(expSeq, probField(o, k))
		}
	}
	groups := []loader.Group{
		{Name: "jets", Dataset: "jets", Variables: jetVars},
		{Name: "jet_outputs", Dataset: "jets", Variables: append([]string{"n_" + l.group}, l.jetOutputs...)},
		{Name: "seq", Dataset: l.group, Variables: seqVars},
		{Name: "seq_outputs", Dataset: l.group, Variables: expSeq},
	}
	if l.vertex != "" {
		groups = append(groups, loader.Group{Name: "pairs", Dataset: "pairs", Variables: []string{pairField(l.vertex)}})
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
	t := ds.Shape("seq")[1]
	v := &Vectors{Jets: n, MaxLen: t, JetVars: jetVars, SeqVars: seqVars,
		JetRaw: b.Inputs["jets"].Data, SeqRaw: b.Inputs["seq"].Data, Valid: b.Inputs["seq"].Valid,
		NTracks: make([]int, n), Expected: map[string][]float32{}}
	jo := b.Inputs["jet_outputs"].Data
	per := 1 + len(l.jetOutputs)
	for j := 0; j < n; j++ {
		v.NTracks[j] = int(jo[j*per])
	}
	for k, o := range l.jetOutputs {
		out := make([]float32, n)
		for j := range out {
			out[j] = jo[j*per+1+k]
		}
		v.Expected[o] = out
	}
	so := b.Inputs["seq_outputs"].Data
	per = len(expSeq)
	for k, f := range expSeq {
		out := make([]float32, n*t)
		for i := range out {
			out[i] = so[i*per+k]
		}
		v.Expected[f] = out
	}
	if l.vertex != "" {
		v.Expected[pairField(l.vertex)] = b.Inputs["pairs"].Data
	}
	return v, nil
}
