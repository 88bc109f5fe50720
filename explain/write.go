package explain

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/internal/atomicfile"
	"github.com/salt-ort/salt-ort/loader"
)

// Output files in the output directory, for a test file with stem S:
// S__attributions.h5 (Salt's writer names its file
// <checkpoint>__attributions_<sample>.h5), S_explain.json, and RankingFile,
// which export reads into the model card.
const RankingFile = "ranking.json"

// write writes the HDF5 file, the JSON summary, the ranking and the plots.
func write(r *Report, o Options, file string) (*Report, error) {
	dir := o.OutDir
	if dir == "" {
		dir = filepath.Join(o.RunDir, "explain")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	stem := strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	h5 := filepath.Join(dir, stem+"__attributions.h5")
	if err := r.writeH5(h5); err != nil {
		return nil, err
	}
	r.Written = append(r.Written, h5)
	text, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("explain: %w", err)
	}
	for _, p := range []string{filepath.Join(dir, stem+"_explain.json"), filepath.Join(dir, RankingFile)} {
		if err := atomicfile.Write(p, append(text, '\n')); err != nil {
			return nil, fmt.Errorf("explain: %w", err)
		}
		r.Written = append(r.Written, p)
	}
	if !o.NoPlots {
		plots, err := r.plot(dir, stem)
		if err != nil {
			return nil, err
		}
		r.Written = append(r.Written, plots...)
	}
	return r, nil
}

// ReadRanking reads the summary explain wrote into dir (a run's explain
// directory): ok is false where there is none.
func ReadRanking(dir string) (r *Report, ok bool, err error) {
	text, err := os.ReadFile(filepath.Join(dir, RankingFile))
	if os.IsNotExist(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("explain: %w", err)
	}
	r = &Report{}
	if err := json.Unmarshal(text, r); err != nil {
		return nil, false, fmt.Errorf("explain: %s: %w (rerun salt-ort explain)", filepath.Join(dir, RankingFile), err)
	}
	return r, true, nil
}

// table is one compound dataset to write: its fields and a function
// filling row i (of rows×per entries) through put(field, value).
type table struct {
	name   string
	fields []loader.Field
	rows   int
	per    int  // entries per row: the constituents; 1 for jets
	twoD   bool // jets × constituents
	fill   func(i int, put func(f int, v float64))
	attrs  map[string][]string
}

// writeH5 writes the per-jet file in the layout of Salt's
// IntegratedGradientWriter: the predictions and inputs of the jets read,
// the baselines with their entropies, and per output the attributions of
// every attributed jet; HDF5 groups hold the datasets (Salt's: preds,
// inputs, baselines, attributions). Salt's plain arrays become compound
// datasets whose fields are the input variables.
func (r *Report) writeH5(path string) error {
	var ts []table
	// preds: the outputs of every jet read, its label and size.
	predFields := []loader.Field{{Name: "label", Type: loader.Int32}, {Name: "n_constituents", Type: loader.Int32}}
	for _, o := range r.Outputs {
		predFields = append(predFields, loader.Field{Name: strings.ReplaceAll(o, "/", "_"), Type: loader.Float32})
	}
	ts = append(ts, table{name: "preds", fields: predFields, rows: r.js.N, per: 1, fill: func(j int, put func(int, float64)) {
		put(0, float64(r.labels[j]))
		put(1, float64(r.sizes[j]))
		for k, p := range r.preds[j] {
			put(2+k, p)
		}
	}, attrs: map[string][]string{"outputs": r.Outputs, "classes": r.classes}})
	all := make([]int, r.js.N)
	for j := range all {
		all[j] = j
	}
	ts = append(ts, r.inputTables("inputs", all)...)
	// baselines: their inputs and entropies.
	var bjets []int
	for _, s := range sortedKeys(r.baselines.BySize) {
		bjets = append(bjets, r.baselines.BySize[s]...)
	}
	ts = append(ts, r.inputTables("baselines", bjets)...)
	ts = append(ts, table{name: "baselines/baseline_entropies", rows: len(bjets), per: 1,
		fields: []loader.Field{{Name: "jet_index", Type: loader.Int64}, {Name: "n_constituents", Type: loader.Int32}, {Name: "entropy", Type: loader.Float32}},
		fill: func(i int, put func(int, float64)) {
			j := bjets[i]
			put(0, float64(j))
			put(1, float64(r.sizes[j]))
			put(2, r.baselines.Entropies[j])
		}})
	// attributions: the completeness check, then per output and input.
	deltaFields := []loader.Field{{Name: "jet_index", Type: loader.Int64}, {Name: "label", Type: loader.Int32}, {Name: "n_constituents", Type: loader.Int32}}
	for _, o := range r.Outputs {
		n := strings.ReplaceAll(o, "/", "_")
		deltaFields = append(deltaFields, loader.Field{Name: n + "_output", Type: loader.Float32},
			loader.Field{Name: n + "_baseline_output", Type: loader.Float32}, loader.Field{Name: n + "_delta", Type: loader.Float32})
	}
	ts = append(ts, table{name: "attributions/completeness", fields: deltaFields, rows: len(r.jets), per: 1, fill: func(i int, put func(int, float64)) {
		j := r.jets[i]
		put(0, float64(j))
		put(1, float64(r.labels[j]))
		put(2, float64(r.sizes[j]))
		for k := range r.Outputs {
			put(3+3*k, r.preds[j][k])
			put(4+3*k, r.baseOut[i][k])
			put(5+3*k, r.delta[i][k])
		}
	}, attrs: map[string][]string{"tolerance": {fmt.Sprint(r.Tolerance)}}})
	for k, o := range r.Outputs {
		for gi, g := range r.Groups {
			ts = append(ts, table{name: "attributions/" + o + "/" + g.Name, fields: floatFields(g.Vars), rows: len(r.jets), per: max(g.MaxLen, 1), twoD: g.MaxLen > 0,
				fill: func(i int, put func(int, float64)) {
					for v, x := range r.attr[i/max(g.MaxLen, 1)][k][gi][(i%max(g.MaxLen, 1))*len(g.Vars):][:len(g.Vars)] {
						put(v, x)
					}
				}})
		}
	}
	return writeTables(path, ts)
}

