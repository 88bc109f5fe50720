// Package gendata writes generated jets in Salt's HDF5 layout for the
// demo, the tests and the benchmarks, plus the norm and class
// dictionaries. It writes with package loader's HDF5 writer and reads
// nothing.
//
// Generate writes train/val/test files with b, c, light and tau jets
// (default fractions 0.30/0.20/0.45/0.05). Heavy-flavour hadrons (B, the D
// from its decay, D mesons and baryons, taus) fly exponential distances
// scaled by their boost and decay into tracks with displaced, lifetime-
// signed impact parameters, shared vertex indices and origin labels; light
// jets have prompt tracks plus occasional K0s/Λ decays and material
// interactions; every jet gets pile-up and fake tracks, and optionally
// electrons and particle-flow objects. Resolutions depend on track pT and
// on the innermost hits; tracks are sorted by |d0 significance|. Every
// number derives from (Seed, split, jet index), and HDF5 object timestamps
// are off, so the same seed gives byte-identical files.
package gendata

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/salt-ort/salt-ort/internal/detrand"
	"github.com/salt-ort/salt-ort/loader"
)

// Fractions are the flavour fractions of generated jets; they need not sum
// to 1 (they are normalised).
type Fractions struct {
	B, C, Light, Tau float64
}

// DefaultFractions is b 0.30, c 0.20, light 0.45, tau 0.05: close to a
// ttbar training sample after UPP's resampling, with enough of each class
// for the class weights to matter.
func DefaultFractions() Fractions { return Fractions{B: 0.30, C: 0.20, Light: 0.45, Tau: 0.05} }

// Config configures the jet generator.
type Config struct {
	// Seed fixes every random number: the same Config gives
	// byte-identical files.
	Seed uint64
	// Train, Val and Test are the number of jets per split; a split with 0
	// jets is written as an empty file.
	Train, Val, Test int
	// MaxTracks is the tracks dataset's second dimension; 0 means 40.
	MaxTracks int
	// Flows, when positive, adds a flows dataset with that many slots per
	// jet (FlowFields): the jet's charged particles and neutral ones,
	// hardest first, as particle-flow objects. Like the electrons, its
	// random numbers come from a stream of their own.
	Flows int
	// Electrons, when positive, adds an electrons dataset with that many
	// slots per jet (ElectronFields): electrons from semileptonic
	// heavy-flavour and tau decays, and fakes. Its random numbers come
	// from a stream of their own, so the jets and tracks do not change.
	Electrons int
	// TruthHadrons, when positive, adds a truth_hadrons dataset with that
	// many slots per jet (TruthHadronFields): the b and c hadrons of the
	// jet, as the flavour-tagging dumps write them for Salt's MaskFormer,
	// and gives the tracks an ftagTruthParentBarcode field naming the
	// hadron each comes from. The barcodes come from a random stream of
	// their own, so the jets and the other track fields do not change.
	TruthHadrons int
	// Fractions are the flavour fractions; the zero value means
	// DefaultFractions.
	Fractions Fractions
	// Storage is the datasets' storage (default contiguous, uncompressed).
	Storage loader.TableOptions
	// NoDicts skips writing norm_dict.yaml and class_dict.yaml.
	NoDicts bool
}

// Result lists what Generate wrote.
type Result struct {
	Train, Val, Test string // file paths
	NormDict         string // "" with NoDicts or no training jets
	ClassDict        string
}

// Flavour classes of generated jets (flavour_label, GN2 order).
const (
	FlavourB     = 0
	FlavourC     = 1
	FlavourLight = 2
	FlavourTau   = 3
)

// FlavourNames are the names of the flavour classes, indexed by their
// flavour_label value: atlas-ftag-tools' names, which the ftag
// preprocessing (UPP) records in the jets dataset's flavour_label
// attribute and GenerateFile records there too.
func FlavourNames() []string { return []string{"bjets", "cjets", "ujets", "taujets"} }

// Track origin classes (ftagTruthOriginLabel).
const (
	OriginPileup         = 0
	OriginFake           = 1
	OriginPrimary        = 2
	OriginFromB          = 3
	OriginFromBC         = 4
	OriginFromC          = 5
	OriginFromTau        = 6
	OriginOtherSecondary = 7
)

// JetFields are the fields of the generated jets dataset. The truth
// hadron's transverse momentum and transverse decay length
// (HadronConeExclTruthLabelPt, HadronConeExclTruthLabelLxy: the b hadron of
// b-jets, the c hadron of c-jets, the tau of tau-jets, in MeV and mm) are
// NaN for light jets, which have none: regression targets that are
// missing for some jets. mass_hypothesis is a parameter for conditioned
// taggers: for b-jets, the signal, the one of MassHypotheses nearest to
// the jet's mass; NaN for the other jets, the background.
func JetFields() []loader.Field {
	return []loader.Field{
		{Name: "pt_btagJes", Type: loader.Float32}, {Name: "eta_btagJes", Type: loader.Float32},
		{Name: "pt", Type: loader.Float32}, {Name: "eta", Type: loader.Float32}, {Name: "mass", Type: loader.Float32},
		{Name: "n_tracks", Type: loader.Int32}, {Name: "HadronConeExclTruthLabelID", Type: loader.Int32},
		{Name: "flavour_label", Type: loader.Int32}, {Name: "eventNumber", Type: loader.Int64},
		{Name: "HadronConeExclTruthLabelPt", Type: loader.Float32}, {Name: "HadronConeExclTruthLabelLxy", Type: loader.Float32},
		{Name: "mass_hypothesis", Type: loader.Float32},
	}
}

// MassHypotheses are the values of the generated jets'
// mass_hypothesis (MeV).
func MassHypotheses() []float64 { return []float64{5000, 10000, 20000} }

// TrackKinematics are the generated tracks' measured momentum and
// direction (pt in MeV, eta, phi): the variables Salt's edge features are
// computed from.
func TrackKinematics() []string { return []string{"pt", "eta", "phi"} }

