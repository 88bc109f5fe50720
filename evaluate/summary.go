package evaluate

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/salt-ort/salt-ort/flavour"
	"github.com/salt-ort/salt-ort/metrics"
)

// DefaultFC is the charm fraction f_c of the b-tagging discriminant
// D_b = ln(p_b / (f_c·p_c + (1−f_c)·p_u)), GN2's 0.2.
const DefaultFC = 0.2

// Float is a number that JSON writes as null when it is NaN or infinite
// (a rejection when no background jet passes, an AUC without background
// jets), since JSON has no such numbers.
type Float float64

// MarshalJSON writes the number, or null when it is not finite.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return json.Marshal(v)
}

// UnmarshalJSON reads a number, or null as NaN.
func (f *Float) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = Float(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = Float(v)
	return nil
}

// Summary is the performance of a model on one test file, as written to
// <run>/eval/<stem>.json.
type Summary struct {
	File       string `json:"file"`
	Model      string `json:"model"`
	Checkpoint string `json:"checkpoint"`
	Jets       int    `json:"jets"`
	// Loss is each task's loss on the file; null where it is not finite
	// (a model that gives a true class probability 0, or a diverged one).
	Loss map[string]Float `json:"loss"`
	// Flavour is the b-tagging performance of the first jet classification
	// task; nil without one with a b class.
	Flavour *Flavour `json:"flavour,omitempty"`
	// Constituents is the per-class accuracy of each constituent
	// classification task (track origin).
	Constituents []ClassAccuracy `json:"constituent_classification,omitempty"`
	// Vertexing is the pair efficiency and purity of each vertexing task.
	Vertexing []Vertexing `json:"vertexing,omitempty"`
	// Regression is the bias and resolution of each regression target.
	Regression []Regression `json:"regression,omitempty"`
	// Objects is the performance of a mask decoder's objects; nil without
	// one or without truth objects in the file.
	Objects *ObjectPerformance `json:"objects,omitempty"`
}

// Flavour is the b-tagging performance: the discriminant
// D_b = ln(p_b / (f_c·p_c + (1−f_c)·p_u)), and each background's rejection
// at the working points and AUC, computed with the metrics package
// (puma's conventions, unweighted jets).
type Flavour struct {
	Task   string         `json:"task"`
	FC     float64        `json:"fc"`
	Signal string         `json:"signal"` // the signal class name ("b")
	Jets   map[string]int `json:"jets"`   // jets per class name
	// SignalJets is the number of signal jets; without any no cut can be
	// placed, and Backgrounds carry counts only.
	SignalJets  int          `json:"signal_jets"`
	Backgrounds []Background `json:"backgrounds"`
}

// Background is one background flavour's performance.
type Background struct {
	Name  string `json:"name"`  // "c", "light" or "tau"
	Class string `json:"class"` // its class name in the task
	Jets  int    `json:"jets"`
	// AUC is the area under the ROC curve of D_b for signal versus this
	// background; null without jets of either.
	AUC Float `json:"auc"`
	// WorkingPoints are the rejections at the target b-efficiencies;
	// empty without jets of either.
	WorkingPoints []WorkingPoint `json:"working_points"`
}

// WorkingPoint is a background's rejection at one b-efficiency.
type WorkingPoint struct {
	Efficiency float64 `json:"efficiency"` // target signal efficiency
	// Cut is the D_b threshold (D_b ≥ Cut is tagged); null when infinite,
	// as it is when signal jets have p_b = 0.
	Cut              Float   `json:"cut"`
	SignalEfficiency float64 `json:"signal_efficiency"` // achieved with Cut
	// BackgroundEfficiency is the tagged fraction of the background.
	BackgroundEfficiency float64 `json:"background_efficiency"`
	// Rejection is 1/BackgroundEfficiency, null (infinite) when no
	// background jet passes; Uncertainty is its binomial uncertainty.
	Rejection   Float `json:"rejection"`
	Uncertainty Float `json:"uncertainty"`
}

// ClassAccuracy is a constituent classification task's accuracy over valid
// constituents with a known label: per true class, the fraction whose most
// probable class is the true one.
type ClassAccuracy struct {
	Task     string   `json:"task"`
	Classes  []string `json:"classes"`
	Count    []int64  `json:"count"`    // valid constituents per true class
	Accuracy []Float  `json:"accuracy"` // per class; null for empty classes
	Overall  Float    `json:"overall"`
}