// inputTables are the normalised inputs of jets, under group prefix.
func (r *Report) inputTables(prefix string, jets []int) []table {
	var ts []table
	for _, g := range r.Groups {
		fields := floatFields(g.Vars)
		per := max(g.MaxLen, 1)
		nv := len(g.Vars)
		valid := r.js.Bool[model.ValidInput(g.Name)]
		if g.MaxLen > 0 {
			fields = append(fields, loader.Field{Name: "valid", Type: loader.Bool})
		}
		ts = append(ts, table{name: prefix + "/" + g.Name, fields: fields, rows: len(jets), per: per, twoD: g.MaxLen > 0, fill: func(i int, put func(int, float64)) {
			j, t := jets[i/per], i%per
			for v, x := range r.js.Float[g.Name][(j*per+t)*nv:][:nv] {
				put(v, float64(x))
			}
			if g.MaxLen > 0 && valid[j*per+t] {
				put(nv, 1)
			}
		}})
	}
	return ts
}

func floatFields(names []string) []loader.Field {
	fs := make([]loader.Field, len(names))
	for i, n := range names {
		fs[i] = loader.Field{Name: n, Type: loader.Float32}
	}
	return fs
}

func sortedKeys(m map[int][]int) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	sort.Ints(ks)
	return ks
}

// writeTables writes the tables into a new HDF5 file at path, through a
// temporary file renamed on success.
func writeTables(path string, ts []table) (err error) {
	tmp := path + ".tmp"
	w, err := loader.Create(tmp)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp, path)
		}
		if err != nil {
			os.Remove(tmp)
		}
	}()
	for _, t := range ts {
		layout, err := loader.NewRowLayout(t.fields...)
		if err != nil {
			return fmt.Errorf("explain: %s: dataset %s: %w", path, t.name, err)
		}
		dims := []int{t.rows}
		if t.twoD {
			dims = append(dims, t.per)
		}
		tab, err := w.CreateTable(t.name, layout, dims, loader.TableOptions{ChunkRows: min(max(t.rows, 1), 1024), Deflate: 4})
		if err != nil {
			return err
		}
		for name, vals := range t.attrs {
			if len(vals) > 0 {
				if err := tab.SetStringsAttr(name, vals); err != nil {
					return err
				}
			}
		}
		buf := make([]byte, t.rows*t.per*layout.Size)
		for i := range t.rows * t.per {
			row := buf[i*layout.Size : (i+1)*layout.Size]
			t.fill(i, func(f int, v float64) { layout.Put(row, f, v) })
		}
		if err := tab.WriteRows(0, buf); err != nil {
			return err
		}
	}
	return nil
}
