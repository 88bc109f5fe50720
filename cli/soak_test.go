package cli

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/salt-ort/salt-ort/checkpoint"
	"github.com/salt-ort/salt-ort/codegen/onnxpb"
	"github.com/salt-ort/salt-ort/gendata"
	"github.com/salt-ort/salt-ort/internal/testkit/fixture"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/runtime"
	"google.golang.org/protobuf/proto"
)

// soakTimeout bounds one command of the soak: every bad input must be
// answered well within it, however it is broken.
const soakTimeout = 30 * time.Second

// unreadable is a file whose reads fail with EIO, for root too.
const unreadable = "/proc/self/mem"

// diskFull is what salt-ort says to do when a write runs out of space.
const diskFull = "the disk is full"

// soakSeed fixes every bit flip of the soak, so a failing case fails the
// same way on every run.
const soakSeed = 19

// soakCase is one run of the binary on one broken input.
type soakCase struct {
	cmd  string   // the command, for the count
	name string   // what is broken
	args []string // the command line after the binary
	// want are what the message must name: the broken file (its path, or
	// its base name, which every case makes unique), the field or
	// configuration key, and where salt-ort gives one, the fix.
	want []string
	// code is the exit code required; 0 accepts 1 or 2.
	code int
	// fsize, if positive, is the largest file the command may write
	// (RLIMIT_FSIZE, bytes): a full disk, as writes fail with EFBIG.
	fsize int
	// absent are paths that must not exist afterwards (an output the
	// command was asked to create).
	absent []string
	// mayChange are paths, relative to a watched directory, that the
	// command may write or rewrite (a resumed run's log; a run that
	// failed after its first checkpoint): see mayMatch. Every checkpoint
	// among them must read back whole.
	mayChange []string
}

// soakDoc is the user-guide page that counts and times the soak's cases.
const soakDoc = "../docs/bad-input.md"

// soakDocCount is how soakDoc counts the soak's cases.
var soakDocCount = regexp.MustCompile("`cli/soak_test.go` runs (\\d+) bad inputs,\\s+each a corruption of one input of one command \\(" +
	"check (\\d+), norm (\\d+), train (\\d+), eval (\\d+), export (\\d+),\\s+validate (\\d+)\\)")

// checkSoakDoc requires soakDoc's count of the soak's cases, in all and
// per command, to be the table's, and its timing to be of that many runs.
func checkSoakDoc(t *testing.T, total int, count map[string]int) {
	t.Helper()
	doc, err := os.ReadFile(soakDoc)
	if err != nil {
		t.Fatal(err)
	}
	m := soakDocCount.FindSubmatch(doc)
	if m == nil {
		t.Fatalf("%s no longer says how many bad inputs cli/soak_test.go runs (%s)", soakDoc, soakDocCount)
	}
	want := fmt.Sprintf("%d: check %d, norm %d, train %d, eval %d, export %d, validate %d", total,
		count["check"], count["norm"], count["train"], count["eval"], count["export"], count["validate"])
	if got := fmt.Sprintf("%s: check %s, norm %s, train %s, eval %s, export %s, validate %s", m[1], m[2], m[3], m[4], m[5], m[6], m[7]); got != want {
		t.Errorf("%s counts the soak's bad inputs as %s; the table has %s", soakDoc, got, want)
	}
	if runs := regexp.MustCompile(`for the (\d+) runs`).FindSubmatch(doc); runs == nil || string(runs[1]) != strconv.Itoa(total) {
		t.Errorf("%s's timing of the soak is not of its %d runs", soakDoc, total)
	}
}

// TestSoakBadInputs runs every command of salt-ort (check, norm, train,
// eval, export, validate) through the real binary on a table of broken
// inputs: truncated, bit-flipped and empty HDF5 files, checkpoints and
// ONNX models; wrong dtypes and shapes; directories, dangling links and
// loops where files are expected; broken configurations and dictionaries;
// virtual datasets with a missing source and filters nobody has; files
// whose reads fail; and a full disk. The disk fills through RLIMIT_FSIZE
// (writes past it fail with EFBIG), as a test may not mount a small tmpfs,
// and /dev/full does not serve: salt-ort writes each output through a
// temporary file beside it, which as root would be created in /dev and
// renamed over the device. Permissions are no fault for root, which
// reads a chmod 000 file, so /proc/self/mem (EIO at offset 0) stands for
// an unreadable file. Each command must end within soakTimeout with exit
// 1 or 2 (not a signal), print no panic or goroutine trace, name the
// broken file or key, and leave every input, run and output directory as
// it was: no new file, no changed one, no temporary file.
func TestSoakBadInputs(t *testing.T) {
	start := time.Now()
	s := newSoak(t)
	cases := s.cases()
	setup := time.Since(start)
	count := map[string]int{}
	var slowest time.Duration
	var slowestName string
	for i, c := range cases {
		count[c.cmd]++
		t.Run(fmt.Sprintf("%03d %s/%s", i, c.cmd, c.name), func(t *testing.T) {
			d := s.check(t, c)
			if d > slowest {
				slowest, slowestName = d, c.cmd+"/"+c.name
			}
		})
	}
	var cmds []string
	for _, cmd := range []string{"check", "norm", "train", "eval", "export", "validate"} {
		if count[cmd] < 5 {
			t.Errorf("%d cases of %s; the soak needs at least 5 of each command", count[cmd], cmd)
		}
		cmds = append(cmds, fmt.Sprintf("%s %d", cmd, count[cmd]))
	}
	checkSoakDoc(t, len(cases), count)
	t.Logf("soak: %d bad inputs (%s) in %v (setup %v; slowest case %v, %s)",
		len(cases), strings.Join(cmds, ", "), time.Since(start).Round(100*time.Millisecond),
		setup.Round(100*time.Millisecond), slowest.Round(10*time.Millisecond), slowestName)
}

// soak holds what the cases break: a generated dataset, a trained run and
// its export, and a second model's, all made once.
type soak struct {
	t    *testing.T
	bin  string
	env  []string
	root string
	// data is the dataset (train, val, test, dictionaries); gz the same
	// layout gzip-compressed in chunks of 100 jets.
	data, gz string
	// bad holds the broken inputs; watched are the directories no case
	// may change.
	bad     string
	watched []string
	config  string // the tiny configuration's text over data
	run     string // a run trained on it for one epoch
	model   string // its export
	other   struct{ run, model string }
	info    h5Info // where train.h5 keeps its data
	gzInfo  h5Info // where gz/train.h5 keeps its chunks
	n       int    // cases made so far, for unique names
}

