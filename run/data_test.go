package run

import (
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
)

// TestLoaderConfigInputMap checks that data.input_map reads each input
// from its dataset: the groups, every label of the jets and of the
// tracks, the selections and the sample weights, while the inputs keep
// their names.
func TestLoaderConfigInputMap(t *testing.T) {
	text := fixture.Tiny(t.TempDir(), fixture.Options{Extra: `
[data.input_map]
jets = "jets_calib"
tracks = "tracks_loose"
[data.selections]
tracks = ["d0 < 3.5"]
`})
	text = strings.Replace(text, "[data.variables]", "sample_weight = \"pt\"\n[data.variables]", 1)
	cfg, err := config.Parse(fixture.WriteConfig(t, text), []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	lc := LoaderConfig(cfg, cfg.Data.Train, nil, false, 0)
	datasets := map[string]string{}
	for _, g := range lc.Groups {
		datasets[g.Name] = g.Dataset
	}
	if datasets["jets"] != "jets_calib" || datasets["tracks"] != "tracks_loose" {
		t.Errorf("groups read from %v", datasets)
	}
	for _, l := range lc.Labels {
		want := "jets_calib"
		if strings.HasPrefix(l.Name, "track_") {
			want = "tracks_loose"
		}
		if l.Dataset != want {
			t.Errorf("label %s read from %q, want %q", l.Name, l.Dataset, want)
		}
	}
	if _, ok := lc.Selections["tracks_loose"]; !ok || len(lc.Selections) != 1 {
		t.Errorf("selections on %v, want tracks_loose", lc.Selections)
	}
	if lc.WeightDataset != "jets_calib" {
		t.Errorf("sample weights read from %q", lc.WeightDataset)
	}
}
