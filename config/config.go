// Package config reads salt-ort's TOML training configuration: the data
// (files, variables, normalisation and class dictionaries), the model (init
// nets, encoder, pooling, tasks) and the training (epochs, optimizer,
// one-cycle learning rate, loss weighting, checkpoints). It fills in
// defaults, rejects unknown keys with the nearest valid one, checks
// consistency, and turns the result into a model.Spec.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/salt-ort/salt-ort/internal/nearest"
	"github.com/salt-ort/salt-ort/loader"
)

// Config is a whole training configuration.
type Config struct {
	Data     Data     `toml:"data"`
	Model    Model    `toml:"model"`
	Training Training `toml:"training"`

	// path is the file the configuration was read from; relative data
	// paths are resolved against its directory. raw is its text, for line
	// numbers in errors. defined holds the keys the text sets, dotted
	// (model.encoder.registers), to tell a setting from a default.
	path    string
	raw     []byte
	defined map[string]bool
	// notes say what Parse took from the data files (class names);
	// namesErr holds, per task, why the files could not supply the class
	// names the task leaves to them, for Validate to report.
	notes    []string
	namesErr map[string]error
	// normDict, when set (SetNormDict), is read in place of the file
	// data.norm_dict names.
	normDict loader.NormDict
}

// Data says what to read and how to batch it.
type Data struct {
	// Train, Val and Test are the training, validation and test (eval)
	// files; a name with *, ? or [...] is a pattern for the files it
	// matches, sorted (Salt's wildcards).
	Train     []string `toml:"train"`
	Val       []string `toml:"val"`
	Test      []string `toml:"test"`
	NormDict  string   `toml:"norm_dict"`  // Salt norm_dict YAML
	ClassDict string   `toml:"class_dict"` // Salt class_dict YAML ("" if no task uses one)
	// Variables lists the input variables per dataset; the jet dataset's
	// variables are concatenated to every constituent, those under
	// "global" (jet variables too) to the pooled representation, before
	// the task heads (Salt's global variables).
	Variables  map[string][]string `toml:"variables"`
	JetDataset string              `toml:"jet_dataset"` // name of the jet-level dataset (default "jets")
	BatchSize  int                 `toml:"batch_size"`
	NumTrain   int                 `toml:"num_train"`   // jets to train on per epoch (-1: all)
	NumVal     int                 `toml:"num_val"`     // jets to validate on (-1: all)
	NumWorkers int                 `toml:"num_workers"` // loader goroutines
	Prefetch   int                 `toml:"prefetch"`    // batches read ahead
	// SampleWeight is a jets field holding per-jet loss weights ("": none).
	SampleWeight string `toml:"sample_weight"`
	// NonFinite is "error" (default: NaN/Inf in an input is an error) or
	// "zero" (replace with 0 and count).
	NonFinite string `toml:"non_finite"`
	// Parameters describe each parameter of [data.variables] parameters
	// (Salt's data.parameters): the values the training set has (train;
	// other jets, the background, get one of them drawn with the
	// probabilities prob), and the value evaluation uses (test).
	Parameters map[string]ParameterValues `toml:"parameters"`
	// EdgeConstructors compute Salt's edge features between the
	// constituents of a dataset (Salt's data.edge_constructors; at most
	// one).
	EdgeConstructors []EdgeConstructor `toml:"edge_constructors"`
	// Selections are cuts per dataset in atlas-ftag-tools' notation
	// (Salt's data.selections), e.g. tracks = ["d0 < 3.5"]: a jet that
	// fails a cut on the jet dataset is skipped; a constituent that fails
	// a cut on its dataset is dropped, before the max_len truncation.
	Selections map[string][]string `toml:"selections"`
	// InputMap reads an input (a constituent group, or the jets named by
	// jet_dataset) from a dataset of another name (Salt's input_map), e.g.
	// tracks = "tracks_ghost": every other key names the input ("tracks");
	// only the files are read through the map.
	InputMap map[string]string `toml:"input_map"`
	// MultiTarget builds regression targets per entry from conditions on
	// other fields (Salt's data.multi_target), e.g. a jet's truth pT from
	// HadronConeExclTruthLabelPt for taus and from pt otherwise.
	MultiTarget []MultiTarget `toml:"multi_target"`
	// MFConfig names the truth objects of a mask decoder (Salt's
	// data.mf_config; nil: none).
	MFConfig *MFConfig `toml:"mf_config"`
}

