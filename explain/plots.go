package explain

import (
	"bytes"
	"fmt"
	"image/color"
	"path/filepath"

	"github.com/salt-ort/salt-ort/evaluate"
	"github.com/salt-ort/salt-ort/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// flavourColor is puma's colour of a flavour (evaluate's, u as light),
// grey for the rest.
func flavourColor(name string) color.Color {
	for _, n := range []string{name, trimJets(name)} {
		if n == "u" {
			n = "light"
		}
		if c, ok := evaluate.FlavourColors[n]; ok {
			return c
		}
	}
	return color.Gray{Y: 0x80}
}

func trimJets(s string) string {
	if len(s) > 4 && s[len(s)-4:] == "jets" {
		return s[:len(s)-4]
	}
	return s
}

// plot draws, for each input group, a bar chart of the mean |attribution|
// of the ranking output per variable and flavour (<stem>_attr_<group>.png)
// and, for constituent groups, a heat map of it per variable and position
// (<stem>_attr_<group>_positions.png).
func (r *Report) plot(dir, stem string) ([]string, error) {
	k := 0
	for i, o := range r.Outputs {
		if o == r.RankOutput {
			k = i
		}
	}
	var written []string
	for gi, g := range r.Groups {
		p := filepath.Join(dir, fmt.Sprintf("%s_attr_%s.png", stem, g.Name))
		if err := r.barChart(p, k, gi); err != nil {
			return nil, err
		}
		written = append(written, p)
		if g.MaxLen == 0 {
			continue
		}
		p = filepath.Join(dir, fmt.Sprintf("%s_attr_%s_positions.png", stem, g.Name))
		if err := r.heatMap(p, k, gi); err != nil {
			return nil, err
		}
		written = append(written, p)
	}
	return written, nil
}

// barChart draws horizontal bars per variable, one per flavour.
func (r *Report) barChart(path string, k, gi int) error {
	g := r.Groups[gi]
	p := plot.New()
	p.Title.Text = fmt.Sprintf("integrated gradients of %s: %s inputs", r.Outputs[k], g.Name)
	p.X.Label.Text = "mean |attribution|"
	var flavours []FlavourMeans
	for _, f := range r.Flavours {
		if f.Flavour != "all" || len(r.Flavours) == 1 {
			flavours = append(flavours, f)
		}
	}
	// Each variable's slot of the data area holds one bar per flavour
	// and a gap of one bar.
	height := evaluate.PlotHeight + vg.Length(len(g.Vars))*vg.Points(6)
	w := (height - vg.Points(80)) / vg.Length(len(g.Vars)*(len(flavours)+1))
	hi := 0.0
	for i, f := range flavours {
		vals := make(plotter.Values, len(g.Vars))
		copy(vals, f.Vars[k][gi])
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return fmt.Errorf("explain: %s: %w", path, err)
		}
		bars.Horizontal = true
		bars.Color = flavourColor(f.Flavour)
		bars.LineStyle.Width = 0
		bars.Offset = (vg.Length(i) - vg.Length(len(flavours)-1)/2) * w
		p.Add(bars)
		for _, v := range vals {
			hi = max(hi, v)
		}
		p.Legend.Add(fmt.Sprintf("%s (%d jets)", f.Flavour, f.Jets), bars)
	}
	p.NominalY(g.Vars...)
	p.X.Min, p.X.Max = 0, 1.3*hi // room for the legend
	p.Legend.Top = true
	return savePNG(path, p, evaluate.PlotWidth, height)
}

// grid is a heat map's values: variables (y) by positions (x).
type grid struct{ z [][]float64 }

func (g grid) Dims() (c, r int)   { return len(g.z[0]), len(g.z) }
func (g grid) Z(c, r int) float64 { return g.z[r][c] }
func (g grid) X(c int) float64    { return float64(c) }
func (g grid) Y(r int) float64    { return float64(r) }

// heatMap draws the mean |attribution| of output k per variable and
// constituent position of group gi over the ranking jets.
func (r *Report) heatMap(path string, k, gi int) error {
	g := r.Groups[gi]
	z := make([][]float64, len(g.Vars))
	for v := range z {
		z[v] = make([]float64, g.MaxLen)
	}
	n := 0
	for i, j := range r.jets {
		if !r.inRanking(j) {
			continue
		}
		n++
		for e, x := range r.attr[i][k][gi] {
			z[e%len(g.Vars)][e/len(g.Vars)] += abs(x)
		}
	}
	hi := 0.0
	for _, row := range z {
		for t := range row {
			row[t] /= float64(max(n, 1))
			hi = max(hi, row[t])
		}
	}
	pal := moreland.SmoothBlueRed()
	pal.SetMin(0)
	pal.SetMax(max(hi, 1e-12))
	hm := plotter.NewHeatMap(grid{z}, pal.Palette(64))
	p := plot.New()
	p.Title.Text = fmt.Sprintf("mean |attribution| of %s (%s jets, max %.3g)", r.Outputs[k], r.RankJets, hi)
	p.X.Label.Text = g.Name + " position (ordered as the input)"
	p.Add(hm)
	p.NominalY(g.Vars...)
	return savePNG(path, p, evaluate.PlotWidth, evaluate.PlotHeight+vg.Length(len(g.Vars))*vg.Points(6))
}

// inRanking reports whether jet j is one of the ranking's jets.
func (r *Report) inRanking(j int) bool {
	if r.RankJets == "all" {
		return true
	}
	l := r.flavourName(r.labels[j])
	b, u := classIndex(r.classes, "b", "bjets"), classIndex(r.classes, "u", "light", "ujets")
	return b >= 0 && u >= 0 && (l == r.classes[b] || l == r.classes[u])
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// savePNG draws p into a PNG at path, written atomically.
func savePNG(path string, p *plot.Plot, w, h vg.Length) error {
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(evaluate.PlotDPI))
	p.Draw(draw.New(c))
	var png bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&png); err != nil {
		return fmt.Errorf("explain: encoding %s: %w", path, err)
	}
	if err := atomicfile.Write(path, png.Bytes()); err != nil {
		return fmt.Errorf("explain: %w", err)
	}
	return nil
}