// TrackFields are the fields of the generated tracks dataset: GN2's 19
// inputs, the two auxiliary-task labels, valid, and the track's pt, eta
// and phi (TrackKinematics).
func TrackFields() []loader.Field {
	var fs []loader.Field
	for i, v := range loader.GN2TrackVariables() {
		t := loader.Float32
		if i >= 10 {
			t = loader.Uint8 // hit counts
		}
		fs = append(fs, loader.Field{Name: v, Type: t})
	}
	fs = append(fs,
		loader.Field{Name: "ftagTruthOriginLabel", Type: loader.Int8},
		loader.Field{Name: "ftagTruthVertexIndex", Type: loader.Int32},
		loader.Field{Name: "valid", Type: loader.Bool})
	for _, v := range TrackKinematics() {
		fs = append(fs, loader.Field{Name: v, Type: loader.Float32})
	}
	return fs
}

// TrackParentBarcode is the track field, written with Config.TruthHadrons,
// that holds the barcode of the truth hadron the track comes from, or
// NoBarcode: the constituent id_label of Salt's MaskFormer configuration.
const TrackParentBarcode = "ftagTruthParentBarcode"

// NoBarcode is the barcode of an empty truth-hadron slot and the parent
// barcode of a track that comes from no truth hadron.
const NoBarcode = -1

// Truth hadron flavours (the flavour field of truth_hadrons: the PDG
// quark flavour, as in HadronConeExclTruthLabelID; NoBarcode for an empty
// slot).
const (
	HadronB = 5
	HadronC = 4
)

// TruthHadronFields are the fields of the generated truth_hadrons dataset:
// the hadron's barcode and flavour (5 b, 4 c; -1 for an empty slot), its
// transverse momentum, pseudorapidity, azimuth and mass (MeV), its
// direction relative to the jet axis (deta, dphi, dr), its transverse decay
// length from the primary vertex (Lxy, mm), and valid. The floats are NaN in
// empty slots, which follow the filled ones.
func TruthHadronFields() []loader.Field {
	fs := []loader.Field{{Name: "barcode", Type: loader.Int32}, {Name: "flavour", Type: loader.Int32}}
	for _, v := range []string{"pt", "eta", "phi", "mass", "deta", "dphi", "dr", "Lxy"} {
		fs = append(fs, loader.Field{Name: v, Type: loader.Float32})
	}
	return append(fs, loader.Field{Name: "valid", Type: loader.Bool})
}

// trackFields are the tracks dataset's fields for cfg: TrackFields, plus
// the parent barcode with truth hadrons.
func trackFields(cfg Config) []loader.Field {
	fs := TrackFields()
	if cfg.TruthHadrons > 0 {
		fs = append(fs, loader.Field{Name: TrackParentBarcode, Type: loader.Int32})
	}
	return fs
}

// NormGroups are the groups whose variables the generated norm_dict.yaml
// covers: GN2's, the jets' pt, eta, mass and n_tracks, the tracks' kinematics, and
// the flows and electrons when generated.
func NormGroups(cfg Config) []loader.Group {
	groups := loader.GN2Groups()
	groups[0].Variables = append(groups[0].Variables, "pt", "eta", "mass", "n_tracks")
	groups[1].Variables = append(groups[1].Variables, TrackKinematics()...)
	if cfg.Flows > 0 {
		groups = append(groups, loader.Group{Name: "flows", Dataset: "flows", Variables: FlowVariables(), MaxLen: cfg.Flows})
	}
	if cfg.Electrons > 0 {
		groups = append(groups, loader.Group{Name: "electrons", Dataset: "electrons", Variables: ElectronVariables(), MaxLen: cfg.Electrons})
	}
	return groups
}

// ElectronVariables are the per-electron input variables of the
// generated electrons dataset, named as ATLAS's loader reads them.
func ElectronVariables() []string {
	return []string{"ptfrac", "ptrel", "dr", "abs_eta", "d0RelativeToBeamspotSignificance", "eProbabilityHT", "Rhad", "Eratio"}
}

// ElectronFields are the fields of the generated electrons dataset: the
// input variables, the electron's origin (ftagTruthOriginLabel's classes:
// fake, fromB, fromC, fromTau) and valid.
func ElectronFields() []loader.Field {
	var fs []loader.Field
	for _, v := range ElectronVariables() {
		fs = append(fs, loader.Field{Name: v, Type: loader.Float32})
	}
	return append(fs, loader.Field{Name: "ftagTruthOriginLabel", Type: loader.Int8}, loader.Field{Name: "valid", Type: loader.Bool})
}

// FlowVariables are the per-flow input variables of the generated flows
// dataset, named as ATLAS's loaders read them.
func FlowVariables() []string { return []string{"pt", "energy", "deta", "dphi", "dr"} }

// FlowFields are the fields of the generated flows dataset: the input
// variables, isCharged and valid.
func FlowFields() []loader.Field {
	var fs []loader.Field
	for _, v := range FlowVariables() {
		fs = append(fs, loader.Field{Name: v, Type: loader.Float32})
	}
	return append(fs, loader.Field{Name: "isCharged", Type: loader.Bool}, loader.Field{Name: "valid", Type: loader.Bool})
}

