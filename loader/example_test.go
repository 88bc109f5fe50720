package loader_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/salt-ort/salt-ort/loader"
)

// writeJets writes three jets in Salt's layout to path: a jets dataset
// (pt, eta, flavour label) and a tracks dataset of four slots per jet with
// a valid mask, holding 2, 0 and 3 tracks.
func writeJets(path string) error {
	w, err := loader.Create(path)
	if err != nil {
		return err
	}
	defer w.Close()
	jets, err := loader.NewRowLayout(
		loader.Field{Name: "pt_btagJes", Type: loader.Float32},
		loader.Field{Name: "eta_btagJes", Type: loader.Float32},
		loader.Field{Name: "flavour_label", Type: loader.Int32},
	)
	if err != nil {
		return err
	}
	jt, err := w.CreateTable("jets", jets, []int{3}, loader.TableOptions{})
	if err != nil {
		return err
	}
	rows := make([]byte, 3*jets.Size)
	for j, v := range [][3]float64{{40e3, 0.5, 0}, {25e3, -1.2, 2}, {90e3, 2.0, 1}} {
		for i, x := range v {
			jets.Put(rows[j*jets.Size:], i, x)
		}
	}
	if err := jt.WriteRows(0, rows); err != nil {
		return err
	}
	tracks, err := loader.NewRowLayout(
		loader.Field{Name: "valid", Type: loader.Bool},
		loader.Field{Name: "d0", Type: loader.Float32},
	)
	if err != nil {
		return err
	}
	tt, err := w.CreateTable("tracks", tracks, []int{3, 4}, loader.TableOptions{})
	if err != nil {
		return err
	}
	d0 := [][]float64{{0.2, -0.4}, {}, {1.0, 3.0, -2.0}}
	rows = make([]byte, 3*4*tracks.Size)
	for j := range d0 {
		for k, x := range d0[j] {
			row := rows[(4*j+k)*tracks.Size:]
			tracks.Put(row, 0, 1)
			tracks.Put(row, 1, x)
		}
	}
	if err := tt.WriteRows(0, rows); err != nil {
		return err
	}
	return w.Close()
}

// ExampleOpen writes a small file in Salt's layout, then reads it back in
// batches of two jets: the tracks normalised and padded to the file's four
// slots with a valid mask, the last batch padded to full size.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "loader-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "train.h5")
	if err := writeJets(path); err != nil {
		log.Fatal(err)
	}

	ds, err := loader.Open(loader.Config{
		Files: []string{path},
		Groups: []loader.Group{
			{Name: "jets", Variables: []string{"pt_btagJes", "eta_btagJes"}},
			{Name: "tracks", Variables: []string{"d0"}},
		},
		Labels:    []loader.Label{{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: loader.ClassLabel}},
		BatchSize: 2,
		Norm: loader.NormDict{
			"jets":   {"pt_btagJes": {Mean: 50e3, Std: 25e3}, "eta_btagJes": {Mean: 0, Std: 1}},
			"tracks": {"d0": {Mean: 0, Std: 2}},
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer ds.Close()
	fmt.Println("jets:", ds.Len(), "batches:", ds.NumBatches(), "tracks shape:", ds.Shape("tracks"))

	batches, errc := ds.Batches(context.Background(), 0, 0)
	for b := range batches {
		tr := b.Inputs["tracks"]
		fmt.Printf("batch %d: %d jets, mask %v, flavour %v\n", b.Index, b.N, b.JetMask, b.Labels["flavour"])
		fmt.Printf("  jets %v\n  tracks %v\n  valid %v\n", b.Inputs["jets"].Data, tr.Data, tr.Valid)
		b.Release()
	}
	if err := <-errc; err != nil {
		log.Fatal(err)
	}
	// Output:
	// jets: 3 batches: 2 tracks shape: [2 4 1]
	// batch 0: 2 jets, mask [1 1], flavour [0 2]
	//   jets [-0.4 0.5 -1 -1.2]
	//   tracks [0.1 -0.2 0 0 0 0 0 0]
	//   valid [true true false false false false false false]
	// batch 1: 1 jets, mask [1 0], flavour [1 -1]
	//   jets [1.6 2 0 0]
	//   tracks [0.5 1.5 -1 0 0 0 0 0]
	//   valid [true true true false false false false false]
}

// ExampleParseCut reads a selection in atlas-ftag-tools' notation, as
// data.selections gives it, and applies it to a few values.
func ExampleParseCut() {
	for _, s := range []string{"d0 < 3.5", "HadronConeExclTruthLabelID in [4, 5]", "eventNumber %10<= 7"} {
		c, err := loader.ParseCut(s)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%-40s field %s: 3 %v, 5 %v, 19 %v\n", c, c.Field, c.Holds(3), c.Holds(5), c.Holds(19))
	}
	_, err := loader.ParseCut("d0 ~ 3")
	fmt.Println(err)
	// Output:
	// d0 < 3.5                                 field d0: 3 true, 5 false, 19 false
	// HadronConeExclTruthLabelID in [4, 5]     field HadronConeExclTruthLabelID: 3 false, 5 true, 19 false
	// eventNumber %10<= 7                      field eventNumber: 3 true, 5 true, 19 false
	// cut "d0 ~ 3": want "field op value" with op one of ==, !=, <, <=, >, >=, in, notin or %N== (e.g. "d0 < 3.5")
}
