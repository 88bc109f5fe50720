package run_test

import (
	"context"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/internal/testkit/examplerun"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/runtime"
)

// tinyRun trains the tiny model in a new temporary directory; remove
// the directory when done.
func tinyRun() (rt *runtime.Runtime, dir, runDir string) {
	rt, err := examplerun.OpenRuntime()
	if err != nil {
		log.Fatal(err)
	}
	if dir, err = os.MkdirTemp("", "run-example"); err != nil {
		log.Fatal(err)
	}
	if runDir, err = examplerun.Train(context.Background(), rt, dir); err != nil {
		os.RemoveAll(dir)
		log.Fatal(err)
	}
	return rt, dir, runDir
}

// ExampleLoad reads what a run directory says about its model: the
// resolved configuration (every default filled in), the model spec and
// the run's own copy of the norm dictionary.
func ExampleLoad() {
	_, dir, runDir := tinyRun()
	defer os.RemoveAll(dir)

	info, err := run.Load(runDir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("model:", info.Spec.Name)
	for _, t := range info.Spec.Tasks {
		fmt.Println("task:", t.Name)
	}
	fmt.Println("batch size:", info.Config.Data.BatchSize)
	datasets := make([]string, 0, len(info.Norm))
	for ds := range info.Norm {
		datasets = append(datasets, ds)
	}
	slices.Sort(datasets)
	fmt.Println("normalised:", datasets)
	// Output:
	// model: Tiny
	// task: jets_classification
	// batch size: 50
	// normalised: [jets tracks]
}

// ExampleResolveCheckpoint maps the names eval, export and explain take
// for --checkpoint onto a run's files: "best" (the default) is the
// checkpoint of the best validation loss, named after its epoch and loss,
// and "last" the one training resumes from.
func ExampleResolveCheckpoint() {
	_, dir, runDir := tinyRun()
	defer os.RemoveAll(dir)

	for _, which := range []string{"best", "last"} {
		path, err := run.ResolveCheckpoint(runDir, which)
		if err != nil {
			log.Fatal(err)
		}
		rel, err := filepath.Rel(runDir, path)
		if err != nil {
			log.Fatal(err)
		}
		// The best checkpoint's name ends with its validation loss,
		// which this example does not print.
		rel, _, _ = strings.Cut(rel, "-val_loss=")
		fmt.Printf("%s: %s\n", which, rel)
	}
	// Output:
	// best: checkpoints/epoch=001
	// last: checkpoints/last.safetensors
}

// ExampleParamsFromCheckpoint gathers a checkpoint's parameters into the
// flat vector the evaluation graph takes, in the order of its parameter
// layout.
func ExampleParamsFromCheckpoint() {
	_, dir, runDir := tinyRun()
	defer os.RemoveAll(dir)

	info, err := run.Load(runDir)
	if err != nil {
		log.Fatal(err)
	}
	path, err := run.ResolveCheckpoint(runDir, "best")
	if err != nil {
		log.Fatal(err)
	}
	f, err := checkpoint.Read(path)
	if err != nil {
		log.Fatal(err)
	}
	_, layout, err := info.Spec.Eval(1)
	if err != nil {
		log.Fatal(err)
	}
	params, err := run.ParamsFromCheckpoint(path, f, layout)
	if err != nil {
		log.Fatal(err)
	}
	var size int64
	for _, p := range layout {
		size += p.Size
	}
	fmt.Printf("%d parameters in %d tensors, the layout's %d\n", len(params), len(layout), size)
	// Output:
	// 885 parameters in 21 tensors, the layout's 885
}

// ExampleEvaluate evaluates a run's best checkpoint on its test files
// with the evaluation graph, as `salt-ort eval` does before it writes
// predictions and plots.
func ExampleEvaluate() {
	rt, dir, runDir := tinyRun()
	defer os.RemoveAll(dir)

	res, err := run.Evaluate(context.Background(), run.EvalOptions{RunDir: runDir, Runtime: rt})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("jets:", res.Jets)
	for task, loss := range res.Loss {
		fmt.Printf("%s loss finite: %v\n", task, !math.IsNaN(loss) && !math.IsInf(loss, 0))
	}
	fmt.Println("b vs light AUC in [0, 1]:", res.AUC >= 0 && res.AUC <= 1)
	// Output:
	// jets: 100
	// jets_classification loss finite: true
	// b vs light AUC in [0, 1]: true
}

// ExampleTrainColumns lists the columns of a run's metrics/train.csv for
// a model of two tasks trained in fp16 (with the loss scaler's columns),
// and the validation table's, which evaluate's plots read back.
func ExampleTrainColumns() {
	tasks := []string{"jets_classification", "track_origin"}
	fmt.Println(run.TrainMetrics+":", strings.Join(run.TrainColumns(tasks, true), ","))
	fmt.Println(run.ValMetrics+":", strings.Join(run.ValColumns(tasks, nil), ","))
	// Output:
	// metrics/train.csv: step,epoch,lr,loss,loss/jets_classification,loss/track_origin,weight/jets_classification,weight/track_origin,grad_norm,jets_per_s,loss_scale,skipped_steps
	// metrics/val.csv: epoch,step,val_loss,val_loss/jets_classification,val_loss/track_origin,val_auc_b_vs_light
}