// Generate writes train.h5, val.h5 and test.h5 in Salt's layout into dir
// (created if needed) and, unless NoDicts, norm_dict.yaml and
// class_dict.yaml computed from the training file with loader.ComputeNorm over
// GN2's variables and labels.
func Generate(cfg Config, dir string) (*Result, error) {
	if cfg.Train < 0 || cfg.Val < 0 || cfg.Test < 0 {
		return nil, fmt.Errorf("loader: gen: negative jet count")
	}
	if cfg.MaxTracks == 0 {
		cfg.MaxTracks = 40
	}
	if cfg.MaxTracks < 0 {
		return nil, fmt.Errorf("loader: gen: MaxTracks %d must be > 0", cfg.MaxTracks)
	}
	if cfg.Electrons < 0 || cfg.Flows < 0 || cfg.TruthHadrons < 0 {
		return nil, fmt.Errorf("loader: gen: Electrons %d, Flows %d and TruthHadrons %d must be ≥ 0", cfg.Electrons, cfg.Flows, cfg.TruthHadrons)
	}
	if cfg.Fractions == (Fractions{}) {
		cfg.Fractions = DefaultFractions()
	}
	f := cfg.Fractions
	if f.B < 0 || f.C < 0 || f.Light < 0 || f.Tau < 0 || f.B+f.C+f.Light+f.Tau <= 0 {
		return nil, fmt.Errorf("loader: gen: fractions %+v must be ≥ 0 with a positive sum", f)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("loader: gen: %w", err)
	}
	res := &Result{
		Train: filepath.Join(dir, "train.h5"),
		Val:   filepath.Join(dir, "val.h5"),
		Test:  filepath.Join(dir, "test.h5"),
	}
	for split, s := range []struct {
		path string
		n    int
	}{{res.Train, cfg.Train}, {res.Val, cfg.Val}, {res.Test, cfg.Test}} {
		if err := GenerateFile(s.path, cfg, split, s.n); err != nil {
			return nil, err
		}
	}
	if cfg.NoDicts || cfg.Train == 0 {
		return res, nil
	}
	nd, cd, err := loader.ComputeNorm([]string{res.Train}, NormGroups(cfg), loader.GN2Labels()...)
	if err != nil {
		return nil, err
	}
	res.NormDict = filepath.Join(dir, "norm_dict.yaml")
	res.ClassDict = filepath.Join(dir, "class_dict.yaml")
	if err := loader.WriteNormDict(res.NormDict, nd); err != nil {
		return nil, err
	}
	if err := loader.WriteClassDict(res.ClassDict, cd); err != nil {
		return nil, err
	}
	return res, nil
}

// GenerateFile writes one file of n jets. split (0 train, 1 val, 2 test)
// selects an independent random stream and sets eventNumber = 3*i + split.
func GenerateFile(path string, cfg Config, split, n int) error {
	if cfg.MaxTracks <= 0 {
		cfg.MaxTracks = 40
	}
	if cfg.Fractions == (Fractions{}) {
		cfg.Fractions = DefaultFractions()
	}
	jl, err := loader.NewRowLayout(JetFields()...)
	if err != nil {
		return err
	}
	tl, err := loader.NewRowLayout(trackFields(cfg)...)
	if err != nil {
		return err
	}
	w, err := loader.Create(path)
	if err != nil {
		return err
	}
	defer w.Close()
	jt, err := w.CreateTable("jets", jl, []int{n}, cfg.Storage)
	if err != nil {
		return err
	}
	// As the ftag preprocessing does: Salt reads a jet classification's
	// class names from it when its configuration gives none.
	if err := jt.SetStringsAttr("flavour_label", FlavourNames()); err != nil {
		return err
	}
	tt, err := w.CreateTable("tracks", tl, []int{n, cfg.MaxTracks}, cfg.Storage)
	if err != nil {
		return err
	}
	var el *loader.RowLayout
	var et *loader.Table
	if cfg.Electrons > 0 {
		if el, err = loader.NewRowLayout(ElectronFields()...); err != nil {
			return err
		}
		if et, err = w.CreateTable("electrons", el, []int{n, cfg.Electrons}, cfg.Storage); err != nil {
			return err
		}
	}
	var fl *loader.RowLayout
	var ft *loader.Table
	if cfg.Flows > 0 {
		if fl, err = loader.NewRowLayout(FlowFields()...); err != nil {
			return err
		}
		if ft, err = w.CreateTable("flows", fl, []int{n, cfg.Flows}, cfg.Storage); err != nil {
			return err
		}
	}
	var hl *loader.RowLayout
	var ht *loader.Table
	if cfg.TruthHadrons > 0 {
		if hl, err = loader.NewRowLayout(TruthHadronFields()...); err != nil {
			return err
		}
		if ht, err = w.CreateTable("truth_hadrons", hl, []int{n, cfg.TruthHadrons}, cfg.Storage); err != nil {
			return err
		}
	}
	g := newGenerator(cfg, jl, tl)
	const block = 2048
	jbuf := make([]byte, block*jl.Size)
	tbuf := make([]byte, block*cfg.MaxTracks*tl.Size)
	var ebuf, fbuf, hbuf []byte
	if el != nil {
		ebuf = make([]byte, block*cfg.Electrons*el.Size)
	}
	if fl != nil {
		fbuf = make([]byte, block*cfg.Flows*fl.Size)
	}
	if hl != nil {
		hbuf = make([]byte, block*cfg.TruthHadrons*hl.Size)
	}
	for from := 0; from < n; from += block {
		k := min(block, n-from)
		clear(tbuf)
		clear(ebuf)
		clear(fbuf)
		for i := range k {
			idx := from + i
			r := detrand.New(cfg.Seed, 0x67656e, uint64(split), uint64(idx))
			g.jet(r, int64(3*idx+split), jbuf[i*jl.Size:(i+1)*jl.Size], tbuf[i*cfg.MaxTracks*tl.Size:(i+1)*cfg.MaxTracks*tl.Size])
			if fl != nil {
				rf := detrand.New(cfg.Seed, 0x666c6f, uint64(split), uint64(idx))
				g.flows(rf, fl, fbuf[i*cfg.Flows*fl.Size:(i+1)*cfg.Flows*fl.Size])
			}
			if el != nil {
				re := detrand.New(cfg.Seed, 0x656c65, uint64(split), uint64(idx))
				g.electrons(re, el, ebuf[i*cfg.Electrons*el.Size:(i+1)*cfg.Electrons*el.Size])
			}
			if hl != nil {
				rh := detrand.New(cfg.Seed, 0x686164, uint64(split), uint64(idx))
				g.truthHadrons(rh, hl, hbuf[i*cfg.TruthHadrons*hl.Size:(i+1)*cfg.TruthHadrons*hl.Size],
					tbuf[i*cfg.MaxTracks*tl.Size:(i+1)*cfg.MaxTracks*tl.Size])
			}
		}
		if err := jt.WriteRows(from, jbuf[:k*jl.Size]); err != nil {
			return err
		}
		if err := tt.WriteRows(from, tbuf[:k*cfg.MaxTracks*tl.Size]); err != nil {
			return err
		}
		if ft != nil {
			if err := ft.WriteRows(from, fbuf[:k*cfg.Flows*fl.Size]); err != nil {
				return err
			}
		}
		if et != nil {
			if err := et.WriteRows(from, ebuf[:k*cfg.Electrons*el.Size]); err != nil {
				return err
			}
		}
		if ht != nil {
			if err := ht.WriteRows(from, hbuf[:k*cfg.TruthHadrons*hl.Size]); err != nil {
				return err
			}
		}
	}
	return w.Close()
}

