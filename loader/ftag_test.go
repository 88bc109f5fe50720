package loader

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// ftagScript writes and reads files with Debian's h5py the way
// atlas-ftag-tools does (ftag/hdf5/h5writer.py, ftag/vds.py):
//
//	h5writer PATH N FIRST COMPRESSION OPTS  H5Writer in dynamic mode: float32,
//	    maxshape (None, ...), chunks (100, T) for tracks and h5py's choice
//	    for jets, the compression ("lzf", "gzip" or a plugin filter id) and
//	    its options (JSON, null for none), rows appended in batches
//	direct PATH N FIRST FILTER HOW  fixed shape, chunks of 100 jets, filter id
//	    set without h5py checking it; each chunk written as is (HOW "junk"),
//	    or compressed by the zstd tool from a file ("zstd", frames record
//	    their size, as hdf5plugin's Zstd writes them) or from a pipe
//	    ("zstd-stream", frames without their size)
//	vds OUT STORED REAL  vds.py's layout: per dataset, a VirtualSource per
//	    file named as STORED (JSON list) with the shape read from REAL
//	dump PATH  what h5py reads: jets pt, eventNumber, tracks d0 and valid,
//	    and the tracks' compression and stored and raw sizes
//
// Jet g (FIRST + row) has pt 1000 + 10 g, eventNumber 7 g, flavour g % 4
// and g % 6 valid tracks out of 5 with d0 = g + t/8.
const ftagScript = `
import json, subprocess, sys, tempfile
import numpy as np, h5py

T = 5

def arrays(n, first, drop=()):
    g = first + np.arange(n)
    jf = [("pt_btagJes", "<f4"), ("eta_btagJes", "<f4"), ("flavour_label", "<i4"), ("eventNumber", "<i8")]
    jets = np.zeros(n, dtype=[f for f in jf if f[0] not in drop])
    jets["pt_btagJes"] = 1000.0 + 10.0 * g
    jets["eta_btagJes"] = (g % 50) / 20.0 - 1.25
    jets["flavour_label"] = g % 4
    if "eventNumber" not in drop:
        jets["eventNumber"] = 7 * g
    tracks = np.zeros((n, T), dtype=[("d0", "<f4"), ("z0SinTheta", "<f4"), ("valid", "?"), ("ftagTruthOriginLabel", "i1")])
    t = np.arange(T)[None, :]
    valid = t < (g[:, None] % (T + 1))
    tracks["valid"] = valid
    tracks["d0"] = np.where(valid, g[:, None] + t / 8.0, 0)
    tracks["z0SinTheta"] = np.where(valid, -0.5 * t, 0)
    tracks["ftagTruthOriginLabel"] = np.where(valid, t % 3, -1)
    return {"jets": jets, "tracks": tracks}

def h5writer(path, n, first, compression, opts, drop=()):
    if compression.isdigit():
        compression = int(compression)
    opts = json.loads(opts)
    with h5py.File(path, "w") as f:
        f.attrs["writer_version"] = "salt-ort test"
        for name, arr in arrays(n, first, drop).items():
            shape = arr.shape
            kw = {"dtype": arr.dtype, "compression": compression,
                  "chunks": (100, *shape[1:]) if shape[1:] else None}
            if opts is not None:
                kw["compression_opts"] = tuple(opts) if isinstance(opts, list) else opts
            ds = f.create_dataset(name, shape=(0, *shape[1:]), maxshape=(None, *shape[1:]), **kw)
            for s in range(0, n, 64):
                b = arr[s:s + 64]
                ds.resize(s + len(b), axis=0)
                ds[s:s + len(b)] = b

def zstd(raw, stream):
    if stream:
        return subprocess.run(["zstd", "-q", "-3", "-c", "-"], input=raw, capture_output=True, check=True).stdout
    with tempfile.NamedTemporaryFile() as tmp:
        tmp.write(raw)
        tmp.flush()
        return subprocess.run(["zstd", "-q", "-3", "-c", tmp.name], capture_output=True, check=True).stdout

def direct(path, n, first, fid, how):
    with h5py.File(path, "w") as f:
        for name, arr in arrays(n, first).items():
            chunk = (100, *arr.shape[1:])
            ds = f.create_dataset(name, shape=arr.shape, dtype=arr.dtype, chunks=chunk,
                                  compression=int(fid), compression_opts=(3,), allow_unknown_filter=True)
            for s in range(0, n, 100):
                block = np.zeros(chunk, dtype=arr.dtype)
                part = arr[s:s + 100]
                block[:len(part)] = part
                raw = block.tobytes()
                if how == "junk":
                    raw = b"no filter made these bytes"
                else:
                    raw = zstd(raw, how == "zstd-stream")
                ds.id.write_direct_chunk((s,) + (0,) * (arr.ndim - 1), raw)

def vds(out, stored, real):
    stored, real = json.loads(stored), json.loads(real)
    with h5py.File(out, "w") as fout:
        for group in ("jets", "tracks"):
            sources, total = [], 0
            for s, r in zip(stored, real):
                with h5py.File(r, "r") as f:
                    shape, dtype = f[group].shape, f[group].dtype
                sources.append(h5py.VirtualSource(s, group, shape=shape))
                total += shape[0]
            with h5py.File(real[0], "r") as f:
                dtype, shape = f[group].dtype, f[group].shape
            layout = h5py.VirtualLayout(shape=(total, *shape[1:]), dtype=dtype)
            i = 0
            for v in sources:
                layout[i:i + v.shape[0]] = v
                i += v.shape[0]
            fout.create_virtual_dataset(group, layout)

def dump(path):
    with h5py.File(path, "r") as f:
        j, t = f["jets"][:], f["tracks"][:]
        print(json.dumps({"pt": j["pt_btagJes"].tolist(), "event": j["eventNumber"].tolist(),
                          "d0": t["d0"].ravel().tolist(), "valid": t["valid"].ravel().tolist(),
                          "compression": f["tracks"].compression,
                          "stored": int(f["tracks"].id.get_storage_size()), "nbytes": int(f["tracks"].nbytes)}))

mode, args = sys.argv[1], sys.argv[2:]
if mode == "h5writer":
    h5writer(args[0], int(args[1]), int(args[2]), args[3], args[4], tuple(args[5].split(",")) if len(args) > 5 else ())
elif mode == "direct":
    direct(args[0], int(args[1]), int(args[2]), args[3], args[4])
elif mode == "vds":
    vds(*args)
elif mode == "dump":
    dump(args[0])
`