// ParameterValues are Salt's description of one parameter.
type ParameterValues struct {
	Train []float64 `toml:"train"`
	Test  *float64  `toml:"test"`
	Prob  []float64 `toml:"prob"`
}

// FeaturewiseNet is Salt's featurewise transformation of one layer's
// features by networks of the parameters.
type FeaturewiseNet struct {
	// Layer is "input" (each init net's input), "encoder" (each encoder
	// layer's input) or "global" (the encoder's output).
	Layer string `toml:"layer"`
	// DenseConfigScale and DenseConfigBias are the networks of the
	// features' scales and shifts (at least one).
	DenseConfigScale *FeaturewiseDense `toml:"dense_config_scale"`
	DenseConfigBias  *FeaturewiseDense `toml:"dense_config_bias"`
	// ApplyNorm normalises the transformed features with a LayerNorm of
	// learnable scale and shift.
	ApplyNorm bool `toml:"apply_norm"`
}

// FeaturewiseDense is one featurewise network (Salt's dense_config).
type FeaturewiseDense struct {
	Hidden          []int  `toml:"hidden"`
	Activation      string `toml:"activation"`
	FinalActivation string `toml:"final_activation"`
	// OutputSize is optional, as Salt writes it: the width of the layer
	// transformed, which salt-ort works out.
	OutputSize int `toml:"output_size"`
}

// EdgeConstructor is Salt's EdgeConstructor: edge features between the
// constituents of one dataset, computed from their raw variables.
type EdgeConstructor struct {
	// Input is the constituent dataset (Salt's input_name), which must be
	// the first [[model.init_nets]] entry's.
	Input string `toml:"input"`
	// EdgeFeatures are any of "dR", "kt", "z", "mass", "isSelfLoop" and
	// "subjetIndex".
	EdgeFeatures []string `toml:"edge_features"`
	// Variables maps the variables the features need, by Salt's names
	// (eta, phi, pt, energy, subjetIndex), to input variables of the
	// dataset (Salt's indices_map, by name), e.g. eta = "deta"; a name not
	// mapped is read from the variable of that name.
	Variables map[string]string `toml:"variables"`
}

// Model describes the network.
type Model struct {
	Name     string    `toml:"name"`
	EmbedDim int       `toml:"embed_dim"`
	InitNets []InitNet `toml:"init_nets"`
	// FeaturewiseNets are Salt's featurewise_nets: transformations of a
	// layer's features by networks of the parameters (at most one per
	// layer).
	FeaturewiseNets []FeaturewiseNet `toml:"featurewise_nets"`
	// EdgeInitNets embed the edge features (Salt's edge_init_nets; at most
	// one, on the edge constructor's dataset): their output is
	// model.encoder.edge_embed_dim wide.
	EdgeInitNets []InitNet `toml:"edge_init_nets"`
	Encoder      Encoder   `toml:"encoder"`
	Pooling      Pooling   `toml:"pooling"`
	Tasks        []Task    `toml:"tasks"`
	// MaskDecoder is Salt's MaskFormer object decoder (nil: none); it
	// needs Data.MFConfig. See maskformer.go.
	MaskDecoder *MaskDecoder `toml:"mask_decoder"`
	// MuPConfig holds the base widths of the μP parametrisation (Salt's
	// mup_config; nil: none). See mup.go.
	MuPConfig *MuPConfig `toml:"mup_config,omitempty"`
}

// InitNet is the per-constituent network of one input dataset: Salt's
// InitNet, a Dense on the jet variables followed by the constituent's.
type InitNet struct {
	Input      string `toml:"input"`      // dataset, e.g. "tracks"
	MaxLen     int    `toml:"max_len"`    // constituents per jet (0: the training files' length)
	Hidden     []int  `toml:"hidden"`     // hidden layer sizes; the output is embed_dim
	Activation string `toml:"activation"` // of the hidden layers: ReLU, SiLU, GELU or Mish
	// FinalActivation follows the last layer ("": none, as Salt's Dense
	// without final_activation).
	FinalActivation string `toml:"final_activation"`
	// AttachGlobal concatenates the jet dataset's variables to every
	// constituent before the init net (default true, Salt's
	// attach_global).
	AttachGlobal *bool `toml:"attach_global"`
	// Dropout is the probability with which training drops each input of
	// each linear layer, as Salt's Dense applies dense_config.dropout
	// (default 0; not for edge init nets).
	Dropout float64 `toml:"dropout,omitzero"`
	// MuP initialises the init net as Salt's Dense with
	// dense_config.mup: weights N(0, 1/fan_out), biases zero (not for
	// edge init nets).
	MuP bool `toml:"mup,omitempty"`
}

