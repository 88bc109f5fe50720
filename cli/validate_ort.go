package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/salt-ort/salt-ort/deploy"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/urfave/cli/v2"
)

// ortFlagUsage documents validate and export's --ort.
const ortFlagUsage = "also run the validation vectors in ONNX Runtime release `VERSION` (e.g. 1.14.0), each in a process of its own; " +
	"\"default\" is the oldest release that loads the model's opset, " + deploy.MiddleRelease + " and " + deploy.NewestRelease +
	"; repeatable; releases are installed by third_party/onnxruntime/fetch-versions.sh (make deps installs 1.14.0, 1.17.3, 1.23.2, 1.31.1)"

// validateReleases runs the model's vectors in each release --ort names and
// prints how each compares with the vectors and with rep, the run in the
// linked ONNX Runtime. It fails when a release cannot load, run or
// reproduce the model.
func validateReleases(c *cli.Context, rt *runtime.Runtime, rep *deploy.Report) error {
	opset, err := deploy.ModelOpset(rep.Model)
	if err != nil {
		return exitFor(err)
	}
	versions, err := deploy.ExpandReleases(c.StringSlice("ort"), opset)
	if err != nil {
		return cli.Exit("salt-ort validate --ort: "+err.Error(), ExitUsage)
	}
	var checks []deploy.RuntimeCheck
	for _, v := range versions {
		if v == rt.Version() {
			continue // the run above
		}
		r, err := deploy.ValidateRelease(c.Context, deploy.ValidateOptions{Model: rep.Model, Vectors: c.String("vectors"), Tolerance: c.Float64("tolerance")}, v, rep.Results)
		if err != nil {
			return cli.Exit("salt-ort validate --ort "+v+": "+err.Error(), ExitFailure)
		}
		checks = append(checks, r.Check(rt.Version()))
	}
	if c.Bool("json") {
		json.NewEncoder(c.App.Writer).Encode(struct{ Releases []deploy.RuntimeCheck }{checks})
	} else {
		printReleases(c, opset, rep.Tolerance, checks)
	}
	var failed []string
	for _, ch := range checks {
		if !ch.Reproduced {
			failed = append(failed, ch.Version)
		}
	}
	if len(failed) > 0 {
		return cli.Exit(fmt.Sprintf("salt-ort validate: the model does not reproduce its validation vectors in ONNX Runtime %v (see above)", failed), ExitFailure)
	}
	return nil
}

// printReleases writes the releases' results as a table.
func printReleases(c *cli.Context, opset int, tol float64, checks []deploy.RuntimeCheck) {
	if len(checks) == 0 {
		return
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "ONNX Runtime releases (model opset %d, tolerance %g):\n", opset, tol)
	fmt.Fprintf(w, "release\tmax abs diff from the vectors\tfrom %s\tresult\n", checks[0].Reference)
	for _, ch := range checks {
		switch {
		case ch.Error != "":
			fmt.Fprintf(w, "%s\t\t\t%s\n", ch.Version, ch.Error)
		case ch.Reproduced:
			fmt.Fprintf(w, "%s\t%.3g\t%.3g\tok\n", ch.Version, ch.MaxAbs, ch.FromReference)
		default:
			fmt.Fprintf(w, "%s\t%.3g\t%.3g\tFAIL\n", ch.Version, ch.MaxAbs, ch.FromReference)
		}
	}
	w.Flush()
}
