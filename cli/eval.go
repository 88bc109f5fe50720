package cli

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/salt-ort/salt-ort/evaluate"
	"github.com/urfave/cli/v2"
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "evaluate a trained run on test files: Salt-compatible predictions, performance table and plots",
		ArgsUsage: "RUN_DIR | --compare RUN_A RUN_B",
		Description: `Runs the run's evaluation graph (best checkpoint) over each test file
(--test, relative to the working directory; default: the configuration's
test files), after the configuration's selections and up to --num-jets jets,
and writes into RUN_DIR/eval (or --out): <stem>.h5 with the predictions in
the layout of Salt's prediction writer (jets: the kept fields plus
<model>_pb/_pc/_pu/_ptau; tracks: the per-class track-origin
probabilities, <model>_VertexIndex and valid; for a model with a mask
decoder also objects: <model>_p<class> per object and the truth
class_label per slot, and <model>_MaskIndex, each track's object, in the
tracks),
<stem>.json with the performance summary, <stem>_disc_b.png (D_b per
flavour), <stem>_roc.png (c- and light-rejection against b-efficiency) and
loss.png (training and validation loss per epoch; a run import-salt made
has no training history, so it gets none, with a note on stderr). The
outputs appear only once all of them are written: a failed evaluation
leaves the output directory as it was. It prints the c- and
light-rejection at 60/70/77/85 % b-efficiency for
D_b = ln(p_b / (f_c·p_c + (1−f_c)·p_u)), the AUCs, the track-origin
accuracy per class, the vertexing pair efficiency and purity, the
regression resolution, and the objects' losses and Salt's MaskFormer metrics. A file without the truth labels of a task (an
unlabelled sample) gets that task's predictions only; a file with none at all
gets the prediction file only.

The evaluation runs on the run's training.device; --device cpu or cuda
chooses. A run trained on a GPU is evaluated on the CPU where CUDA is not
available here, with a note on stderr; an explicit --device cuda that
cannot be honoured is an error.

--compare RUN_A RUN_B evaluates both runs on the same test files (default:
RUN_A's) and writes compare_<stem>_roc.png (both ROC curves with the ratio
B/A) into --out (default: the current directory).`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "test", Usage: "test file, relative to the working directory; a pattern (*.h5) stands for the files it matches (repeat the flag for several; default: the configuration's test files)"},
			&cli.IntFlag{Name: "num-jets", Aliases: []string{"n"}, Usage: "evaluate the first N jets of each file (after the configuration's selections; 0 = all)"},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "best, last, or a checkpoint file"},
			&cli.StringSliceFlag{Name: "keep", Usage: "jets field to copy into the prediction file (repeatable; default: pt, eta, truth labels, eventNumber where present)"},
			&cli.Float64Flag{Name: "fc", Value: evaluate.DefaultFC, Usage: "charm fraction f_c of D_b"},
			&cli.StringFlag{Name: "out", Usage: "output directory (default: RUN_DIR/eval; with --compare the current directory)"},
			&cli.BoolFlag{Name: "compare", Usage: "compare two runs: salt-ort eval --compare RUN_A RUN_B"},
			&cli.BoolFlag{Name: "no-plots", Usage: "write no PNG files"},
			&cli.StringFlag{Name: "device", Usage: "cpu or cuda (default: the run's training.device, or the CPU, with a note, where CUDA is not available here)"},
			&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime threads (default: all cores)"},
			&cli.BoolFlag{Name: "json", Usage: "print the summaries as JSON instead of tables"},
		},
		Action: func(c *cli.Context) error {
			want := 1
			if c.Bool("compare") {
				want = 2
			}
			if c.NArg() != want {
				if want == 2 {
					return cli.Exit("salt-ort eval: --compare takes two run directories (salt-ort eval --compare RUN_A RUN_B)", ExitUsage)
				}
				return cli.Exit("salt-ort eval: give exactly one run directory (salt-ort eval RUN_DIR [--test FILE])", ExitUsage)
			}
			fc := c.Float64("fc")
			if !(fc >= 0 && fc <= 1) {
				return cli.Exit(fmt.Sprintf("salt-ort eval: --fc %v: the charm fraction must lie in [0, 1]", fc), ExitUsage)
			}
			rt, err := openRuntime(c)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			if c.Int("num-jets") < 0 {
				return cli.Exit("salt-ort eval: --num-jets must be ≥ 0 (0 = all)", ExitUsage)
			}
			if err := checkDevice(c); err != nil {
				return err
			}
			opts := evaluate.Options{
				Checkpoint: c.String("checkpoint"), OutDir: c.String("out"), NumJets: c.Int("num-jets"),
				FC: fc, NoPlots: c.Bool("no-plots"), Runtime: rt, Threads: c.Int("threads"), Device: c.String("device"),
			}
			if c.IsSet("test") {
				opts.Files = c.StringSlice("test")
			}
			if c.IsSet("keep") {
				opts.Keep = c.StringSlice("keep")
			}
			if c.Bool("compare") {
				opts.Log = c.App.ErrWriter
				return compare(c, opts)
			}
			opts.RunDir = c.Args().First()
			rep, err := evaluate.Run(c.Context, opts)
			if err != nil {
				return exitFor(err)
			}
			for _, n := range rep.Notes {
				fmt.Fprintf(c.App.ErrWriter, "note: %s\n", n)
			}
			if c.Bool("json") {
				var sums []*evaluate.Summary
				for _, f := range rep.Files {
					if f.Summary != nil {
						sums = append(sums, f.Summary)
					}
				}
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(sums)
			}
			for _, f := range rep.Files {
				if f.Summary == nil {
					fmt.Fprintf(c.App.Writer, "%s has no truth labels (%s): wrote the predictions only\nwrote %s\n\n",
						f.File, strings.Join(f.Unlabelled, ", "), f.Predictions)
					continue
				}
				if err := evaluate.WriteTable(c.App.Writer, f.Summary); err != nil {
					return cli.Exit(err, ExitFailure)
				}
				if len(f.Unlabelled) > 0 {
					fmt.Fprintf(c.App.Writer, "no truth for %s: predictions only for those tasks\n", strings.Join(f.Unlabelled, ", "))
				}
				fmt.Fprintf(c.App.Writer, "wrote %s\n      %s\n", f.Predictions, f.JSON)
				for _, p := range f.Plots {
					fmt.Fprintf(c.App.Writer, "      %s\n", p)
				}
				fmt.Fprintln(c.App.Writer)
			}
			if rep.LossPlot != "" {
				fmt.Fprintf(c.App.Writer, "wrote %s\n", rep.LossPlot)
			}
			return nil
		},
	}
}