// Units: MeV and mm, as in ATLAS files.
const (
	gev      = 1000.0
	massB    = 5279.0
	ctauB    = 0.455
	massTau  = 1777.0
	ctauTau  = 0.0871
	massKs   = 497.6
	ctauKs   = 26.84
	massLam  = 1115.7
	ctauLam  = 78.9
	maxD0    = 3.5 // track selection |d0| < 3.5 mm
	maxZ0    = 5.0 // |z0 sinθ| < 5 mm
	minTrkPt = 500.0
)

// Silicon layer radii (mm): IBL, B-layer, pixel layers 1-2, then the four
// SCT barrel layers (two hits each).
var (
	pixelRadii = [4]float64{33.25, 50.5, 88.5, 122.5}
	sctRadii   = [4]float64{299, 371, 443, 514}
)

// charmSpecies: weakly decaying charm hadrons (mass MeV, cτ mm, weight,
// charged-prong choices with probabilities).
type charmSpecies struct {
	mass, ctau, weight float64
	prongs             [2]int
	pFirst             float64
}

var charm = [4]charmSpecies{
	{1864.8, 0.1229, 0.56, [2]int{2, 4}, 0.75}, // D0
	{1869.7, 0.3118, 0.23, [2]int{1, 3}, 0.55}, // D+
	{1968.4, 0.1499, 0.10, [2]int{1, 3}, 0.50}, // Ds
	{2286.5, 0.0599, 0.11, [2]int{1, 3}, 0.50}, // Lambda_c
}

// particle is a charged particle before reconstruction.
type particle struct {
	pt, eta, phi float64
	vx, vy, vz   float64 // production vertex
	origin       int
	vertex       int // internal vertex id: 0 PV, >0 displaced, -1 none
	hadron       int // 1 + index in generator.hadrons of the parent b or c hadron; 0 none
	fake, pileup bool
	z0pu         float64 // pile-up vertex offset (z0 sinθ)
}

// genTrack is a reconstructed, selected track.
type genTrack struct {
	vals   [19]float64
	kin    [3]float64 // measured pt, eta, phi
	origin int
	vertex int
	hadron int // as particle.hadron
	absS   float64
}

// truthHadron is a b or c hadron of the jet generated last, for the
// truth_hadrons dataset.
type truthHadron struct {
	flavour                 int
	pt, eta, phi, mass, lxy float64
}

type generator struct {
	cfg Config
	// The last jet's flavour and direction, which its electrons and flows
	// follow.
	flav                  int
	jetPt, jetEta, jetPhi float64
	jl, tl                *loader.RowLayout
	cum                   [4]float64
	parts                 []particle
	tracks                []genTrack
	hadrons               []truthHadron
	jetF                  [12]int
	trkF                  [25]int
}

func newGenerator(cfg Config, jl, tl *loader.RowLayout) *generator {
	g := &generator{cfg: cfg, jl: jl, tl: tl}
	f := cfg.Fractions
	sum := f.B + f.C + f.Light + f.Tau
	g.cum = [4]float64{f.B / sum, (f.B + f.C) / sum, (f.B + f.C + f.Light) / sum, 1}
	for i, fl := range JetFields() {
		g.jetF[i] = jl.Index(fl.Name)
	}
	for i, fl := range TrackFields() {
		g.trkF[i] = tl.Index(fl.Name)
	}
	return g
}

// direction returns a unit vector for (eta, phi).
func direction(eta, phi float64) (x, y, z float64) {
	th := 2 * math.Atan(math.Exp(-eta))
	s, c := math.Sincos(th)
	return s * math.Cos(phi), s * math.Sin(phi), c
}

func wrapPhi(p float64) float64 {
	for p > math.Pi {
		p -= 2 * math.Pi
	}
	for p < -math.Pi {
		p += 2 * math.Pi
	}
	return p
}

// splitMomentum shares total among n by a flat Dirichlet.
func splitMomentum(r *detrand.Stream, total float64, n int, out []float64) []float64 {
	out = out[:0]
	sum := 0.0
	for range n {
		w := r.Exp()
		out = append(out, w)
		sum += w
	}
	for i := range out {
		out[i] *= total / sum
	}
	return out
}

// decay adds n charged products of a hadron of momentum p (direction
// eta,phi) decaying at vertex (vx,vy,vz); pstar sets the opening angles.
func (g *generator) decay(r *detrand.Stream, n int, pt, eta, phi, vx, vy, vz, pstar, chargedFrac float64, origin, vertex int) {
	var buf [8]float64
	fr := splitMomentum(r, chargedFrac, n, buf[:0])
	sinTh := 1 / math.Cosh(eta)
	for _, f := range fr {
		ptI := f * pt
		pI := ptI * math.Cosh(eta)
		alpha := math.Min(1.2, pstar/pI*math.Abs(r.Normal())*0.9)
		psi := r.Uniform(-math.Pi, math.Pi)
		g.parts = append(g.parts, particle{
			pt:  ptI,
			eta: eta + alpha*math.Cos(psi)/sinTh, // dη ≈ dθ/sinθ
			phi: wrapPhi(phi + alpha*math.Sin(psi)/sinTh),
			vx:  vx, vy: vy, vz: vz,
			origin: origin, vertex: vertex,
		})
	}
}

