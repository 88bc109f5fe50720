package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/mpi"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/train"
	"github.com/urfave/cli/v2"
)

func trainCommand() *cli.Command {
	return &cli.Command{
		Name:      "train",
		Usage:     "train the model a TOML configuration describes",
		ArgsUsage: "model.toml | CONFIG.yaml [MORE.yaml ...]",
		Description: `Builds the training-step and evaluation graphs, trains on the configured
HDF5 files and writes a run directory: the configuration (as given and
resolved), the norm and class dictionaries, checkpoints (last and the best
by the monitored validation metric), metrics/train.csv, metrics/val.csv,
train.log and summary.json. SIGINT or SIGTERM writes the last checkpoint
and exits; --resume continues from it exactly. Progress goes to stderr: a
bar on a terminal, otherwise (a batch job's log) a line every 5 % of an
epoch with the rate and the time left.

Salt's configuration files train as they are: salt-ort train CONFIG.yaml
converts them as import-salt does (Salt's base.yaml laid beneath, see
--base; several files laid one over the other as salt fit --config A
--config B lays them) and writes the resolved TOML into the run directory.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "run directory to create (default: runs/<config file name>)"},
			&cli.StringFlag{Name: "resume", Usage: "continue the run in this directory from its last checkpoint"},
			&cli.StringFlag{Name: "device", Usage: "override training.device (cpu or cuda)"},
			&cli.StringFlag{Name: "precision", Usage: "override training.precision (fp32; on cuda also tf32, bf16, fp16)"},
			&cli.IntFlag{Name: "epochs", Usage: "override training.epochs"},
			&cli.IntFlag{Name: "threads", Usage: "override training.threads"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress or log lines; only the final summary"},
			&cli.BoolFlag{Name: "json", Usage: "print the run summary as JSON on stdout"},
			baseFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 1 {
				return cli.Exit("salt-ort train: give a configuration file (salt-ort train model.toml, or Salt's CONFIG.yaml)", ExitUsage)
			}
			// Catch SIGINT and SIGTERM before anything slow starts, so a
			// stop during start-up also ends cleanly.
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			cfg, err := loadTrainConfig(c)
			if err != nil {
				return exitFor(err)
			}
			overrideTraining(c, cfg)
			if c.IsSet("epochs") {
				cfg.Training.Epochs = c.Int("epochs")
			}
			if err := cfg.Validate(); err != nil {
				return exitFor(err)
			}
			dir := c.String("out")
			if r := c.String("resume"); r != "" {
				if dir != "" && dir != r {
					return cli.Exit("salt-ort train: give --out or --resume, not both", ExitUsage)
				}
				dir = r
			}
			if dir == "" {
				dir = filepath.Join("runs", strings.TrimSuffix(filepath.Base(cfg.Path()), filepath.Ext(cfg.Path())))
			}
			rt, err := openRuntime(c)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			opts := train.Options{Config: cfg, RunDir: dir, Resume: c.IsSet("resume"), Runtime: rt}
			// A rank of an MPI job (mpirun, srun): rank 0 speaks and writes
			// for the job.
			var world *mpi.World
			if mpi.Launched() {
				if world, err = mpi.Init(); err != nil {
					return cli.Exit(fmt.Sprintf("salt-ort train: started by an MPI launcher, but %v", err), ExitFailure)
				}
				defer world.Finalize()
				if world.Size() > 1 {
					opts.Group = world
				}
			}
			rank := 0
			if opts.Group != nil {
				rank = world.Rank()
			}
			if !c.Bool("quiet") && rank == 0 {
				opts.Progress = c.App.ErrWriter
				opts.Log = c.App.ErrWriter
			}
			_, statErr := os.Lstat(dir)
			fresh := errors.Is(statErr, fs.ErrNotExist)
			sum, err := train.Run(ctx, opts)
			if err != nil && opts.Group != nil && !errors.Is(err, train.ErrInterrupted) {
				// The other ranks may be waiting for this one: end the job.
				fmt.Fprintf(c.App.ErrWriter, "salt-ort: rank %d of %d: %v\n", rank, world.Size(), err)
				if fresh && rank == 0 {
					removeUnstartedRun(dir)
				}
				world.Abort(ExitFailure)
			}
			if rank != 0 {
				// Rank 0 speaks for the job. An interrupted rank ends with
				// 0: a launcher that sees a rank end non-zero kills the
				// others, which could take rank 0 before it has said
				// where to resume; the job's exit code is rank 0's, 1.
				if err != nil && !errors.Is(err, train.ErrInterrupted) {
					return cli.Exit("", ExitFailure)
				}
				return nil
			}
			if errors.Is(err, train.ErrInterrupted) {
				return cli.Exit(fmt.Sprintf("salt-ort train: %v: continue with salt-ort train %s --resume %s", err, c.Args().First(), dir), ExitFailure)
			}
			if err != nil {
				if fresh {
					removeUnstartedRun(dir)
				}
				return exitFor(err)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(sum)
			}
			fmt.Fprintf(c.App.Writer, "trained %s for %d epochs (%d steps, %.0f jets/s); best checkpoint %s (%s %.5f)\nrun directory: %s\n",
				sum.Model, sum.Epochs, sum.Steps, sum.JetsPerSecond, filepath.Join(dir, sum.BestCheckpoint), sum.Monitor, sum.BestMetric, dir)
			return nil
		},
	}
}

// overrideTraining applies the --device, --precision and --threads flags
// a command has to the configuration's [training] table.
func overrideTraining(c *cli.Context, cfg *config.Config) {
	if c.IsSet("device") {
		cfg.Training.Device = c.String("device")
	}
	if c.IsSet("precision") {
		cfg.Training.Precision = c.String("precision")
	}
	if c.IsSet("threads") {
		cfg.Training.Threads = c.Int("threads")
	}
}

// removeUnstartedRun removes the run directory a failed `salt-ort train`
// created, unless it holds a checkpoint: without one there is nothing to
// resume, and a directory left behind would make the same command line,
// run again once the input is fixed, refuse to start.
func removeUnstartedRun(dir string) {
	if ckpts, _ := filepath.Glob(filepath.Join(dir, run.CheckpointDir, "*.safetensors")); len(ckpts) > 0 {
		return
	}
	os.RemoveAll(dir)
}

// exitFor maps an error to salt-ort's exit codes: configuration errors
// are usage errors (2), everything else a runtime failure (1). A write
// that failed for want of space gets the fix appended.
func exitFor(err error) error {
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return err
	}
	var ce *config.Error
	if errors.As(err, &ce) {
		return cli.Exit("salt-ort: "+err.Error(), ExitUsage)
	}
	return cli.Exit("salt-ort: "+err.Error()+diskFullHint(err), ExitFailure)
}

// diskFullHint returns the fix for an error from a write that ran out of
// space (a full file system, a quota, a file-size limit), or "". HDF5
// reports the errno only in its message text.
func diskFullHint(err error) string {
	const hint = "\nsalt-ort: the disk is full (or a quota or file-size limit was reached): free space there or write elsewhere, then run the command again"
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EFBIG) || errors.Is(err, syscall.EDQUOT) {
		return hint
	}
	msg := err.Error()
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EFBIG, syscall.EDQUOT} {
		if strings.Contains(msg, fmt.Sprintf("errno = %d,", int(errno))) {
			return hint
		}
	}
	return ""
}
