package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/loader"
	"github.com/urfave/cli/v2"
)

func normCommand() *cli.Command {
	return &cli.Command{
		Name:      "norm",
		Usage:     "compute Salt's norm_dict and class_dict YAML from training files",
		ArgsUsage: "FILE...",
		Description: `Reads the training files once, in order, and writes the mean and standard
deviation of every input variable over valid entries (Salt's norm_dict:
{dataset: {variable: {mean, std}}}) and inverse-frequency class weights
N / (K · n_i) for each class label (Salt's class_dict: {dataset: {label:
[w_0, ...]}}). The variable lists default to GN2's.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out-norm", Value: "norm_dict.yaml", Usage: "norm dict to write"},
			&cli.StringFlag{Name: "out-class", Value: "class_dict.yaml", Usage: "class dict to write (\"\" skips it)"},
			&cli.StringFlag{Name: "jets", Value: "jets", Usage: "jets dataset"},
			&cli.StringFlag{Name: "jet-vars", Value: strings.Join(loader.GN2JetVariables(), ","), Usage: "comma-separated jet variables (\"\" for none)"},
			&cli.StringFlag{Name: "tracks", Value: "tracks", Usage: "tracks dataset"},
			&cli.StringFlag{Name: "track-vars", Value: strings.Join(loader.GN2TrackVariables(), ","), Usage: "comma-separated track variables (\"\" for none)"},
			&cli.IntFlag{Name: "max-tracks", Value: 40, Usage: "tracks per jet to use (0 = all the file has)"},
			&cli.StringSliceFlag{Name: "class-label", Value: cli.NewStringSlice("jets.flavour_label:4", "tracks.ftagTruthOriginLabel:8"),
				Usage: "class label as dataset.field[:classes] (repeatable)"},
			&cli.IntFlag{Name: "limit", Usage: "use only the first N jets (0 = all)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return cli.Exit("salt-ort norm: give one or more training files (salt-ort norm train.h5)", ExitUsage)
			}
			var groups []loader.Group
			if vars := splitList(c.String("jet-vars")); len(vars) > 0 {
				groups = append(groups, loader.Group{Name: c.String("jets"), Variables: vars})
			}
			if vars := splitList(c.String("track-vars")); len(vars) > 0 {
				if c.Int("max-tracks") < 0 {
					return cli.Exit("salt-ort norm: --max-tracks must be ≥ 0", ExitUsage)
				}
				groups = append(groups, loader.Group{Name: c.String("tracks"), Variables: vars, MaxLen: c.Int("max-tracks")})
			}
			var labels []loader.Label
			if c.String("out-class") != "" {
				for _, s := range c.StringSlice("class-label") {
					l, err := parseClassLabel(s)
					if err != nil {
						return cli.Exit("salt-ort norm: --class-label: "+err.Error(), ExitUsage)
					}
					labels = append(labels, l)
				}
			}
			if len(groups) == 0 {
				return cli.Exit("salt-ort norm: no variables: give --jet-vars or --track-vars", ExitUsage)
			}
			if c.Int("limit") < 0 {
				return cli.Exit("salt-ort norm: --limit must be ≥ 0", ExitUsage)
			}
			nd, cd, err := loader.ComputeNormLimit(c.Args().Slice(), c.Int("limit"), groups, labels...)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			return writeDicts(c, nd, cd)
		},
	}
}

func writeDicts(c *cli.Context, nd loader.NormDict, cd loader.ClassDict) error {
	if err := loader.WriteNormDict(c.String("out-norm"), nd); err != nil {
		return cli.Exit(err, ExitFailure)
	}
	n := 0
	for _, vars := range nd {
		n += len(vars)
	}
	fmt.Fprintf(c.App.Writer, "wrote %s (%d variables)\n", c.String("out-norm"), n)
	if p := c.String("out-class"); p != "" {
		if err := loader.WriteClassDict(p, cd); err != nil {
			return cli.Exit(err, ExitFailure)
		}
		n = 0
		for _, labels := range cd {
			n += len(labels)
		}
		fmt.Fprintf(c.App.Writer, "wrote %s (%d labels)\n", p, n)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// parseClassLabel reads "dataset.field" or "dataset.field:classes".
func parseClassLabel(s string) (loader.Label, error) {
	spec, k, hasK := strings.Cut(s, ":")
	ds, field, ok := strings.Cut(spec, ".")
	if !ok || ds == "" || field == "" {
		return loader.Label{}, fmt.Errorf("%q: want dataset.field[:classes]", s)
	}
	l := loader.Label{Name: ds + "." + field, Dataset: ds, Field: field, Kind: loader.ClassLabel}
	if hasK {
		n, err := strconv.Atoi(k)
		if err != nil || n <= 0 {
			return loader.Label{}, fmt.Errorf("%q: classes must be a positive integer", s)
		}
		l.NumClasses = n
	}
	return l, nil
}