// fly returns a hadron's decay vertex.
func fly(r *detrand.Stream, pt, eta, phi, mass, ctau, ox, oy, oz float64) (x, y, z float64) {
	p := pt * math.Cosh(eta)
	l := p / mass * ctau * r.Exp()
	dx, dy, dz := direction(eta, phi)
	return ox + l*dx, oy + l*dy, oz + l*dz
}

// offAxis returns a direction near (eta, phi) at a typical angle k/pt.
func offAxis(r *detrand.Stream, eta, phi, k, pt float64) (float64, float64) {
	dr := math.Min(0.35, k/pt*r.Exp())
	psi := r.Uniform(-math.Pi, math.Pi)
	return eta + dr*math.Cos(psi), wrapPhi(phi + dr*math.Sin(psi))
}

// inCone returns a direction uniform within ΔR < 0.4 of (eta, phi).
func inCone(r *detrand.Stream, eta, phi float64) (float64, float64) {
	dr := 0.4 * math.Sqrt(r.Float())
	psi := r.Uniform(-math.Pi, math.Pi)
	return eta + dr*math.Cos(psi), wrapPhi(phi + dr*math.Sin(psi))
}

// jet generates one jet into its jets row and MaxTracks tracks rows.
func (g *generator) jet(r *detrand.Stream, event int64, jrow, trows []byte) {
	u := r.Float()
	flav := FlavourTau
	for i, c := range g.cum {
		if u < c {
			flav = i
			break
		}
	}
	var pt float64
	if r.Bernoulli(0.8) {
		pt = 20*gev + 45*gev*r.Exp()
	} else {
		pt = 20 * gev * math.Exp(r.Float()*math.Log(50))
	}
	pt = math.Min(pt, 3000*gev)
	eta := r.Uniform(-2.5, 2.5)
	phi := r.Uniform(-math.Pi, math.Pi)
	g.parts = g.parts[:0]
	g.hadrons = g.hadrons[:0]

	// Prompt fragmentation: fewer for heavy flavour (the hadron takes the
	// energy) and for hadronic taus (isolated).
	lnpt := math.Log(pt / (10 * gev))
	mean := 2.5 + 2.5*lnpt
	charged := 0.55
	switch flav {
	case FlavourB:
		mean -= 1.0
		charged = 0.2
	case FlavourC:
		mean -= 0.5
		charged = 0.3
	case FlavourTau:
		mean = 0.6 + 0.3*lnpt
		charged = 0.1
	}
	nPrompt := r.Poisson(math.Max(mean, 0.5))
	var buf [64]float64
	for _, f := range splitMomentum(r, charged, min(nPrompt, 60), buf[:0]) {
		ptI := f * pt
		e, p := offAxis(r, eta, phi, 0.4*gev, ptI)
		g.parts = append(g.parts, particle{pt: ptI, eta: e, phi: p, origin: OriginPrimary})
	}

	vtx := 1
	// The truth hadron (the tau of tau-jets): none for light jets.
	truthPt, truthLxy := math.NaN(), math.NaN()
	switch flav {
	case FlavourB:
		x := math.Min(0.98, math.Max(0.2, 0.72+0.14*r.Normal()))
		hpt := x * pt
		he, hp := offAxis(r, eta, phi, 1.0*gev, hpt)
		bx, by, bz := fly(r, hpt, he, hp, massB, ctauB, 0, 0, 0)
		truthPt, truthLxy = hpt, math.Hypot(bx, by)
		// B → D + charged; the D flies on from the B vertex.
		xd := math.Min(0.8, math.Max(0.15, 0.45+0.12*r.Normal()))
		dpt := xd * hpt
		de, dp := offAxis(r, he, hp, 1.7*gev, dpt)
		sp := g.pickCharm(r)
		dx, dy, dz := fly(r, dpt, de, dp, sp.mass, sp.ctau, bx, by, bz)
		nB := min(1+r.Poisson(1.2), 5)
		from := len(g.parts)
		g.decay(r, nB, hpt*(1-xd), he, hp, bx, by, bz, 1.7*gev, 0.7, OriginFromB, vtx)
		g.addHadron(from, truthHadron{HadronB, hpt, he, hp, massB, math.Hypot(bx, by)})
		from = len(g.parts)
		g.decay(r, g.prongs(r, sp), dpt, de, dp, dx, dy, dz, 0.75*gev, 0.7, OriginFromBC, vtx+1)
		g.addHadron(from, truthHadron{HadronC, dpt, de, dp, sp.mass, math.Hypot(dx, dy)})
		vtx += 2
	case FlavourC:
		x := math.Min(0.95, math.Max(0.15, 0.55+0.18*r.Normal()))
		hpt := x * pt
		he, hp := offAxis(r, eta, phi, 1.0*gev, hpt)
		sp := g.pickCharm(r)
		dx, dy, dz := fly(r, hpt, he, hp, sp.mass, sp.ctau, 0, 0, 0)
		truthPt, truthLxy = hpt, math.Hypot(dx, dy)
		from := len(g.parts)
		g.decay(r, g.prongs(r, sp), hpt, he, hp, dx, dy, dz, 0.75*gev, 0.7, OriginFromC, vtx)
		g.addHadron(from, truthHadron{HadronC, hpt, he, hp, sp.mass, truthLxy})
		vtx++
	case FlavourTau:
		x := math.Min(0.98, math.Max(0.3, 0.8+0.12*r.Normal()))
		hpt := x * pt
		he, hp := offAxis(r, eta, phi, 0.5*gev, hpt)
		tx, ty, tz := fly(r, hpt, he, hp, massTau, ctauTau, 0, 0, 0)
		truthPt, truthLxy = hpt, math.Hypot(tx, ty)
		n := 1
		if r.Bernoulli(0.28) {
			n = 3
		}
		g.decay(r, n, hpt, he, hp, tx, ty, tz, 0.6*gev, 0.75, OriginFromTau, vtx)
		vtx++
	}
	// Long-lived strange hadrons and material interactions, in every flavour.
	if r.Bernoulli(0.10) {
		hpt := pt * math.Min(0.5, math.Max(0.03, 0.12+0.08*r.Normal()))
		he, hp := offAxis(r, eta, phi, 0.5*gev, hpt)
		m, ct, ps := massKs, ctauKs, 0.206*gev
		if r.Bernoulli(0.3) {
			m, ct, ps = massLam, ctauLam, 0.101*gev
		}
		x, y, z := fly(r, hpt, he, hp, m, ct, 0, 0, 0)
		g.decay(r, 2, hpt, he, hp, x, y, z, ps, 1.0, OriginOtherSecondary, vtx)
		vtx++
	}
	if r.Bernoulli(0.04) {
		rad := []float64{24, pixelRadii[0], pixelRadii[1], pixelRadii[2]}[r.IntN(4)] + r.Uniform(-1, 1)
		hpt := pt * math.Min(0.3, 0.02+0.04*r.Exp())
		he, hp := offAxis(r, eta, phi, 0.5*gev, hpt)
		dx, dy, dz := direction(he, hp)
		s := rad / math.Hypot(dx, dy)
		g.decay(r, 2, hpt, he, hp, s*dx, s*dy, s*dz, 0.3*gev, 1.0, OriginOtherSecondary, vtx)
		vtx++
	}
	// Pile-up and fake tracks.
	for range r.Poisson(0.5) {
		ptI := minTrkPt + gev*r.Exp()
		e, p := inCone(r, eta, phi)
		g.parts = append(g.parts, particle{pt: ptI, eta: e, phi: p, origin: OriginPileup, vertex: -1, pileup: true,
			z0pu: r.Uniform(-1.5, 1.5)})
	}
	for range r.Poisson(0.08 + 0.04*lnpt) {
		ptI := minTrkPt + 2*gev*r.Exp()
		e, p := inCone(r, eta, phi)
		g.parts = append(g.parts, particle{pt: ptI, eta: e, phi: p, origin: OriginFake, vertex: -1, fake: true})
	}

	g.reconstruct(r, pt, eta, phi)

	// Sort by |signed d0 significance|, hardest first (UPP's order).
	slices.SortStableFunc(g.tracks, func(a, b genTrack) int {
		switch {
		case a.absS > b.absS:
			return -1
		case a.absS < b.absS:
			return 1
		}
		return 0
	})
	// Compact displaced vertex ids to 1, 2, ... in order of first use.
	var remap [16]int
	next := 1
	for i := range g.tracks {
		v := g.tracks[i].vertex
		if v <= 0 {
			continue
		}
		if remap[v] == 0 {
			remap[v] = next
			next++
		}
		g.tracks[i].vertex = remap[v]
	}

	// Jet-level quantities.
	ptJes := pt * (1 + 0.08*r.Normal())
	ptJes = math.Max(ptJes, 15*gev)
	etaJes := eta + 0.01*r.Normal()
	mass := pt * (0.07 + 0.04*r.Exp())
	if flav == FlavourB {
		mass += massB * 0.5 * r.Float()
	}
	g.flav, g.jetPt, g.jetEta, g.jetPhi = flav, pt, eta, phi
	label := [4]int{5, 4, 0, 15}[flav]
	hypothesis := math.NaN()
	if flav == FlavourB {
		for _, h := range MassHypotheses() {
			if math.IsNaN(hypothesis) || math.Abs(math.Log(mass/h)) < math.Abs(math.Log(mass/hypothesis)) {
				hypothesis = h
			}
		}
	}
	jv := [12]float64{ptJes, etaJes, ptJes * (1 + 0.03*r.Normal()), etaJes + 0.005*r.Normal(), mass,
		float64(len(g.tracks)), float64(label), float64(flav), float64(event), truthPt, truthLxy, hypothesis}
	for i, v := range jv {
		g.jl.Put(jrow, g.jetF[i], v)
	}
	rs := g.tl.Size
	for i := range min(len(g.tracks), g.cfg.MaxTracks) {
		row := trows[i*rs : (i+1)*rs]
		t := &g.tracks[i]
		for k, v := range t.vals {
			g.tl.Put(row, g.trkF[k], v)
		}
		g.tl.Put(row, g.trkF[19], float64(t.origin))
		g.tl.Put(row, g.trkF[20], float64(t.vertex))
		g.tl.Put(row, g.trkF[21], 1)
		for k, v := range t.kin {
			g.tl.Put(row, g.trkF[22+k], v)
		}
	}
}

