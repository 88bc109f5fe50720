package saltimport

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/salt-ort/salt-ort/config"
	"github.com/salt-ort/salt-ort/graph/model"
	"github.com/salt-ort/salt-ort/loader"
	"github.com/salt-ort/salt-ort/run"
	"github.com/salt-ort/salt-ort/train"
)

// ReportFile is the import report a run directory made by Import holds.
const ReportFile = "salt-import.txt"

// Options configure Import.
type Options struct {
	// Config is Salt's config.yaml; Checkpoint its .ckpt ("" converts the
	// configuration only, to train it from the start).
	Config, Checkpoint string
	// Overlays are further configuration files laid over Config, as
	// `salt fit --config Config --config Overlay` lays them.
	Overlays []string
	// Out is the run directory to create.
	Out     string
	Convert ConvertOptions
}

// Result is what Import wrote.
type Result struct {
	Dir        string
	Converted  *Converted
	Parameters int64 // parameters imported (0 without a checkpoint)
	Position   train.Position
	Optimizer  bool // the optimizer state was imported
	Report     string
}

// CheckpointError lists every tensor of a Salt checkpoint that does not fit
// the model its configuration describes.
type CheckpointError struct {
	File     string
	Problems []string // "tensor: problem"
}

// Error lists the file and every problem, one per line.
func (e *CheckpointError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s does not fit the model its configuration describes (%d problem(s)):", e.File, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  " + p)
	}
	return b.String()
}

// Import converts Salt's configuration and, when given, its checkpoint
// into a new salt-ort run directory: config.toml, resolved.toml, the norm
// and class dictionaries as Salt used them, checkpoints/last.safetensors
// with the parameters, AdamW's moments and the position in the schedule,
// and the import report. Configuration problems are a *ConfigError,
// checkpoint mismatches a *CheckpointError; either way nothing is written.
func Import(opts Options) (*Result, error) {
	conv, err := ConvertFiles(append([]string{opts.Config}, opts.Overlays...), opts.Convert)
	if err != nil {
		return nil, err
	}
	cfg := &conv.Config
	var ck *Checkpoint
	if opts.Checkpoint != "" {
		if ck, err = ReadCheckpoint(opts.Checkpoint); err != nil {
			return nil, err
		}
	}

	// The dictionaries, as Salt used them.
	var normDict, classDict []byte
	switch {
	case conv.NormDict != "":
		if _, err := loader.ReadNormDict(conv.NormDict); err != nil {
			return nil, err
		}
		if normDict, err = readDict(conv.NormDict); err != nil {
			return nil, fmt.Errorf("saltimport: %w", err)
		}
	case ck != nil:
		if normDict, err = normFromCheckpoint(ck, cfg); err != nil {
			return nil, err
		}
		conv.Notes = append(conv.Notes, "data.norm_dict: not found here (nor beside config.yaml); written from the checkpoint's norm.<input>_means and _stds buffers")
	default:
		return nil, &ConfigError{File: opts.Config, Problems: []string{"data.norm_dict: the file is not here, nor beside config.yaml; give the checkpoint too (it holds the normalisation) or copy the file"}}
	}
	cfg.Data.NormDict = run.NormDictFile
	cfg.Data.ClassDict = ""
	needClassDict := false
	for _, t := range cfg.Model.Tasks {
		needClassDict = needClassDict || t.UseClassDict
	}
	if conv.ClassDict != "" {
		if _, err := loader.ReadClassDict(conv.ClassDict); err != nil {
			return nil, err
		}
		if classDict, err = readDict(conv.ClassDict); err != nil {
			return nil, fmt.Errorf("saltimport: %w", err)
		}
		cfg.Data.ClassDict = run.ClassDictFile
	} else if needClassDict {
		return nil, &ConfigError{File: opts.Config, Problems: []string{"data.class_dict: a task sets use_class_dict but the class dictionary is not here (nor beside config.yaml), and the config holds no class weights: copy the file"}}
	}

	tomlText, err := cfg.Encode()
	if err != nil {
		return nil, err
	}
	header := fmt.Sprintf("# Converted by salt-ort import-salt from %s; see %s.\n", opts.Config, ReportFile)
	tomlText = append([]byte(header), tomlText...)
	// Validate it as the run directory will read it.
	parsed, err := config.Parse(filepath.Join(opts.Out, run.ConfigFile), tomlText)
	if err != nil {
		return nil, err
	}
	res := &Result{Dir: opts.Out, Converted: conv}
	imported := train.ImportedRun{ConfigText: tomlText, NormDict: normDict, ClassDict: classDict}
	if ck != nil {
		nd, err := loader.ParseNormDict(run.NormDictFile, normDict)
		if err != nil {
			return nil, fmt.Errorf("saltimport: %w", err)
		}
		parsed.SetNormDict(nd)
		spec, err := parsed.Spec(classWeightsFrom(classDict))
		if err != nil {
			return nil, err
		}
		if err := mapCheckpoint(ck, spec, cfg, normDict, &imported, res); err != nil {
			return nil, err
		}
	}
	res.Report = report(opts, conv, ck, res)
	imported.Files = map[string][]byte{ReportFile: []byte(res.Report)}
	if err := train.WriteImportedRun(opts.Out, imported); err != nil {
		return nil, err
	}
	return res, nil
}

