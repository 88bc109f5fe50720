package train

import (
	"fmt"
	"strings"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/loader"
)

// Prepare returns the configuration a run uses: data paths absolute,
// patterns expanded into the files they match, and max_len = 0 resolved
// to the longest constituent dimension among the training files.
func Prepare(cfg *config.Config) (*config.Config, error) {
	c, err := cfg.Absolute()
	if err != nil {
		return nil, err
	}
	nets := append([]config.InitNet(nil), c.Model.InitNets...)
	for i := range nets {
		if nets[i].MaxLen != 0 || nets[i].Input == c.Data.JetDataset {
			continue
		}
		longest := 0
		for _, f := range c.Data.Train {
			t, err := loader.OpenFieldTable(f, nets[i].Input)
			if err != nil {
				return nil, fmt.Errorf("train: model.init_nets.max_len = 0 for %s: %w", nets[i].Input, err)
			}
			if dims := t.Dims(); len(dims) == 2 {
				longest = max(longest, dims[1])
			}
			t.Close()
		}
		if longest == 0 {
			return nil, fmt.Errorf("train: model.init_nets.max_len = 0 for %s: the training files' %q datasets have no second dimension to take the length from; give max_len", nets[i].Input, nets[i].Input)
		}
		nets[i].MaxLen = longest
	}
	c.Model.InitNets = nets
	return c, nil
}

// dataNotes lists what a training configuration asks of a split that its
// files do not have: more jets than they hold (num_train, num_val), or
// more constituent slots than they have (max_len, padded).
func dataNotes(c *config.Config, split, key string, ds *loader.Dataset, limit int) []string {
	var notes []string
	if limit > 0 && limit > ds.Available() {
		what := fmt.Sprintf("%d jets", ds.Available())
		if ds.Available() != ds.FileJets() {
			what = fmt.Sprintf("%d jets passing the selections (of %d)", ds.Available(), ds.FileJets())
		}
		notes = append(notes, fmt.Sprintf("data.%s = %d, but the %s files hold %s: using all %d", key, limit, split, what, ds.Len()))
	}
	for _, n := range c.ConstituentNets() {
		file, batch := ds.FileLength(n.Input)
		if file > 0 && batch > file {
			notes = append(notes, fmt.Sprintf("model.init_nets.max_len = %d for %s, but the %s files have %d slots per jet: the last %d slots are always padding (max_len = 0 takes the files' length)",
				batch, n.Input, split, file, batch-file))
		}
	}
	return notes
}

// selectionNotes describes what the selections kept: of the jets, or
// (constituents) of the constituents read so far.
func selectionNotes(ds *loader.Dataset, jetDataset string, constituents bool) []string {
	var notes []string
	for _, s := range ds.Selections() {
		what := "valid constituents"
		if s.Dataset == jetDataset {
			what = "jets"
		}
		if s.Seen == 0 || (s.Dataset != jetDataset) != constituents {
			continue
		}
		notes = append(notes, fmt.Sprintf("selections on %s (%s): kept %d of %d %s (%.1f %%)",
			s.Dataset, strings.Join(s.Cuts, ", "), s.Kept, s.Seen, what, 100*float64(s.Kept)/float64(s.Seen)))
	}
	return notes
}