// electrons fills the electrons of the jet generate last: electrons from
// semileptonic b and c decays (about one b-jet in five, one c-jet in ten)
// and leptonic tau decays, which are displaced, carry a sizeable fraction
// of the jet's momentum with transverse momentum relative to the jet axis
// set by the parent's mass, and look like electrons in the calorimeter and
// the transition-radiation tracker; and fakes in every flavour, soft,
// prompt and hadron-like.
func (g *generator) electrons(r *detrand.Stream, el *loader.RowLayout, rows []byte) {
	type electron struct {
		vals   [8]float64
		origin int
	}
	var es []electron
	pReal := [4]float64{0.21, 0.10, 0, 0.17}[g.flav]
	origin := [4]int{OriginFromB, OriginFromC, OriginFake, OriginFromTau}[g.flav]
	massScale := [4]float64{1.3, 0.6, 0, 0.5}[g.flav] * gev
	lifetime := [4]float64{6, 3, 0, 2}[g.flav]
	if r.Bernoulli(pReal) {
		ptfrac := math.Min(0.95, math.Max(0.02, 0.18+0.12*r.Normal()))
		es = append(es, electron{origin: origin, vals: [8]float64{
			ptfrac, massScale * (0.5 + r.Exp()), 0.02 + 0.15*r.Float()*r.Float(),
			math.Abs(g.jetEta + 0.03*r.Normal()), lifetime * r.Exp() * sign(r.Normal()+0.6),
			math.Min(1, math.Max(0, 0.75+0.12*r.Normal())), math.Abs(0.005 + 0.01*r.Normal()), math.Min(1, math.Max(0, 0.85+0.08*r.Normal())),
		}})
	}
	for range r.Poisson(0.04 + 0.02*math.Log(g.jetPt/(20*gev))) {
		es = append(es, electron{origin: OriginFake, vals: [8]float64{
			math.Min(0.9, 0.03+0.06*r.Exp()), 0.3 * gev * r.Exp(), 0.4 * r.Float(),
			math.Abs(g.jetEta + 0.1*r.Normal()), r.Normal(),
			math.Min(1, math.Max(0, 0.25+0.15*r.Normal())), math.Abs(0.05 + 0.05*r.Normal()), math.Min(1, math.Max(0, 0.55+0.2*r.Normal())),
		}})
	}
	slices.SortStableFunc(es, func(a, b electron) int { // hardest first
		switch {
		case a.vals[0] > b.vals[0]:
			return -1
		case a.vals[0] < b.vals[0]:
			return 1
		}
		return 0
	})
	for i := range min(len(es), g.cfg.Electrons) {
		row := rows[i*el.Size : (i+1)*el.Size]
		for k, v := range es[i].vals {
			el.Put(row, k, v)
		}
		el.Put(row, len(es[i].vals), float64(es[i].origin))
		el.Put(row, len(es[i].vals)+1, 1)
	}
}