// Vertexing is a vertexing task's track-pair performance: tracks are
// grouped into vertices as the deployment graph does (model.GroupVertices)
// and every pair of valid tracks of a jet counts.
type Vertexing struct {
	Task          string `json:"task"`
	TruePositive  int64  `json:"true_positive"`
	FalsePositive int64  `json:"false_positive"`
	FalseNegative int64  `json:"false_negative"`
	// Efficiency is the fraction of true same-vertex pairs found, Purity
	// the fraction of found pairs that are true; null when undefined.
	Efficiency Float `json:"efficiency"`
	Purity     Float `json:"purity"`
}

// Regression is the performance of one regression target: the mean and
// standard deviation of pred − truth (bias and resolution) and of
// (pred − truth)/truth over jets with truth ≠ 0.
type Regression struct {
	Task               string `json:"task"`
	Target             string `json:"target"`
	Jets               int    `json:"jets"`
	Bias               Float  `json:"bias"`
	Resolution         Float  `json:"resolution"`
	RelativeBias       Float  `json:"relative_bias"`
	RelativeResolution Float  `json:"relative_resolution"`
}

// Flavour roles: the class names that mean b, c, light and tau jets.
var (
	bNames     = []string{"b", "bjets"}
	cNames     = []string{"c", "cjets"}
	lightNames = []string{"u", "light", "l", "ujets", "lightjets"}
	tauNames   = []string{"tau", "taujets"}
)

// classIndex returns the index of the first class with one of the names,
// or -1. Names compare by their short output names (flavour.Short), so
// Salt's class names play the same roles as GN2's: bjets is b, ujets u.
func classIndex(classes []string, names []string) int {
	return slices.IndexFunc(classes, func(c string) bool {
		return slices.ContainsFunc(names, func(n string) bool { return flavour.Short(n) == flavour.Short(c) })
	})
}

// Discriminant returns D_b of each jet from its class probabilities
// (probs [n, len(classes)], row major) with metrics.Discriminant; p_c is 0
// without a c class. It fails without b or light classes.
func Discriminant(classes []string, probs []float32, fc float64) ([]float64, error) {
	ib, ic, iu := classIndex(classes, bNames), classIndex(classes, cNames), classIndex(classes, lightNames)
	if ib < 0 || iu < 0 {
		return nil, fmt.Errorf("evaluate: D_b needs b and light classes, the task has %s", strings.Join(classes, ", "))
	}
	nc := len(classes)
	n := len(probs) / nc
	pb, pc, pu := make([]float64, n), make([]float64, n), make([]float64, n)
	for j := range n {
		pb[j], pu[j] = float64(probs[j*nc+ib]), float64(probs[j*nc+iu])
		if ic >= 0 {
			pc[j] = float64(probs[j*nc+ic])
		}
	}
	return metrics.Discriminant(pb, pc, pu, fc)
}

// background is a background role: its display name and its class.
type background struct {
	name  string
	class int
}

// backgrounds returns the c, light and tau classes present in classes.
func backgrounds(classes []string) []background {
	var bs []background
	for _, r := range []struct {
		name  string
		names []string
	}{{"c", cNames}, {"light", lightNames}, {"tau", tauNames}} {
		if i := classIndex(classes, r.names); i >= 0 {
			bs = append(bs, background{r.name, i})
		}
	}
	return bs
}