// ftagT is the tracks' second dimension in ftagScript's files.
const ftagT = 5

// pythonH5py returns the interpreter with h5py, or a reason it is missing.
func pythonH5py() (string, string) {
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err != nil {
		return "", py + " not found"
	}
	if out, err := exec.Command(py, "-c", "import h5py, numpy").CombinedOutput(); err != nil {
		return "", "python3-h5py is not installed (" + strings.TrimSpace(string(out)) + ")"
	}
	return py, ""
}

// needH5py returns Debian's python3 with h5py, or fails the test saying how
// to install it.
func needH5py(t testing.TB) string {
	t.Helper()
	py, why := pythonH5py()
	if py == "" {
		t.Fatalf("%s: run `make deps` (third_party/debian/install.sh installs python3-h5py)", why)
	}
	return py
}

// runFtag runs ftagScript with extra environment entries.
func runFtag(t testing.TB, env []string, args ...string) string {
	t.Helper()
	py := needH5py(t)
	if len(args) > 0 && (args[0] == "direct") && strings.HasPrefix(args[len(args)-1], "zstd") {
		if _, err := exec.LookPath("zstd"); err != nil {
			t.Fatal("the zstd tool is missing: run `make deps` (third_party/debian/install.sh installs zstd)")
		}
	}
	cmd := exec.Command(py, append([]string{"-c", ftagScript}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ftag-style h5py %s: %v\n%s", args[0], err, out)
	}
	return string(out)
}

// ftagDump is what h5py reads from a file written by ftagScript.
type ftagDump struct {
	Pt          []float32
	Event       []int64
	D0          []float32
	Valid       []bool
	Compression any
	Stored      int64
	Nbytes      int64
}

func dumpFtag(t testing.TB, path string) ftagDump {
	t.Helper()
	var d ftagDump
	out := runFtag(t, nil, "dump", path)
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("h5py dump of %s: %v\n%s", path, err, out)
	}
	return d
}

// ftagConfig reads jets pt and tracks d0 in file order.
func ftagConfig(files ...string) Config {
	return Config{
		Files: files, BatchSize: 32,
		Groups: []Group{{Name: "jets", Variables: []string{"pt_btagJes"}}, {Name: "tracks", Variables: []string{"d0"}}},
		Labels: []Label{{Name: "flavour", Dataset: "jets", Field: "flavour_label", Kind: ClassLabel}},
	}
}

// readFtag reads every jet of files with the loader, in file order: pt per
// jet, and d0 and valid per track.
func readFtag(t testing.TB, files ...string) (pt, d0 []float32, valid []bool) {
	t.Helper()
	ds, err := Open(ftagConfig(files...))
	if err != nil {
		t.Fatal(err)
	}
	defer ds.Close()
	for _, b := range collect(t, ds, 0, 0) {
		pt = append(pt, b.Inputs["jets"].Data[:b.N]...)
		tr := b.Inputs["tracks"]
		d0 = append(d0, tr.Data[:b.N*ftagT]...)
		valid = append(valid, tr.Valid[:b.N*ftagT]...)
		b.Release()
	}
	return pt, d0, valid
}

// checkFtagValues checks the loader's view of jets first.. against the
// values ftagScript writes.
func checkFtagValues(t testing.TB, first int, pt, d0 []float32, valid []bool) {
	t.Helper()
	for j := range pt {
		g := first + j
		if want := float32(1000 + 10*g); pt[j] != want {
			t.Fatalf("jet %d: pt %v, want %v", j, pt[j], want)
		}
		for k := range ftagT {
			i := j*ftagT + k
			wantValid := k < g%(ftagT+1)
			wantD0 := float32(0)
			if wantValid {
				wantD0 = float32(g) + float32(k)/8
			}
			if valid[i] != wantValid || d0[i] != wantD0 {
				t.Fatalf("jet %d track %d: d0 %v valid %v, want %v %v", j, k, d0[i], valid[i], wantD0, wantValid)
			}
		}
	}
}