// flows fills the particle-flow objects of the jet generated last: its
// charged particles (fakes excepted) and neutral ones (photons from π0
// decays and neutral hadrons), which take about a third of the jet's
// momentum, hardest first.
func (g *generator) flows(r *detrand.Stream, fl *loader.RowLayout, rows []byte) {
	type flow struct {
		pt, eta, phi float64
		charged      bool
	}
	var fs []flow
	for _, p := range g.parts {
		if !p.fake {
			fs = append(fs, flow{p.pt, p.eta, p.phi, true})
		}
	}
	var buf [64]float64
	for _, f := range splitMomentum(r, 0.35, min(1+r.Poisson(0.8*float64(len(fs))), 60), buf[:0]) {
		e, p := offAxis(r, g.jetEta, g.jetPhi, 0.4*gev, f*g.jetPt)
		fs = append(fs, flow{f * g.jetPt, e, p, false})
	}
	slices.SortStableFunc(fs, func(a, b flow) int {
		switch {
		case a.pt > b.pt:
			return -1
		case a.pt < b.pt:
			return 1
		}
		return 0
	})
	for i := range min(len(fs), g.cfg.Flows) {
		f := fs[i]
		deta, dphi := f.eta-g.jetEta, wrapPhi(f.phi-g.jetPhi)
		row := rows[i*fl.Size : (i+1)*fl.Size]
		for k, v := range []float64{f.pt, f.pt * math.Cosh(f.eta), deta, dphi, math.Hypot(deta, dphi), float64(btoi(f.charged)), 1} {
			fl.Put(row, k, v)
		}
	}
}

// addHadron records a truth hadron and makes it the parent of the
// particles from index from on: the products of its decay.
func (g *generator) addHadron(from int, h truthHadron) {
	g.hadrons = append(g.hadrons, h)
	for i := from; i < len(g.parts); i++ {
		g.parts[i].hadron = len(g.hadrons)
	}
}

// truthHadrons fills the truth_hadrons rows of the jet generated last, in
// the order the hadrons were made (a b hadron before the c hadron of its
// decay), and the parent barcodes of its tracks rows. Barcodes are distinct
// random numbers below 2²⁰, which float32 holds exactly. Hadrons beyond the
// slots are left out, and their tracks get NoBarcode as parent.
func (g *generator) truthHadrons(r *detrand.Stream, hl *loader.RowLayout, rows, trows []byte) {
	barcodes := make([]int, len(g.hadrons))
	for i := range barcodes {
		for barcodes[i] == 0 || slices.Contains(barcodes[:i], barcodes[i]) {
			barcodes[i] = 1 + r.IntN(1<<20-1)
		}
	}
	slots := len(rows) / hl.Size
	nan := math.NaN()
	for s := range slots {
		row := rows[s*hl.Size : (s+1)*hl.Size]
		vals := [11]float64{NoBarcode, NoBarcode, nan, nan, nan, nan, nan, nan, nan, nan, 0}
		if s < len(g.hadrons) {
			h := g.hadrons[s]
			deta, dphi := h.eta-g.jetEta, wrapPhi(h.phi-g.jetPhi)
			vals = [11]float64{float64(barcodes[s]), float64(h.flavour), h.pt, h.eta, h.phi, h.mass,
				deta, dphi, math.Hypot(deta, dphi), h.lxy, 1}
		}
		for k, v := range vals {
			hl.Put(row, k, v)
		}
	}
	parent := g.tl.Index(TrackParentBarcode)
	rs := g.tl.Size
	for i := range g.cfg.MaxTracks {
		bc := NoBarcode
		if i < len(g.tracks) && g.tracks[i].hadron > 0 && g.tracks[i].hadron <= slots {
			bc = barcodes[g.tracks[i].hadron-1]
		}
		g.tl.Put(trows[i*rs:(i+1)*rs], parent, float64(bc))
	}
}

func (g *generator) pickCharm(r *detrand.Stream) *charmSpecies {
	u := r.Float()
	for i := range charm {
		if u < charm[i].weight {
			return &charm[i]
		}
		u -= charm[i].weight
	}
	return &charm[0]
}

