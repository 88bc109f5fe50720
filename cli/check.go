package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/train"
	"github.com/urfave/cli/v2"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "validate a configuration and the data it names without training",
		ArgsUsage: "model.toml",
		Description: `Reads the configuration (unknown keys, types, consistency), the norm and
class dictionaries, and every batch of the train, validation and test files:
datasets and variables exist, labels are within their class counts, inputs
are finite (unless non_finite = "zero"); then builds the training graph.
Exits 0 when everything holds, 2 for a configuration error, 1 for a data
error, each with the file, the field and the fix.`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"}},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("salt-ort check: give exactly one configuration file (salt-ort check model.toml)", ExitUsage)
			}
			cfg, err := config.Load(c.Args().First())
			if err != nil {
				return exitFor(err)
			}
			rep, err := train.Check(c.Context, cfg)
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(rep)
			}
			fmt.Fprintf(c.App.Writer, "%s: model %s, %d parameters, training step %d nodes, %.0f MFLOP per jet\n",
				cfg.Path(), rep.Model, rep.Parameters, rep.TrainingNodes, rep.MFLOPsPerJet)
			w := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "split\tfiles\tjets\tbatches\tnon-finite replaced")
			for _, s := range rep.Splits {
				fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\n", s.Split, len(s.Files), s.Jets, s.Batches, s.NonFinite)
			}
			w.Flush()
			for _, s := range rep.Splits {
				for _, n := range s.Notes {
					fmt.Fprintf(c.App.Writer, "note: %s\n", n)
				}
			}
			fmt.Fprintln(c.App.Writer, "ok")
			return nil
		},
	}
}