// Encoder configures the transformer encoder (Salt's Transformer).
// Layers = 0 means no encoder (Salt's model without encoder): the other
// keys then have no effect and must not be set.
type Encoder struct {
	// Kind is "transformer" (Salt's Transformer; the default, also when
	// unset) or "legacy": Salt's TransformerEncoder as it was until 2026,
	// with which ATLAS's GN2 taggers were trained (learnable LayerNorms,
	// separate q/k/v projections, no registers, the final norm before the
	// out_dim projection). The legacy encoder reads layers, heads,
	// activation, out_dim, dropout, attn_dropout and hidden (or
	// dense_ratio); it has no registers, and the options of the later
	// Transformer (gated, norm, norm_type, ls_init, drop_path, do_qk_norm,
	// do_v_norm, edge features, final_norm = false) are refused.
	//
	// Kind "cross_attention" is Salt's TransformerCrossAttentionEncoder
	// (GN2_tracks_neutral_CA.yaml): legacy layers per constituent group,
	// each group attending to itself, with symmetric cross-attention
	// updates between every pair of groups after the first and the last
	// layer (after every layer with ca_every_layer). It reads the legacy
	// encoder's keys and needs two or more groups.
	Kind string `toml:"kind,omitempty"`
	// CAEveryLayer applies kind = "cross_attention"'s updates between the
	// groups after every layer (Salt's ca_every_layer).
	CAEveryLayer bool `toml:"ca_every_layer,omitempty"`
	// Hidden are the hidden layer sizes of the legacy encoder's dense
	// block (Salt's dense_config.hidden_layers); unset, one layer of
	// dense_ratio × embed_dim, as Salt's Dense defaults.
	Hidden     []int  `toml:"hidden,omitempty"`
	Layers     int    `toml:"layers"`
	Heads      int    `toml:"heads"`
	DenseRatio int    `toml:"dense_ratio"`
	Activation string `toml:"activation"`
	Registers  int    `toml:"registers"`
	// OutDim is the size of the output projection, before the final norm
	// (0: no projection, as Salt's out_dim null).
	OutDim    int  `toml:"out_dim"`
	FinalNorm bool `toml:"final_norm"`
	// OutProj keeps the legacy encoder's attention output projection
	// (Salt's mha_config.out_proj, linear_out; default true). Salt's
	// Transformer always has its projection.
	OutProj bool `toml:"out_proj"`
	// Dropout is the dropout on the feed-forward hidden layer (Salt's
	// dense_kwargs.dropout), AttnDropout on the attention weights (Salt's
	// attn_kwargs.dropout).
	// In the legacy encoder, Dropout is on the input of each Linear of the
	// dense block (Salt's dense_config.dropout) and AttnDropout on the
	// attention scores before the softmax (ScaledDotProductAttention's
	// dropout).
	Dropout     float64 `toml:"dropout"`
	AttnDropout float64 `toml:"attn_dropout"`
	// Gated makes the feed-forward net a gated linear unit (Salt's
	// dense_kwargs.gated).
	Gated bool `toml:"gated"`
	// Norm is "LayerNorm" (Salt's parameter-free LayerNorm, the default)
	// or "RMSNorm" (with a learnable scale), in every residual block and
	// at the output (Salt's norm).
	Norm string `toml:"norm"`
	// NormType is "pre" (the default), "post" or "hybrid" (Salt's
	// norm_type; hybrid, GN3's, also normalises queries, keys and values).
	NormType string `toml:"norm_type"`
	// LSInit, when positive, is LayerScale's initial value (Salt's
	// ls_init): each block's output is scaled by a learnable vector.
	LSInit float64 `toml:"ls_init"`
	// DropPath is the probability of dropping a block's output for a
	// whole jet in training (Salt's drop_path, stochastic depth).
	DropPath float64 `toml:"drop_path"`
	// DoQKNorm and DoVNorm normalise each attention head's queries and
	// keys, and values, with RMSNorm (Salt's attn_kwargs.do_qk_norm and
	// do_v_norm).
	DoQKNorm bool `toml:"do_qk_norm"`
	DoVNorm  bool `toml:"do_v_norm"`
	// EdgeEmbedDim is the width of the embedded edge features the
	// attention uses (Salt's edge_embed_dim; 0 without edge features), and
	// UpdateEdges has each layer update them (Salt's update_edges).
	EdgeEmbedDim int  `toml:"edge_embed_dim"`
	UpdateEdges  bool `toml:"update_edges"`
	// DropRegisters leaves the registers out of the pooling (Salt's
	// drop_registers): the jet representation pools the constituents
	// alone. A jet without constituents then has nothing to pool.
	DropRegisters bool `toml:"drop_registers"`
	// MuP builds the encoder in Salt's μP parametrisation (Salt's
	// Transformer mup): attention scores scaled by 1/head_dim, μP
	// initialisation, and the out_dim projection a MuReadout. It needs
	// out_dim and [model.mup_config].
	MuP bool `toml:"mup,omitempty"`
}