// h5Info is what soakScript reports of a file: per dataset, where its
// contiguous data starts (or its chunks lie), the size of a row and the
// offset of each field in it.
type h5Info map[string]struct {
	Offset   int64            `json:"offset"`
	Itemsize int64            `json:"itemsize"`
	Fields   map[string]int64 `json:"fields"`
	Shape    []int64          `json:"shape"`
	Chunks   [][2]int64       `json:"chunks"` // byte offset and size of each chunk
}

// newSoak builds the binary and makes what the cases break.
func newSoak(t *testing.T) *soak {
	s := &soak{t: t, bin: buildBinary(t), root: t.TempDir()}
	lib, err := runtime.LibraryPath("")
	if err != nil {
		t.Fatal(err)
	}
	lib, _ = filepath.Abs(lib)
	// The commands run in an empty directory of their own, so they find
	// ONNX Runtime through the environment.
	s.env = append(os.Environ(), runtime.LibraryEnv+"="+lib)
	s.data, s.gz, s.bad = s.dir("data"), s.dir("gz"), s.dir("bad")
	if _, err := gendata.Generate(gendata.Config{Seed: soakSeed, Train: 600, Val: 200, Test: 100}, s.data); err != nil {
		t.Fatal(err)
	}
	gz := gendata.Config{Seed: soakSeed, Train: 300, Val: 100, Test: 100, NoDicts: true, Storage: loader.TableOptions{ChunkRows: 100, Deflate: 4}}
	if _, err := gendata.Generate(gz, s.gz); err != nil {
		t.Fatal(err)
	}
	s.config = fixture.Tiny(s.data, fixture.Options{Epochs: 1})
	s.run = filepath.Join(s.dir("runs"), "tiny")
	s.train(s.config, s.run)
	s.model = filepath.Join(s.dir("export"), "GN2.onnx")
	s.export(s.run, s.model)
	// Another model: other track inputs, so its tensors have other shapes.
	s.other.run = filepath.Join(s.root, "runs", "other")
	s.train(fixture.Tiny(s.data, fixture.Options{Epochs: 1, TrackVars: []string{"d0", "z0SinTheta", "dphi"}, NoClassDict: true}), s.other.run)
	s.other.model = filepath.Join(s.dir("export-other"), "GN2.onnx")
	s.export(s.other.run, s.other.model)

	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Fatalf("prlimit, which the disk-full cases run the binary under, is missing: %v (Debian's util-linux has it)", err)
	}
	py := "/usr/bin/python3"
	out, err := exec.Command(py, "-c", soakScript, filepath.Join(s.data, "train.h5"), filepath.Join(s.gz, "train.h5"), s.bad).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s with h5py writing the broken files: %v\n%s\n(`make deps` installs python3-h5py)", py, err, stderr)
	}
	var infos []h5Info
	if err := json.Unmarshal(out, &infos); err != nil || len(infos) != 2 {
		t.Fatalf("soakScript printed %q: %v", out, err)
	}
	s.info, s.gzInfo = infos[0], infos[1]
	s.watched = []string{s.data, s.gz, s.bad, filepath.Join(s.root, "runs"), filepath.Dir(s.model), filepath.Dir(s.other.model)}
	return s
}

// dir makes a directory under the soak's root.
func (s *soak) dir(name string) string {
	d := filepath.Join(s.root, name)
	if err := os.MkdirAll(d, 0o755); err != nil {
		s.t.Fatal(err)
	}
	return d
}

// train trains config into the run directory run, or fails the test.
func (s *soak) train(config, run string) {
	path := filepath.Join(s.bad, filepath.Base(run)+".toml")
	if err := os.WriteFile(path, []byte(config), 0o644); err != nil {
		s.t.Fatal(err)
	}
	if out, err := s.command(context.Background(), 0, "train", path, "--out", run, "--quiet").CombinedOutput(); err != nil {
		s.t.Fatalf("train: %v\n%s", err, out)
	}
}

// export exports run to model with 100 validation jets, or fails the
// test.
func (s *soak) export(run, model string) {
	if out, err := s.command(context.Background(), 0, "export", run, "-o", model, "--validation-jets", "100").CombinedOutput(); err != nil {
		s.t.Fatalf("export: %v\n%s", err, out)
	}
}

