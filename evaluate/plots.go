package evaluate

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/internal/atomicfile"
	"github.com/salt-ort/salt-ort/metrics"
	"github.com/salt-ort/salt-ort/run"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot geometry of every PNG salt-ort writes: 16 × 12 cm at 150 dpi
// (about 940 × 710 pixels).
const (
	PlotWidth  = 16 * vg.Centimeter
	PlotHeight = 12 * vg.Centimeter
	PlotDPI    = 150
)

// FlavourColors are puma's flavour colours, by the short flavour name.
var FlavourColors = map[string]color.Color{
	"b":     color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	"c":     color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	"light": color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	"tau":   color.RGBA{R: 0x7c, G: 0x52, B: 0x95, A: 0xff},
}

// taskColors colour the tasks of the loss plot (matplotlib's tab10).
var taskColors = []color.Color{
	color.RGBA{A: 0xff},
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff},
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff},
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff},
}

// ROCEfficiencies are the b-efficiencies ROC curves are computed at:
// 0.5 to 1 in steps of 0.005.
func ROCEfficiencies() []float64 {
	effs := make([]float64, 101)
	for i := range effs {
		effs[i] = 0.5 + 0.005*float64(i)
	}
	return effs
}

// ROC is one background's rejection as a function of the b-efficiency.
type ROC struct {
	Background string    // "c", "light" or "tau"
	Efficiency []float64 // signal efficiencies
	Rejection  []float64 // background rejection at each; +Inf when none passes
}

// ROCCurves returns the rejection of each background class with jets (c,
// light, tau) at the efficiencies effs (nil: ROCEfficiencies), from each
// jet's discriminant and true class. It fails without signal jets.
func ROCCurves(classes []string, disc []float64, labels []int32, effs []float64) ([]ROC, error) {
	if effs == nil {
		effs = ROCEfficiencies()
	}
	ib := classIndex(classes, bNames)
	if ib < 0 {
		return nil, fmt.Errorf("evaluate: no b class in %s", strings.Join(classes, ", "))
	}
	byClass := make([][]float64, len(classes))
	for j, l := range labels {
		if l >= 0 && int(l) < len(classes) {
			byClass[l] = append(byClass[l], disc[j])
		}
	}
	if len(byClass[ib]) == 0 {
		return nil, fmt.Errorf("evaluate: no %s jets for a ROC curve", classes[ib])
	}
	var curves []ROC
	for _, bg := range backgrounds(classes) {
		if len(byClass[bg.class]) == 0 {
			continue
		}
		wps, err := metrics.RejectionsAt(byClass[ib], nil, byClass[bg.class], nil, effs...)
		if err != nil {
			return nil, fmt.Errorf("evaluate: ROC of b versus %s: %w", bg.name, err)
		}
		r := ROC{Background: bg.name}
		for _, wp := range wps {
			r.Efficiency = append(r.Efficiency, wp.Efficiency)
			r.Rejection = append(r.Rejection, wp.Rejection)
		}
		curves = append(curves, r)
	}
	return curves, nil
}

// savePNG draws the plots stacked on one canvas, each in its fraction of
// the height (top first), with their data areas aligned horizontally, and
// writes a PNG, atomically.
func savePNG(path string, plots []*plot.Plot, fractions []float64) error {
	c := vgimg.NewWith(vgimg.UseWH(PlotWidth, PlotHeight), vgimg.UseDPI(PlotDPI))
	dc := draw.New(c)
	canvases := make([]draw.Canvas, len(plots))
	top := dc.Max.Y
	height := dc.Max.Y - dc.Min.Y
	for i, f := range fractions {
		h := vg.Length(f) * height
		canvases[i] = draw.Canvas{Canvas: dc.Canvas, Rectangle: vg.Rectangle{Min: vg.Point{X: dc.Min.X, Y: top - h}, Max: vg.Point{X: dc.Max.X, Y: top}}}
		top -= h
	}
	for _, p := range plots {
		p.Legend.XOffs, p.Legend.YOffs = -vg.Points(8), -vg.Points(4)
	}
	// Align the left and right edges of the data areas.
	left, right := dc.Min.X, dc.Max.X
	for i, p := range plots {
		da := p.DataCanvas(canvases[i])
		left, right = max(left, da.Min.X), min(right, da.Max.X)
	}
	for i, p := range plots {
		da := p.DataCanvas(canvases[i])
		p.Draw(draw.Crop(canvases[i], left-da.Min.X, right-da.Max.X, 0, 0))
	}
	// Encoded in memory and written atomically: a full disk leaves no
	// partial PNG.
	var png bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&png); err != nil {
		return fmt.Errorf("evaluate: encoding %s: %w", path, err)
	}
	if err := atomicfile.Write(path, png.Bytes()); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	return nil
}