// Pooling configures how constituents are pooled into the jet
// representation.
type Pooling struct {
	// Kind is "attention" (Salt's GlobalAttentionPooling), "none" (Salt's
	// pool_net unset: a model reading the jet variables alone, whose one
	// init net reads the jet dataset) or "flatten" (Salt's R21Xbb: the
	// normalised variables of the first max_len constituents of input,
	// padded slots zero, laid side by side are the jet representation the
	// task heads read; no init nets, no encoder).
	Kind string `toml:"kind"`
	// Input is the constituent dataset a "flatten" pooling reads (e.g.
	// "tracks"); MaxLen its fixed number of constituents per jet, which
	// the heads' input width, max_len × the dataset's variables, needs
	// (a deployed model pads or truncates each jet's constituents to it).
	Input  string `toml:"input,omitempty"`
	MaxLen int    `toml:"max_len,omitzero"`
}

// Flattens reports whether the model is Salt's R21Xbb (pooling kind
// "flatten").
func (m *Model) Flattens() bool { return m.Pooling.Kind == "flatten" }

// Task is one objective.
type Task struct {
	Name string `toml:"name"`
	// Kind is jet_classification, track_classification (or
	// constituent_classification), vertexing, regression or
	// gaussian_regression; a regression with input = a constituent
	// dataset regresses targets of each constituent.
	Kind  string `toml:"kind"`
	Input string `toml:"input"` // constituent dataset of track tasks and constituent regressions
	Label string `toml:"label"` // label field
	// ClassNames are a classification's classes in label order. A
	// jet_classification of flavour_label may leave them out: they are
	// then read from the flavour_label attribute of the first training
	// file's jet dataset, as Salt does (see Parse).
	ClassNames []string `toml:"class_names"`
	// LabelMap maps values of the label field to classes (Salt's
	// label_map): value = class index or class name.
	LabelMap map[string]any `toml:"label_map"`
	// UseLabeller labels jets by atlas-ftag-tools' flavour cuts of the
	// class names (Salt's labeller_config.use_labeller).
	UseLabeller bool `toml:"use_labeller"`
	// RequireLabels (default true, Salt's require_labels) makes a value
	// that no class covers an error; false leaves such jets or
	// constituents out of the losses.
	RequireLabels *bool    `toml:"require_labels"`
	Targets       []string `toml:"targets"` // regression target fields
	Hidden        []int    `toml:"hidden"`
	Activation    string   `toml:"activation"`
	Weight        *float64 `toml:"weight"` // static loss weight (default 1)
	// UseClassDict takes class weights from the data's class_dict.
	UseClassDict bool      `toml:"use_class_dict"`
	ClassWeights []float64 `toml:"class_weights"`
	HuberDelta   float64   `toml:"huber_delta"`
	// OriginLabel is the track origin field vertexing pairs are weighted by
	// (Salt's origin weighting); "" for none.
	OriginLabel string `toml:"origin_label"`
	// InputSize and OutputSize are optional, as Salt writes them; when given
	// they must agree with what the model computes.
	InputSize  int `toml:"input_size"`
	OutputSize int `toml:"output_size"`
	// ContextSize of a constituent classification or regression is 0 for
	// a head that reads the constituent's features alone (Salt's Dense
	// with context_size 0); unset, or the pooled representation's width,
	// the head reads that representation as context, as GN2's do.
	ContextSize *int `toml:"context_size"`
	// NormParams, TargetDenominators and Scaler scale a regression's
	// targets for the loss, as Salt's keys of the same names do (at most
	// one of them); predictions are scaled back.
	NormParams *NormParams `toml:"norm_params"`
	// TargetDenominators are variables of the task's input, one per target
	// (the target is divided by it); each must be an input variable, so
	// that the deployed model can scale its prediction back.
	TargetDenominators []string `toml:"target_denominators"`
	// Scaler maps targets to Salt's RegressionTargetScaler operations.
	Scaler map[string]Scale `toml:"scaler"`
	// SampleWeight is a field of the task's input dataset (the jets, or
	// the constituents of a constituent task) weighing each entry in this
	// task's loss, on top of data.sample_weight (Salt's per-task
	// sample_weight, but a weighted mean where Salt takes the mean of
	// weight × loss).
	SampleWeight string `toml:"sample_weight"`
	// Loss is the task's loss by Salt's (PyTorch's) class name, where the
	// kind allows a choice: "CrossEntropyLoss" (the default) or
	// "BCEWithLogitsLoss" (a binary classification with one class name)
	// for classifications; "MSELoss" (the default), "HuberLoss" (with
	// huber_delta, default 1) or "L1Loss" for regressions.
	Loss string `toml:"loss,omitempty"`
	// LossMean is how the loss averages over the task's entries:
	// "weighted" (the default), Σ w·l / Σ w over the entries that count;
	// or "entries", Salt's form with reduction "none": the mean of
	// weight × loss over every entry of the batch's jets (padded
	// constituent slots and missing targets counting 0 in the numerator
	// and 1 in the count).
	LossMean string `toml:"loss_mean,omitempty"`
	// Dropout is the probability with which training drops each input of
	// each of the head's linear layers, as Salt's Dense applies
	// dense_config.dropout (default 0; not for vertexing).
	Dropout float64 `toml:"dropout,omitzero"`
}