// classWeightsFrom looks up class weights in the class dictionary's text.
func classWeightsFrom(classDict []byte) config.ClassWeightsFunc {
	return func(ds, field string) ([]float64, error) {
		var cd loader.ClassDict
		if err := yaml.Unmarshal(classDict, &cd); err != nil {
			return nil, err
		}
		w, ok := cd[ds][field]
		if !ok {
			return nil, fmt.Errorf("the class dictionary has no weights for %s.%s", ds, field)
		}
		return w, nil
	}
}

// mapCheckpoint checks every tensor of the checkpoint against the model
// and fills the run's parameters, optimizer state and position.
func mapCheckpoint(ck *Checkpoint, spec model.Spec, cfg *config.Config, normDict []byte, imported *train.ImportedRun, res *Result) error {
	var problems []string
	params := Params(spec)
	bySalt := map[string]Param{}
	for _, p := range params {
		bySalt[p.Salt] = p
	}
	imported.Params = map[string][]float32{}
	for _, p := range params {
		t, ok := ck.Tensors[p.Salt]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s: missing; the configuration's model has it with shape %v", p.Salt, p.SaltShape))
		case !equalShape(t.Shape, p.SaltShape):
			problems = append(problems, fmt.Sprintf("%s: shape %v, but the configuration's model needs %v", p.Salt, t.Shape, p.SaltShape))
		case p.Ort == "":
			// Registered by Salt, unused by its forward pass: not carried.
		default:
			imported.Params[p.Ort] = layoutOf(p, t.Data)
			res.Parameters += int64(len(t.Data))
		}
	}
	// Buffers: the normalisation must be the dictionary's, the class
	// weights the configuration's; anything else is not this model's.
	var nd loader.NormDict
	if err := yaml.Unmarshal(normDict, &nd); err != nil {
		return err
	}
	taskIndex := map[string]int{}
	for i := range spec.Tasks {
		taskIndex[fmt.Sprintf("model.tasks.%d.loss.weight", i)] = i
	}
	for _, name := range ck.Order {
		if _, ok := bySalt[name]; ok {
			continue
		}
		t := ck.Tensors[name]
		switch {
		case strings.HasPrefix(name, "norm.") && (strings.HasSuffix(name, "_means") || strings.HasSuffix(name, "_stds")):
			if msg := checkNorm(name, t, cfg, nd); msg != "" {
				problems = append(problems, name+": "+msg)
			}
		case name == "model.encoder.register_mask":
		default:
			if i, ok := taskIndex[name]; ok {
				w := spec.Tasks[i].ClassWeights
				if !closeTo(t.Data, w) {
					problems = append(problems, fmt.Sprintf("%s: class weights %v, but the configuration gives task %s %v", name, t.Data, spec.Tasks[i].Name, w))
				}
				continue
			}
			problems = append(problems, fmt.Sprintf("%s: shape %v is not part of the model the configuration describes", name, t.Shape))
		}
	}
	if len(problems) > 0 {
		return &CheckpointError{File: ck.Path, Problems: problems}
	}

	// The optimizer's state, matched to the parameters by their order.
	pos, note := ResumePosition(ck)
	if note != "" {
		res.Converted.Notes = append(res.Converted.Notes, note)
	}
	if o := ck.Optimizer; o != nil {
		var order []string
		for _, name := range ck.Order {
			if !buffer(name) {
				order = append(order, name)
			}
		}
		if len(order) != len(o.Params) {
			return &CheckpointError{File: ck.Path, Problems: []string{fmt.Sprintf("optimizer_states[0]: %d parameters for the model's %d", len(o.Params), len(order))}}
		}
		if len(o.Groups) > 0 {
			var err error
			if order, err = muAdamWOrder(order, o.Groups, bySalt, spec); err != nil {
				return &CheckpointError{File: ck.Path, Problems: []string{"optimizer_states[0]: " + err.Error()}}
			}
		}
		if msg := checkOptimizerKind(o, cfg.Training.Optimizer.Name); msg != "" {
			return &CheckpointError{File: ck.Path, Problems: []string{msg}}
		}
		// AdamW keeps both moments, Lion the first alone.
		slots := []string{"exp_avg", "exp_avg_sq"}
		if cfg.Training.Optimizer.Name == "lion" {
			slots = slots[:1]
		}
		imported.Slots = map[string]map[string][]float32{}
		for _, sl := range slots {
			imported.Slots[sl] = map[string][]float32{}
		}
		adamStep := -1.0
		for k, idx := range o.Params {
			p, ok := bySalt[order[k]]
			if !ok {
				return &CheckpointError{File: ck.Path, Problems: []string{fmt.Sprintf("optimizer_states[0]: parameter %d is %s, not one of the model's", k, order[k])}}
			}
			st := o.State[idx]
			if p.Ort == "" {
				continue // a parameter salt-ort does not carry
			}
			if st == nil {
				// No step taken yet for this parameter: zero moments.
				n := len(imported.Params[p.Ort])
				for _, sl := range slots {
					imported.Slots[sl][p.Ort] = make([]float32, n)
				}
				continue
			}
			moments := map[string]*Tensor{"exp_avg": st.ExpAvg, "exp_avg_sq": st.ExpAvgSq}
			for _, sl := range slots {
				m := struct {
					slot string
					t    *Tensor
				}{sl, moments[sl]}
				if m.t == nil {
					problems = append(problems, fmt.Sprintf("optimizer_states[0].state[%d] (%s): no %s, which %s keeps", idx, p.Salt, m.slot, cfg.Training.Optimizer.Name))
					continue
				}
				if !equalShape(m.t.Shape, p.SaltShape) {
					problems = append(problems, fmt.Sprintf("optimizer_states[0].state[%d].%s (%s): shape %v, the parameter's %v", idx, m.slot, p.Salt, m.t.Shape, p.SaltShape))
					continue
				}
				imported.Slots[m.slot][p.Ort] = layoutOf(p, m.t.Data)
			}
			if st.Step < 0 { // Lion: no step count
				continue
			}
			if adamStep >= 0 && st.Step != adamStep {
				problems = append(problems, fmt.Sprintf("optimizer_states[0].state[%d].step: %g, other parameters %g", idx, st.Step, adamStep))
			}
			adamStep = st.Step
		}
		if len(problems) > 0 {
			return &CheckpointError{File: ck.Path, Problems: problems}
		}
		if adamStep >= 0 && int(adamStep) < pos.Step {
			imported.SkippedSteps = pos.Step - int(adamStep)
			if cfg.Training.Precision != "fp16" {
				res.Converted.Notes = append(res.Converted.Notes, fmt.Sprintf("optimizer_states[0].state.*.step: AdamW took %d steps of the schedule's %d (fp16 overflows skipped); without fp16 loss scaling salt-ort's bias correction counts the schedule's steps", int(adamStep), pos.Step))
			}
		}
		for k, want := range map[string]float64{"eps": cfg.Training.Optimizer.Eps, "weight_decay": cfg.Training.Optimizer.WeightDecay, "beta2": cfg.Training.Optimizer.Beta2} {
			if got, ok := o.Group[k]; ok && math.Abs(got-want) > 1e-12*math.Abs(want) {
				res.Converted.Notes = append(res.Converted.Notes, fmt.Sprintf("optimizer_states[0].param_groups[0].%s: %g; salt-ort continues with the configuration's %g", k, got, want))
			}
		}
		if ck.SchedulerTotal > 0 {
			res.Converted.Notes = append(res.Converted.Notes, fmt.Sprintf("lr_schedulers[0].total_steps: %d; salt-ort's schedule spans training.epochs × the batches of the training files, the same where the data and batch size are Salt's", ck.SchedulerTotal))
		}
		res.Optimizer = true
	} else {
		pos = train.Position{}
	}
	imported.Position = pos
	res.Position = pos
	return nil
}