// line returns a line plotter in a colour, dashed if asked.
func line(pts plotter.XYs, c color.Color, dashed bool) (*plotter.Line, error) {
	l, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = vg.Points(1.5)
	if dashed {
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	}
	return l, nil
}

// logAxis puts an axis on a log scale between lo and hi (both > 0).
func logAxis(a *plot.Axis, lo, hi float64) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = plot.LogTicks{Prec: -1}
	a.Min, a.Max = lo, hi
}

// PlotDiscriminant writes a PNG of the D_b distribution of each flavour
// (b, c, light, tau where present), normalised to unit area, with a log
// y-axis. Values outside the central 99.8 % of all jets fall into the
// outer bins.
func PlotDiscriminant(path, title string, classes []string, disc []float64, labels []int32, fc float64) error {
	if len(disc) == 0 {
		return fmt.Errorf("evaluate: %s: no jets to plot", path)
	}
	sorted := slices.Clone(disc)
	slices.Sort(sorted)
	lo, hi := sorted[len(sorted)/1000], sorted[len(sorted)-1-len(sorted)/1000]
	if !(hi > lo) {
		lo, hi = lo-1, hi+1
	}
	const bins = 50
	width := (hi - lo) / bins
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = fmt.Sprintf("D_b  (f_c = %g)", fc)
	p.Y.Label.Text = "normalised number of jets"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	roles := append([]background{{"b", classIndex(classes, bNames)}}, backgrounds(classes)...)
	type hist struct {
		name string
		y    []float64
	}
	var hs []hist
	ymin, ymax := math.Inf(1), 0.0
	for _, r := range roles {
		if r.class < 0 {
			continue
		}
		counts := make([]float64, bins)
		n := 0
		for j, l := range labels {
			if int(l) != r.class {
				continue
			}
			k := int((disc[j] - lo) / width)
			counts[min(max(k, 0), bins-1)]++
			n++
		}
		if n == 0 {
			continue
		}
		for k := range counts {
			counts[k] /= float64(n) * width
			if counts[k] > 0 {
				ymin, ymax = min(ymin, counts[k]), max(ymax, counts[k])
			}
		}
		hs = append(hs, hist{r.name, counts})
	}
	if len(hs) == 0 {
		return fmt.Errorf("evaluate: %s: no b, c, light or tau jets to plot", path)
	}
	floor := ymin / 3
	for _, h := range hs {
		pts := make(plotter.XYs, bins+1)
		for k := range pts {
			y := h.y[min(k, bins-1)]
			pts[k] = plotter.XY{X: lo + float64(k)*width, Y: max(y, floor)}
		}
		l, err := line(pts, FlavourColors[h.name], false)
		if err != nil {
			return err
		}
		l.StepStyle = plotter.PostStep
		p.Add(l)
		p.Legend.Add(h.name+"-jets", l)
	}
	p.X.Min, p.X.Max = lo, hi
	logAxis(&p.Y, floor, ymax*20)
	return savePNG(path, []*plot.Plot{p}, []float64{1})
}