// noContext reports whether the task's head reads no context
// (context_size = 0).
func (t Task) noContext() bool { return t.ContextSize != nil && *t.ContextSize == 0 }

// NormParams are Salt's norm_params: (target − mean)/std per target.
type NormParams struct {
	Mean []float64 `toml:"mean"`
	Std  []float64 `toml:"std"`
}

// Scale is one target's RegressionTargetScaler operation: op is "log",
// "exp" or "linear", applied as op(y·x_scale + x_off)·op_scale + op_off
// (x_scale and op_scale 1, the offsets 0 by default).
type Scale struct {
	Op      string   `toml:"op"`
	XScale  *float64 `toml:"x_scale"`
	XOff    float64  `toml:"x_off"`
	OpScale *float64 `toml:"op_scale"`
	OpOff   float64  `toml:"op_off"`
}

// Training configures the optimisation.
type Training struct {
	Epochs  int    `toml:"epochs"`
	Seed    uint64 `toml:"seed"`
	Threads int    `toml:"threads"` // ONNX Runtime intra-op threads (0: all cores)
	Device  string `toml:"device"`  // "cpu" or "cuda"
	// Precision is the compute precision: "fp32"; on CUDA also "tf32"
	// (fp32 with TensorFloat-32 matrix products), and "fp16" or "bf16"
	// (mixed precision: float32 master weights and optimizer, the forward
	// and backward pass in the half type; fp16 with dynamic loss scaling).
	Precision string `toml:"precision"`
	// CUDAProvider is ONNX Runtime's CUDA provider library
	// (libonnxruntime_providers_cuda.so); "" takes $SALT_ORT_CUDA_LIB or
	// the one beside the loaded libonnxruntime.so.
	CUDAProvider string `toml:"cuda_provider"`
	// CUDAGraph captures the training step as a CUDA graph and replays it
	// (on by default; salt-ort falls back and says why where ONNX Runtime
	// cannot capture).
	CUDAGraph bool `toml:"cuda_graph"`
	// LossWeighting is "static" (the task weights, as Salt's loss_mode
	// wsum), "uncertainty" (learned homoscedastic uncertainty, Kendall et
	// al. 2018) or "GLS" (Salt's loss_mode GLS: the geometric mean of the
	// task losses, every task weight 1; not for data-parallel jobs).
	LossWeighting string        `toml:"loss_weighting"`
	Optimizer     Optimizer     `toml:"optimizer"`
	LR            OneCycle      `toml:"lr"`
	GradClip      float64       `toml:"grad_clip"` // global-norm clipping threshold (0: off)
	Checkpoints   Checkpoints   `toml:"checkpoints"`
	EarlyStopping EarlyStopping `toml:"early_stopping"`
	LogEvery      int           `toml:"log_every"` // steps between metric rows
	// CollectiveTimeout is how long, in seconds, a rank of a data-parallel
	// job (mpirun, srun) waits for the others in a collective call before
	// it decides one has died and ends the job.
	CollectiveTimeout float64 `toml:"collective_timeout"`
	// NCCLLib is NVIDIA's libnccl.so.2, which a data-parallel job on CUDA
	// sums its gradients with on the GPUs; "" takes $SALT_ORT_NCCL_LIB,
	// then the dynamic loader's search path. Without it the gradients are
	// summed through host memory over MPI.
	NCCLLib string `toml:"nccl_lib"`
}

