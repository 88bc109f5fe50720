package cli

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/urfave/cli/v2"
)

func normCommand() *cli.Command {
	return &cli.Command{
		Name:      "norm",
		Usage:     "compute Salt's norm_dict and class_dict YAML from training files",
		ArgsUsage: "[FILE...]",
		Description: `Reads the training files once, in order, and writes the mean and standard
deviation of every input variable over valid entries (Salt's norm_dict:
{dataset: {variable: {mean, std}}}) and inverse-frequency class weights
N / (K · n_i) for each class label (Salt's class_dict: {dataset: {label:
[w_0, ...]}}).

With --config model.toml everything comes from the configuration: the
files (data.train, unless FILEs are given), the jet, global and constituent
variables, each init net's max_len, the selections, data.non_finite and the
tasks' class labels with their label maps; the dictionaries go where
data.norm_dict and data.class_dict say (unless --out-norm, --out-class).
Without it the variable lists default to GN2's.

A variable with the same value everywhere has no spread, which Salt
rejects: every such variable is listed at once. --constant drop writes the
dictionaries without them (and prints the variable lists to put in the
configuration), --constant keep writes them with std 1 (they normalise to
0). A NaN or infinite value is an error naming where it is; --non-finite
zero counts it as 0, as training with data.non_finite = "zero" reads it.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "take files, variables, max_len, selections and labels from this training configuration"},
			&cli.StringFlag{Name: "out-norm", Value: "norm_dict.yaml", Usage: "norm dict to write (with --config: data.norm_dict)"},
			&cli.StringFlag{Name: "out-class", Value: "class_dict.yaml", Usage: "class dict to write (\"\" skips it; with --config: data.class_dict)"},
			&cli.StringFlag{Name: "jets", Value: "jets", Usage: "jets dataset"},
			&cli.StringFlag{Name: "jet-vars", Value: strings.Join(loader.GN2JetVariables(), ","), Usage: "comma-separated jet variables (\"\" for none)"},
			&cli.StringFlag{Name: "tracks", Value: "tracks", Usage: "tracks dataset"},
			&cli.StringFlag{Name: "track-vars", Value: strings.Join(loader.GN2TrackVariables(), ","), Usage: "comma-separated track variables (\"\" for none)"},
			&cli.IntFlag{Name: "max-tracks", Value: 40, Usage: "tracks per jet to use (0 = all the file has; with --config: model.init_nets.max_len)"},
			&cli.StringSliceFlag{Name: "class-label", Value: cli.NewStringSlice("jets.flavour_label:4", "tracks.ftagTruthOriginLabel:8"),
				Usage: "class label as dataset.field[:classes] (repeatable)"},
			&cli.IntFlag{Name: "limit", Usage: "use only the first N jets (0 = all)"},
			&cli.StringFlag{Name: "constant", Value: "error", Usage: "what a constant variable gives: error (list them all), drop or keep (std 1)"},
			&cli.StringFlag{Name: "non-finite", Usage: "error or zero (default: data.non_finite with --config, else error)"},
		},
		Action: func(c *cli.Context) error {
			opts := loader.NormOptions{Files: c.Args().Slice(), Limit: c.Int("limit")}
			switch c.String("constant") {
			case "error":
				opts.Constant = loader.ConstantFail
			case "drop":
				opts.Constant = loader.ConstantDrop
			case "keep":
				opts.Constant = loader.ConstantKeep
			default:
				return cli.Exit(fmt.Sprintf("salt-ort norm: --constant %q: want error, drop or keep", c.String("constant")), ExitUsage)
			}
			if opts.Limit < 0 {
				return cli.Exit("salt-ort norm: --limit must be ≥ 0", ExitUsage)
			}
			var cfg *config.Config
			if path := c.String("config"); path != "" {
				var err error
				if cfg, err = config.Load(path); err != nil {
					return exitFor(err)
				}
				for _, f := range []string{"jets", "jet-vars", "tracks", "track-vars", "max-tracks", "class-label"} {
					if c.IsSet(f) {
						return cli.Exit(fmt.Sprintf("salt-ort norm: --%s and --config both say what to read; the configuration's [data.variables], init nets and tasks decide with --config", f), ExitUsage)
					}
				}
				if err := normFromConfig(cfg, &opts); err != nil {
					return exitFor(err)
				}
				if !c.IsSet("out-norm") {
					c.Set("out-norm", cfg.Resolve(cfg.Data.NormDict))
				}
				if !c.IsSet("out-class") {
					c.Set("out-class", cfg.Resolve(cfg.Data.ClassDict))
				}
			} else {
				if len(opts.Files) == 0 {
					return cli.Exit("salt-ort norm: give one or more training files (salt-ort norm train.h5), or --config model.toml", ExitUsage)
				}
				if vars := splitList(c.String("jet-vars")); len(vars) > 0 {
					opts.Groups = append(opts.Groups, loader.Group{Name: c.String("jets"), Variables: vars})
				}
				if vars := splitList(c.String("track-vars")); len(vars) > 0 {
					if c.Int("max-tracks") < 0 {
						return cli.Exit("salt-ort norm: --max-tracks must be ≥ 0", ExitUsage)
					}
					opts.Groups = append(opts.Groups, loader.Group{Name: c.String("tracks"), Variables: vars, MaxLen: c.Int("max-tracks")})
				}
				for _, s := range c.StringSlice("class-label") {
					l, err := parseClassLabel(s)
					if err != nil {
						return cli.Exit("salt-ort norm: --class-label: "+err.Error(), ExitUsage)
					}
					opts.Labels = append(opts.Labels, l)
				}
				if len(opts.Groups) == 0 {
					return cli.Exit("salt-ort norm: no variables: give --jet-vars or --track-vars", ExitUsage)
				}
			}
			if c.String("out-class") == "" {
				opts.Labels = nil
			}
			switch c.String("non-finite") {
			case "":
			case "error":
				opts.NonFinite = loader.ErrorOnNonFinite
			case "zero":
				opts.NonFinite = loader.ZeroNonFinite
			default:
				return cli.Exit(fmt.Sprintf("salt-ort norm: --non-finite %q: want error or zero", c.String("non-finite")), ExitUsage)
			}
			res, err := loader.ComputeNormWith(opts)
			if err != nil {
				var ce *loader.ConstantError
				if errors.As(err, &ce) {
					return cli.Exit("salt-ort norm: "+constantMessage(ce, cfg), ExitFailure)
				}
				if cfg != nil {
					return exitFor(cfg.DataError(err))
				}
				return cli.Exit(err, ExitFailure)
			}
			if err := writeDicts(c, res.Norm, res.Class); err != nil {
				return err
			}
			if res.NonFinite > 0 {
				fmt.Fprintf(c.App.Writer, "%d non-finite values counted as 0\n", res.NonFinite)
			}
			if len(res.Constant) > 0 {
				var names []string
				for _, v := range res.Constant {
					names = append(names, fmt.Sprintf("%s.%s = %v", v.Dataset, v.Variable, v.Value))
				}
				if opts.Constant == loader.ConstantKeep {
					fmt.Fprintf(c.App.Writer, "kept %d constant variables with std 1 (they normalise to 0): %s\n", len(res.Constant), strings.Join(names, ", "))
				} else {
					fmt.Fprintf(c.App.Writer, "left out %d constant variables: %s\n", len(res.Constant), strings.Join(names, ", "))
					if lines := droppedLines(res.Constant, cfg); lines != "" {
						fmt.Fprintf(c.App.Writer, "drop them from the configuration's [data.variables]:\n%s", lines)
					}
				}
			}
			return nil
		},
	}
}

// normFromConfig fills the norm options from a training configuration.
func normFromConfig(cfg *config.Config, opts *loader.NormOptions) error {
	if len(opts.Files) == 0 {
		files, err := cfg.Files("train")
		if err != nil {
			return err
		}
		opts.Files = files
	}
	opts.Groups = append(opts.Groups, cfg.LoaderGroups()...)
	sel, err := cfg.LoaderSelections()
	if err != nil {
		return err
	}
	opts.Selections = sel
	opts.NonFinite = cfg.LoaderNonFinite()
	for _, t := range cfg.Model.Tasks {
		switch t.Kind {
		case "jet_classification", "constituent_classification":
			l, err := cfg.TaskLabel(t)
			if err != nil {
				return err
			}
			opts.Labels = append(opts.Labels, l)
		}
	}
	return nil
}

// constantMessage lists the constant variables and the two ways on.
func constantMessage(ce *loader.ConstantError, cfg *config.Config) string {
	var names []string
	for _, v := range ce.Vars {
		names = append(names, fmt.Sprintf("%s.%s = %v", v.Dataset, v.Variable, v.Value))
	}
	msg := fmt.Sprintf("%d variable(s) are constant in %s: %s; Salt rejects a zero std. Either run again with --constant drop, which leaves them out of the norm dict, and drop them from the variables",
		len(ce.Vars), strings.Join(ce.Files, ", "), strings.Join(names, ", "))
	if lines := droppedLines(ce.Vars, cfg); lines != "" {
		msg += fmt.Sprintf(" ([data.variables] of %s):\n%s", cfg.Path(), lines)
	} else {
		msg += "; "
	}
	return msg + "or run again with --constant keep, which keeps them normalised to 0 (std 1)"
}

// droppedLines writes the [data.variables] lines of a configuration with
// the constant variables left out.
func droppedLines(vars []loader.ConstantVar, cfg *config.Config) string {
	if cfg == nil {
		return ""
	}
	drop := map[string]bool{}
	for _, v := range vars {
		drop[v.Dataset+"."+v.Variable] = true
	}
	var b strings.Builder
	keys := make([]string, 0, len(cfg.Data.Variables))
	for k := range cfg.Data.Variables {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ds := k
		if k == config.GlobalVariables {
			ds = cfg.Data.JetDataset
		}
		var kept []string
		changed := false
		for _, v := range cfg.Data.Variables[k] {
			if drop[ds+"."+v] {
				changed = true
				continue
			}
			kept = append(kept, strconv.Quote(v))
		}
		if changed {
			fmt.Fprintf(&b, "  %s = [%s]\n", k, strings.Join(kept, ", "))
		}
	}
	return b.String()
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
