package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/salt-ort/salt-ort/deploy"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/urfave/cli/v2"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write the deployment ONNX model of a trained run, with metadata, a model card and validation vectors",
		ArgsUsage: "RUN_DIR",
		Description: `Writes OUT (ONNX, by default in the lowest opset the graph needs, so that
the oldest ONNX Runtime releases load it; --opset chooses one) in the
interface ATLAS software loads, as Salt's exporter writes it: inputs jet_features [1, n_jet_vars] (then any
parameters) and one <kind>_features [n, n_vars] per constituent group
(track_features, electron_features, …) with raw variables (the
normalisation is inside) and each jet's valid constituents; outputs
<model>_<pb|pc|pu|ptau…> per class, <model>_<target> (and _stddev) per
regression target in its units (float32 [n] for targets of each
constituent), int8 per-constituent <model>_TrackOrigin and
<model>_VertexIndex; with --object-name NAME (Salt's --object_name) a model
with a mask decoder also gets int8 <model>_<NAME>Index, each track's object,
computed in the model. Every task is exported unless
--tasks names some. The gnn_config metadata is Salt's (version v1).
--batched writes a batched model instead (leading batch dimension and valid
masks). Beside OUT it writes <OUT>.validation.h5 (jets of the validation
split with the outputs of the training-time evaluation graph) and the model
card, <OUT>.md and its JSON twin <OUT>.card.json: intended use (tasks,
selections, pt and |eta| of the training jets), inputs with units and
normalisation, outputs and D_b with eval's f_c, the SHA-256 of every
training and validation file and their jets per class, the performance
eval measured on the exported checkpoint with uncertainties, how to
validate, and the attributions of salt-ort explain. Before it reports success it runs the ONNX checker (in
/usr/bin/python3, or the Python $SALT_ORT_ONNX_PYTHON names; skipped, and
said why, where that cannot import onnx) and validates the model on its
own vectors; on a failure it exits 1 and writes nothing. With --ort it also runs the
vectors in those ONNX Runtime releases and records in the metadata and the
model card which reproduced them and the largest difference of each (a
release that cannot load the model is recorded by name, not a failure).
The same checkpoint always gives the same bytes. It runs on the CPU
whatever device the run was trained on (a model Salt trained on a GPU
exports on a CPU machine); --device cuda computes the validation vectors
on the GPU instead.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "ONNX file to write", Required: true},
			&cli.StringFlag{Name: "checkpoint", Value: "best", Usage: "best, last, or a checkpoint file"},
			&cli.BoolFlag{Name: "batched", Usage: "batched interface instead of one jet per call"},
			&cli.IntFlag{Name: "validation-jets", Value: 1000, Usage: "validation-split jets kept as validation vectors"},
			&cli.StringFlag{Name: "name", Usage: "model name prefixing the outputs (default: model.name); no '_' or '-'"},
			&cli.StringSliceFlag{Name: "tasks", Usage: "export only these tasks (repeat or comma-separate; default: every task)"},
			&cli.StringFlag{Name: "object-name", Usage: "export the objects of a mask decoder as <model>_<NAME>Index, each track's object (Salt's --object_name)"},
			&cli.StringSliceFlag{Name: "rename", Usage: "rename an output, OLD:NEW without the model prefix (e.g. pu:plight); repeatable"},
			&cli.StringFlag{Name: "track-selection", Value: "r22default", Usage: "track selection recorded in the gnn_config metadata (" + strings.Join(deploy.AthenaTrackSelections, ", ") + ")"},
			&cli.Float64Flag{Name: "tolerance", Value: deploy.DefaultTolerance, Usage: "tolerance of the validation the export must pass"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "where the evaluation graph computes the validation vectors: cpu (the same bytes on every machine) or cuda; the exported model is validated on the CPU, where ATLAS runs it"},
			&cli.BoolFlag{Name: "json", Usage: "print what was written as JSON"},
			&cli.IntFlag{Name: "opset", Usage: fmt.Sprintf("ONNX opset to write, %d to %d (default: the lowest the graph needs)", deploy.MinOpset, deploy.MaxOpset)},
			&cli.StringSliceFlag{Name: "ort", Usage: ortFlagUsage},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("salt-ort export: give exactly one run directory (salt-ort export RUN_DIR -o model.onnx)", ExitUsage)
			}
			if err := checkDevice(c); err != nil {
				return err
			}
			rename := map[string]string{}
			for _, r := range c.StringSlice("rename") {
				old, name, ok := strings.Cut(r, ":")
				if !ok || old == "" || name == "" {
					return cli.Exit(fmt.Sprintf("salt-ort export: --rename %q: give OLD:NEW, output names without the model prefix (e.g. --rename pu:plight)", r), ExitUsage)
				}
				if _, dup := rename[old]; dup {
					return cli.Exit(fmt.Sprintf("salt-ort export: --rename names %s twice", old), ExitUsage)
				}
				rename[old] = name
			}
			if name := c.String("name"); name != "" {
				if err := model.CheckDeployName(name); err != nil {
					return cli.Exit("salt-ort export: --name: "+err.Error(), ExitUsage)
				}
			}
			if sel := c.String("track-selection"); !slices.Contains(deploy.AthenaTrackSelections, sel) {
				return cli.Exit(fmt.Sprintf("salt-ort export: --track-selection %q is not one ATLAS's loader recognises (%s)", sel, strings.Join(deploy.AthenaTrackSelections, ", ")), ExitUsage)
			}
			rt, err := openRuntime(c)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			revision, modified := buildRevision()
			ex, err := deploy.Export(c.Context, deploy.ExportOptions{
				RunDir: c.Args().First(), Checkpoint: c.String("checkpoint"), Out: c.String("out"),
				Batched: c.Bool("batched"), ValidationJets: c.Int("validation-jets"),
				Name: c.String("name"), Tasks: splitList(strings.Join(c.StringSlice("tasks"), ",")), Rename: rename, ObjectName: c.String("object-name"),
				TrackSelection: c.String("track-selection"), Tolerance: c.Float64("tolerance"),
				Version: versionString(), Revision: revision, Modified: modified, Runtime: rt, Device: c.String("device"),
				Opset: c.Int("opset"), Releases: c.StringSlice("ort"), CheckerPython: os.Getenv(deploy.CheckerPythonEnv),
			})
			var verr *deploy.ValidationError
			if errors.As(err, &verr) {
				printValidationTable(c, verr.Report)
				return cli.Exit("salt-ort export: "+err.Error(), ExitFailure)
			}
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(ex)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "wrote %s (sha256 %s)\n      %s (%d validation jets)\n      %s and %s\n", ex.Model, ex.SHA256, ex.Vectors, ex.Metadata.ValidationJets, ex.Card, ex.CardJSON)
			checked := ex.CheckerSummary()
			worst := 0.0
			for _, o := range ex.Validation.Outputs {
				worst = math.Max(worst, o.MaxAbs)
			}
			fmt.Fprintf(w, "checked: %s; %d outputs reproduce the evaluation graph on %d jets (max abs diff %.3g, tolerance %g)\n",
				checked, len(ex.Validation.Outputs), ex.Validation.Jets, worst, ex.Validation.Tolerance)
			var checks []deploy.RuntimeCheck
			for _, r := range ex.Releases {
				checks = append(checks, r.Check(rt.Version()))
			}
			printReleases(c, ex.Metadata.Opset, ex.Validation.Tolerance, checks)
			for _, warn := range ex.Warnings {
				fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", warn)
			}
			return nil
		},
	}
}

// buildRevision returns the VCS revision salt-ort was built from and
// whether that tree had uncommitted changes, as Go records them.
func buildRevision() (string, bool) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", false
	}
	var rev string
	var modified bool
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	return rev, modified
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
boundary. With --ort it runs them again in each ONNX Runtime release named,
in a process of its own, and reports each release's largest difference
from the vectors and from the linked ONNX Runtime's outputs, or why the
release cannot load or run the model. With --cpp it also builds the
generated C++ program and requires its outputs to equal Go's bit for bit, then builds salt-ort-athena-check and
applies the rules ATLAS's two loaders apply to the model's metadata, inputs
and outputs, running it with 0, 1, 40 and 200 constituents. Exits 1 when an
output or a rule fails. The model runs on the CPU, where ATLAS runs it;
--device cuda runs it on ONNX Runtime's CUDA provider instead (an error
naming the fix where that is not available here).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "vectors", Usage: "validation vectors (default: <model>.validation.h5)"},
			&cli.Float64Flag{Name: "tolerance", Value: deploy.DefaultTolerance, Usage: "largest absolute difference on probabilities"},
			&cli.BoolFlag{Name: "cpp", Usage: "also build the generated C++ program with CMake and require bit-identical outputs, then check the model against ATLAS's loader rules from C++"},
			&cli.StringFlag{Name: "work-dir", Usage: "where --cpp generates and builds the C++ program (default: a temporary directory)"},
			&cli.StringFlag{Name: "device", Value: "cpu", Usage: "run the model on cpu (as ATLAS does) or cuda"},
			&cli.BoolFlag{Name: "json", Usage: "print the comparison as JSON (exit code as without)"},
			&cli.StringSliceFlag{Name: "ort", Usage: ortFlagUsage},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("salt-ort validate: give exactly one model file (salt-ort validate model.onnx)", ExitUsage)
			}
			if err := checkDevice(c); err != nil {
				return err
			}
			if c.Bool("cpp") && c.String("device") != "cpu" {
				return cli.Exit("salt-ort validate: --cpp compares the C++ program with Go's run on the CPU, bit for bit: drop --device cuda (or validate on the GPU in a separate call without --cpp)", ExitUsage)
			}
			rt, err := openRuntime(c)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			rep, err := deploy.Validate(c.Context, deploy.ValidateOptions{Model: c.Args().First(), Vectors: c.String("vectors"), Tolerance: c.Float64("tolerance"), Runtime: rt, Device: c.String("device")})
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
			if len(c.StringSlice("ort")) > 0 {
				if err := validateReleases(c, rt, rep); err != nil {
					return err
				}
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
