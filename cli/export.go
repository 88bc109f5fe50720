package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/salt-ort/salt-ort/deploy"
	"github.com/urfave/cli/v2"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write the deployment ONNX model of a trained run, with metadata, a model card and validation vectors",
		ArgsUsage: "RUN_DIR",
		Description: `Writes OUT (ONNX, opset 17) in the interface ATLAS software loads: inputs
jet_features [1, n_jet_vars] and track_features [n_tracks, n_track_vars] with
raw variables (the normalisation is inside), outputs <model>_p<class>,
<model>_TrackOrigin and <model>_VertexIndex. --batched writes a batched
model instead (leading batch dimension and a valid mask). Beside OUT it
writes <OUT>.validation.h5 (jets of the validation split with the outputs
of the training-time evaluation graph) and <OUT>.md (a model card). The
same checkpoint always gives the same bytes.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "ONNX file to write", Required: true},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "best, last, or a checkpoint file"},
			&cli.BoolFlag{Name: "batched", Usage: "batched interface instead of one jet per call"},
			&cli.IntFlag{Name: "validation-jets", Value: 1000, Usage: "validation-split jets kept as validation vectors"},
			&cli.StringFlag{Name: "track-selection", Value: "r22default", Usage: "track selection recorded in the gnn_config metadata"},
			&cli.BoolFlag{Name: "json", Usage: "print what was written as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("salt-ort export: give exactly one run directory (salt-ort export RUN_DIR -o model.onnx)", ExitUsage)
			}
			rt, err := openRuntime(c)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			ex, err := deploy.Export(c.Context, deploy.ExportOptions{
				RunDir: c.Args().First(), Checkpoint: c.String("checkpoint"), Out: c.String("out"),
				Batched: c.Bool("batched"), ValidationJets: c.Int("validation-jets"),
				TrackSelection: c.String("track-selection"), Version: versionString(), Runtime: rt,
			})
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(ex)
			}
			fmt.Fprintf(c.App.Writer, "wrote %s (sha256 %s)\n      %s (%d validation jets)\n      %s\n", ex.Model, ex.SHA256, ex.Vectors, ex.Metadata.ValidationJets, ex.Card)
			return nil
		},
	}
}

func validateCommand() *cli.Command {
	return &cli.Command{
		Name:      "validate",
		Usage:     "check that an exported model reproduces its validation vectors",
		ArgsUsage: "model.onnx",
		Description: `Runs the exported model through ONNX Runtime on its validation vectors and
compares every output with what the training-time evaluation graph produced:
probabilities within --tolerance (absolute), classes and vertex indices
exactly, except where a probability is within the tolerance of a decision
boundary. Exits 1 when an output fails.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "vectors", Usage: "validation vectors (default: <model>.validation.h5)"},
			&cli.Float64Flag{Name: "tolerance", Value: deploy.DefaultTolerance, Usage: "largest absolute difference on probabilities"},
			&cli.BoolFlag{Name: "cpp", Usage: "also build the generated C++ program with CMake and require bit-identical outputs"},
			&cli.StringFlag{Name: "work-dir", Usage: "where --cpp generates and builds the C++ program (default: a temporary directory)"},
			&cli.BoolFlag{Name: "json", Usage: "print the comparison as JSON (exit code as without)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("salt-ort validate: give exactly one model file (salt-ort validate model.onnx)", ExitUsage)
			}
			rt, err := openRuntime(c)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			rep, err := deploy.Validate(c.Context, deploy.ValidateOptions{Model: c.Args().First(), Vectors: c.String("vectors"), Tolerance: c.Float64("tolerance"), Runtime: rt})
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				printValidationJSON(c, rep)
			} else {
				printValidationTable(c, rep)
			}
			if !rep.Pass() {
				return cli.Exit("salt-ort validate: the model does not reproduce its validation vectors", ExitFailure)
			}
			if c.Bool("cpp") {
				if err := validateCpp(c, rt, rep); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// printValidationJSON writes the comparison as JSON.
func printValidationJSON(c *cli.Context, rep *deploy.Report) {
	type output struct {
		deploy.OutputReport
		Pass bool
	}
	outs := make([]output, len(rep.Outputs))
	for i, o := range rep.Outputs {
		outs[i] = output{o, o.Pass()}
	}
	json.NewEncoder(c.App.Writer).Encode(struct {
		Model, Interface string
		Jets             int
		Tolerance        float64
		Outputs          []output
		Pass             bool
	}{rep.Model, rep.Interface, rep.Jets, rep.Tolerance, outs, rep.Pass()})
}

// printValidationTable writes the comparison as a table.
func printValidationTable(c *cli.Context, rep *deploy.Report) {
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "%s (%s interface), %d jets, tolerance %g\n", rep.Model, rep.Interface, rep.Jets, rep.Tolerance)
	fmt.Fprintln(w, "output\ttype\tcompared\tmax abs diff\tmax rel diff\tnear boundary\tmismatches\tresult")
	for _, o := range rep.Outputs {
		result := "ok"
		if !o.Pass() {
			result = "FAIL"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%.3g\t%.3g\t%d\t%d\t%s\n", o.Name, o.Type, o.Compared, o.MaxAbs, o.MaxRel, o.NearBoundary, o.Mismatches, result)
	}
	w.Flush()
}