// command is the binary with args, in a fresh empty directory, with at
// most fsize bytes per written file when fsize > 0.
func (s *soak) command(ctx context.Context, fsize int, args ...string) *exec.Cmd {
	name, argv := s.bin, args
	if fsize > 0 {
		// prlimit (util-linux, in every Debian) sets RLIMIT_FSIZE and
		// execs the binary; Go ignores SIGXFSZ, so a write past the
		// limit fails with EFBIG as on a full disk.
		name, argv = "prlimit", append([]string{"--fsize=" + strconv.Itoa(fsize), "--", s.bin}, args...)
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Env = s.env
	cmd.Dir = s.t.TempDir()
	return cmd
}

// check runs one case and checks its answer; it returns how long it took.
func (s *soak) check(t *testing.T, c soakCase) time.Duration {
	before := map[string]map[string]string{}
	for _, d := range s.watched {
		before[d] = snapshot(t, d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), soakTimeout)
	defer cancel()
	cmd := s.command(ctx, c.fsize, c.args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cwd := cmd.Dir
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	text := out.String()
	t.Logf("salt-ort %s (%v):\n%s", strings.Join(c.args, " "), took.Round(time.Millisecond), lastLines(text, 6))
	if ctx.Err() != nil {
		t.Fatalf("still running after %v", soakTimeout)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("exit status 0 (or no start: %v) on a bad input", err)
	}
	if ws := ee.Sys().(syscall.WaitStatus); ws.Signaled() {
		t.Fatalf("killed by %v", ws.Signal())
	}
	if code := ee.ExitCode(); (c.code == 0 && code != ExitFailure && code != ExitUsage) || (c.code != 0 && code != c.code) {
		t.Errorf("exit %d, want %s", code, map[bool]string{true: "1 or 2", false: strconv.Itoa(c.code)}[c.code == 0])
	}
	for _, bad := range []string{"panic:", "goroutine ", "runtime error", "SIGSEGV"} {
		if strings.Contains(text, bad) {
			t.Errorf("the output holds %q", bad)
		}
	}
	for _, w := range c.want {
		if !strings.Contains(text, w) {
			t.Errorf("the message does not name %q", w)
		}
	}
	for _, d := range s.watched {
		after := snapshot(t, d)
		diffSnapshots(t, d, before[d], after, c.mayChange)
		for k, v := range after {
			if v != before[d][k] && strings.HasSuffix(k, ".safetensors") {
				if _, err := checkpoint.Read(filepath.Join(d, k)); err != nil {
					t.Errorf("a checkpoint written is not whole: %v", err)
				}
			}
		}
	}
	if left, _ := os.ReadDir(cwd); len(left) > 0 {
		t.Errorf("files left in the working directory: %v", left)
	}
	for _, p := range c.absent {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after the failure (%v)", p, err)
		}
	}
	return took
}

// snapshot describes every entry under dir: a directory, a link's
// target, or a file's size and modification time (a rewrite changes it;
// hashing every input for every case would cost more than the cases).
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	m := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case d.IsDir():
			m[rel] = "directory"
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			m[rel] = "link to " + target
		default:
			info, err := d.Info()
			if err != nil {
				return err
			}
			m[rel] = fmt.Sprintf("%d bytes, modified %s", info.Size(), info.ModTime().Format(time.RFC3339Nano))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// diffSnapshots reports every entry of dir that appeared, went or
// changed, except changes to the paths in mayChange; temporary files are
// never allowed.
func diffSnapshots(t *testing.T, dir string, before, after map[string]string, mayChange []string) {
	t.Helper()
	var keys []string
	for k := range after {
		keys = append(keys, k)
	}
	for k := range before {
		if _, ok := after[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		b, inBefore := before[k]
		a, inAfter := after[k]
		base := filepath.Base(k)
		switch {
		case strings.HasPrefix(base, ".tmp") || strings.Contains(base, ".tmp"):
			t.Errorf("temporary file left: %s", filepath.Join(dir, k))
		case a == b:
		case inAfter && slices.ContainsFunc(mayChange, func(p string) bool { return mayMatch(p, k) }):
		case !inBefore:
			t.Errorf("new file: %s (%s)", filepath.Join(dir, k), a)
		case !inAfter:
			t.Errorf("removed: %s (was %s)", filepath.Join(dir, k), b)
		default:
			t.Errorf("changed: %s (%s, was %s)", filepath.Join(dir, k), a, b)
		}
	}
}

// mayMatch reports whether path k (relative to a watched directory) is
// one that pattern p lets a command write: a filepath.Match pattern, or
// a directory "d/" and everything in it.
func mayMatch(p, k string) bool {
	if d, ok := strings.CutSuffix(p, "/"); ok {
		return k == d || strings.HasPrefix(k, p)
	}
	ok, _ := filepath.Match(p, k)
	return ok
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// name returns a unique path in the bad directory for a broken input.
func (s *soak) name(base string) string {
	s.n++
	return filepath.Join(s.bad, fmt.Sprintf("%02d-%s", s.n, base))
}

// write writes a broken input and returns its path.
func (s *soak) write(base string, data []byte) string {
	p := s.name(base)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s *soak) read(path string) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatal(err)
	}
	return b
}

// truncated writes the first n bytes of src (n < 0: len + n).
func (s *soak) truncated(src, base string, n int) string {
	b := s.read(src)
	if n < 0 {
		n += len(b)
	}
	return s.write(base, b[:n])
}

// flipped writes src with the bits of mask flipped at each offset.
func (s *soak) flipped(src, base string, at map[int64]byte) string {
	b := s.read(src)
	for off, mask := range at {
		if off < 0 || off >= int64(len(b)) {
			s.t.Fatalf("flip at %d outside %s (%d bytes)", off, src, len(b))
		}
		b[off] ^= mask
	}
	return s.write(base, b)
}

// mkdir makes a directory where a file is expected.
func (s *soak) mkdir(base string) string {
	p := s.name(base)
	if err := os.Mkdir(p, 0o755); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// link makes a symbolic link to target (a dangling one if it does not
// exist; a loop if it is the link itself).
func (s *soak) link(base, target string) string {
	p := s.name(base)
	if target == "" {
		target = p
	}
	if err := os.Symlink(target, p); err != nil {
		s.t.Fatal(err)
	}
	return p
}

// out returns a fresh, empty output directory for one case, watched for
// anything left in it.
func (s *soak) out() string {
	p := filepath.Join(s.root, "out", strconv.Itoa(s.n))
	s.n++
	if err := os.MkdirAll(p, 0o755); err != nil {
		s.t.Fatal(err)
	}
	s.watched = append(s.watched, p)
	return p
}

// configWith writes the tiny configuration with old replaced by new.
func (s *soak) configWith(base, old, new string) string {
	if !strings.Contains(s.config, old) {
		s.t.Fatalf("the configuration has no %q", old)
	}
	return s.write(base, []byte(strings.Replace(s.config, old, new, 1)))
}

// trainFile writes the configuration with train.h5 replaced by path.
func (s *soak) trainFile(path string) string {
	return s.configWith("model.toml", filepath.Join(s.data, "train.h5"), path)
}

// runCopy copies the trained run, with its last checkpoint replaced by
// ckpt when given, for a case that resumes it.
func (s *soak) runCopy(ckpt string) string {
	dst := filepath.Join(s.root, "runs", fmt.Sprintf("copy%02d", s.n))
	s.n++
	err := filepath.WalkDir(s.run, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.run, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		s.t.Fatal(err)
	}
	if ckpt != "" {
		last := filepath.Join(dst, "checkpoints", "last.safetensors")
		if err := os.Remove(last); err != nil {
			s.t.Fatal(err)
		}
		if st, err := os.Stat(ckpt); err == nil && st.IsDir() {
			err = os.Mkdir(last, 0o755)
		} else {
			err = os.WriteFile(last, s.read(ckpt), 0o644)
		}
		if err != nil {
			s.t.Fatal(err)
		}
	}
	return dst
}

// checkpointOffsets returns where a safetensors file's header and the
// data of one tensor start and end.
func (s *soak) checkpointOffsets(path, tensor string) (header, begin, end int64) {
	b := s.read(path)
	n := int64(binary.LittleEndian.Uint64(b))
	var h map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &h); err != nil {
		s.t.Fatal(err)
	}
	var e struct {
		Offsets [2]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(h[tensor], &e); err != nil {
		s.t.Fatalf("%s: tensor %s: %v", path, tensor, err)
	}
	return n, 8 + n + e.Offsets[0], 8 + n + e.Offsets[1]
}

// cases builds the table: every broken input, each given to one command.
func (s *soak) cases() []soakCase {
	t := s.t
	r := rand.New(rand.NewPCG(soakSeed, 1))
	var cases []soakCase
	add := func(cmd, name string, want []string, args ...string) *soakCase {
		cases = append(cases, soakCase{cmd: cmd, name: name, args: append([]string{cmd}, args...), want: want})
		return &cases[len(cases)-1]
	}
	base := func(p string) string { return filepath.Base(p) }
	train := filepath.Join(s.data, "train.h5")
	trainBytes := int64(len(s.read(train)))

	// --- configurations (check and train) ---
	empty := s.write("empty.toml", nil)
	add("check", "empty configuration", []string{base(empty), "data.train"}, empty).code = ExitUsage
	dir := s.mkdir("dir.toml")
	add("check", "directory as configuration", []string{base(dir), "directory"}, dir)
	garbage := make([]byte, 512)
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	garbageConfig := s.write("garbage.toml", garbage)
	add("check", "binary garbage as configuration", []string{base(garbageConfig)}, garbageConfig).code = ExitUsage
	malformed := s.write("malformed.toml", []byte(s.config[:len(s.config)/2]+"\n[training\nepochs = 1\n"))
	add("check", "malformed TOML", []string{base(malformed)}, malformed).code = ExitUsage
	wrongType := s.configWith("wrongtype.toml", "epochs = 1", `epochs = "one"`)
	add("check", "wrong type", []string{base(wrongType), "training.epochs"}, wrongType).code = ExitUsage
	unknown := s.configWith("unknown.toml", "batch_size = 50", "batch_size = 50\nbatch_sise = 50")
	add("check", "unknown key", []string{base(unknown), "batch_sise", `"batch_size"`}, unknown).code = ExitUsage
	missingTrain := s.trainFile(filepath.Join(s.bad, "nowhere.h5"))
	add("check", "missing train file", []string{"nowhere.h5"}, missingTrain)
	dirTrain := s.mkdir("dir.h5")
	add("check", "directory as train file", []string{base(dirTrain)}, s.trainFile(dirTrain))
	missingConfig := filepath.Join(s.bad, "absent.toml")
	add("check", "missing configuration", []string{"absent.toml"}, missingConfig)
	loop := s.link("loop.toml", "")
	add("check", "configuration a symlink loop", []string{base(loop)}, loop)
	// Root reads a chmod 000 file, so an unreadable file is one whose
	// reads fail: /proc/self/mem at offset 0 (EIO) in each process.
	add("check", "configuration unreadable (EIO)", []string{unreadable, "input/output error"}, unreadable)
	add("check", "train file unreadable (EIO)", []string{unreadable, "Input/output error"}, s.trainFile(unreadable))
	add("check", "norm_dict a directory", []string{"dirnorm.yaml"}, s.configWith("model.toml", filepath.Join(s.data, "norm_dict.yaml"), s.mkdir("dirnorm.yaml")))
	add("check", "class_names fewer than the class dict's weights", []string{"data.class_dict", "flavour_label", "3 classes"},
		s.configWith("model.toml", `class_names = ["b", "c", "u", "tau"]`, `class_names = ["b", "c", "u"]`))

	// --- norm and class dictionaries (check) ---
	norm := string(s.read(filepath.Join(s.data, "norm_dict.yaml")))
	class := string(s.read(filepath.Join(s.data, "class_dict.yaml")))
	withNorm := func(base, text string) string {
		return s.configWith("model.toml", filepath.Join(s.data, "norm_dict.yaml"), s.write(base, []byte(text)))
	}
	withClass := func(base, text string) string {
		return s.configWith("model.toml", filepath.Join(s.data, "class_dict.yaml"), s.write(base, []byte(text)))
	}
	replaceLine := func(text, prefix, line string) string {
		lines := strings.Split(text, "\n")
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				lines[i] = line
				return strings.Join(lines, "\n")
			}
		}
		t.Fatalf("no line %q in\n%s", prefix, text)
		return ""
	}
	// The loader names the variable a norm dictionary lacks or holds
	// badly, not the dictionary's file.
	add("check", "empty norm dict", []string{"jets.pt_btagJes", "salt-ort norm"}, withNorm("empty_norm.yaml", ""))
	add("check", "malformed norm dict", []string{"malformed_norm.yaml"}, withNorm("malformed_norm.yaml", norm[:len(norm)/2]+"\n  d0: {mean: [1, std: }\n"))
	add("check", "norm dict lacks a variable", []string{"tracks.d0", "salt-ort norm"}, withNorm("lacking_norm.yaml", replaceLine(norm, "  d0:", "")))
	add("check", "zero std", []string{"tracks.d0", "zero std"}, withNorm("zero_norm.yaml", replaceLine(norm, "  d0:", "  d0: {mean: 0.0, std: 0.0}")))
	add("check", "NaN mean", []string{"tracks.z0SinTheta", "NaN"}, withNorm("nan_norm.yaml", replaceLine(norm, "  z0SinTheta:", "  z0SinTheta: {mean: .nan, std: 1.0}")))
	add("check", "empty class dict", []string{"empty_class.yaml"}, withClass("empty_class.yaml", ""))
	add("check", "malformed class dict", []string{"malformed_class.yaml"}, withClass("malformed_class.yaml", class+"\n  - [\n"))
	add("check", "class dict lacks the label", []string{"lacking_class.yaml", "flavour_label"}, withClass("lacking_class.yaml", replaceLine(class, "  flavour_label:", "  flavour_labels: [1, 1, 1, 1]")))
	add("check", "class dict weight NaN", []string{"nan_class.yaml", "flavour_label"}, withClass("nan_class.yaml", replaceLine(class, "  flavour_label:", "  flavour_label: [1.0, .nan, 1.0, 1.0]")))
	add("check", "class dict of the wrong length", []string{"data.class_dict", "flavour_label", "2 weights"}, withClass("short_class.yaml", replaceLine(class, "  flavour_label:", "  flavour_label: [1.0, 1.0]")))

	// --- HDF5 inputs (check reads every batch of every split) ---
	truncs := []int{7, 100, 1000, int(trainBytes / 2), -1}
	for _, n := range truncs {
		p := s.truncated(train, fmt.Sprintf("trunc%d.h5", n), n)
		add("check", fmt.Sprintf("train file truncated to %d bytes", len(s.read(p))), []string{base(p)}, s.trainFile(p))
	}
	emptyH5 := s.write("empty.h5", nil)
	add("check", "empty train file", []string{base(emptyH5)}, s.trainFile(emptyH5))
	// Bit flips in the (version 0) superblock: the signature, the
	// version, the size of offsets, the end-of-file address (a bit that
	// raises it) and the root group's object header address.
	bit := func() byte { return 1 << r.IntN(8) }
	flips := []struct {
		what string
		at   int64
		mask byte
	}{
		{"signature", int64(r.IntN(8)), bit()},
		{"superblock version", 8, 2},
		{"size of offsets", 13, bit()},
		{"end-of-file address", 42, 0x80},
		{"root object header address", 64, bit()},
	}
	for _, f := range flips {
		p := s.flipped(train, "superblock.h5", map[int64]byte{f.at: f.mask})
		add("check", "bit flip in the superblock's "+f.what, []string{base(p)}, s.trainFile(p))
	}
	// Bit flips in the data that salt-ort can tell: a label far beyond
	// its classes, and a variable's exponent bits set (NaN or Inf).
	jets := s.info["jets"]
	j := int64(r.IntN(600))
	label := s.flipped(train, "label.h5", map[int64]byte{jets.Offset + j*jets.Itemsize + jets.Fields["flavour_label"] + 3: 0x40})
	add("check", "bit flip in a label", []string{base(label), "flavour_label", fmt.Sprintf("jet %d", j)}, s.trainFile(label))
	off := jets.Offset + j*jets.Itemsize + jets.Fields["pt_btagJes"]
	b := s.read(train)
	inf := s.flipped(train, "inf.h5", map[int64]byte{off + 3: ^b[off+3] & 0x7f, off + 2: ^b[off+2] & 0x80})
	add("check", "bit flips making a jet variable non-finite", []string{base(inf), "pt_btagJes", fmt.Sprintf("jet %d", j)}, s.trainFile(inf))
	// Names in the file's metadata: the tracks dataset's link name, a
	// field's name in the jets' datatype.
	for _, name := range []string{"tracks\x00", "flavour_label"} {
		i := bytes.Index(b, []byte(name))
		if i < 0 {
			t.Fatalf("train.h5 holds no %q", name)
		}
		p := s.flipped(train, "name.h5", map[int64]byte{int64(i): 0x01})
		add("check", fmt.Sprintf("bit flip in the name %q", strings.TrimRight(name, "\x00")), []string{base(p)}, s.trainFile(p))
	}
	// A flip in a gzip-compressed chunk: zlib's checksum catches it.
	chunk := s.gzInfo["tracks"].Chunks[1]
	gzFlip := s.flipped(filepath.Join(s.gz, "train.h5"), "gzchunk.h5", map[int64]byte{chunk[0] + chunk[1]/2: bit()})
	add("check", "bit flip in a gzip chunk", []string{base(gzFlip), "tracks"}, s.trainFile(gzFlip))
	// Written by soakScript with h5py; each message names the file and
	// what is wrong, and some the fix.
	for _, h := range []struct {
		file, why string
		want      []string
	}{
		{"jets_string_pt.h5", "a variable stored as text", []string{"pt_btagJes", "string"}},
		{"tracks_compound_d0.h5", "a variable stored as a compound", []string{"d0", "compound"}},
		{"jets_array_eta.h5", "a variable stored as an array", []string{"eta_btagJes", "array"}},
		{"jets_string_label.h5", "a label stored as text", []string{"flavour_label", "string"}},
		{"no_tracks.h5", "the tracks dataset missing", []string{`"tracks" not found`, "the file has: jets"}},
		{"tracks_3d.h5", "tracks of three dimensions", []string{"tracks", "3 dimensions"}},
		{"tracks_fewer_jets.h5", "tracks for fewer jets than jets", []string{"tracks", "590 rows"}},
		{"tracks_no_valid.h5", "tracks without a valid field", []string{"tracks", `"valid"`}},
		{"jets_not_compound.h5", "jets a plain array", []string{"jets", "compound"}},
		{"vds_missing_source.h5", "a virtual dataset with a missing source", []string{"vds_part_1.h5", "restore the files"}},
		{"filter_unregistered.h5", "a filter nobody registered", []string{"40123", "HDF5_PLUGIN_PATH"}},
		{"filter_blosc2.h5", "a filter with no Debian plugin", []string{"32026", "blosc2", "HDF5_PLUGIN_PATH"}},
	} {
		add("check", h.why, append([]string{h.file}, h.want...), s.trainFile(filepath.Join(s.bad, h.file)))
	}
	// The loader's message for 1-D tracks names the dataset, not the file.
	add("check", "tracks of one dimension", []string{`"tracks"`, "1-D"}, s.trainFile(filepath.Join(s.bad, "tracks_1d.h5")))

	// --- norm: its input files and its outputs ---
	normArgs := func(out string, files ...string) []string {
		return append([]string{"--out-norm", filepath.Join(out, "norm.yaml"), "--out-class", filepath.Join(out, "class.yaml")}, files...)
	}
	normIn := []struct{ why, path, field string }{
		{"input truncated", s.truncated(train, "norm_trunc.h5", int(trainBytes/3)), ""},
		{"empty input", s.write("norm_empty.h5", nil), ""},
		{"input a directory", s.mkdir("norm_dir.h5"), ""},
		{"input missing", filepath.Join(s.bad, "norm_absent.h5"), ""},
		{"input a dangling link", s.link("norm_dangling.h5", filepath.Join(s.bad, "nothing-here.h5")), ""},
		{"input unreadable (EIO)", unreadable, "Input/output error"},
		{"input's signature flipped", s.flipped(train, "norm_sig.h5", map[int64]byte{1: 0x10}), ""},
		{"a variable stored as text", filepath.Join(s.bad, "jets_string_pt.h5"), "pt_btagJes"},
		{"a variable stored as a compound", filepath.Join(s.bad, "tracks_compound_d0.h5"), "d0"},
		{"tracks dataset missing", filepath.Join(s.bad, "no_tracks.h5"), "tracks"},
		{"virtual dataset with a missing source", filepath.Join(s.bad, "vds_missing_source.h5"), "vds_part_1.h5"},
		{"a filter nobody registered", filepath.Join(s.bad, "filter_unregistered.h5"), "40123"},
		{"bit flip in a gzip chunk", gzFlip, "tracks"},
		{"bit flips making a variable non-finite", inf, "pt_btagJes"},
	}
	for _, in := range normIn {
		out := s.out()
		want := []string{in.path}
		if in.field != "" {
			want = append(want, in.field)
		}
		add("norm", in.why, want, normArgs(out, train, in.path)...)
	}
	outFile := s.write("norm_out_file", []byte("keep me"))
	add("norm", "output directory a file", []string{"norm_out_file"}, normArgs(outFile, train)...)
	c := add("norm", "disk full", []string{"norm.yaml", "too large"}, normArgs(s.out(), train)...)
	c.fsize = 512

	// --- train: configuration, data, --out and --resume ---
	newRun := func() string { return filepath.Join(s.out(), "run") }
	trainCase := func(name string, want []string, config string, extra ...string) *soakCase {
		run := newRun()
		c := add("train", name, want, append([]string{config, "--quiet", "--out", run}, extra...)...)
		c.absent = []string{run}
		return c
	}
	trainCase("malformed configuration", []string{base(malformed)}, malformed).code = ExitUsage
	trainCase("configuration a directory", []string{base(dir)}, dir)
	trunc := s.truncated(train, "train_trunc.h5", int(trainBytes*3/4))
	trainCase("train file truncated", []string{base(trunc)}, s.trainFile(trunc))
	valFlip := s.flipped(filepath.Join(s.data, "val.h5"), "val_sig.h5", map[int64]byte{0: 0x01})
	trainCase("validation file's signature flipped", []string{base(valFlip)}, s.configWith("model.toml", filepath.Join(s.data, "val.h5"), valFlip))
	// The first epoch fails after the starting point's checkpoint: the
	// run stays, to be resumed once the file is fixed, and its
	// checkpoint must be whole.
	c = trainCase("label out of range in the data", []string{base(label), "flavour_label", "class_names"}, s.trainFile(label))
	c.absent, c.mayChange = nil, []string{"run/"}
	trainCase("zero std in the norm dict", []string{"d0"}, withNorm("zero2_norm.yaml", replaceLine(norm, "  d0:", "  d0: {mean: 0.0, std: 0.0}")))
	trainCase("a virtual dataset with a missing source", []string{"vds_part_1.h5"}, s.trainFile(filepath.Join(s.bad, "vds_missing_source.h5")))
	runFile := s.write("run_is_a_file", []byte("keep me"))
	add("train", "--out a file", []string{"run_is_a_file"}, s.trainFile(train), "--quiet", "--out", runFile)
	c = trainCase("disk full at the first checkpoint", []string{"last.safetensors", "too large", diskFull}, s.trainFile(train))
	c.fsize = 16 << 10

	ckpt := filepath.Join(s.run, "checkpoints", "last.safetensors")
	ckptBytes := s.read(ckpt)
	hlen, tb, te := s.checkpointOffsets(ckpt, "jets_classification/1/weight")
	// A digit of the first data_offsets in the header.
	digits := bytes.Index(ckptBytes[8:8+hlen], []byte(`"data_offsets":[`)) + 8 + len(`"data_offsets":[`)
	checkpoints := []struct {
		why, path string
		want      []string
	}{
		{"checkpoint truncated", s.truncated(ckpt, "trunc.safetensors", len(ckptBytes)*2/3), []string{"truncated", "use another checkpoint"}},
		{"checkpoint of 4 bytes", s.truncated(ckpt, "short.safetensors", 4), []string{"truncated", "use another checkpoint"}},
		{"bit flip in the header length", s.flipped(ckpt, "hlen.safetensors", map[int64]byte{int64(r.IntN(3)): bit()}), []string{"use another checkpoint"}},
		{"bit flip in the header's data offsets", s.flipped(ckpt, "offsets.safetensors", map[int64]byte{int64(digits + 1): 0x01}), []string{"use another checkpoint"}},
		{"bit flip in tensor data", s.flipped(ckpt, "data.safetensors", map[int64]byte{tb + r.Int64N(te-tb): bit()}), []string{"checksum", "use another checkpoint"}},
		{"another model's checkpoint", filepath.Join(s.other.run, "checkpoints", "last.safetensors"), []string{"another model configuration", "init/tracks/0/weight"}},
		{"empty checkpoint", s.write("empty.safetensors", nil), []string{"use another checkpoint"}},
		{"checkpoint a directory", s.mkdir("dir.safetensors"), []string{"not a regular file"}},
	}
	for _, k := range checkpoints {
		run := s.runCopy(k.path)
		c := add("train", "--resume: "+k.why, append([]string{"last.safetensors"}, k.want...), s.trainFile(train), "--quiet", "--resume", run)
		c.mayChange = []string{"copy*/train.log"}
	}
	// Resuming into a full disk: the last checkpoint must stay whole.
	c = add("train", "--resume with the disk full", []string{"safetensors", "too large", diskFull}, s.trainFile(train), "--quiet", "--epochs", "2", "--resume", s.runCopy(""))
	c.fsize = 16 << 10
	c.mayChange = []string{"copy*/train.log", "copy*/metrics/*.csv"}

	// --- eval: checkpoints, test files, outputs ---
	for _, k := range checkpoints {
		add("eval", k.why, append([]string{base(k.path)}, k.want...), s.run, "--out", s.out(), "--checkpoint", k.path)
	}
	add("eval", "checkpoint missing", []string{"gone.safetensors"}, s.run, "--out", s.out(), "--checkpoint", filepath.Join(s.bad, "gone.safetensors"))
	for _, in := range []struct{ why, path, field string }{
		{"test file truncated", s.truncated(filepath.Join(s.data, "test.h5"), "test_trunc.h5", -100), ""},
		{"test file empty", s.write("test_empty.h5", nil), ""},
		{"test file a directory", s.mkdir("test_dir.h5"), ""},
		{"test file unreadable (EIO)", unreadable, ""},
		{"test file with a variable stored as text", filepath.Join(s.bad, "jets_string_pt.h5"), "pt_btagJes"},
		{"test file lacking the tracks", filepath.Join(s.bad, "no_tracks.h5"), "tracks"},
		{"test file with a missing virtual source", filepath.Join(s.bad, "vds_missing_source.h5"), "vds_part_1.h5"},
		{"test file with a label out of range", label, "flavour_label"},
	} {
		want := []string{in.path}
		if in.field != "" {
			want = append(want, in.field)
		}
		add("eval", in.why, want, s.run, "--out", s.out(), "--test", in.path)
	}
	add("eval", "run directory missing", []string{"no-such-run"}, filepath.Join(s.root, "no-such-run"), "--out", s.out())
	add("eval", "run directory a file", []string{"run_is_a_file"}, runFile, "--out", s.out())
	add("eval", "--out a file", []string{"run_is_a_file"}, s.run, "--out", runFile)
	// The disk fills at the prediction file, and after it and the
	// summary, at a plot: a limit between the prediction file's size and
	// the largest plot's, measured on a good evaluation.
	good := filepath.Join(s.root, "eval-good")
	if out, err := s.command(context.Background(), 0, "eval", s.run, "--out", good).CombinedOutput(); err != nil {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	var h5, plot int
	if entries, err := os.ReadDir(good); err == nil {
		for _, e := range entries {
			info, _ := e.Info()
			switch filepath.Ext(e.Name()) {
			case ".h5", ".json":
				h5 = max(h5, int(info.Size()))
			case ".png":
				plot = max(plot, int(info.Size()))
			}
		}
	}
	if h5 == 0 || plot <= h5+512 {
		t.Fatalf("eval wrote a prediction file of %d bytes and plots of at most %d: no limit lets one through and stops the other", h5, plot)
	}
	for _, lim := range []int{h5 / 4, h5 + 512} {
		c := add("eval", fmt.Sprintf("disk full (files up to %d bytes)", lim), []string{"too large", diskFull}, s.run, "--out", s.out())
		c.fsize = lim
	}

	// --- export: checkpoints and outputs ---
	for _, k := range checkpoints {
		out := s.out()
		add("export", k.why, append([]string{base(k.path)}, k.want...), s.run, "-o", filepath.Join(out, "GN2.onnx"), "--checkpoint", k.path, "--validation-jets", "50")
	}
	add("export", "run directory missing", []string{"no-such-run"}, filepath.Join(s.root, "no-such-run"), "-o", filepath.Join(s.out(), "GN2.onnx"))
	add("export", "output under a file", []string{"run_is_a_file"}, s.run, "-o", filepath.Join(runFile, "GN2.onnx"), "--validation-jets", "50")
	for _, lim := range []int{8 << 10, 40 << 10} {
		c := add("export", fmt.Sprintf("disk full (files up to %d KiB)", lim>>10), []string{"File too large", diskFull}, s.run, "-o", filepath.Join(s.out(), "GN2.onnx"), "--validation-jets", "50")
		c.fsize = lim
	}

	// --- validate: the model and its vectors ---
	model := s.read(s.model)
	meta := bytes.Index(model, []byte(`"salt_ort"`))
	if meta < 0 {
		meta = bytes.Index(model, []byte("salt_ort"))
	}
	weight := s.largestInitializer(model)
	vectors := s.model[:len(s.model)-len(".onnx")] + ".validation.h5"
	models := []struct {
		why, path string
		want      []string
	}{
		{"model truncated", s.truncated(s.model, "trunc.onnx", len(model)/2), []string{"export it again"}},
		{"model of 10 bytes", s.truncated(s.model, "short.onnx", 10), []string{"export it again"}},
		{"bit flip in the model's first byte", s.flipped(s.model, "first.onnx", map[int64]byte{0: bit()}), nil},
		{"bit flip in the salt_ort metadata", s.flipped(s.model, "meta.onnx", map[int64]byte{int64(meta + 2): 0x01}), nil},
		{"bit flip in a weight's exponent", s.flipped(s.model, "weight.onnx", map[int64]byte{weight + 4*int64(r.IntN(8)) + 3: 0x40}), []string{"does not reproduce"}},
		{"empty model", s.write("empty.onnx", nil), []string{"empty file", "export the model again"}},
		{"model a directory", s.mkdir("dir.onnx"), nil},
		{"model missing", filepath.Join(s.bad, "absent.onnx"), nil},
		{"model unreadable (EIO)", unreadable, []string{"input/output error"}},
		{"not salt-ort's model (no metadata)", s.write("foreign.onnx", stripMetadata(t, model)), []string{"no salt_ort metadata", "exported by salt-ort"}},
		{"an HDF5 file as the model", s.write("hdf5.onnx", s.read(filepath.Join(s.data, "test.h5"))), []string{"not an ONNX model"}},
	}
	for _, m := range models {
		// Each model with the good vectors beside it, as export writes
		// them, unless it is the vectors that are broken.
		args := []string{m.path, "--vectors", vectors}
		add("validate", m.why, append([]string{m.path}, m.want...), args...)
	}
	otherVectors := s.other.model[:len(s.other.model)-len(".onnx")] + ".validation.h5"
	for _, v := range []struct {
		why, path string
		want      []string
	}{
		{"vectors truncated", s.truncated(vectors, "vectors_trunc.h5", -64), nil},
		{"vectors missing", filepath.Join(s.bad, "vectors_absent.h5"), nil},
		{"vectors empty", s.write("vectors_empty.h5", nil), nil},
		{"vectors' superblock flipped", s.flipped(vectors, "vectors_flip.h5", map[int64]byte{40 + int64(r.IntN(2)): 0x80}), nil},
		{"another model's vectors", s.write("vectors_other.h5", s.read(otherVectors)), nil},
		{"vectors a directory", s.mkdir("vectors_dir.h5"), nil},
	} {
		add("validate", v.why, append([]string{base(v.path)}, v.want...), s.model, "--vectors", v.path)
	}
	// The default vectors beside a model copied alone.
	alone := filepath.Join(s.dir("alone"), "GN2.onnx")
	if err := os.WriteFile(alone, model, 0o644); err != nil {
		t.Fatal(err)
	}
	s.watched = append(s.watched, filepath.Dir(alone))
	add("validate", "vectors not beside the model", []string{"GN2.validation.h5"}, alone)
	return cases
}

// largestInitializer returns the offset in the ONNX file model of the
// raw bytes of its largest float initializer.
func (s *soak) largestInitializer(model []byte) int64 {
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		s.t.Fatal(err)
	}
	var best []byte
	for _, init := range m.GetGraph().GetInitializer() {
		if raw := init.GetRawData(); init.GetDataType() == int32(onnxpb.TensorProto_FLOAT) && len(raw) > len(best) {
			best = raw
		}
	}
	if len(best) < 32 {
		s.t.Fatalf("the model has no float initializer of 8 values")
	}
	i := bytes.Index(model, best)
	if i < 0 {
		s.t.Fatal("the largest initializer's bytes are not in the file")
	}
	return int64(i)
}

