package cli

import (
	"errors"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/saltimport"
)

// baseFlag names Salt's base.yaml for the commands that read Salt's
// configurations.
var baseFlag = &cli.StringFlag{Name: "base", Usage: "Salt's base.yaml, laid beneath a Salt configuration as `salt fit` lays it (default: base.yaml beside the configuration or in a configs directory above it)"}

// loadTrainConfig reads the configuration train is given: salt-ort's TOML
// file, or Salt's YAML files (one, or several laid one over the other as
// `salt fit --config A --config B` lays them), converted as import-salt
// converts them. What the conversion notes goes to the log.
func loadTrainConfig(c *cli.Context) (*config.Config, error) {
	args := c.Args().Slice()
	yamls := 0
	for _, a := range args {
		if saltimport.IsSaltConfig(a) {
			yamls++
		}
	}
	switch {
	case yamls == 0 && len(args) == 1:
		return config.Load(args[0])
	case yamls == 0 || yamls != len(args):
		return nil, cli.Exit("salt-ort train: give one salt-ort configuration (model.toml) or Salt's configuration files (CONFIG.yaml [MORE.yaml ...])", ExitUsage)
	}
	opts := saltimport.ConvertOptions{Read: saltimport.ReadOptions{Base: c.String("base")}, Device: c.String("device")}
	cfg, conv, err := saltimport.TrainConfig(args, opts)
	if err != nil {
		var ce *saltimport.ConfigError
		if errors.As(err, &ce) {
			return nil, cli.Exit("salt-ort train: "+err.Error(), ExitUsage)
		}
		return nil, err
	}
	if !c.Bool("quiet") {
		w := c.App.ErrWriter
		fmt.Fprintf(w, "salt-ort train: Salt's configuration %v converted (%d keys not carried over, as import-salt reports them)\n", conv.Files, len(conv.Ignored))
		for _, n := range conv.Notes {
			fmt.Fprintln(w, "  note: "+n)
		}
		if conv.Ranks > 1 {
			fmt.Fprintf(w, "  Salt trained this on %d devices: run it as mpirun -n %d salt-ort train %s …\n", conv.Ranks, conv.Ranks, args[0])
		}
	}
	return cfg, nil
}