// rocLines adds the finite points of each curve to p, dashed if asked,
// and returns the range of rejections drawn.
func rocLines(p *plot.Plot, curves []ROC, dashed bool, label string) (lo, hi float64, err error) {
	lo, hi = math.Inf(1), 0
	for _, c := range curves {
		var pts plotter.XYs
		for i, r := range c.Rejection {
			if !math.IsInf(r, 0) && !math.IsNaN(r) && r > 0 {
				pts = append(pts, plotter.XY{X: c.Efficiency[i], Y: r})
				lo, hi = min(lo, r), max(hi, r)
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, err := line(pts, FlavourColors[c.Background], dashed)
		if err != nil {
			return 0, 0, err
		}
		p.Add(l)
		p.Legend.Add(strings.TrimSpace(c.Background+"-jet rejection "+label), l)
	}
	return lo, hi, nil
}

// PlotROC writes a PNG of the ROC curves: each background's rejection
// against the b-efficiency from 0.5 to 1, log y.
func PlotROC(path, title string, curves []ROC) error {
	p := rocPlot(title)
	lo, hi, err := rocLines(p, curves, false, "")
	if err != nil {
		return err
	}
	if hi == 0 {
		return fmt.Errorf("evaluate: %s: no finite rejection to plot", path)
	}
	logAxis(&p.Y, max(lo/1.5, 0.5), hi*3)
	return savePNG(path, []*plot.Plot{p}, []float64{1})
}

func rocPlot(title string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "b-jet efficiency"
	p.Y.Label.Text = "background rejection"
	p.X.Min, p.X.Max = 0.5, 1
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

// PlotCompare writes a PNG comparing the ROC curves of two models on the
// same file: both in the upper panel (A solid, B dashed) and the ratio of
// rejections B/A per background in the lower one.
func PlotCompare(path, title, nameA, nameB string, a, b []ROC) error {
	p := rocPlot(title)
	loA, hiA, err := rocLines(p, a, false, "("+nameA+")")
	if err != nil {
		return err
	}
	loB, hiB, err := rocLines(p, b, true, "("+nameB+")")
	if err != nil {
		return err
	}
	lo, hi := min(loA, loB), max(hiA, hiB)
	if hi == 0 {
		return fmt.Errorf("evaluate: %s: no finite rejection to plot", path)
	}
	logAxis(&p.Y, max(lo/1.5, 0.5), hi*3)
	p.X.Label.Text = ""
	p.X.Tick.Label.Color = color.Transparent // the ratio panel's axis labels the efficiency

	r := plot.New()
	r.X.Label.Text = "b-jet efficiency"
	r.Y.Label.Text = "ratio " + nameB + " / " + nameA
	r.X.Min, r.X.Max = 0.5, 1
	r.Add(plotter.NewGrid())
	one, err := line(plotter.XYs{{X: 0.5, Y: 1}, {X: 1, Y: 1}}, color.Gray{Y: 0x80}, true)
	if err != nil {
		return err
	}
	r.Add(one)
	rlo, rhi := 1.0, 1.0
	for _, cb := range b {
		i := slices.IndexFunc(a, func(c ROC) bool { return c.Background == cb.Background })
		if i < 0 {
			continue
		}
		ca := a[i]
		var pts plotter.XYs
		for k := range min(len(ca.Rejection), len(cb.Rejection)) {
			ra, rb := ca.Rejection[k], cb.Rejection[k]
			if ca.Efficiency[k] != cb.Efficiency[k] || math.IsInf(ra, 0) || math.IsInf(rb, 0) || !(ra > 0) || !(rb > 0) {
				continue
			}
			pts = append(pts, plotter.XY{X: ca.Efficiency[k], Y: rb / ra})
			rlo, rhi = min(rlo, rb/ra), max(rhi, rb/ra)
		}
		if len(pts) == 0 {
			continue
		}
		l, err := line(pts, FlavourColors[cb.Background], false)
		if err != nil {
			return err
		}
		r.Add(l)
	}
	pad := 0.1 * (rhi - rlo)
	r.Y.Min, r.Y.Max = rlo-pad-0.05, rhi+pad+0.05
	return savePNG(path, []*plot.Plot{p, r}, []float64{0.7, 0.3})
}

// LossCurves are a run's losses per epoch, read from its metrics files:
// Train[name] averages the logged training steps of each epoch, Val[name]
// is the validation loss after each epoch (epoch 0: the untrained model).
// Names are "total" and the task names.
type LossCurves struct {
	Tasks      []string
	TrainEpoch []float64
	Train      map[string][]float64
	ValEpoch   []float64
	Val        map[string][]float64
}

// ErrNoHistory reports a run directory without training history: neither
// metrics/train.csv nor metrics/val.csv exists, as in a run import-salt
// made and salt-ort has not trained. ReadLosses wraps it.
var ErrNoHistory = errors.New("no training history")

// ReadLosses reads the training and validation losses of a run directory
// (metrics/train.csv and metrics/val.csv). Where neither file exists the
// error wraps ErrNoHistory; one without the other is a damaged run.
func ReadLosses(runDir string) (*LossCurves, error) {
	if !exists(filepath.Join(runDir, run.TrainMetrics)) && !exists(filepath.Join(runDir, run.ValMetrics)) {
		return nil, fmt.Errorf("evaluate: %s: %w (%s and %s are absent): it has not been trained by salt-ort", runDir, ErrNoHistory, run.TrainMetrics, run.ValMetrics)
	}
	read := func(name string) ([]string, [][]float64, error) {
		path := filepath.Join(runDir, name)
		f, err := os.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("evaluate: %w", err)
		}
		defer f.Close()
		rows, err := csv.NewReader(f).ReadAll()
		if err != nil {
			return nil, nil, fmt.Errorf("evaluate: %s: %w", path, err)
		}
		if len(rows) == 0 {
			return nil, nil, fmt.Errorf("evaluate: %s: empty", path)
		}
		var vals [][]float64
		for i, row := range rows[1:] {
			v := make([]float64, len(row))
			for j, s := range row {
				if v[j], err = strconv.ParseFloat(s, 64); err != nil {
					return nil, nil, fmt.Errorf("evaluate: %s: line %d, column %s: %w", path, i+2, rows[0][j], err)
				}
			}
			vals = append(vals, v)
		}
		return rows[0], vals, nil
	}
	col := func(header []string, name, path string) (int, error) {
		if i := slices.Index(header, name); i >= 0 {
			return i, nil
		}
		return 0, fmt.Errorf("evaluate: %s: no column %q", filepath.Join(runDir, path), name)
	}
	lc := &LossCurves{Train: map[string][]float64{}, Val: map[string][]float64{}}
	th, tv, err := read(run.TrainMetrics)
	if err != nil {
		return nil, err
	}
	vh, vv, err := read(run.ValMetrics)
	if err != nil {
		return nil, err
	}
	for _, h := range th {
		if t, ok := run.LossColumnTask(h); ok {
			lc.Tasks = append(lc.Tasks, t)
		}
	}
	names := append([]string{"total"}, lc.Tasks...)
	trainCol := func(n string) string {
		if n == "total" {
			return run.LossColumn
		}
		return run.TaskLossColumn(n)
	}
	valCol := func(n string) string { return run.ValColumn(trainCol(n)) }
	ep, err := col(th, run.EpochColumn, run.TrainMetrics)
	if err != nil {
		return nil, err
	}
	// Training: the mean of the logged steps of each epoch.
	for _, n := range names {
		c, err := col(th, trainCol(n), run.TrainMetrics)
		if err != nil {
			return nil, err
		}
		var epochs, means []float64
		for i := 0; i < len(tv); {
			e, s, k := tv[i][ep], 0.0, 0
			for ; i < len(tv) && tv[i][ep] == e; i++ {
				s += tv[i][c]
				k++
			}
			epochs, means = append(epochs, e), append(means, s/float64(k))
		}
		lc.TrainEpoch, lc.Train[n] = epochs, means
	}
	vep, err := col(vh, run.EpochColumn, run.ValMetrics)
	if err != nil {
		return nil, err
	}
	lc.ValEpoch = nil
	for _, row := range vv {
		lc.ValEpoch = append(lc.ValEpoch, row[vep])
	}
	for _, n := range names {
		c, err := col(vh, valCol(n), run.ValMetrics)
		if err != nil {
			return nil, err
		}
		for _, row := range vv {
			lc.Val[n] = append(lc.Val[n], row[c])
		}
	}
	return lc, nil
}

// exists reports whether path names something (a broken entry counts).
func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// PlotLoss writes a PNG of the training (solid, the mean over each
// epoch's logged steps) and validation (dashed) loss per epoch, total and
// per task.
func PlotLoss(path, title string, lc *LossCurves) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = "loss"
	p.Legend.Top = true
	p.Add(plotter.NewGrid())
	drawn, ymax, entries := false, 0.0, 0
	for i, n := range append([]string{"total"}, lc.Tasks...) {
		c := taskColors[i%len(taskColors)]
		for _, s := range []struct {
			x, y   []float64
			dashed bool
			label  string
		}{{lc.TrainEpoch, lc.Train[n], false, n + " (train)"}, {lc.ValEpoch, lc.Val[n], true, n + " (val)"}} {
			var pts plotter.XYs
			for k := range min(len(s.x), len(s.y)) {
				if !math.IsNaN(s.y[k]) && !math.IsInf(s.y[k], 0) {
					pts = append(pts, plotter.XY{X: s.x[k], Y: s.y[k]})
					ymax = max(ymax, s.y[k])
				}
			}
			if len(pts) == 0 {
				continue
			}
			l, err := line(pts, c, s.dashed)
			if err != nil {
				return err
			}
			p.Add(l)
			p.Legend.Add(s.label, l)
			drawn = true
			entries++
		}
	}
	if !drawn {
		return fmt.Errorf("evaluate: %s: no losses to plot", path)
	}
	// Leave the legend room above the curves.
	p.Y.Min, p.Y.Max = 0, ymax/(1-min(0.045*float64(entries), 0.6))
	return savePNG(path, []*plot.Plot{p}, []float64{1})
}
