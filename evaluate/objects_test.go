package evaluate

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/graph/graphtest"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/metrics"
	"github.com/salt-ort/salt-ort/train"
)

// maskFormer is a MaskFormer run (examples/maskformer.toml, one short
// epoch) shared by the tests of its outputs.
var maskFormer struct {
	once      sync.Once
	data, run string
	err       error
}

// maskFormerRun trains examples/maskformer.toml for one epoch on 400
// generated jets with truth hadrons, on first use.
func maskFormerRun(t testing.TB) (runDir, dataDir string) {
	t.Helper()
	maskFormer.once.Do(func() {
		maskFormer.data = datasets.Get(t, gendata.Config{Seed: 13, Train: 400, Val: 100, Test: 150, TruthHadrons: 5})
		text, err := os.ReadFile("../examples/maskformer.toml")
		if maskFormer.err = err; err != nil {
			return
		}
		path := filepath.Join(maskFormer.data, "maskformer.toml")
		if maskFormer.err = os.WriteFile(path, []byte(strings.ReplaceAll(string(text), "../data/maskformer", maskFormer.data)), 0o644); maskFormer.err != nil {
			return
		}
		var c *config.Config
		if c, maskFormer.err = config.Load(path); maskFormer.err != nil {
			return
		}
		c.Training.Epochs, c.Data.BatchSize = 1, 50
		maskFormer.run = filepath.Join(maskFormer.data, "run")
		_, maskFormer.err = train.Run(context.Background(), train.Options{Config: c, RunDir: maskFormer.run, Runtime: graphtest.OpenRuntime(t)})
	})
	if maskFormer.err != nil {
		t.Fatal(maskFormer.err)
	}
	return maskFormer.run, maskFormer.data
}

// readRows reads fields of dataset name of an HDF5 file as float64:
// [field][row], rows running over jets (and entries per jet for a 2-D
// dataset).
func readRows(t *testing.T, path, name string, fields ...string) [][]float64 {
	t.Helper()
	in, err := loader.OpenFieldTable(path, name)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var lf []loader.Field
	for _, f := range fields {
		ft, err := in.Type(f)
		if err != nil {
			t.Fatalf("%s: dataset %s: %v", path, name, err)
		}
		lf = append(lf, loader.Field{Name: f, Type: ft})
	}
	l, err := loader.NewRowLayout(lf...)
	if err != nil {
		t.Fatal(err)
	}
	width := in.Width()
	r, err := in.NewFieldReader(l, seq(0, len(fields)), width)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, in.Rows()*width*l.Size)
	if err := r.Read(0, in.Rows(), buf); err != nil {
		t.Fatal(err)
	}
	out := make([][]float64, len(fields))
	for row := range in.Rows() * width {
		for i := range fields {
			out[i] = append(out[i], l.Get(buf[row*l.Size:], i))
		}
	}
	return out
}

