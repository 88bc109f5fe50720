package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/salt-ort/salt-ort/cpp/athenacheck"
	"github.com/salt-ort/salt-ort/deploy"
	"github.com/salt-ort/salt-ort/runtime"
	"github.com/urfave/cli/v2"
)

// validateCpp builds the C++ program generated for the model with CMake,
// runs it on the validation vectors and requires its outputs to equal the
// Go run's (rep, single-threaded) bit for bit.
func validateCpp(c *cli.Context, rt *runtime.Runtime, rep *deploy.Report) error {
	vectors := c.String("vectors")
	if vectors == "" {
		vectors = deploy.VectorsPath(rep.Model)
	}
	r, err := deploy.ValidateCppPath(c.Context, rt, rep.Model, vectors, rep.Results, deploy.CppOptions{WorkDir: c.String("work-dir")})
	if err != nil {
		return exitFor(err)
	}
	w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "C++ program %s (built in %v, ran in %v; %v per jet in Model::Run)\n", r.Program, r.Build.Round(time.Millisecond), r.Run.Round(time.Millisecond), r.PerJet.Round(time.Microsecond))
	fmt.Fprintln(w, "output\tjets\tvalues\tjets differing\tresult")
	for _, o := range r.Outputs {
		result := "bit-identical to Go"
		if !o.Pass() {
			result = "DIFFERS"
			if o.First != nil {
				result += ": " + o.First.String()
			}
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%s\n", o.Name, o.Jets, o.Values, o.Mismatches, result)
	}
	w.Flush()
	if err := r.Err(); err != nil {
		return cli.Exit("salt-ort validate --cpp: "+err.Error(), ExitFailure)
	}
	return athenaCheck(c, rep.Model)
}

// athenaCheck builds salt-ort-athena-check and runs it on the model: the
// rules ATLAS's loaders apply, and runs with 0, 1, 40 and 200
// constituents as they run the model.
func athenaCheck(c *cli.Context, model string) error {
	ort, err := deploy.FindORTDir("")
	if err != nil {
		return exitFor(err)
	}
	work := c.String("work-dir")
	if work == "" {
		dir, err := os.MkdirTemp("", "salt-ort-athena-check-")
		if err != nil {
			return exitFor(err)
		}
		defer os.RemoveAll(dir)
		work = dir
	}
	program, err := athenacheck.Build(c.Context, filepath.Join(work, "athena-check"), ort, nil)
	if err != nil {
		return exitFor(err)
	}
	r, err := athenacheck.Run(c.Context, program, model)
	if err != nil {
		return exitFor(err)
	}
	passed := 0
	for _, rule := range r.Rules {
		if rule.OK {
			passed++
		}
	}
	fmt.Fprintf(c.App.Writer, "ATLAS's loaders (%s): %d of %d rules hold, model name %s, metadata %s; ran with %d constituent counts\n",
		program, passed, len(r.Rules), r.ModelName, r.Version, len(r.Runs))
	if err := r.Err(); err != nil {
		return cli.Exit("salt-ort validate --cpp: "+err.Error(), ExitFailure)
	}
	return nil
}