// layoutOf converts a Salt tensor's values into salt-ort's layout of the
// parameter.
func layoutOf(p Param, data []float32) []float32 {
	if !p.Transpose {
		return append([]float32(nil), data...)
	}
	rows, cols := p.SaltShape[0], p.SaltShape[1]
	out := make([]float32, len(data))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			out[j*rows+i] = data[i*cols+j]
		}
	}
	return out
}

func equalShape(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func closeTo(a []float32, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i])-b[i]) > 1e-6*math.Max(1, math.Abs(b[i])) {
			return false
		}
	}
	return true
}

// checkNorm compares a normalisation buffer of the checkpoint with the
// norm dictionary, in the variable order of the configuration.
func checkNorm(name string, t *Tensor, cfg *config.Config, nd loader.NormDict) string {
	ds, stat := splitNorm(name)
	vars, ok := cfg.Data.Variables[ds]
	if !ok {
		return fmt.Sprintf("normalises input %q, which the configuration does not have", ds)
	}
	if len(t.Data) != len(vars) {
		return fmt.Sprintf("%d values for the %d variables of %s", len(t.Data), len(vars), ds)
	}
	for i, v := range vars {
		e, ok := nd[normDataset(cfg, ds)][v]
		if !ok {
			e, ok = nd[ds][v]
		}
		if !ok {
			return fmt.Sprintf("the norm dictionary has no %s.%s", ds, v)
		}
		want := e.Mean
		if stat == "stds" {
			want = e.Std
		}
		if got := float64(t.Data[i]); math.Abs(got-want) > 1e-6*math.Max(math.Abs(want), 1e-30) {
			return fmt.Sprintf("%s.%s: %s %g in the checkpoint, %g in the norm dictionary (the model was trained with another normalisation)", ds, v, strings.TrimSuffix(stat, "s"), got, want)
		}
	}
	return ""
}

