package saltimport

import (
	"archive/zip"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/loader"
)

// TestReadCheckpointRefusesDamage checks that files that are not a
// complete torch.save archive are an ErrNotCheckpoint naming the file, not
// a crash (gopickle panics on some of them).
func TestReadCheckpointRefusesDamage(t *testing.T) {
	zipOf := func(files map[string]string) []byte {
		var b bytes.Buffer
		w := zip.NewWriter(&b)
		for name, data := range files {
			f, err := w.Create(name)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte(data))
		}
		w.Close()
		return b.Bytes()
	}
	full := zipOf(map[string]string{"archive/data.pkl": "\x80\x02}q\x00.", "archive/version": "3\n"})
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a valid zip file"},
		{"not a zip", []byte("PK? this is text"), "not a valid zip file"},
		{"truncated", full[:len(full)-10], "not a valid zip file"},
		{"no data.pkl", zipOf(map[string]string{"archive/version": "3\n"}), "no data.pkl"},
		{"a pickle that is not a dictionary", zipOf(map[string]string{"archive/data.pkl": "\x80\x02K\x05."}), "not a Lightning checkpoint's dictionary"},
		{"a dictionary without state_dict", full, "no state_dict"},
		{"a damaged pickle", zipOf(map[string]string{"archive/data.pkl": "\x80\x02}q\x00(X\x05"}), "not a readable PyTorch checkpoint"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "model.ckpt")
			if err := os.WriteFile(path, c.data, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadCheckpoint(path)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error naming %s with %q", err, path, c.want)
			}
			if c.name != "a dictionary without state_dict" && !errors.Is(err, ErrNotCheckpoint) {
				t.Errorf("%v does not wrap ErrNotCheckpoint", err)
			}
		})
	}
}

// TestLayoutOf checks the transpose of Salt's [out, in] weights into
// salt-ort's [in, out] and the plain copy of everything else.
func TestLayoutOf(t *testing.T) {
	for _, c := range []struct {
		p    Param
		in   []float32
		want []float32
	}{
		{Param{SaltShape: []int{2, 3}, Transpose: true}, []float32{1, 2, 3, 4, 5, 6}, []float32{1, 4, 2, 5, 3, 6}},
		{Param{SaltShape: []int{1, 3}, Transpose: true}, []float32{1, 2, 3}, []float32{1, 2, 3}},
		{Param{SaltShape: []int{3}}, []float32{1, 2, 3}, []float32{1, 2, 3}},
		{Param{SaltShape: []int{2, 2}}, []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4}},
	} {
		got := layoutOf(c.p, c.in)
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%+v of %v = %v, want %v", c.p, c.in, got, c.want)
				break
			}
		}
	}
}

// TestBuffer checks which state_dict entries are buffers, not parameters
// (the optimizer's parameter order skips them).
func TestBuffer(t *testing.T) {
	for name, want := range map[string]bool{
		"norm.tracks_means":                  true,
		"norm.jets_stds":                     true,
		"model.encoder.register_mask":        true,
		"model.tasks.0.loss.weight":          true,
		"model.tasks.12.loss.pos_weight":     true,
		"model.tasks.0.net.net.0.weight":     false,
		"model.encoder.registers":            false,
		"model.init_nets.0.net.net.2.weight": false,
		"model.pool_net.gate_nn.bias":        false,
	} {
		if got := buffer(name); got != want {
			t.Errorf("buffer(%s) = %v, want %v", name, got, want)
		}
	}
}

// TestCheckNormGlobal checks the normalisation buffers of Salt's global
// and parameter inputs against the jet dataset's entries of the norm
// dictionary, where Salt's CLI reads them, also through input_map.
func TestCheckNormGlobal(t *testing.T) {
	cfg := config.Default()
	cfg.Data.Variables = map[string][]string{"jets": {"pt"}, "global": {"mass", "n_tracks"}, "tracks": {"d0"}}
	cfg.Data.InputMap = map[string]string{"jets": "jets_calib"}
	nd := loader.NormDict{"jets_calib": {"pt": {Mean: 1, Std: 2}, "mass": {Mean: 3, Std: 4}, "n_tracks": {Mean: 5, Std: 6}}}
	for _, c := range []struct {
		name string
		data []float32
		want string
	}{
		{"norm.global_means", []float32{3, 5}, ""},
		{"norm.global_stds", []float32{4, 6}, ""},
		{"norm.global_means", []float32{3, 7}, "n_tracks: mean 7"},
	} {
		got := checkNorm(c.name, &Tensor{Shape: []int{len(c.data)}, Data: c.data}, &cfg, nd)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s %v: %q, want %q", c.name, c.data, got, c.want)
		}
	}
}