// FlavourPerformance computes the b-tagging performance from each jet's
// discriminant and true class (labels index classes; negative labels are
// skipped): per background (c, light, tau where the task has them) the
// AUC and, at each target b-efficiency (effs; nil: 60/70/77/85 %), the cut
// with the efficiencies it achieves and the rejection with its binomial
// uncertainty. Empty classes give counts only; a discriminant of NaN is
// an error.
func FlavourPerformance(task string, classes []string, disc []float64, labels []int32, fc float64, effs []float64) (*Flavour, error) {
	if len(disc) != len(labels) {
		return nil, fmt.Errorf("evaluate: %d discriminants for %d labels", len(disc), len(labels))
	}
	ib := classIndex(classes, bNames)
	if ib < 0 {
		return nil, fmt.Errorf("evaluate: task %s has no b class (classes %s)", task, strings.Join(classes, ", "))
	}
	if effs == nil {
		effs = metrics.StandardEfficiencies()
	}
	byClass := make([][]float64, len(classes))
	for j, l := range labels {
		if l >= 0 && int(l) < len(classes) {
			byClass[l] = append(byClass[l], disc[j])
		}
	}
	f := &Flavour{Task: task, FC: fc, Signal: classes[ib], Jets: map[string]int{}, SignalJets: len(byClass[ib])}
	for i, c := range classes {
		f.Jets[c] = len(byClass[i])
	}
	sig := byClass[ib]
	for _, bg := range backgrounds(classes) {
		bkg := byClass[bg.class]
		out := Background{Name: bg.name, Class: classes[bg.class], Jets: len(bkg), AUC: Float(math.NaN()), WorkingPoints: []WorkingPoint{}}
		if len(sig) > 0 && len(bkg) > 0 {
			scores := append(slices.Clone(sig), bkg...)
			truth := make([]bool, len(scores))
			for i := range sig {
				truth[i] = true
			}
			auc, err := metrics.AUC(scores, truth, nil)
			if err != nil {
				return nil, fmt.Errorf("evaluate: b versus %s: %w", bg.name, err)
			}
			out.AUC = Float(auc)
			wps, err := metrics.RejectionsAt(sig, nil, bkg, nil, effs...)
			if err != nil {
				return nil, fmt.Errorf("evaluate: b versus %s: %w", bg.name, err)
			}
			for _, wp := range wps {
				out.WorkingPoints = append(out.WorkingPoints, WorkingPoint{
					Efficiency: wp.Efficiency, Cut: Float(wp.Cut), SignalEfficiency: wp.SignalEfficiency,
					BackgroundEfficiency: 1 / wp.Rejection, Rejection: Float(wp.Rejection), Uncertainty: Float(wp.Uncertainty),
				})
			}
		}
		f.Backgrounds = append(f.Backgrounds, out)
	}
	return f, nil
}

// summarise turns a pass's collection into the summary.
func summarise(file, modelName, checkpoint string, c *collection, fc float64, effs []float64) (*Summary, []float64, error) {
	s := &Summary{File: file, Model: modelName, Checkpoint: checkpoint, Jets: c.jets, Loss: map[string]Float{}}
	for task, l := range c.loss {
		s.Loss[task] = Float(l)
	}
	s.Objects = c.objects
	var disc []float64
	if fl := c.flavour; fl != nil && classIndex(fl.classes, bNames) >= 0 && classIndex(fl.classes, lightNames) >= 0 {
		var err error
		if disc, err = Discriminant(fl.classes, fl.probs, fc); err != nil {
			return nil, nil, err
		}
		if s.Flavour, err = FlavourPerformance(fl.task, fl.classes, disc, fl.labels, fc, effs); err != nil {
			return nil, nil, fmt.Errorf("evaluate: %s: %w", file, err)
		}
	}
	for _, o := range c.origins {
		a := ClassAccuracy{Task: o.task, Classes: o.classes, Count: o.total}
		var tot, cor int64
		for k := range o.classes {
			acc := math.NaN()
			if o.total[k] > 0 {
				acc = float64(o.correct[k]) / float64(o.total[k])
			}
			a.Accuracy = append(a.Accuracy, Float(acc))
			tot += o.total[k]
			cor += o.correct[k]
		}
		a.Overall = Float(math.NaN())
		if tot > 0 {
			a.Overall = Float(float64(cor) / float64(tot))
		}
		s.Constituents = append(s.Constituents, a)
	}
	for _, v := range c.vertexing {
		s.Vertexing = append(s.Vertexing, Vertexing{Task: v.task, TruePositive: v.counts.TruePositive, FalsePositive: v.counts.FalsePositive,
			FalseNegative: v.counts.FalseNegative, Efficiency: Float(v.counts.Efficiency()), Purity: Float(v.counts.Purity())})
	}
	for _, r := range c.regressions {
		bias := math.NaN()
		if r.abs.n > 0 {
			bias = r.abs.mean
		}
		rb := math.NaN()
		if r.rel.n > 0 {
			rb = r.rel.mean
		}
		s.Regression = append(s.Regression, Regression{Task: r.task, Target: r.target, Jets: r.abs.n,
			Bias: Float(bias), Resolution: Float(r.abs.std()), RelativeBias: Float(rb), RelativeResolution: Float(r.rel.std())})
	}
	return s, disc, nil
}