// normDataset is the norm dictionary's entry of one of Salt's inputs: the
// dataset it is read from, where Salt's CLI reads the global and
// parameter variables from the global object.
func normDataset(cfg *config.Config, input string) string {
	if input == config.GlobalVariables || input == config.ParameterVariables {
		input = cfg.Data.JetDataset
	}
	return cfg.Data.DatasetOf(input)
}

func splitNorm(name string) (ds, stat string) {
	rest := strings.TrimPrefix(name, "norm.")
	for _, s := range []string{"means", "stds"} {
		if strings.HasSuffix(rest, "_"+s) {
			return strings.TrimSuffix(rest, "_"+s), s
		}
	}
	return rest, ""
}

// normFromCheckpoint writes the norm dictionary Salt's InputNorm buffers
// hold, for the configuration's variables.
func normFromCheckpoint(ck *Checkpoint, cfg *config.Config) ([]byte, error) {
	nd := loader.NormDict{}
	for ds, vars := range cfg.Data.Variables {
		means, ok1 := ck.Tensors["norm."+ds+"_means"]
		stds, ok2 := ck.Tensors["norm."+ds+"_stds"]
		if !ok1 || !ok2 || len(means.Data) != len(vars) || len(stds.Data) != len(vars) {
			return nil, &CheckpointError{File: ck.Path, Problems: []string{fmt.Sprintf("norm.%s_means, norm.%s_stds: missing or not one value per variable of %s, and no norm dictionary is here to take the normalisation from", ds, ds, ds)}}
		}
		file := normDataset(cfg, ds)
		if nd[file] == nil {
			nd[file] = map[string]loader.NormEntry{}
		}
		for i, v := range vars {
			nd[file][v] = loader.NormEntry{Mean: float64(means.Data[i]), Std: float64(stds.Data[i])}
		}
	}
	tmp, err := os.CreateTemp("", "norm_dict-*.yaml")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := loader.WriteNormDict(tmp.Name(), nd); err != nil {
		return nil, err
	}
	return os.ReadFile(tmp.Name())
}