// stripMetadata returns the model without its metadata: an ONNX model
// salt-ort did not write.
func stripMetadata(t *testing.T, model []byte) []byte {
	var m onnxpb.ModelProto
	if err := proto.Unmarshal(model, &m); err != nil {
		t.Fatal(err)
	}
	m.MetadataProps = nil
	b, err := proto.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// soakScript writes, with Debian's h5py, the broken files a physicist's
// tools make: variables of the wrong type, datasets missing or of the
// wrong shape, a virtual dataset whose source is gone, and datasets
// compressed with filters nobody has. Arguments: the good train.h5, a
// gzip-compressed one, the output directory. It prints, as JSON, where
// each file's datasets keep their data.
const soakScript = `
import json, os, sys
import numpy as np, h5py

src, gz, out = sys.argv[1:4]

def info(path):
    res = {}
    with h5py.File(path, "r") as f:
        for k in ("jets", "tracks"):
            d = f[k]
            chunks = []
            if d.chunks:
                for i in range(d.id.get_num_chunks()):
                    c = d.id.get_chunk_info(i)
                    chunks.append([c.byte_offset, c.size])
            res[k] = {"offset": d.id.get_offset() or 0, "itemsize": d.dtype.itemsize,
                      "fields": {n: d.dtype.fields[n][1] for n in d.dtype.names},
                      "shape": list(d.shape), "chunks": chunks}
    return res

with h5py.File(src, "r") as f:
    jets, tracks = f["jets"][:], f["tracks"][:]

def write(name, **datasets):
    with h5py.File(os.path.join(out, name), "w") as f:
        for k, v in datasets.items():
            f.create_dataset(k, data=v)

def retype(arr, field, dt):
    names = arr.dtype.names
    new = np.zeros(arr.shape, dtype=[(n, dt if n == field else arr.dtype.fields[n][0]) for n in names])
    for n in names:
        if n != field:
            new[n] = arr[n]
    return new

def drop(arr, field):
    names = [n for n in arr.dtype.names if n != field]
    new = np.zeros(arr.shape, dtype=[(n, arr.dtype.fields[n][0]) for n in names])
    for n in names:
        new[n] = arr[n]
    return new

s = retype(jets, "pt_btagJes", "S8")
s["pt_btagJes"] = [b"%.0f" % v for v in jets["pt_btagJes"]]
write("jets_string_pt.h5", jets=s, tracks=tracks)
c = retype(tracks, "d0", [("value", "<f4"), ("error", "<f4")])
c["d0"]["value"] = tracks["d0"]
write("tracks_compound_d0.h5", jets=jets, tracks=c)
a = retype(jets, "eta_btagJes", ("<f4", (2,)))
a["eta_btagJes"][:, 0] = jets["eta_btagJes"]
write("jets_array_eta.h5", jets=a, tracks=tracks)
l = retype(jets, "flavour_label", "S2")
l["flavour_label"] = [b"%d" % v for v in jets["flavour_label"]]
write("jets_string_label.h5", jets=l, tracks=tracks)
write("no_tracks.h5", jets=jets)
write("tracks_1d.h5", jets=jets, tracks=tracks[:, 0])
write("tracks_3d.h5", jets=jets, tracks=tracks[:, :, None])
write("tracks_fewer_jets.h5", jets=jets, tracks=tracks[:-10])
write("tracks_no_valid.h5", jets=jets, tracks=drop(tracks, "valid"))
write("jets_not_compound.h5", jets=jets["pt_btagJes"], tracks=tracks)

# A virtual dataset over two halves, as atlas-ftag-tools' vds builds one,
# whose second source is then deleted: HDF5 would read its jets as zeros.
half = len(jets) // 2
parts = [os.path.join(out, "vds_part_%d.h5" % i) for i in (0, 1)]
for p, sl in zip(parts, (slice(0, half), slice(half, None))):
    write(os.path.basename(p), jets=jets[sl], tracks=tracks[sl])
with h5py.File(os.path.join(out, "vds_missing_source.h5"), "w") as f:
    for k, arr in (("jets", jets), ("tracks", tracks)):
        layout = h5py.VirtualLayout(shape=arr.shape, dtype=arr.dtype)
        layout[:half] = h5py.VirtualSource(parts[0], k, shape=(half,) + arr.shape[1:])
        layout[half:] = h5py.VirtualSource(parts[1], k, shape=(len(arr) - half,) + arr.shape[1:])
        f.create_virtual_dataset(k, layout)
os.remove(parts[1])

# Chunks "compressed" with a filter this machine cannot apply.
for fid, name in ((40123, "filter_unregistered.h5"), (32026, "filter_blosc2.h5")):
    with h5py.File(os.path.join(out, name), "w") as f:
        for k, arr in (("jets", jets), ("tracks", tracks)):
            chunk = (100,) + arr.shape[1:]
            ds = f.create_dataset(k, shape=arr.shape, dtype=arr.dtype, chunks=chunk,
                                  compression=fid, compression_opts=(3,), allow_unknown_filter=True)
            for s in range(0, len(arr), 100):
                ds.id.write_direct_chunk((s,) + (0,) * (arr.ndim - 1), b"no filter made these bytes")

print(json.dumps([info(src), info(gz)]))
`