// fmtFloat prints a number with 3 significant digits, "–" when it is NaN
// and "inf" when infinite.
func fmtFloat(v Float) string {
	x := float64(v)
	switch {
	case math.IsNaN(x):
		return "–"
	case math.IsInf(x, 1):
		return "inf"
	}
	return fmt.Sprintf("%.3g", x)
}

// fmtRejection prints a rejection with its uncertainty.
func fmtRejection(wp WorkingPoint) string {
	r, u := float64(wp.Rejection), float64(wp.Uncertainty)
	if math.IsInf(r, 1) || math.IsNaN(r) {
		return "inf (no jet passes)"
	}
	prec := 1
	if r >= 100 {
		prec = 0
	}
	return fmt.Sprintf("%.*f ± %.*f", prec, r, prec, u)
}

// WriteTable prints the summary as aligned text tables: the rejections at
// the working points and the AUCs, the constituent accuracies, the
// vertexing pair performance, the regression resolution and the objects'
// losses and MaskFormer metrics.
func WriteTable(w io.Writer, s *Summary) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s: %d jets, model %s, checkpoint %s\n", s.File, s.Jets, s.Model, s.Checkpoint)
	if f := s.Flavour; f != nil {
		var counts []string
		counts = append(counts, fmt.Sprintf("b %d", f.SignalJets))
		for _, b := range f.Backgrounds {
			counts = append(counts, fmt.Sprintf("%s %d", b.Name, b.Jets))
		}
		fmt.Fprintf(tw, "D_b = ln(p_b / (f_c·p_c + (1−f_c)·p_u)), f_c = %g; jets: %s\n", f.FC, strings.Join(counts, ", "))
		header := []string{"b-eff", "cut"}
		for _, b := range f.Backgrounds {
			header = append(header, b.Name+"-rej")
		}
		fmt.Fprintln(tw, strings.Join(header, "\t"))
		var ref []WorkingPoint
		for _, b := range f.Backgrounds {
			if len(b.WorkingPoints) > 0 {
				ref = b.WorkingPoints
				break
			}
		}
		for i, wp := range ref {
			row := []string{fmt.Sprintf("%.0f%%", 100*wp.Efficiency), fmt.Sprintf("%.3f", wp.Cut)}
			for _, b := range f.Backgrounds {
				if len(b.WorkingPoints) == 0 {
					row = append(row, "– (no jets)")
					continue
				}
				row = append(row, fmtRejection(b.WorkingPoints[i]))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t"))
		}
		if ref == nil {
			fmt.Fprintf(tw, "no rejections: no %s jets or no background jets\n", f.Signal)
		}
		row := []string{"AUC", ""}
		for _, b := range f.Backgrounds {
			row = append(row, fmtFloat(b.AUC))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, a := range s.Constituents {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "%s: accuracy %s over %d tracks\n", a.Task, fmtFloat(a.Overall), sum(a.Count))
		fmt.Fprintln(tw, "class\t"+strings.Join(a.Classes, "\t"))
		var counts, accs []string
		for k := range a.Classes {
			counts = append(counts, fmt.Sprint(a.Count[k]))
			accs = append(accs, fmtFloat(a.Accuracy[k]))
		}
		fmt.Fprintln(tw, "tracks\t"+strings.Join(counts, "\t"))
		fmt.Fprintln(tw, "accuracy\t"+strings.Join(accs, "\t"))
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, v := range s.Vertexing {
		fmt.Fprintf(w, "%s: pair efficiency %s, purity %s (%d true pairs found, %d missed, %d fake)\n",
			v.Task, fmtFloat(v.Efficiency), fmtFloat(v.Purity), v.TruePositive, v.FalseNegative, v.FalsePositive)
	}
	for _, r := range s.Regression {
		fmt.Fprintf(w, "%s %s: bias %s, resolution %s; relative bias %s, relative resolution %s (%d jets)\n",
			r.Task, r.Target, fmtFloat(r.Bias), fmtFloat(r.Resolution), fmtFloat(r.RelativeBias), fmtFloat(r.RelativeResolution), r.Jets)
	}
	return writeObjects(w, s.Objects)
}

func sum(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}