// checkOptimizerKind says how the optimizer state o differs from that of
// the configuration's optimizer name ("adamw" or "lion"): AdamW keeps a
// step count and a second moment per parameter, Lion neither. It returns ""
// where they agree or o has no per-parameter state yet.
func checkOptimizerKind(o *OptimizerState, name string) string {
	adamw, lion := 0, 0
	for _, st := range o.State {
		if st.ExpAvgSq != nil || st.Step >= 0 {
			adamw++
		} else {
			lion++
		}
	}
	switch {
	case name == "lion" && adamw > 0:
		return "optimizer_states[0]: AdamW's state (a step count and exp_avg_sq per parameter), but the configuration's model.optimizer is lion; import it with the configuration Salt trained it with"
	case name != "lion" && lion > 0:
		return "optimizer_states[0]: Lion's state (exp_avg alone, no step count), but the configuration's model.optimizer is AdamW; set model.optimizer: lion, as Salt trained it"
	}
	return ""
}

// optimizerStateWords names the optimizer state an import carries.
func optimizerStateWords(name string) string {
	if name == "lion" {
		return "Lion's moment (exp_avg)"
	}
	return "AdamW's moments (exp_avg, exp_avg_sq)"
}

// report is the import report: sources, what was imported and every key
// not carried over with why.
func report(opts Options, conv *Converted, ck *Checkpoint, res *Result) string {
	var b bytes.Buffer
	b.WriteString("salt-ort import-salt\n\n")
	for _, f := range conv.Files {
		fmt.Fprintf(&b, "configuration: %s (sha256 %s)\n", f, fileHash(f))
	}
	if conv.Ranks > 1 {
		fmt.Fprintf(&b, "launch: Salt trained on %d devices; train as the %d ranks of an MPI job: mpirun -n %d salt-ort train %s/config.toml --resume %s\n", conv.Ranks, conv.Ranks, conv.Ranks, opts.Out, opts.Out)
	}
	if ck != nil {
		fmt.Fprintf(&b, "checkpoint: %s (sha256 %s)\n", opts.Checkpoint, fileHash(opts.Checkpoint))
		fmt.Fprintf(&b, "parameters: %d\n", res.Parameters)
		if res.Optimizer {
			fmt.Fprintf(&b, "optimizer state: %s; training continues with epoch %d of %d from batch %d, after step %d\n", optimizerStateWords(conv.Config.Training.Optimizer.Name), res.Position.Epoch+1, conv.Config.Training.Epochs, res.Position.Batch, res.Position.Step)
		} else {
			b.WriteString("optimizer state: none in the checkpoint; train --resume starts a fresh optimizer and schedule from the imported weights\n")
		}
	} else {
		b.WriteString("checkpoint: none (configuration only)\n")
	}
	section := func(title string, lines []string) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:\n", title)
		sorted := append([]string(nil), lines...)
		sort.Strings(sorted)
		for _, l := range sorted {
			fmt.Fprintf(&b, "  %s\n", l)
		}
	}
	section("notes", conv.Notes)
	section("keys not carried over (no effect on the model or its training)", conv.Ignored)
	return b.String()
}

// fileHash returns the SHA-256 of the file at path, read as a stream (a
// checkpoint may be gigabytes).
func fileHash(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return "unreadable"
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "unreadable"
	}
	return hex.EncodeToString(h.Sum(nil))
}

// readDict reads the text of a norm or class dictionary that loader has
// read and checked, refusing one that grew past loader.MaxDictSize since.
func readDict(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, loader.MaxDictSize+1))
	if err == nil && len(data) > loader.MaxDictSize {
		err = fmt.Errorf("%s: more than %d bytes; a dictionary is at most 256 KiB", path, loader.MaxDictSize)
	}
	return data, err
}