// TestEvalWritesObjects evaluates a MaskFormer run and checks what Salt's
// prediction writer writes of the objects: each object's class
// probabilities and each truth slot's class in "objects", each track's
// object in the tracks; and the summary's MaskFormer metrics, which on
// the validation file equal the run's own validation.
func TestEvalWritesObjects(t *testing.T) {
	run, data := maskFormerRun(t)
	rt := graphtest.OpenRuntime(t)
	const nobj = 5
	for _, file := range []string{"test.h5", "val.h5"} {
		src := filepath.Join(data, file)
		rep, err := Run(context.Background(), Options{RunDir: run, Files: []string{src}, OutDir: t.TempDir(), FC: DefaultFC, Runtime: rt, Threads: 2, NoPlots: true})
		if err != nil {
			t.Fatal(err)
		}
		pred := rep.Files[0].Predictions
		obj := readRows(t, pred, ObjectsDataset, "MaskFormer_pb", "MaskFormer_pc", "MaskFormer_pnull", ObjectClassTargetField)
		truth := readRows(t, src, "truth_hadrons", "flavour")[0]
		if len(obj[0]) != len(truth) || len(truth)%nobj != 0 {
			t.Fatalf("%s: %d object rows, %d truth slots", file, len(obj[0]), len(truth))
		}
		for j := 0; j < len(truth)/nobj; j++ {
			// The truth classes: b (5) → 0, c (4) → 1, the valid ones
			// first; the rest null (2).
			var want []float64
			for _, f := range truth[j*nobj : (j+1)*nobj] {
				switch f {
				case 5:
					want = append(want, 0)
				case 4:
					want = append(want, 1)
				}
			}
			for len(want) < nobj {
				want = append(want, 2)
			}
			for s := range nobj {
				r := j*nobj + s
				if got := obj[3][r]; got != want[s] {
					t.Fatalf("%s: jet %d slot %d: class_label %g, want %g", file, j, s, got, want[s])
				}
				if sum := obj[0][r] + obj[1][r] + obj[2][r]; math.Abs(sum-1) > 1e-5 {
					t.Fatalf("%s: jet %d object %d: class probabilities sum to %g", file, j, s, sum)
				}
			}
		}
		tracks := readRows(t, pred, "tracks", "MaskFormer_MaskIndex", ValidField)
		assigned := 0
		for i, idx := range tracks[0] {
			valid := tracks[1][i] != 0
			switch {
			case !valid && idx != MaskIndexPadding:
				t.Fatalf("%s: padding track %d has object %g, want %d", file, i, idx, MaskIndexPadding)
			case valid && (idx < MaskIndexNone || idx == MaskIndexPadding || idx >= nobj):
				t.Fatalf("%s: track %d has object %g", file, i, idx)
			case valid && idx >= 0:
				assigned++
			}
		}
		if assigned == 0 {
			t.Errorf("%s: no track is assigned to an object", file)
		}
		s := rep.Files[0].Summary
		if s.Objects == nil {
			t.Fatalf("%s: the summary has no objects", file)
		}
		if file == "val.h5" {
			checkAgainstValidation(t, run, s.Objects)
		}
	}
}

// checkAgainstValidation compares the metrics of an evaluation of the
// validation file with the run's last validation (train.ValMetrics).
func checkAgainstValidation(t *testing.T, run string, o *ObjectPerformance) {
	t.Helper()
	f, err := os.Open(filepath.Join(run, train.ValMetrics))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	head, last := rows[0], rows[len(rows)-1]
	for _, name := range metrics.ObjectMetricNames {
		col := -1
		for i, h := range head {
			if h == "val_objects/"+name {
				col = i
			}
		}
		if col < 0 {
			t.Fatalf("val.csv has no column val_objects/%s", name)
		}
		want, err := strconv.ParseFloat(last[col], 64)
		if err != nil {
			t.Fatal(err)
		}
		got := float64(o.Metrics[name])
		if math.IsNaN(want) != math.IsNaN(got) || math.Abs(got-want) > 1e-7 {
			t.Errorf("%s: eval %g, validation %g", name, got, want)
		}
	}
}

// TestMaskIndex checks each track's object from the mask logits.
func TestMaskIndex(t *testing.T) {
	// Three objects over four tracks.
	logits := []float32{
		2, -1, 0.5, -3,
		-2, 3, 1.5, -1,
		-1, -2, 0.7, -0.1,
	}
	tests := []struct {
		track int
		valid bool
		want  int
	}{
		{0, true, 0},             // object 0 only
		{1, true, 1},             // object 1 only
		{2, true, 1},             // three objects claim it: the largest logit
		{3, true, MaskIndexNone}, // none above ½
		{0, false, MaskIndexPadding},
	}
	for _, tt := range tests {
		if got := maskIndex(logits, 3, 4, tt.track, tt.valid); got != tt.want {
			t.Errorf("track %d (valid %v): object %d, want %d", tt.track, tt.valid, got, tt.want)
		}
	}
}
