package run

import (
	"slices"
	"testing"

	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/graph/nn"
)

// TestValColumns checks the validation table's columns: the tasks' losses,
// then a mask decoder's loss terms and object metrics, the AUC last.
func TestValColumns(t *testing.T) {
	objects := &model.Objects{LossWeights: nn.MaskFormerWeights{MaskCE: 1}}
	tests := []struct {
		name    string
		objects *model.Objects
		want    []string
	}{
		{"no mask decoder", nil, []string{"epoch", "step", "val_loss", "val_loss/jets", "val_auc_b_vs_light"}},
		{"mask decoder", objects, []string{"epoch", "step", "val_loss", "val_loss/jets",
			"val_loss/objects/object_class_ce", "val_loss/objects/mask_ce",
			"val_objects/class_exact_match", "val_objects/class_accuracy_micro", "val_objects/notnull_eff", "val_objects/notnull_pur",
			"val_objects/query_perfect_match_eff", "val_objects/query_perfect_match_fake", "val_objects/query_loose_match_eff", "val_objects/query_loose_match_fake",
			"val_objects/assignment_eff", "val_objects/assignment_pur",
			"val_auc_b_vs_light"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValColumns([]string{"jets"}, tt.objects); !slices.Equal(got, tt.want) {
				t.Errorf("ValColumns = %q, want %q", got, tt.want)
			}
		})
	}
}
