package run

import (
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/graph/model"
)

// Columns of a run's metrics tables (TrainMetrics and ValMetrics), which
// training writes and evaluation's loss curves read.
const (
	StepColumn          = "step"
	EpochColumn         = "epoch"
	LRColumn            = "lr"
	LossColumn          = "loss" // the total loss
	GradNormColumn      = "grad_norm"
	JetsPerSecondColumn = "jets_per_s"
	LossScaleColumn     = "loss_scale"    // fp16 runs only
	SkippedStepsColumn  = "skipped_steps" // fp16 runs only
	ValAUCColumn        = "val_auc_b_vs_light"
	taskLossPrefix      = "loss/"
	taskWeightPrefix    = "weight/"
	valPrefix           = "val_"
)

// TaskLossColumn is the training table's column of a task's loss.
func TaskLossColumn(task string) string { return taskLossPrefix + task }

// TaskWeightColumn is the training table's column of a task's loss weight.
func TaskWeightColumn(task string) string { return taskWeightPrefix + task }

// LossColumnTask returns the task whose loss a training column holds, and
// whether it holds one.
func LossColumnTask(column string) (string, bool) { return strings.CutPrefix(column, taskLossPrefix) }

// ValColumn is the validation table's column of what the training table's
// column holds: ValColumn(LossColumn) is val_loss, the monitored total.
func ValColumn(trainColumn string) string { return valPrefix + trainColumn }

// TrainColumns are the training table's columns for a model with the tasks
// named, with the loss scaler's columns where lossScaling (fp16) is set.
func TrainColumns(tasks []string, lossScaling bool) []string {
	cols := []string{StepColumn, EpochColumn, LRColumn, LossColumn}
	for _, t := range tasks {
		cols = append(cols, TaskLossColumn(t))
	}
	for _, t := range tasks {
		cols = append(cols, TaskWeightColumn(t))
	}
	cols = append(cols, GradNormColumn, JetsPerSecondColumn)
	if lossScaling {
		cols = append(cols, LossScaleColumn, SkippedStepsColumn)
	}
	return cols
}

// ValColumns are the validation table's columns for a model with the tasks
// named and the mask decoder objects (nil without one): its loss terms and
// object metrics come before ValAUCColumn.
func ValColumns(tasks []string, objects *model.Objects) []string {
	cols := []string{EpochColumn, StepColumn, ValColumn(LossColumn)}
	for _, t := range tasks {
		cols = append(cols, ValColumn(TaskLossColumn(t)))
	}
	cols = append(cols, objectValColumns(objects)...)
	return append(cols, ValAUCColumn)
}

// FormatValue formats a value for a metrics table (TrainColumns,
// ValColumns): eight significant digits.
func FormatValue(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
