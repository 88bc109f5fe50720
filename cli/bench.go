package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"

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
step-time percentiles, the FLOPs per jet counted from the graph and the
device memory ONNX Runtime's allocator reports.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "device", Usage: "override training.device (cpu or cuda)"},
			&cli.StringFlag{Name: "precision", Usage: "override training.precision (fp32, tf32, fp16, bf16)"},
			&cli.IntSliceFlag{Name: "batch", Value: cli.NewIntSlice(100, 1000), Usage: "batch sizes"},
			&cli.StringSliceFlag{Name: "mode", Value: cli.NewStringSlice(train.BenchTrain, train.BenchInfer), Usage: "what to time: train, infer"},
			&cli.IntFlag{Name: "steps", Value: 20, Usage: "timed runs per case"},
			&cli.IntFlag{Name: "warmup", Value: 3, Usage: "untimed runs first (CUDA graph capture happens here)"},
			&cli.IntFlag{Name: "threads", Usage: "override training.threads"},
			&cli.BoolFlag{Name: "no-cuda-graph", Usage: "do not capture the training step as a CUDA graph"},
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
			rt, err := openRuntime(c)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			res, err := train.Bench(ctx, train.BenchOptions{Runtime: rt, Config: cfg, Spec: spec,
				Modes: c.StringSlice("mode"), Batches: c.IntSlice("batch"), Warmup: c.Int("warmup"), Steps: c.Int("steps"), Log: c.App.ErrWriter})
			if err != nil {
				return exitFor(err)
			}
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(res)
			}
			w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(w, "model\tmode\tdevice\tprecision\tbatch\tjets/s\tmean ms\tp50 ms\tp90 ms\tp99 ms\tMFLOP/jet\tGFLOP/s\tdevice MiB\t\n")
			for _, r := range res {
				mem := "-"
				if r.DeviceMemoryBytes >= 0 {
					mem = fmt.Sprintf("%.0f", float64(r.DeviceMemoryBytes)/(1<<20))
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.3g\t%.1f\t%s\t\n",
					spec.Name, r.Mode, r.Device, r.Precision, r.Batch, r.JetsPerSecond, r.MeanMS, r.P50MS, r.P90MS, r.P99MS, r.MFLOPPerJet, r.GFLOPPerS, mem)
			}
			return w.Flush()
		},
	}
}
