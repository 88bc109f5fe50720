package cli

import (
	"fmt"

	"github.com/salt-ort/salt-ort/explain"
	"github.com/urfave/cli/v2"
)

func explainCommand() *cli.Command {
	return &cli.Command{
		Name:      "explain",
		Usage:     "feature attributions of a trained run: integrated gradients and permutation importance",
		ArgsUsage: "RUN_DIR",
		Description: `Computes integrated gradients of each jet-class probability and each jet
regression target with respect to every jet and constituent input variable
(normalised, as the model reads them), with the gradients taken by the
graph's own reverse-mode autodiff, the one that trains. As Salt's
IntegratedGradientWriter does, each jet is compared with sampled
baselines: for each number of valid constituents (of the first group) in
[--min-constituents, --max-constituents], the --baselines jets of that size
whose flavour prediction has the highest entropy; the path integral uses
--steps Gauss-Legendre points (Captum's default rule) and the attributions
are averaged over the baselines.

The completeness check (Σ attributions = F(x) − mean F(baseline)) is run
for every jet and output and reported: a jet fails when |Δ| exceeds
--tolerance (relative to the output's change where that exceeds 1).

It reads the first --num-jets jets of --test (default: the configuration's
first test file) after the configuration's selections and writes into
RUN_DIR/explain (or --out): <stem>__attributions.h5 (groups preds, inputs,
baselines and attributions, as Salt's writer lays them out; per output
attributions/<task>/<class or target>/<input> with one field per
variable, and attributions/completeness with each jet's Δ),
<stem>_explain.json and ranking.json (per-flavour mean |attribution| per
variable and per constituent position, the ranking by p_b over b and
light jets, and the permutation importance: the drop of the b-vs-light AUC
of D_b when one variable is shuffled across jets), and the plots
<stem>_attr_<input>.png (bars per variable and flavour) and
<stem>_attr_<group>_positions.png (heat map per variable and position).
export puts ranking.json's table into the model card.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "test", Usage: "test file (default: the configuration's first test file)"},
			&cli.IntFlag{Name: "num-jets", Aliases: []string{"n"}, Value: explain.DefaultNumJets, Usage: "jets read from the test file (after the selections); the baselines are chosen among them"},
			&cli.IntFlag{Name: "steps", Value: explain.DefaultSteps, Usage: "integration points of the path integral (Salt's n_steps)"},
			&cli.IntFlag{Name: "baselines", Value: explain.DefaultBaselines, Usage: "sampled baselines per jet (Salt's n_baselines)"},
			&cli.IntFlag{Name: "min-constituents", Value: explain.DefaultMinConst, Usage: "attribute jets with at least this many constituents (Salt's min_allowed_track_sizes)"},
			&cli.IntFlag{Name: "max-constituents", Value: explain.DefaultMaxConst, Usage: "attribute jets with at most this many constituents (Salt's max_allowed_track_sizes)"},
			&cli.Float64Flag{Name: "tolerance", Value: explain.DefaultTolerance, Usage: "largest completeness error |Σ attributions − ΔF| per jet and output"},
			&cli.Float64Flag{Name: "fc", Value: explain.DefaultFC(), Usage: "charm fraction f_c of D_b for permutation importance"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the permutation importance's shuffle"},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "best, last, or a checkpoint file"},
			&cli.StringFlag{Name: "out", Usage: "output directory (default: RUN_DIR/explain)"},
			&cli.BoolFlag{Name: "no-plots", Usage: "write no PNG files"},
			&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime threads (default: all cores)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("salt-ort explain: give exactly one run directory (salt-ort explain RUN_DIR [--test FILE] [--num-jets N])", ExitUsage)
			}
			for _, f := range []string{"num-jets", "steps", "baselines"} {
				if c.Int(f) < 1 {
					return cli.Exit(fmt.Sprintf("salt-ort explain: --%s %d: give at least 1", f, c.Int(f)), ExitUsage)
				}
			}
			o := explain.Options{
				RunDir: c.Args().First(), Checkpoint: c.String("checkpoint"), File: c.String("test"), OutDir: c.String("out"),
				NumJets: c.Int("num-jets"), Steps: c.Int("steps"), Baselines: c.Int("baselines"),
				MinConst: c.Int("min-constituents"), MaxConst: c.Int("max-constituents"), Tolerance: c.Float64("tolerance"),
				FC: c.Float64("fc"), Seed: c.Uint64("seed"), NoPlots: c.Bool("no-plots"), Threads: c.Int("threads"), Log: c.App.ErrWriter,
			}
			if err := o.Validate(); err != nil {
				return cli.Exit("salt-ort "+err.Error(), ExitUsage)
			}
			rt, err := openRuntime(c)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			o.Runtime = rt
			rep, err := explain.Run(c.Context, o)
			if err != nil {
				return exitFor(err)
			}
			return printExplain(c, rep)
		},
	}
}

// printExplain prints the completeness check and the two rankings.
func printExplain(c *cli.Context, rep *explain.Report) error {
	w := c.App.Writer
	n := 0
	for _, f := range rep.Flavours {
		if f.Flavour == "all" {
			n = f.Jets
		}
	}
	fmt.Fprintf(w, "integrated gradients of %d jets (of %d read; %d steps, %d baselines, %d–%d constituents)\n",
		n, rep.JetsRead, rep.Steps, rep.NumBaselines, rep.MinConst, rep.MaxConst)
	status := "holds"
	if rep.Failed > 0 {
		status = fmt.Sprintf("FAILS for %d jets", rep.Failed)
	}
	fmt.Fprintf(w, "completeness %s: max |Σ attributions − ΔF| = %.3g (tolerance %g)\n\n", status, rep.MaxDelta, rep.Tolerance)
	fmt.Fprintf(w, "ranking by mean |attribution| of %s (%s jets)   permutation importance (AUC drop, AUC %.4f)\n", rep.RankOutput, rep.RankJets, rep.BaseAUC)
	for i := range max(len(rep.Ranking), len(rep.Permutation)) {
		left, right := "", ""
		if i < len(rep.Ranking) {
			r := rep.Ranking[i]
			left = fmt.Sprintf("%2d. %-40s %.4f", i+1, r.Group+"."+r.Var, r.Score)
		}
		if i < len(rep.Permutation) {
			r := rep.Permutation[i]
			right = fmt.Sprintf("%-40s %+.4f", r.Group+"."+r.Var, r.Score)
		}
		fmt.Fprintf(w, "%-56s   %s\n", left, right)
	}
	fmt.Fprintln(w)
	for _, p := range rep.Written {
		fmt.Fprintf(w, "wrote %s\n", p)
	}
	if rep.Failed > 0 {
		return cli.Exit(fmt.Sprintf("salt-ort explain: completeness fails for %d jets: raise --steps or --tolerance", rep.Failed), ExitFailure)
	}
	return nil
}