// checkDevice refuses a --device other than cpu or cuda.
func checkDevice(c *cli.Context) error {
	if d := c.String("device"); c.IsSet("device") && d != "cpu" && d != "cuda" {
		return cli.Exit(fmt.Sprintf("salt-ort %s: --device %q: give cpu or cuda", c.Command.Name, d), ExitUsage)
	}
	return nil
}

// compare runs `salt-ort eval --compare RUN_A RUN_B`.
func compare(c *cli.Context, opts evaluate.Options) error {
	a, b := c.Args().Get(0), c.Args().Get(1)
	cmps, err := evaluate.Compare(c.Context, a, b, opts)
	if err != nil {
		return exitFor(err)
	}
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		var out []map[string]any
		for _, cmp := range cmps {
			out = append(out, map[string]any{"file": cmp.File, "a": cmp.A, "b": cmp.B, "plot": cmp.Plot})
		}
		return enc.Encode(out)
	}
	for _, cmp := range cmps {
		fmt.Fprintf(c.App.Writer, "A = %s\n", a)
		if err := evaluate.WriteTable(c.App.Writer, cmp.A); err != nil {
			return cli.Exit(err, ExitFailure)
		}
		fmt.Fprintf(c.App.Writer, "\nB = %s\n", b)
		if err := evaluate.WriteTable(c.App.Writer, cmp.B); err != nil {
			return cli.Exit(err, ExitFailure)
		}
		fmt.Fprintf(c.App.Writer, "\nrejection ratio B/A on %s:\n", cmp.File)
		fa, fb := cmp.A.Flavour, cmp.B.Flavour
		for _, bb := range fb.Backgrounds {
			for _, ba := range fa.Backgrounds {
				if ba.Name != bb.Name || len(ba.WorkingPoints) != len(bb.WorkingPoints) {
					continue
				}
				fmt.Fprintf(c.App.Writer, "  %s:", bb.Name)
				for i, wp := range bb.WorkingPoints {
					r := float64(wp.Rejection) / float64(ba.WorkingPoints[i].Rejection)
					if math.IsNaN(r) || math.IsInf(r, 0) {
						fmt.Fprintf(c.App.Writer, "  %.0f%% –", 100*wp.Efficiency)
					} else {
						fmt.Fprintf(c.App.Writer, "  %.0f%% %.3f", 100*wp.Efficiency, r)
					}
				}
				fmt.Fprintln(c.App.Writer)
			}
		}
		if cmp.Plot != "" {
			fmt.Fprintf(c.App.Writer, "wrote %s\n", cmp.Plot)
		}
	}
	return nil
}
