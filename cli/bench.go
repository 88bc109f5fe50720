package cli

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/train"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	return &cli.Command{
		Name:      "bench",
		Usage:     "time a model's training step and inference on cpu or cuda",
		ArgsUsage: "[model.toml]",
		Description: `Times the training step (forward, the task losses, backward, clipping,
the optimizer update, the state handed to the next step) and the
deployment graph's forward pass on synthetic batches, placed exactly as
salt-ort train places them. Without a configuration it times GN2 as
../shared/spec describes it (the model of examples/gn2.toml). Prints jets/s,
step-time percentiles, the FLOPs per jet counted from the graph, the
device memory ONNX Runtime's allocator reports, the process's peak
resident memory per jet during each case and the graph's memory plan per
jet (graph.PlanMemory: tensor lifetimes in graph order, a lower bound of
the arena's peak). --estimate N prints the plan of batch sizes that are not
run (alone, nothing runs: e.g. --device cuda --estimate 4000 on a machine
without a GPU). --reference runs a PyTorch reference script
(../shared/reference/gn2_reference.py) at each batch size with the same
device and threads, and prints its peak resident memory per jet and jets/s
beside salt-ort's.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "device", Usage: "override training.device (cpu or cuda)"},
			&cli.StringFlag{Name: "precision", Usage: "override training.precision (fp32, tf32, fp16, bf16)"},
			&cli.IntSliceFlag{Name: "batch", Value: cli.NewIntSlice(100, 1000), Usage: "batch sizes"},
			&cli.StringSliceFlag{Name: "mode", Value: cli.NewStringSlice(train.BenchTrain, train.BenchInfer), Usage: "what to time: train, infer (and, for --estimate only, eval)"},
			&cli.IntFlag{Name: "steps", Value: 20, Usage: "timed runs per case"},
			&cli.IntFlag{Name: "warmup", Value: 3, Usage: "untimed runs first (CUDA graph capture happens here)"},
			&cli.IntFlag{Name: "threads", Usage: "override training.threads"},
			&cli.BoolFlag{Name: "no-cuda-graph", Usage: "do not capture the training step as a CUDA graph"},
			&cli.IntSliceFlag{Name: "estimate", Usage: "batch sizes whose memory to estimate from the graph's allocation plan, without running them (alone: nothing is run)"},
			&cli.StringFlag{Name: "reference", Usage: "a PyTorch reference script (../shared/reference/gn2_reference.py) to run at each batch size for its peak memory and jets/s"},
			&cli.StringFlag{Name: "python", Value: "/usr/bin/python3", Usage: "the Python that runs --reference"},
			&cli.IntSliceFlag{Name: "reference-batch", Usage: "batch sizes to run --reference at (default: those of --batch); its memory grows with the batch faster than salt-ort's"},
			&cli.StringFlag{Name: "profile", Usage: "turn on ONNX Runtime's profiler: every case writes PREFIX_<mode>_<batch>_<date and time>.json, the time of each node (open it in chrome://tracing or Perfetto)"},
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 1 {
				return cli.Exit("salt-ort bench: give at most one configuration file", ExitUsage)
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			var cfg *config.Config
			var spec model.Spec
			if c.NArg() == 1 {
				var err error
				if cfg, err = config.Load(c.Args().First()); err != nil {
					return exitFor(err)
				}
				if spec, err = train.BenchSpec(cfg); err != nil {
					return exitFor(err)
				}
			} else {
				d := config.Default()
				cfg = &d
				spec = model.GN2()
				for i := range spec.Tasks {
					if spec.Tasks[i].Kind == model.Vertexing {
						spec.Tasks[i].OriginWeighting = true
					}
				}
			}
			overrideTraining(c, cfg)
			if c.Bool("no-cuda-graph") {
				cfg.Training.CUDAGraph = false
			}
			if err := cfg.ValidateTraining(); err != nil {
				return exitFor(err)
			}
			opts := train.BenchOptions{Config: cfg, Spec: spec, Modes: c.StringSlice("mode"), Batches: c.IntSlice("batch"),
				Warmup: c.Int("warmup"), Steps: c.Int("steps"), Log: c.App.ErrWriter, ProfilePrefix: c.String("profile")}
			report := benchReport{Estimates: []benchEstimate{}}
			for _, batch := range c.IntSlice("estimate") {
				est, err := estimate(opts, batch)
				if err != nil {
					return exitFor(err)
				}
				report.Estimates = append(report.Estimates, est...)
			}
			if len(c.IntSlice("estimate")) == 0 || c.IsSet("batch") {
				rt, err := openRuntime(c)
				if err != nil {
					return cli.Exit(err, ExitFailure)
				}
				opts.Runtime = rt
				if report.Results, err = train.Bench(ctx, opts); err != nil {
					return exitFor(err)
				}
				if ref := c.String("reference"); ref != "" {
					batches := opts.Batches
					if c.IsSet("reference-batch") {
						batches = c.IntSlice("reference-batch")
					}
					if report.Reference, err = runReferences(ctx, c.String("python"), ref, cfg, batches, opts.Steps, c.App.ErrWriter); err != nil {
						return cli.Exit(err, ExitFailure)
					}
				}
			}
			if c.Bool("json") {
				if len(c.IntSlice("estimate")) == 0 && c.String("reference") == "" {
					// The results alone, as before the estimates existed.
					return writeJSON(c.App.Writer, report.Results)
				}
				return writeJSON(c.App.Writer, report)
			}
			return report.print(c.App.Writer, spec.Name)
		},
	}
}
