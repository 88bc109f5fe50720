package gendata

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/flavour"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/metrics"
)

// TestGenerateDeterministic checks that one seed gives byte-identical
// files (HDF5 object time tracking is off) and another seed does not.
func TestGenerateDeterministic(t *testing.T) {
	cfg := Config{Seed: 11, Train: 400, Val: 50, Test: 0}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	for i, d := range dirs {
		c := cfg
		if i == 1 {
			// HDF5 timestamps have one-second resolution: without object
			// time tracking off, this copy would differ.
			time.Sleep(1100 * time.Millisecond)
		}
		if i == 2 {
			c.Seed = 12
		}
		if _, err := Generate(c, d); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"train.h5", "val.h5", "test.h5", "norm_dict.yaml", "class_dict.yaml"} {
		a := readAll(t, filepath.Join(dirs[0], name))
		b := readAll(t, filepath.Join(dirs[1], name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
	}
	if bytes.Equal(readAll(t, filepath.Join(dirs[0], "train.h5")), readAll(t, filepath.Join(dirs[2], "train.h5"))) {
		t.Error("seeds 11 and 12 give the same train.h5")
	}
	// The empty test split is a valid, empty Salt file.
	if _, err := loader.Open(loader.Config{Files: []string{filepath.Join(dirs[0], "test.h5")}, Groups: loader.GN2Groups(), BatchSize: 10}); err == nil || !strings.Contains(err.Error(), "no jets") {
		t.Fatalf("empty split: %v", err)
	}
}

func readAll(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGeneratorPhysics reads 20k generated jets through the loader and
// checks that they carry the physics that makes tagging possible.
func TestGeneratorPhysics(t *testing.T) {
	const n = 20000
	dir := t.TempDir()
	res, err := Generate(Config{Seed: 3, Train: n, NoDicts: true}, dir)
	if err != nil {
		t.Fatal(err)
	}
	labels := append(loader.GN2Labels(), loader.Label{Name: "n_tracks", Dataset: "jets", Field: "n_tracks", Kind: loader.IndexLabel},
		loader.Label{Name: "hadron", Dataset: "jets", Field: "HadronConeExclTruthLabelID", Kind: loader.IndexLabel})
	ds, err := loader.Open(loader.Config{Files: []string{res.Train}, Groups: loader.GN2Groups(), Labels: labels, BatchSize: 1000, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	const T, F = 40, 19
	const sd0 = 5 // IP3D_signed_d0_significance
	lead := map[int64][]float64{}
	jets := map[int64]float64{}
	tracks := map[int64]float64{}
	originCount := map[int64]map[int64]float64{}
	for _, b := range collect(t, ds, 0, 0) {
		tr := b.Inputs["tracks"]
		for j := range b.N {
			f := b.Labels["flavour"][j]
			if want := [4]int64{5, 4, 0, 15}[f]; b.Labels["hadron"][j] != want {
				t.Fatalf("flavour %d with HadronConeExclTruthLabelID %d", f, b.Labels["hadron"][j])
			}
			jets[f]++
			score := math.Inf(-1)
			if tr.Valid[j*T] {
				score = float64(tr.Data[j*T*F+sd0])
			}
			lead[f] = append(lead[f], score)
			if originCount[f] == nil {
				originCount[f] = map[int64]float64{}
			}
			nValid := 0
			prev := math.Inf(1)
			vertexOf := map[int64]int64{} // origin → vertex index, for HF decays
			for tt := range T {
				k := j*T + tt
				if !tr.Valid[k] {
					continue
				}
				if tt != nValid {
					t.Fatal("valid tracks are not first")
				}
				nValid++
				s := math.Abs(float64(tr.Data[k*F+sd0]))
				if s > prev {
					t.Fatal("tracks are not sorted by |d0 significance|")
				}
				prev = s
				o, v := b.Labels["origin"][k], b.Labels["vertex"][k]
				originCount[f][o]++
				switch o {
				case OriginPileup, OriginFake:
					if v != -1 {
						t.Fatalf("origin %d track with vertex %d", o, v)
					}
				case OriginPrimary:
					if v != 0 {
						t.Fatalf("primary track with vertex %d", v)
					}
				default:
					if v < 1 {
						t.Fatalf("secondary (origin %d) with vertex %d", o, v)
					}
					if o != OriginOtherSecondary {
						if w, ok := vertexOf[o]; ok && w != v {
							t.Fatalf("origin %d tracks in vertices %d and %d", o, w, v)
						}
						vertexOf[o] = v
					}
				}
				if hits := tr.Data[k*F+10]; hits < 0 || hits > 8 {
					t.Fatalf("%v pixel hits", hits)
				}
			}
			tracks[f] += float64(nValid)
			if int64(nValid) > b.Labels["n_tracks"][j] {
				t.Fatalf("%d valid tracks but n_tracks %d", nValid, b.Labels["n_tracks"][j])
			}
		}
	}
	fracs := DefaultFractions()
	for f, want := range []float64{fracs.B, fracs.C, fracs.Light, fracs.Tau} {
		if got := jets[int64(f)] / n; math.Abs(got-want) > 0.02 {
			t.Errorf("flavour %d fraction %.3f, want %.2f", f, got, want)
		}
	}
	for o := int64(OriginFromB); o <= OriginFromTau; o++ {
		if originCount[FlavourLight][o] > 0 {
			t.Errorf("light jets have %v tracks of origin %d", originCount[FlavourLight][o], o)
		}
	}
	if originCount[FlavourB][OriginFromB] == 0 || originCount[FlavourB][OriginFromBC] == 0 ||
		originCount[FlavourC][OriginFromC] == 0 || originCount[FlavourTau][OriginFromTau] == 0 {
		t.Errorf("heavy-flavour decay tracks missing: %v", originCount)
	}
	aucB := auc(t, lead[FlavourB], lead[FlavourLight])
	aucC := auc(t, lead[FlavourC], lead[FlavourLight])
	aucTau := auc(t, lead[FlavourTau], lead[FlavourLight])
	t.Logf("leading-track d0 significance cut: AUC b/light %.3f, c/light %.3f, tau/light %.3f", aucB, aucC, aucTau)
	t.Logf("mean valid tracks: b %.1f, c %.1f, light %.1f, tau %.1f",
		tracks[0]/jets[0], tracks[1]/jets[1], tracks[2]/jets[2], tracks[3]/jets[3])
	if aucB <= 0.75 {
		t.Errorf("AUC(b vs light) = %.3f, want > 0.75", aucB)
	}
	if aucB > 0.97 {
		t.Errorf("AUC(b vs light) = %.3f: a single cut should not separate this well", aucB)
	}
	for name, a := range map[string]float64{"c": aucC, "tau": aucTau} {
		if a <= 0.55 || a >= aucB {
			t.Errorf("AUC(%s vs light) = %.3f, want between 0.55 and b's %.3f", name, a, aucB)
		}
	}
}

// TestGenerateElectrons checks the optional electrons dataset: it leaves
// the jets and tracks as they are without it, holds valid electrons
// first, and has more, harder, more displaced electrons in b-jets than
// in light jets.
func TestGenerateElectrons(t *testing.T) {
	const n = 6000
	plain, withE := t.TempDir(), t.TempDir()
	if _, err := Generate(Config{Seed: 5, Train: n, NoDicts: true}, plain); err != nil {
		t.Fatal(err)
	}
	res, err := Generate(Config{Seed: 5, Train: n, Electrons: 4}, withE)
	if err != nil {
		t.Fatal(err)
	}
	groups := append(loader.GN2Groups(), loader.Group{Name: "electrons", Dataset: "electrons", Variables: ElectronVariables(), MaxLen: 4})
	labels := []loader.Label{{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: loader.ClassLabel, NumClasses: 4}}
	read := func(file string, groups []loader.Group) []*loader.Batch {
		ds, err := loader.Open(loader.Config{Files: []string{file}, Groups: groups, Labels: labels, BatchSize: n})
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		return collect(t, ds, 0, 0)
	}
	a := read(filepath.Join(plain, "train.h5"), loader.GN2Groups())[0]
	b := read(res.Train, groups)[0]
	for _, g := range []string{"jets", "tracks"} {
		if !slices.Equal(a.Inputs[g].Data, b.Inputs[g].Data) {
			t.Errorf("%s differ once electrons are generated too", g)
		}
	}
	e := b.Inputs["electrons"]
	const nv = 8
	count := map[int64]float64{}
	d0 := map[int64]float64{}
	jets := map[int64]float64{}
	for j := 0; j < n; j++ {
		fl := b.Labels["flavour"][j]
		jets[fl]++
		for i := 0; i < 4; i++ {
			v := e.Valid[j*4+i]
			if i > 0 && v && !e.Valid[j*4+i-1] {
				t.Fatalf("jet %d: a valid electron after padding", j)
			}
			if v {
				count[fl]++
				d0[fl] += math.Abs(float64(e.Data[(j*4+i)*nv+4]))
			}
		}
	}
	nd, err := loader.ReadNormDict(res.NormDict)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := nd["electrons"]["ptfrac"]; !ok {
		t.Error("the norm dictionary has no electrons")
	}
	perJet := func(fl int64) float64 { return count[fl] / jets[fl] }
	t.Logf("electrons per jet: b %.3f c %.3f light %.3f tau %.3f", perJet(FlavourB), perJet(FlavourC), perJet(FlavourLight), perJet(FlavourTau))
	if perJet(FlavourB) < 3*perJet(FlavourLight) || perJet(FlavourC) < 1.5*perJet(FlavourLight) {
		t.Errorf("electrons per jet b %.3f, c %.3f, light %.3f: heavy flavour should have several times more", perJet(FlavourB), perJet(FlavourC), perJet(FlavourLight))
	}
	if d0[FlavourB]/count[FlavourB] < 2*d0[FlavourLight]/count[FlavourLight] {
		t.Errorf("mean |d0 significance| of electrons: b %.2f, light %.2f", d0[FlavourB]/count[FlavourB], d0[FlavourLight]/count[FlavourLight])
	}
}

// TestGenerateFlows checks the optional flows dataset: charged and
// neutral particle-flow objects, hardest first, with consistent
// kinematics, and the jets and tracks unchanged.
func TestGenerateFlows(t *testing.T) {
	const n = 2000
	res, err := Generate(Config{Seed: 5, Train: n, Flows: 30}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds, err := loader.Open(loader.Config{Files: []string{res.Train}, BatchSize: n,
		Groups: []loader.Group{{Name: "flows", Dataset: "flows", Variables: append(FlowVariables(), "isCharged"), MaxLen: 30}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	f := collect(t, ds, 0, 0)[0].Inputs["flows"]
	const nv = 6
	charged, neutral := 0, 0
	for j := 0; j < n; j++ {
		prev := math.Inf(1)
		for i := 0; i < 30 && f.Valid[j*30+i]; i++ {
			v := f.Data[(j*30+i)*nv:]
			pt, e, deta, dphi, dr := float64(v[0]), float64(v[1]), float64(v[2]), float64(v[3]), float64(v[4])
			if pt > prev || e < pt*(1-1e-6) || math.Abs(dr-math.Hypot(deta, dphi)) > 1e-4 {
				t.Fatalf("jet %d flow %d: pt %g (previous %g), energy %g, deta %g dphi %g dr %g", j, i, pt, prev, e, deta, dphi, dr)
			}
			prev = pt
			if v[5] == 1 {
				charged++
			} else {
				neutral++
			}
		}
	}
	if charged == 0 || neutral == 0 || float64(neutral) < 0.3*float64(charged) {
		t.Errorf("%d charged and %d neutral flows", charged, neutral)
	}
}

// TestGenerateTruthAndKinematics checks the truth hadron fields (NaN for
// light jets, read as NaN with KeepNaN and as an error without) and the
// tracks' kinematics (pt above the selection, eta − deta the jet's axis
// for every track).
func TestGenerateTruthAndKinematics(t *testing.T) {
	dir := t.TempDir()
	res, err := Generate(Config{Seed: 5, Train: 600, NoDicts: true}, dir)
	if err != nil {
		t.Fatal(err)
	}
	groups := []loader.Group{{Name: "jets", Variables: []string{"eta"}}, {Name: "tracks", Variables: []string{"pt", "eta", "phi", "deta", "dphi"}, MaxLen: 40}}
	labels := []loader.Label{{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: loader.ClassLabel},
		{Name: "lxy", Dataset: "jets", Field: "HadronConeExclTruthLabelLxy", Kind: loader.FloatLabel, KeepNaN: true},
		{Name: "hpt", Dataset: "jets", Field: "HadronConeExclTruthLabelPt", Kind: loader.FloatLabel, KeepNaN: true}}
	ds, err := loader.Open(loader.Config{Files: []string{res.Train}, Groups: groups, Labels: labels, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	lxy := map[int64][]float64{}
	for _, b := range collect(t, ds, 0, 0) {
		tr := b.Inputs["tracks"]
		for j := range b.N {
			f := b.Labels["flavour"][j]
			x, pt := float64(b.Targets["lxy"][j]), float64(b.Targets["hpt"][j])
			if (f == FlavourLight) != math.IsNaN(x) || (f == FlavourLight) != math.IsNaN(pt) {
				t.Fatalf("flavour %d: truth Lxy %g, pt %g; want NaN for light jets alone", f, x, pt)
			}
			if f != FlavourLight {
				lxy[f] = append(lxy[f], x)
			}
			axis := math.NaN() // eta − deta: the jet axis, the same for every track
			for k := j * 40; k < (j+1)*40; k++ {
				if !tr.Valid[k] {
					continue
				}
				v := tr.Data[k*5 : k*5+5]
				a := float64(v[1] - v[3])
				if math.IsNaN(axis) {
					axis = a
				}
				if v[0] < minTrkPt || math.Abs(a-axis) > 1e-5 || math.Abs(a-float64(b.Inputs["jets"].Data[j])) > 0.1 {
					t.Fatalf("track pt %g, eta %g, deta %g for a jet at eta %g", v[0], v[1], v[3], b.Inputs["jets"].Data[j])
				}
			}
		}
	}
	median := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
	if mb, mc, mt := median(lxy[FlavourB]), median(lxy[FlavourC]), median(lxy[FlavourTau]); !(mb > mc && mb > mt && mc > 0) {
		t.Errorf("median truth Lxy: b %g, c %g, tau %g mm; want b's the longest", mb, mc, mt)
	}
	labels[1].KeepNaN = false
	ds2, err := loader.Open(loader.Config{Files: []string{res.Train}, Groups: groups, Labels: labels, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer ds2.Close()
	batches, errc := ds2.Batches(context.Background(), 0, 0)
	for range batches {
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "HadronConeExclTruthLabelLxy") {
		t.Errorf("NaN targets without KeepNaN: %v, want an error naming the field", err)
	}
}

// collect reads every batch of an epoch.
func collect(t testing.TB, ds *loader.Dataset, epoch, start int) []*loader.Batch {
	t.Helper()
	var out []*loader.Batch
	batches, errc := ds.Batches(context.Background(), epoch, start)
	for b := range batches {
		out = append(out, b)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return out
}

// auc is the area under the ROC curve of sig against bkg scores.
func auc(t *testing.T, sig, bkg []float64) float64 {
	t.Helper()
	scores := append(slices.Clone(sig), bkg...)
	labels := make([]bool, len(scores))
	for i := range sig {
		labels[i] = true
	}
	a, err := metrics.AUC(scores, labels, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestFlavourLabelAttr checks that the jets dataset records the names of
// its flavour_label classes as the ftag preprocessing does, and that each
// name's atlas-ftag-tools definition holds for the jets of its label.
func TestFlavourLabelAttr(t *testing.T) {
	dir := t.TempDir()
	res, err := Generate(Config{Seed: 3, Train: 500, Val: 0, Test: 0, NoDicts: true}, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{res.Train, res.Val} {
		names, err := loader.ReadStringsAttr(path, "jets", "flavour_label")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(names, FlavourNames()) {
			t.Fatalf("%s: flavour_label attribute %q, want %q", path, names, FlavourNames())
		}
	}
	names := FlavourNames()
	labels := []loader.Label{{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: loader.ClassLabel},
		{Name: "truth", Dataset: "jets", Field: "HadronConeExclTruthLabelID", Kind: loader.FloatLabel}}
	ds, err := loader.Open(loader.Config{Files: []string{res.Train}, Groups: []loader.Group{{Name: "jets", Variables: []string{"eta"}}}, Labels: labels, BatchSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	seen := make([]int, len(names))
	for _, b := range collect(t, ds, 0, 0) {
		for j := range b.N {
			f := b.Labels["flavour"][j]
			if f < 0 || int(f) >= len(names) {
				t.Fatalf("flavour_label %d has no name in %q", f, names)
			}
			fl, ok := flavour.Resolve(names[f])
			if !ok {
				t.Fatalf("%q is not an atlas-ftag-tools flavour", names[f])
			}
			id := int64(b.Targets["truth"][j])
			for _, c := range fl.Cuts {
				if c.Field == "HadronConeExclTruthLabelID" && !c.Matches(id) {
					t.Fatalf("a jet with flavour_label %d (%s) has HadronConeExclTruthLabelID %d", f, names[f], id)
				}
			}
			seen[f]++
		}
	}
	for i, n := range seen {
		if n == 0 {
			t.Errorf("no %s jets among 500", names[i])
		}
	}
}

// TestGenerateTruthHadrons checks the optional truth_hadrons dataset that
// Salt's MaskFormer reads: b-jets have their b hadron and the c hadron of
// its decay, c-jets their c hadron, light and tau jets none; the hadrons
// agree with the jets' truth-label pt and Lxy; every track with a parent
// barcode names a hadron of its own jet, and with the origin that hadron
// gives; and the jets and the other track fields are unchanged.
func TestGenerateTruthHadrons(t *testing.T) {
	const n, slots, maxTracks = 3000, 3, 40
	plain, withH := t.TempDir(), t.TempDir()
	if _, err := Generate(Config{Seed: 9, Train: n, NoDicts: true}, plain); err != nil {
		t.Fatal(err)
	}
	res, err := Generate(Config{Seed: 9, Train: n, NoDicts: true, TruthHadrons: slots}, withH)
	if err != nil {
		t.Fatal(err)
	}
	trackVars := append(slices.Clone(loader.GN2TrackVariables()), "ftagTruthOriginLabel")
	hadronVars := []string{"barcode", "flavour", "pt", "Lxy", "deta", "dphi", "dr", "mass"}
	groups := []loader.Group{{Name: "jets", Variables: []string{"eta"}}, {Name: "tracks", Variables: trackVars, MaxLen: maxTracks}}
	labels := []loader.Label{{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: loader.ClassLabel},
		{Name: "lxy", Dataset: "jets", Field: "HadronConeExclTruthLabelLxy", Kind: loader.FloatLabel, KeepNaN: true},
		{Name: "hpt", Dataset: "jets", Field: "HadronConeExclTruthLabelPt", Kind: loader.FloatLabel, KeepNaN: true}}
	read := func(file string, groups []loader.Group) *loader.Batch {
		ds, err := loader.Open(loader.Config{Files: []string{file}, Groups: groups, Labels: labels, BatchSize: n})
		if err != nil {
			t.Fatal(err)
		}
		defer ds.Close()
		return collect(t, ds, 0, 0)[0]
	}
	a := read(filepath.Join(plain, "train.h5"), groups)
	groups[1].Variables = append(trackVars, TrackParentBarcode)
	groups = append(groups, loader.Group{Name: "truth_hadrons", Variables: hadronVars, MaxLen: slots})
	b := read(res.Train, groups)
	if !slices.Equal(a.Inputs["jets"].Data, b.Inputs["jets"].Data) || !slices.EqualFunc(a.Targets["lxy"], b.Targets["lxy"], sameFloat) {
		t.Error("the jets differ once truth hadrons are generated too")
	}
	nt := len(trackVars)
	for k := 0; k < n*maxTracks; k++ {
		if !slices.Equal(a.Inputs["tracks"].Data[k*nt:(k+1)*nt], b.Inputs["tracks"].Data[k*(nt+1):k*(nt+1)+nt]) {
			t.Fatalf("track slot %d differs once truth hadrons are generated too", k)
		}
	}
	perFlavour := map[[3]int64]int{} // (jet flavour, b hadrons, c hadrons) → jets
	linked := 0
	for j := 0; j < n; j++ {
		f := b.Labels["flavour"][j]
		hadrons := checkHadrons(t, b, j, len(hadronVars), slots)
		var nb, nc int64
		for _, h := range hadrons {
			if h.flavour == HadronB {
				nb++
				if float32(h.pt) != b.Targets["hpt"][j] || float32(h.lxy) != b.Targets["lxy"][j] {
					t.Fatalf("jet %d: b hadron pt %g, Lxy %g; the jet's truth label says %g, %g", j, h.pt, h.lxy, b.Targets["hpt"][j], b.Targets["lxy"][j])
				}
			} else {
				nc++
			}
		}
		perFlavour[[3]int64{f, nb, nc}]++
		linked += checkParents(t, b, j, nt+1, maxTracks, hadrons)
	}
	for key, jets := range perFlavour {
		want := map[int64][2]int64{FlavourB: {1, 1}, FlavourC: {0, 1}, FlavourLight: {0, 0}, FlavourTau: {0, 0}}[key[0]]
		if key[1] != want[0] || key[2] != want[1] {
			t.Errorf("%d jets of flavour %d have %d b and %d c hadrons, want %d and %d", jets, key[0], key[1], key[2], want[0], want[1])
		}
	}
	t.Logf("jets by (flavour, b hadrons, c hadrons): %v; %d tracks with a parent hadron", perFlavour, linked)
	if linked < n/4 {
		t.Errorf("only %d tracks of %d jets name a parent hadron", linked, n)
	}
}

// sameFloat reports whether x and y are equal or both NaN.
func sameFloat(x, y float32) bool { return x == y || (x != x && y != y) }

// hadronRow is a filled truth_hadrons slot as read back.
type hadronRow struct {
	barcode, flavour int64
	pt, lxy          float64
}

// checkHadrons returns jet j's filled truth-hadron slots, checking that
// they come first, have distinct barcodes, b or c flavour, and sensible
// kinematics.
func checkHadrons(t *testing.T, b *loader.Batch, j, nv, slots int) []hadronRow {
	t.Helper()
	h := b.Inputs["truth_hadrons"]
	var out []hadronRow
	for s := 0; s < slots; s++ {
		k := j*slots + s
		if !h.Valid[k] {
			continue
		}
		if len(out) != s {
			t.Fatalf("jet %d: hadron slot %d filled after an empty one", j, s)
		}
		v := h.Data[k*nv : (k+1)*nv]
		r := hadronRow{barcode: int64(v[0]), flavour: int64(v[1]), pt: float64(v[2]), lxy: float64(v[3])}
		for _, o := range out {
			if o.barcode == r.barcode {
				t.Fatalf("jet %d: barcode %d twice", j, r.barcode)
			}
		}
		if r.barcode <= 0 || (r.flavour != HadronB && r.flavour != HadronC) || !(r.pt > 0) || !(r.lxy >= 0) ||
			math.Abs(math.Hypot(float64(v[4]), float64(v[5]))-float64(v[6])) > 1e-5 || !(v[7] > 1800 && v[7] < 5300) {
			t.Fatalf("jet %d, hadron slot %d: %v", j, s, v)
		}
		out = append(out, r)
	}
	return out
}

// checkParents checks that every track of jet j with a parent barcode
// names one of the jet's hadrons, with the origin that hadron gives (from
// a b, from a c in a b decay, from a c), and that no heavy-flavour track
// lacks one. It returns the number of tracks with a parent.
func checkParents(t *testing.T, b *loader.Batch, j, nv, maxTracks int, hadrons []hadronRow) int {
	t.Helper()
	tr := b.Inputs["tracks"]
	hasB := slices.ContainsFunc(hadrons, func(h hadronRow) bool { return h.flavour == HadronB })
	linked := 0
	for k := j * maxTracks; k < (j+1)*maxTracks; k++ {
		if !tr.Valid[k] {
			continue
		}
		origin, parent := int(tr.Data[k*nv+nv-2]), int64(tr.Data[k*nv+nv-1])
		i := slices.IndexFunc(hadrons, func(h hadronRow) bool { return h.barcode == parent })
		heavy := origin == OriginFromB || origin == OriginFromBC || origin == OriginFromC
		switch {
		case parent == NoBarcode:
			if heavy {
				t.Fatalf("jet %d: a track of origin %d without a parent hadron", j, origin)
			}
			continue
		case i < 0:
			t.Fatalf("jet %d: a track's parent barcode %d names none of the jet's hadrons %v", j, parent, hadrons)
		}
		want := OriginFromB
		if hadrons[i].flavour == HadronC {
			want = OriginFromC
			if hasB {
				want = OriginFromBC
			}
		}
		if origin != want {
			t.Fatalf("jet %d: a track of origin %d has a parent of flavour %d", j, origin, hadrons[i].flavour)
		}
		linked++
	}
	return linked
}

// TestGenerateTruthHadronsFewSlots checks that with fewer slots than
// hadrons the hadrons left out are nobody's parent: in b-jets with one
// slot, the b hadron's tracks keep their parent and the c hadron's lose it.
func TestGenerateTruthHadronsFewSlots(t *testing.T) {
	if _, err := Generate(Config{Train: 1, TruthHadrons: -1}, t.TempDir()); err == nil || !strings.Contains(err.Error(), "TruthHadrons -1") {
		t.Errorf("negative TruthHadrons: %v", err)
	}
	const n = 500
	res, err := Generate(Config{Seed: 4, Train: n, NoDicts: true, TruthHadrons: 1, Fractions: Fractions{B: 1}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ds, err := loader.Open(loader.Config{Files: []string{res.Train}, BatchSize: n, Groups: []loader.Group{
		{Name: "tracks", Variables: []string{"ftagTruthOriginLabel", TrackParentBarcode}, MaxLen: 40},
		{Name: "truth_hadrons", Variables: []string{"barcode", "flavour"}, MaxLen: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	b := collect(t, ds, 0, 0)[0]
	tr, h := b.Inputs["tracks"], b.Inputs["truth_hadrons"]
	fromB := 0
	for j := 0; j < n; j++ {
		if !h.Valid[j] || h.Data[2*j+1] != HadronB {
			t.Fatalf("jet %d: hadron slot %v, valid %v; want the b hadron", j, h.Data[2*j:2*j+2], h.Valid[j])
		}
		for k := j * 40; k < (j+1)*40; k++ {
			origin, parent := tr.Data[2*k], tr.Data[2*k+1]
			switch {
			case !tr.Valid[k]:
			case origin == OriginFromB && parent == h.Data[2*j]:
				fromB++
			case origin == OriginFromB || parent != NoBarcode:
				t.Fatalf("jet %d: a track of origin %g has parent %g; the b hadron is %g", j, origin, parent, h.Data[2*j])
			}
		}
	}
	if fromB < n/2 {
		t.Errorf("%d tracks from b hadrons in %d b-jets", fromB, n)
	}
}