// Optimizer configures the optimizer.
type Optimizer struct {
	// Name is "adamw", "sgd" or "lion" (Salt's model.optimizer: lion,
	// lion-pytorch's update; beta2 then defaults to Lion's 0.99).
	Name        string  `toml:"name"`
	WeightDecay float64 `toml:"weight_decay"`
	// Beta1 is AdamW's and Lion's first β and Momentum SGD's momentum; with
	// training.lr.cycle_momentum (the default, as Salt's OneCycleLR) the
	// schedule sets them every step instead.
	Beta1    float64 `toml:"beta1"`
	Beta2    float64 `toml:"beta2"`
	Eps      float64 `toml:"eps"`
	Momentum float64 `toml:"momentum"`
}

// OneCycle is the one-cycle learning-rate schedule (PyTorch's OneCycleLR,
// as Salt configures it): cosine from Initial to Max over the warm-up
// fraction of all steps, then cosine to End. With CycleMomentum the
// optimizer's momentum (AdamW's β₁, which optimizer.beta1 then does not
// set) goes from MaxMomentum to BaseMomentum over the warm-up and back.
type OneCycle struct {
	Initial        float64 `toml:"initial"`
	Max            float64 `toml:"max"`
	End            float64 `toml:"end"`
	WarmupFraction float64 `toml:"warmup_fraction"`
	CycleMomentum  bool    `toml:"cycle_momentum"`
	BaseMomentum   float64 `toml:"base_momentum"`
	MaxMomentum    float64 `toml:"max_momentum"`
}

// Checkpoints configures which checkpoints are kept.
type Checkpoints struct {
	Monitor  string `toml:"monitor"`    // validation metric: "val_loss" or "val_loss/<task>"
	SaveTopK int    `toml:"save_top_k"` // best checkpoints kept (besides the last)
}

// EarlyStopping stops training when the monitored metric has not improved
// for Patience epochs (0: never).
type EarlyStopping struct {
	Patience int     `toml:"patience"`
	MinDelta float64 `toml:"min_delta"`
}

