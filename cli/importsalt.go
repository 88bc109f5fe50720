package cli

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/saltimport"
	"github.com/urfave/cli/v2"
)

func importSaltCommand() *cli.Command {
	return &cli.Command{
		Name:      "import-salt",
		Usage:     "carry a model Salt trained (config.yaml and .ckpt) into a salt-ort run directory",
		ArgsUsage: "CONFIG.yaml [MORE.yaml ...] [CKPT.ckpt] --out RUN_DIR",
		Description: `Converts Salt's configuration into salt-ort's TOML: the config.yaml Salt
writes into its log directory (the full LightningCLI configuration), or a
configuration as Salt ships them and users write them, laid over Salt's
base.yaml as salt fit lays it (beside the configuration, in a configs
directory above it, or --base), several files laid one over the other as
salt fit --config A --config B lays them. It reads Salt's Lightning
checkpoint with Go alone: the parameters, AdamW's moments and the position
in the one-cycle schedule. It writes a run directory that eval, export,
validate and train --resume (fine-tuning) read as if salt-ort had trained it:
config.toml, resolved.toml, the norm and class dictionaries as Salt used them
(from the paths the config names, or the copies Salt put beside config.yaml),
checkpoints/last.safetensors and salt-import.txt, which lists the keys not
carried over and why. Without a checkpoint it writes the configuration only,
to train Salt's model from the start (salt-ort train RUN_DIR/config.toml
--resume RUN_DIR).

Keys that change the model or its training and that salt-ort cannot
represent are one error listing every one of them by name (exit 2); a
checkpoint that does not fit its configuration lists every tensor that does
not fit (exit 1). Either way nothing is written.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "run directory to create (must not exist or be empty)", Required: true},
			&cli.StringSliceFlag{Name: "max-len", Usage: "GROUP=N: constituents per jet of a group where the config has no data.num_inputs and the training file is not here to count them (repeatable)"},
			&cli.StringFlag{Name: "device", Usage: "cpu or cuda, instead of what trainer.accelerator says (with cpu, 16-bit precision becomes fp32)"},
			baseFlag,
		},
		Action: func(c *cli.Context) error {
			var configs []string
			ckpt := ""
			for _, a := range c.Args().Slice() {
				switch {
				case saltimport.IsSaltConfig(a):
					configs = append(configs, a)
				case ckpt == "":
					ckpt = a
				default:
					configs = nil
				}
			}
			if len(configs) == 0 || (ckpt != "" && c.Args().Get(c.NArg()-1) != ckpt) {
				return cli.Exit("salt-ort import-salt: give Salt's configuration (CONFIG.yaml, or several laid one over the other) and optionally its checkpoint last (salt-ort import-salt logs/RUN/config.yaml logs/RUN/ckpts/EPOCH.ckpt --out runs/RUN)", ExitUsage)
			}
			opts := saltimport.Options{Config: configs[0], Overlays: configs[1:], Checkpoint: ckpt, Out: c.String("out"),
				Convert: saltimport.ConvertOptions{MaxLen: map[string]int{}, Device: c.String("device"), Read: saltimport.ReadOptions{Base: c.String("base")}}}
			if d := opts.Convert.Device; d != "" && d != "cpu" && d != "cuda" {
				return cli.Exit(fmt.Sprintf("salt-ort import-salt: --device %q: give cpu or cuda", d), ExitUsage)
			}
			for _, m := range c.StringSlice("max-len") {
				group, n, ok := strings.Cut(m, "=")
				v, err := strconv.Atoi(n)
				if !ok || err != nil || v < 1 || group == "" {
					return cli.Exit(fmt.Sprintf("salt-ort import-salt: --max-len %q: give GROUP=N, e.g. tracks=40", m), ExitUsage)
				}
				opts.Convert.MaxLen[group] = v
			}
			res, err := saltimport.Import(opts)
			if err != nil {
				var ce *saltimport.ConfigError
				var cfgErr *config.Error
				if errors.As(err, &ce) || errors.As(err, &cfgErr) {
					return cli.Exit("salt-ort import-salt: "+err.Error(), ExitUsage)
				}
				return cli.Exit("salt-ort import-salt: "+err.Error(), ExitFailure)
			}
			w := c.App.Writer
			if opts.Checkpoint != "" {
				fmt.Fprintf(w, "imported %s (%d parameters) from %s\n", res.Converted.Config.Model.Name, res.Parameters, opts.Checkpoint)
				if res.Optimizer {
					fmt.Fprintf(w, "optimizer state and schedule position imported: training continues with epoch %d of %d from batch %d, after step %d\n", res.Position.Epoch+1, res.Converted.Config.Training.Epochs, res.Position.Batch, res.Position.Step)
				}
			} else {
				fmt.Fprintf(w, "converted %s (no checkpoint: train it from the start with salt-ort train %s/config.toml --resume %s)\n", opts.Config, res.Dir, res.Dir)
			}
			fmt.Fprintf(w, "run directory: %s (%d keys not carried over, %d notes: see %s)\n", res.Dir, len(res.Converted.Ignored), len(res.Converted.Notes), saltimport.ReportFile)
			return nil
		},
	}
}