func (g *generator) prongs(r *detrand.Stream, sp *charmSpecies) int {
	if r.Bernoulli(sp.pFirst) {
		return sp.prongs[0]
	}
	return sp.prongs[1]
}

// reconstruct turns particles into selected tracks with measured
// parameters, hits and lifetime-signed impact parameters.
func (g *generator) reconstruct(r *detrand.Stream, jetPt, jetEta, jetPhi float64) {
	g.tracks = g.tracks[:0]
	density := math.Min(3, jetPt/(250*gev))
	for i := range g.parts {
		p := &g.parts[i]
		if p.pt < minTrkPt || math.Abs(p.eta) > 2.5 {
			continue
		}
		dEta, dPhi := p.eta-jetEta, wrapPhi(p.phi-jetPhi)
		if math.Hypot(dEta, dPhi) > 0.4 {
			continue
		}
		rad := math.Hypot(p.vx, p.vy)
		eff := 0.92 * math.Exp(-rad/150)
		if rad > sctRadii[0] || !r.Bernoulli(eff) {
			continue
		}
		ptG := p.pt / gev
		th := 2 * math.Atan(math.Exp(-p.eta))
		sinTh := math.Sin(th)
		// Hits on the layers outside the production radius.
		var pixHits [4]int
		nPix, nSCT := 0, 0
		for l, lr := range pixelRadii {
			if rad < lr && r.Bernoulli(0.98) {
				pixHits[l] = 1
				if r.Bernoulli(0.03) {
					pixHits[l] = 2 // module overlap
				}
				nPix += pixHits[l]
			}
		}
		for range sctRadii {
			nSCT += 2 * btoi(r.Bernoulli(0.985))
		}
		nSCT += r.Poisson(0.3)
		core := 1.0
		if math.Hypot(dEta, dPhi) < 0.05 {
			core = 2
		}
		pShare := 0.01 + 0.04*density*core
		pSplit := 0.01 + 0.05*density*core
		if p.fake {
			nPix = 1 + r.IntN(3)
			pixHits = [4]int{btoi(r.Bernoulli(0.5)), btoi(r.Bernoulli(0.5)), 0, 0}
			nSCT = 4 + r.IntN(5)
			pShare, pSplit = 0.3, 0.2
		}
		if nPix+nSCT < 7 {
			continue
		}
		ibl, bl := pixHits[0], pixHits[1]
		sharedIBL, splitIBL := 0, 0
		if ibl > 0 {
			sharedIBL, splitIBL = btoi(r.Bernoulli(pShare)), btoi(r.Bernoulli(pSplit))
		}
		pixShared := r.Binomial(nPix, pShare)
		pixSplit := r.Binomial(nPix, pSplit)
		sctShared := r.Binomial(nSCT, pShare*0.7)

		// Resolutions (mm), worse without the innermost layers.
		sd0 := math.Hypot(0.010, 0.080/(ptG*math.Sqrt(sinTh)))
		sz0 := math.Hypot(0.035, 0.100/(ptG*math.Sqrt(sinTh)))
		if ibl == 0 {
			sd0 *= 1.6
			sz0 *= 1.6
		}
		if bl == 0 {
			sd0 *= 1.3
			sz0 *= 1.3
		}
		// True impact parameters of a straight line from the vertex.
		sp, cp := math.Sincos(p.phi)
		d0 := -p.vx*sp + p.vy*cp
		z0 := (p.vz - (p.vx*cp+p.vy*sp)/math.Tan(th)) * sinTh
		if p.pileup {
			z0 = p.z0pu
		}
		if p.fake {
			d0 = 0.5 * r.Normal()
			z0 = 0.8 * r.Normal()
		}
		tail := 1.0
		if r.Bernoulli(0.04 + 0.1*float64(pixShared)/float64(max(nPix, 1))) {
			tail = 4
		}
		d0 += sd0 * tail * r.Normal()
		z0 += sz0 * tail * r.Normal()
		if math.Abs(d0) > maxD0 || math.Abs(z0) > maxZ0 {
			continue
		}
		// Measured direction and momentum.
		sPhi := math.Hypot(1e-4, 1.5e-3/ptG)
		sTheta := math.Hypot(5e-5, 1e-3/ptG) * sinTh
		mPhi := wrapPhi(p.phi + sPhi*r.Normal())
		mEta := p.eta + sTheta/sinTh*r.Normal()
		q := 1.0
		if r.Bernoulli(0.5) {
			q = -1
		}
		qop := q / (p.pt * math.Cosh(p.eta))
		sQop := math.Abs(qop) * math.Hypot(0.01, 0.0004*ptG) * (1 + 0.05*r.Normal())
		// Lifetime signs with respect to the jet axis.
		sgnD := sign(math.Sin(jetPhi-mPhi) * d0)
		sgnZ := sign((jetEta - mEta) * z0)
		ipS := sgnD * math.Abs(d0) / sd0
		zS := sgnZ * math.Abs(z0) / sz0
		t := genTrack{origin: p.origin, vertex: p.vertex, hadron: p.hadron, absS: math.Abs(ipS), kin: [3]float64{p.pt, mEta, mPhi}}
		if p.fake || p.pileup {
			t.vertex = -1
		}
		t.vals = [19]float64{
			d0, z0, wrapPhi(mPhi - jetPhi), mEta - jetEta, qop, ipS, zS,
			sPhi * (1 + 0.05*r.Normal()), sTheta * (1 + 0.05*r.Normal()), sQop,
			float64(nPix), float64(nSCT), float64(ibl), float64(bl),
			float64(sharedIBL), float64(splitIBL), float64(pixShared), float64(pixSplit), float64(sctShared),
		}
		g.tracks = append(g.tracks, t)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func sign(x float64) float64 {
	if x < 0 {
		return -1
	}
	return 1
}