// Default returns the defaults every configuration starts from: Salt's GN2
// training settings.
func Default() Config {
	return Config{
		Data: Data{JetDataset: "jets", BatchSize: 1000, NumTrain: -1, NumVal: -1, NumWorkers: 1, Prefetch: 4, NonFinite: "error"},
		Model: Model{
			Name: "GN2", EmbedDim: 256,
			Encoder: Encoder{Layers: 4, Heads: 8, DenseRatio: 2, Activation: "ReLU", Registers: 1, OutDim: 128, FinalNorm: true, OutProj: true, Norm: "LayerNorm", NormType: "pre"},
			Pooling: Pooling{Kind: "attention"},
		},
		Training: Training{
			Epochs: 40, Seed: 42, Device: "cpu", Precision: "fp32", CUDAGraph: true, LossWeighting: "static",
			Optimizer: Optimizer{Name: "adamw", WeightDecay: 1e-5, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
			LR: OneCycle{Initial: 1e-7, Max: 5e-4, End: 1e-5, WarmupFraction: 0.01,
				CycleMomentum: true, BaseMomentum: 0.85, MaxMomentum: 0.95},
			Checkpoints: Checkpoints{Monitor: "val_loss", SaveTopK: 1},
			LogEvery:    10, CollectiveTimeout: 600,
		},
	}
}

// Error is a configuration error: it names the file, the line where
// known, the key and the fix.
type Error struct {
	File string
	Line int // 0 when unknown
	Key  string
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

var typeErrorRE = regexp.MustCompile(`^line (\d+) \(last key "([^"]*)"\): (.*)$`)

// Load reads and validates a configuration file. It reads at most
// MaxSize+1 bytes, so that a larger file is refused without being read.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	return Parse(path, data)
}

// Parse decodes configuration text read from path (used for messages and
// to resolve relative paths) and validates it. A jet classification of
// flavour_label without class_names takes them, as Salt does, from the
// flavour_label attribute of the first training file's jet dataset (see
// Notes); a file that cannot supply them is a configuration error at
// model.tasks.class_names.
func Parse(path string, data []byte) (*Config, error) {
	if err := checkLimits(path, data); err != nil {
		return nil, err
	}
	cfg := Default()
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		// Type errors carry "line N (last key "k"): message" in their text.
		msg := strings.TrimPrefix(err.Error(), "toml: ")
		e := &Error{File: path, Msg: msg}
		if m := typeErrorRE.FindStringSubmatch(msg); m != nil {
			e.Line, _ = strconv.Atoi(m[1])
			e.Key, e.Msg = m[2], m[3]
		}
		return nil, e
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		k := undecoded[0]
		msg := "unknown key"
		if s := suggest(reflect.TypeOf(cfg), k); s != "" {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return nil, &Error{File: path, Line: lineOf(data, k[len(k)-1]), Key: k.String(), Msg: msg}
	}
	cfg.path, cfg.raw = path, data
	cfg.defined = map[string]bool{}
	for _, k := range md.Keys() {
		cfg.defined[k.String()] = true
	}
	cfg.applyDefaults()
	cfg.classNamesFromFile()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// Defined reports whether the configuration text sets key (dotted, as
// model.encoder.registers), rather than leaving it to its default.
func (c *Config) Defined(key string) bool { return c.defined[key] }

// JetNet returns the init net that reads the jet dataset, a model without
// constituents (Salt's DL1), if there is one.
func (c *Config) JetNet() (InitNet, bool) {
	for _, n := range c.Model.InitNets {
		if n.Input == c.Data.JetDataset {
			return n, true
		}
	}
	return InitNet{}, false
}

// ConstituentNets returns the init nets of the constituent datasets (all
// but the jet dataset's). A "flatten" pooling has no init nets; its
// dataset is returned as an init net of that input and max_len alone, so
// that what reads the constituent groups reads it.
func (c *Config) ConstituentNets() []InitNet {
	if m := &c.Model; m.Flattens() && len(m.InitNets) == 0 {
		return []InitNet{{Input: m.Pooling.Input, MaxLen: m.Pooling.MaxLen}}
	}
	var out []InitNet
	for _, n := range c.Model.InitNets {
		if n.Input != c.Data.JetDataset {
			out = append(out, n)
		}
	}
	return out
}

// Path returns the file the configuration was read from.
func (c *Config) Path() string { return c.path }

// Text returns the configuration's text as it was parsed: the TOML file's
// bytes, or the TOML a Salt configuration was converted to.
func (c *Config) Text() []byte { return c.raw }

// Resolve returns p relative to the configuration file's directory (p if
// absolute).
func (c *Config) Resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(filepath.Dir(c.path), p)
}

// Absolute returns a copy of the configuration whose data paths are
// absolute, so that it means the same from any directory (the resolved
// configuration a run directory keeps).
func (c *Config) Absolute() (*Config, error) {
	out := *c
	abs := func(p string) (string, error) {
		if p == "" {
			return "", nil
		}
		return filepath.Abs(c.Resolve(p))
	}
	var err error
	for _, split := range []struct {
		key  string
		list *[]string
	}{{"train", &out.Data.Train}, {"val", &out.Data.Val}, {"test", &out.Data.Test}} {
		// Patterns become the files they match, sorted, so that the run
		// directory records what was read. A test pattern may match
		// nothing yet: it stays a pattern, expanded again by eval.
		var files []string
		if split.key == "test" {
			files = c.ResolveAll(*split.list)
		} else if files, err = c.Files(split.key); err != nil {
			return nil, err
		}
		// Files and ResolveAll resolved the paths against the
		// configuration's directory already.
		fixed := make([]string, len(files))
		for i, p := range files {
			if fixed[i], err = filepath.Abs(p); err != nil {
				return nil, fmt.Errorf("config: %s: %w", c.path, err)
			}
		}
		*split.list = fixed
	}
	if out.Data.NormDict, err = abs(c.Data.NormDict); err != nil {
		return nil, fmt.Errorf("config: %s: %w", c.path, err)
	}
	if out.Data.ClassDict, err = abs(c.Data.ClassDict); err != nil {
		return nil, fmt.Errorf("config: %s: %w", c.path, err)
	}
	if out.Training.CUDAProvider, err = abs(c.Training.CUDAProvider); err != nil {
		return nil, fmt.Errorf("config: %s: %w", c.path, err)
	}
	return &out, nil
}

// applyDefaults fills per-item defaults that TOML arrays of tables cannot
// carry.
func (c *Config) applyDefaults() {
	for i := range c.Model.InitNets {
		n := &c.Model.InitNets[i]
		if n.Activation == "" {
			n.Activation = "ReLU"
		}
		if n.AttachGlobal == nil {
			// The init net of the jet dataset reads the jet variables as
			// its input; there is nothing to attach.
			attach := n.Input != c.Data.JetDataset
			n.AttachGlobal = &attach
		}
	}
	if m := &c.Model; m.Flattens() && !c.Defined("model.embed_dim") {
		// The flattened constituents are the jet representation.
		m.EmbedDim = m.Pooling.MaxLen * len(c.Data.Variables[m.Pooling.Input])
	}
	if e := &c.Model.Encoder; (e.Kind == "legacy" || e.Kind == "cross_attention") && !c.Defined("model.encoder.registers") {
		e.Registers = 0 // Salt's TransformerEncoder has none
	}
	if strings.EqualFold(c.Training.LossWeighting, "gls") {
		c.Training.LossWeighting = "GLS"
	}
	if o := &c.Training.Optimizer; o.Name == "lion" && !c.Defined("training.optimizer.beta2") {
		o.Beta2 = 0.99 // lion-pytorch's default, which Salt trains with
	}
	for i := range c.Model.FeaturewiseNets {
		f := &c.Model.FeaturewiseNets[i]
		for _, d := range []*FeaturewiseDense{f.DenseConfigScale, f.DenseConfigBias} {
			if d != nil && d.Activation == "" {
				d.Activation = "ReLU"
			}
		}
	}
	for i := range c.Model.EdgeInitNets {
		n := &c.Model.EdgeInitNets[i]
		if n.Activation == "" {
			n.Activation = "ReLU"
		}
		if n.AttachGlobal == nil {
			no := false // Salt's edge init nets attach nothing
			n.AttachGlobal = &no
		}
	}
	for i := range c.Model.Tasks {
		t := &c.Model.Tasks[i]
		if t.Weight == nil {
			one := 1.0
			t.Weight = &one
		}
		if t.Activation == "" {
			t.Activation = "ReLU"
		}
		if t.RequireLabels == nil && (t.Kind == "jet_classification" || t.Kind == "track_classification" || t.Kind == "constituent_classification") {
			yes := true
			t.RequireLabels = &yes
		}
		if t.Kind == "track_classification" {
			t.Kind = "constituent_classification"
		}
	}
}

// Encode writes the configuration with every default filled in, the
// "resolved config" saved in a run directory. Without an encoder
// (model.encoder.layers = 0) the encoder's other keys are written as 0,
// which they mean there; with norm_type = "hybrid", do_qk_norm and
// do_v_norm as true, which it implies.
func (c *Config) Encode() ([]byte, error) {
	var b bytes.Buffer
	out := *c
	if out.Model.Encoder.Layers == 0 {
		out.Model.Encoder = Encoder{}
	}
	if out.Model.Encoder.NormType == "hybrid" {
		// Hybrid layers normalise queries, keys and values whatever the
		// keys say; the resolved form says so.
		out.Model.Encoder.DoQKNorm, out.Model.Encoder.DoVNorm = true, true
	}
	if err := toml.NewEncoder(&b).Encode(&out); err != nil {
		return nil, fmt.Errorf("config: encoding %s: %w", c.path, err)
	}
	return b.Bytes(), nil
}

// suggest returns the valid key nearest to the last element of an
// unknown key, among the keys valid at its position.
func suggest(t reflect.Type, k toml.Key) string {
	for _, part := range k[:len(k)-1] {
		for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer || t.Kind() == reflect.Map {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return ""
		}
		f, ok := fieldByTag(t, part)
		if !ok {
			return ""
		}
		t = f.Type
	}
	for t.Kind() == reflect.Slice || t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if tag := tomlName(t.Field(i)); tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	sort.Strings(names)
	return nearest.Key(k[len(k)-1], names)
}

// tomlName is a field's TOML key: its tag without options such as
// omitempty.
func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	return name
}

func fieldByTag(t reflect.Type, tag string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		if tomlName(t.Field(i)) == tag {
			return t.Field(i), true
		}
	}
	return reflect.StructField{}, false
}

// lineOf returns the first line on which key is assigned (the string
// value, if given) or opens a table, or 0.
func lineOf(data []byte, key string, value ...string) int {
	q := regexp.QuoteMeta(key)
	pattern := `^\s*("?` + q + `"?\s*=|\[\[?([^\]]*\.)?` + q + `\]\]?)`
	if len(value) > 0 {
		pattern = `^\s*"?` + q + `"?\s*=\s*"` + regexp.QuoteMeta(value[0]) + `"`
	}
	re := regexp.MustCompile(pattern)
	for i, line := range strings.Split(string(data), "\n") {
		if re.MatchString(line) {
			return i + 1
		}
	}
	return 0
}
