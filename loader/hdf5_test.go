package loader

import (
	"path/filepath"
	"testing"

	"gonum.org/v1/hdf5"
)

// jetRow is a small Salt-like jets row: mixed field types as UPP writes them.
type jetRow struct {
	Pt      float32 `hdf5:"pt_btagJes"`
	Eta     float32 `hdf5:"eta_btagJes"`
	NTracks int32   `hdf5:"n_tracks"`
	Label   int32   `hdf5:"flavour_label"`
	Valid   uint8   `hdf5:"valid"`
}

// TestCompoundRoundTrip writes a 1-D compound dataset with the HDF5 library
// and reads it back, proving the cgo binding and Debian's libhdf5 work.
func TestCompoundRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jets.h5")
	rows := []jetRow{
		{Pt: 25e3, Eta: 0.5, NTracks: 3, Label: 0, Valid: 1},
		{Pt: 1.2e5, Eta: -2.1, NTracks: 17, Label: 2, Valid: 1},
		{Pt: 4.4e4, Eta: 1.9, NTracks: 0, Label: 3, Valid: 0},
	}
	f, err := hdf5.CreateFile(path, hdf5.F_ACC_TRUNC)
	if err != nil {
		t.Fatal(err)
	}
	dtype, err := hdf5.NewDatatypeFromValue(rows[0])
	if err != nil {
		t.Fatal(err)
	}
	space, err := hdf5.CreateSimpleDataspace([]uint{uint(len(rows))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := f.CreateDataset("jets", dtype, space)
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.Write(&rows); err != nil {
		t.Fatal(err)
	}
	ds.Close()
	space.Close()
	f.Close()

	f, err = hdf5.OpenFile(path, hdf5.F_ACC_RDONLY)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ds, err = f.OpenDataset("jets")
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	if n := ds.Space().SimpleExtentNPoints(); n != len(rows) {
		t.Fatalf("dataset has %d rows, want %d", n, len(rows))
	}
	got := make([]jetRow, len(rows))
	if err := ds.Read(&got); err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if got[i] != rows[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], rows[i])
		}
	}
}
