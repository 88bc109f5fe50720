package deploy

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/graph"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/runtime/ortcompat"
)

// graphOpset is the opset salt-ort built every graph in before export
// chose one.
const graphOpset = graph.Opset

// NewestRelease is the newest ONNX Runtime release
// third_party/onnxruntime/fetch-versions.sh pins.
const NewestRelease = "1.31.1"

// MiddleRelease is the release of the default set between the oldest and
// the newest: 1.17.3, a release from before C API 24 (which the binding
// salt-ort trains with requires) and the smaller download of the two such
// releases fetch-versions.sh pins. The ONNX Runtime of ATLAS's current
// AthenaExternals is built from source in atlasexternals; docs/deployment.md says what
// the public sources show of its version.
const MiddleRelease = "1.17.3"

// releaseOpsets lists, for the releases fetch-versions.sh pins, the newest
// ONNX opset and IR version each loads, measured with a one-operator (Add)
// model stamped with each opset 17 to 26 and IR version 8 to 13 (docs/deployment.md,
// "ONNX Runtime releases"); 1.31.1 loaded all of them.
var releaseOpsets = []struct {
	Release   string
	Opset, IR int
}{
	{"1.14.0", 18, 8},
	{"1.17.3", 20, 9},
	{"1.23.2", 23, 11},
	{"1.31.1", 26, 13},
}

// OldestRelease returns the oldest pinned ONNX Runtime release that loads
// models of the given opset.
func OldestRelease(opset int) (string, error) {
	for _, r := range releaseOpsets {
		if opset <= r.Opset {
			return r.Release, nil
		}
	}
	return "", fmt.Errorf("deploy: no pinned ONNX Runtime release loads opset %d (the newest, %s, loads opset %d)", opset, NewestRelease, releaseOpsets[len(releaseOpsets)-1].Opset)
}

// DefaultReleases is the set `validate` runs when no --ort is given: the
// oldest pinned release that loads the model's opset, MiddleRelease and
// the newest.
func DefaultReleases(opset int) ([]string, error) {
	oldest, err := OldestRelease(opset)
	if err != nil {
		return nil, err
	}
	set := []string{oldest}
	for _, r := range []string{MiddleRelease, NewestRelease} {
		if !slices.Contains(set, r) && compareReleases(r, oldest) > 0 {
			set = append(set, r)
		}
	}
	return set, nil
}

// compareReleases orders release numbers a.b.c numerically.
func compareReleases(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x - y
		}
	}
	return len(pa) - len(pb)
}

// ReleaseReport is the validation of a model in one ONNX Runtime release.
type ReleaseReport struct {
	Version string
	// Loaded is the version the library reports, and API the C API
	// version the worker used.
	Loaded string
	API    int
	// Err says why the release could not load or run the model (an
	// *ortcompat.Error); Report is nil then.
	Err    error
	Report *Report
	// FromReference is the largest absolute difference of any output value
	// from the reference run (the ONNX Runtime salt-ort links); ShapeDiffers
	// says the outputs could not be compared value by value.
	FromReference float64
	ShapeDiffers  bool
}

// Check summarises the report for the metadata and the model card.
func (r ReleaseReport) Check(reference string) RuntimeCheck {
	c := RuntimeCheck{Version: r.Version, Reference: reference}
	if r.Err != nil {
		c.Error = r.Err.Error()
		return c
	}
	c.Reproduced = r.Report.Pass()
	c.FromReference = r.FromReference
	if r.ShapeDiffers {
		c.Reproduced = false
		c.Error = "its outputs have other shapes than ONNX Runtime " + reference + "'s"
	}
	for _, o := range r.Report.Outputs {
		c.MaxAbs = math.Max(c.MaxAbs, o.MaxAbs)
	}
	return c
}

// ValidateRelease runs the model's validation vectors in ONNX Runtime
// release version (installed by third_party/onnxruntime/fetch-versions.sh),
// in a process of its own, and compares the outputs with the vectors
// (opts.Tolerance, as Validate) and with reference, the outputs of
// Validate's run in the ONNX Runtime salt-ort links (nil: no comparison).
// A release that cannot load or run the model gives a report whose Err
// names it; the error return is for salt-ort's own failures (no such
// installation, unreadable files).
func ValidateRelease(ctx context.Context, opts ValidateOptions, version string, reference map[string][][]float32) (*ReleaseReport, error) {
	if opts.Vectors == "" {
		opts.Vectors = VectorsPath(opts.Model)
	}
	if opts.Tolerance == 0 {
		opts.Tolerance = DefaultTolerance
	}
	lib, err := ortcompat.Library(version)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	m, data, err := openMeta(opts.Model)
	if err != nil {
		return nil, err
	}
	if m.Meta.Interface != "athena" {
		return nil, fmt.Errorf("deploy: %s: validate --ort runs ATLAS's one-jet interface, and this model has the %s one: export it without --batched", opts.Model, m.Meta.Interface)
	}
	v, err := m.ReadVectors(opts.Vectors)
	if err != nil {
		return nil, err
	}
	req := &ortcompat.Request{Library: lib, Model: data, Threads: 1, Call: "jet"}
	for _, o := range m.Outputs {
		req.Outputs = append(req.Outputs, o.Name)
	}
	for j := 0; j < v.Jets; j++ {
		req.Calls = append(req.Calls, jetTensors(v, j))
	}
	rep := &ReleaseReport{Version: version}
	resp, err := ortcompat.Run(ctx, version, req)
	if resp != nil {
		rep.Loaded, rep.API = resp.Version, resp.API
	}
	if err != nil {
		if !ortcompat.IsError(err) {
			return nil, fmt.Errorf("deploy: %s: %w", opts.Model, err)
		}
		rep.Err = err
		return rep, nil
	}
	got, err := m.collect(resp.Outputs)
	if err != nil {
		return nil, fmt.Errorf("deploy: %s in ONNX Runtime %s: %w", opts.Model, version, err)
	}
	r := &Report{Model: opts.Model, Interface: m.Meta.Interface, Jets: v.Jets, Tolerance: opts.Tolerance, Results: got}
	for i, o := range m.vlayout.outputs {
		r.Outputs = append(r.Outputs, compare(o, m.Meta.ValidationOutputs[i].Type, got[o.Name], v, m.vlayout, opts.Tolerance))
	}
	rep.Report = r
	d, ok := maxDiff(got, reference)
	rep.FromReference, rep.ShapeDiffers = d, !ok
	return rep, nil
}

// jetTensors are the one-jet interface's inputs for jet j of the vectors:
// the jet variables [1, n] and each group's valid constituents [n, vars],
// as Model.Run passes them.
func jetTensors(v *Vectors, j int) []ortcompat.Tensor {
	nj := len(v.JetVars)
	ts := []ortcompat.Tensor{{Name: model.JetFeaturesInput, Type: int32(onnxpb.TensorProto_FLOAT), Shape: []int64{1, int64(nj)}, Data: float32Bytes(v.JetRaw[j*nj : (j+1)*nj])}}
	for gi := range v.Groups {
		g := &v.Groups[gi]
		ts = append(ts, ortcompat.Tensor{Name: g.Input, Type: int32(onnxpb.TensorProto_FLOAT), Shape: []int64{int64(g.N[j]), int64(len(g.Vars))}, Data: float32Bytes(g.rows(j))})
	}
	return ts
}

// collect turns the worker's outputs, per jet, into the values per
// validation output that Model.Run returns.
func (m *Model) collect(calls [][]ortcompat.Tensor) (map[string][][]float32, error) {
	res := map[string][][]float32{}
	for j, outs := range calls {
		for _, t := range outs {
			var vals []float32
			switch t.Type {
			case int32(onnxpb.TensorProto_FLOAT):
				for i := 0; i+4 <= len(t.Data); i += 4 {
					vals = append(vals, math.Float32frombits(binary.LittleEndian.Uint32(t.Data[i:])))
				}
			case int32(onnxpb.TensorProto_INT8):
				for _, b := range t.Data {
					vals = append(vals, float32(int8(b)))
				}
			default:
				return nil, fmt.Errorf("jet %d: output %s has element type %d, want float32 or int8", j, t.Name, t.Type)
			}
			res[t.Name] = append(res[t.Name], vals)
		}
	}
	return res, nil
}

// maxDiff is the largest absolute difference between two runs' outputs
// (0 when ref is nil); false where their shapes differ.
func maxDiff(got, ref map[string][][]float32) (float64, bool) {
	d := 0.0
	for name, jets := range ref {
		g := got[name]
		if len(g) != len(jets) {
			return 0, false
		}
		for j := range jets {
			if len(g[j]) != len(jets[j]) {
				return 0, false
			}
			for i := range jets[j] {
				d = math.Max(d, math.Abs(float64(g[j][i])-float64(jets[j][i])))
			}
		}
	}
	return d, true
}

// float32Bytes is the little-endian encoding of v.
func float32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

// ExpandReleases turns the releases asked for (validate and export's --ort
// values) into release numbers: "default" stands for DefaultReleases of
// the model's opset, and a release is listed once.
func ExpandReleases(asked []string, opset int) ([]string, error) {
	var out []string
	for _, a := range asked {
		list := []string{a}
		if a == "default" {
			var err error
			if list, err = DefaultReleases(opset); err != nil {
				return nil, err
			}
		}
		for _, v := range list {
			if !slices.Contains(out, v) {
				out = append(out, v)
			}
		}
	}
	return out, nil
}

// ModelOpset returns the ONNX opset an exported model is stamped with.
func ModelOpset(path string) (int, error) {
	m, _, err := openMeta(path)
	if err != nil {
		return 0, err
	}
	if m.Meta.Opset > 0 {
		return m.Meta.Opset, nil
	}
	// Models exported before the metadata recorded it were opset 17.
	return graphOpset, nil
}
