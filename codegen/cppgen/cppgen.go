// Package cppgen generates the C++ side of an exported salt-ort model: a
// reusable header that runs the model through ONNX Runtime's C++ API in
// ATLAS's one-jet ("athena") interface, a program that runs it on
// validation vectors, and the CMakeLists.txt that builds both against a
// given ONNX Runtime install.
//
// A model has one jet input, float32 [1, n_jet_vars], then zero or more
// constituent inputs (groups of constituents: tracks, hits, flows, ...),
// each float32 [n, n_vars] with its own number n of constituents per
// jet. Its outputs are jet-level scalars and per-constituent vectors
// [n], each of the latter belonging to one constituent input.
//
// Generate writes, for a model whose name sanitises to the identifier M
// (lower case m in file names):
//
//   - m_model.h: namespace salt_ort::M with the input and output names,
//     the variable counts and names of every input (so that C++ code can
//     map its own variables onto the model's), a struct Constituents
//     holding one jet's constituents of one input, a struct Outputs with
//     one member per model output and a class Model owning an
//     Ort::Session, configured as salt-ort's Go validation runs it (one
//     intra-op thread, sequential execution);
//   - m_validate.cc: the program m_validate, run as
//     `m_validate model.onnx inputs.bin outputs.bin`, which reads an inputs
//     file, runs Model on every jet and writes an outputs file;
//   - m_latency.cc: the program m_latency, run as
//     `m_latency inputs.bin runs model.onnx [model.onnx ...]`, which times
//     Model::Run one jet per call for one or more models of the interface
//     (another exporter's too), interleaved, and prints the median, 90th
//     percentile and mean per model;
//   - CMakeLists.txt: builds m_validate and m_latency (-Wall -Wextra
//     -Werror, C++17) against the ONNX Runtime install named by
//     -DORT_DIR=..., with that install's lib/ as RPATH, and declares the
//     header-only target m_model for projects that add the directory with
//     add_subdirectory.
//
// The same Interface always gives the same bytes.
//
// # Binary formats
//
// Both files are little-endian; u32 and i32 are 4-byte integers, f32 an
// IEEE-754 binary32.
//
// Inputs file (WriteInputs, ReadInputs), version 2:
//
//	magic      8 bytes "SALTORTI"
//	version    u32 = 2
//	n_jets     u32
//	n_jet_vars u32   length of the jet input's last axis
//	n_groups   u32   number of constituent inputs
//	per group, in the model's input order:
//	  n_vars   u32   length of the constituent input's last axis
//	per jet:
//	  jet      f32[n_jet_vars]
//	  per group:
//	    n      u32   constituents of this jet in this group
//	    consts f32[n * n_vars]   row-major [n, n_vars]
//
// Outputs file (WriteOutputs, ReadOutputs), version 1:
//
//	magic      8 bytes "SALTORTO"
//	version    u32 = 1
//	n_jets     u32
//	n_outputs  u32
//	per output, in graph order:
//	  len      u32
//	  name     len bytes (UTF-8)
//	  type     i32   ONNX TensorProto element type: 1 float32, 3 int8
//	per jet, per output:
//	  count    u32   1 for a scalar output, n of its constituent input
//	                 for a per-constituent one
//	  values   count values of 4 bytes (float32) or 1 byte (int8)
//
// A file must end after its last jet; readers reject trailing bytes.
package cppgen

import (
	"bytes"
	"embed"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
)

// ElementType is an ONNX TensorProto element type.
type ElementType int32

// The element types the generated code handles (ONNX TensorProto values).
const (
	Float32 ElementType = 1
	Int8    ElementType = 3
)

// String returns the type's name as salt-ort's metadata writes it.
func (t ElementType) String() string {
	switch t {
	case Float32:
		return "float32"
	case Int8:
		return "int8"
	}
	return fmt.Sprintf("ElementType(%d)", int32(t))
}

// Size returns the bytes one value of the type takes in the outputs file,
// or 0 for a type the generated code does not handle.
func (t ElementType) Size() int {
	switch t {
	case Float32:
		return 4
	case Int8:
		return 1
	}
	return 0
}

// Interface kinds. Only Athena can be generated.
const (
	// Athena is ATLAS's one-jet interface: inputs jet_features [1, n_jet_vars]
	// and, per constituent group, <group>_features [n, n_vars]; scalar jet
	// outputs and [n] per-constituent outputs.
	Athena = "athena"
	// Batched is salt-ort's batched interface (leading batch dimension and
	// valid masks), which the generated code does not support.
	Batched = "batched"
)

// Input is one model input.
type Input struct {
	Name  string   // ONNX input name, e.g. jet_features
	Group string   // the dataset its variables come from (documentation only)
	Vars  []string // variable names, in the order of the last axis
}

// Output is one model output.
type Output struct {
	Name string      // ONNX output name, e.g. GN2_pb
	Type ElementType // Float32 or Int8
	// Input names the constituent input (e.g. track_features) of a
	// per-constituent output, of shape [n] with n that input's number of
	// constituents; "" marks a jet-level scalar output.
	Input string
	// Doc says what the output means (optional; goes into the header).
	Doc string
}

// PerConstituent reports whether the output has one value per
// constituent of its Input rather than being a scalar.
func (o Output) PerConstituent() bool { return o.Input != "" }

// Interface is what the generated code needs to know of a model.
type Interface struct {
	// Model is the model's name. It is sanitised (Identifier) into the
	// C++ namespace salt_ort::<Model> and, lower-cased, the file names.
	Model string
	// Kind is the interface kind; "" means Athena.
	Kind string
	// Inputs are the jet input, then zero or more constituent inputs, in
	// the model's input order.
	Inputs []Input
	// Outputs are in graph order.
	Outputs []Output
	// Description is an optional line for the header's comment (e.g. the
	// exporting salt-ort version and the model's SHA-256).
	Description string
}

// Constituents returns the constituent inputs: Inputs after the first.
func (iface Interface) Constituents() []Input {
	if len(iface.Inputs) == 0 {
		return nil
	}
	return iface.Inputs[1:]
}

// Names are the C++ names Generate uses for an interface.
type Names struct {
	Namespace string // salt_ort::<Namespace>
	Header    string // <base>_model.h
	Source    string // <base>_validate.cc
	Program   string // <base>_validate, the CMake target and executable
	// LatencySource and LatencyProgram are the latency program's source
	// (<base>_latency.cc) and executable (<base>_latency).
	LatencySource, LatencyProgram string
	Library                       string // <base>_model, the header-only CMake target
	Project                       string // the CMake project
}

// Names returns the C++ names of the interface's model.
func (iface Interface) Names() Names {
	ns := Identifier(iface.Model)
	base := strings.ToLower(ns)
	return Names{
		Namespace: ns,
		Header:    base + "_model.h",
		Source:    base + "_validate.cc",
		Program:   base + "_validate",
		Library:   base + "_model",
		Project:   "salt_ort_" + base,

		LatencySource:  base + "_latency.cc",
		LatencyProgram: base + "_latency",
	}
}

// InputStem returns the CamelCase stem of the C++ constants of an input:
// its name without a "_features" suffix, sanitised (Identifier) and with
// the first letter of each '_'-separated part upper-cased, e.g. "Track"
// for track_features (kTrackVariables, kNumTrackVariables, ...) and "Jet"
// for jet_features.
func InputStem(name string) string {
	if s := strings.TrimSuffix(name, "_features"); s != "" {
		name = s
	}
	var b strings.Builder
	for _, part := range strings.Split(Identifier(name), "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]))
		b.WriteString(part[1:])
	}
	return b.String()
}

// Check reports what makes the interface impossible to generate.
func (iface Interface) Check() error {
	if k := iface.Kind; k != "" && k != Athena {
		if k == Batched {
			return fmt.Errorf("cppgen: model %q has the batched interface; C++ generation supports the one-jet %q interface only: export without --batched", iface.Model, Athena)
		}
		return fmt.Errorf("cppgen: model %q: unknown interface %q (want %q)", iface.Model, k, Athena)
	}
	if len(iface.Inputs) == 0 {
		return fmt.Errorf("cppgen: model %q has no inputs; the %s interface has a jet input, then zero or more constituent inputs", iface.Model, Athena)
	}
	names := map[string]bool{}
	// The jet input's stem is Jet whatever its name (kJetVariables, ...).
	stems := map[string]string{"Jet": iface.Inputs[0].Name}
	for i, in := range iface.Inputs {
		if in.Name == "" {
			return fmt.Errorf("cppgen: model %q: input %d has no name", iface.Model, i)
		}
		if names[in.Name] {
			return fmt.Errorf("cppgen: model %q: two inputs are named %q", iface.Model, in.Name)
		}
		names[in.Name] = true
		if i == 0 {
			continue
		}
		stem := InputStem(in.Name)
		if prev, ok := stems[stem]; ok {
			return fmt.Errorf("cppgen: model %q: inputs %q and %q both get the C++ constants k%sVariables", iface.Model, prev, in.Name, stem)
		}
		stems[stem] = in.Name
	}
	if len(iface.Outputs) == 0 {
		return fmt.Errorf("cppgen: model %q has no outputs", iface.Model)
	}
	constituents := map[string]bool{}
	for _, in := range iface.Constituents() {
		constituents[in.Name] = true
	}
	members := map[string]string{}
	for _, o := range iface.Outputs {
		if o.Name == "" {
			return fmt.Errorf("cppgen: model %q: an output has no name", iface.Model)
		}
		if o.Type.Size() == 0 {
			return fmt.Errorf("cppgen: model %q: output %q has element type %v; the generated code handles float32 and int8", iface.Model, o.Name, o.Type)
		}
		if o.PerConstituent() && !constituents[o.Input] {
			if len(constituents) == 0 {
				return fmt.Errorf("cppgen: model %q: output %q is per constituent of %q, but the model has no constituent inputs", iface.Model, o.Name, o.Input)
			}
			return fmt.Errorf("cppgen: model %q: output %q is per constituent of %q, which is not a constituent input (%s)", iface.Model, o.Name, o.Input, strings.Join(slices.Sorted(maps.Keys(constituents)), ", "))
		}
		m := Identifier(o.Name)
		if prev, ok := members[m]; ok {
			return fmt.Errorf("cppgen: model %q: outputs %q and %q both become the C++ member %s", iface.Model, prev, o.Name, m)
		}
		members[m] = o.Name
	}
	return nil
}

// cppKeywords are C++17 keywords and alternative tokens, which cannot be
// identifiers.
var cppKeywords = map[string]bool{}

func init() {
	for _, k := range strings.Fields(`alignas alignof and and_eq asm auto bitand bitor bool break case catch
		char char8_t char16_t char32_t class compl concept const consteval constexpr constinit
		const_cast continue co_await co_return co_yield decltype default delete do double
		dynamic_cast else enum explicit export extern false float for friend goto if inline int
		long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected
		public register reinterpret_cast requires return short signed sizeof static static_assert
		static_cast struct switch template this thread_local throw true try typedef typeid
		typename union unsigned using virtual void volatile wchar_t while xor xor_eq`) {
		cppKeywords[k] = true
	}
}

// Identifier sanitises s into a C++ identifier: characters other than
// ASCII letters, digits and '_' become '_', runs of '_' collapse to one
// (names with "__" are reserved in C++), a leading digit or '_' gets an
// "m" prefix, a keyword gets a "_" suffix, and "" becomes "model".
func Identifier(s string) string {
	var b strings.Builder
	for _, r := range s {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !ok {
			r = '_'
		}
		if r == '_' && strings.HasSuffix(b.String(), "_") {
			continue
		}
		b.WriteRune(r)
	}
	id := b.String()
	switch {
	case id == "":
		return "model"
	case id[0] == '_' || id[0] >= '0' && id[0] <= '9':
		id = "m" + id
	}
	if cppKeywords[id] {
		id += "_"
	}
	return id
}

// cppString quotes s as a C++ string literal: printable ASCII as is,
// everything else (and '"', '\\') escaped, non-ASCII bytes as
// three-digit octal escapes, which cannot run into the next character.
func cppString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\%03o", c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// comment makes s safe inside a // comment: control characters (line
// breaks included) become spaces.
func comment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

//go:embed templates/*.tmpl
var templateFS embed.FS

var templates = template.Must(template.New("").Funcs(template.FuncMap{
	"cstr":    cppString,
	"comment": comment,
}).ParseFS(templateFS, "templates/*.tmpl"))

// view is what the templates see.
type view struct {
	Names
	Model       string
	Description string
	Guard       string
	Jet         inputView
	// Groups are the constituent inputs, in the model's input order.
	Groups  []inputView
	Outputs []outputView
}

type inputView struct {
	Index int    // index among the constituent inputs (0 for the jet input)
	Stem  string // CamelCase stem of its C++ constants (InputStem)
	Name  string
	Group string
	Vars  []string
}

type outputView struct {
	Name       string
	Member     string
	Doc        string
	CType      string // float or int8_t
	MemberType string // CType or std::vector<CType>
	ONNXEnum   string // ONNX_TENSOR_ELEMENT_DATA_TYPE_...
	TypeName   string // float32, int8
	// Group is the constituent input of a per-constituent output, nil for
	// a scalar.
	Group *inputView
}

func newView(iface Interface) view {
	names := iface.Names()
	jet := iface.Inputs[0]
	v := view{
		Names:       names,
		Model:       iface.Model,
		Description: iface.Description,
		Guard:       "SALT_ORT_" + strings.ToUpper(names.Library) + "_H_",
		Jet:         inputView{Stem: "Jet", Name: jet.Name, Group: jet.Group, Vars: jet.Vars},
	}
	for i, in := range iface.Constituents() {
		v.Groups = append(v.Groups, inputView{Index: i, Stem: InputStem(in.Name), Name: in.Name, Group: in.Group, Vars: in.Vars})
	}
	for _, o := range iface.Outputs {
		ov := outputView{Name: o.Name, Member: Identifier(o.Name), Doc: o.Doc, TypeName: o.Type.String()}
		switch o.Type {
		case Float32:
			ov.CType, ov.ONNXEnum = "float", "ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT"
		case Int8:
			ov.CType, ov.ONNXEnum = "int8_t", "ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8"
		}
		ov.MemberType = ov.CType
		for i := range v.Groups {
			if v.Groups[i].Name == o.Input {
				ov.Group = &v.Groups[i]
				ov.MemberType = "std::vector<" + ov.CType + ">"
			}
		}
		v.Outputs = append(v.Outputs, ov)
	}
	return v
}

// Render returns the generated files' contents by file name.
func Render(iface Interface) (map[string][]byte, error) {
	if err := iface.Check(); err != nil {
		return nil, err
	}
	v := newView(iface)
	files := map[string][]byte{}
	for _, f := range []struct{ name, tmpl string }{
		{v.Header, "model.h.tmpl"},
		{v.Source, "validate.cc.tmpl"},
		{v.LatencySource, "latency.cc.tmpl"},
		{"CMakeLists.txt", "CMakeLists.txt.tmpl"},
	} {
		var b bytes.Buffer
		if err := templates.ExecuteTemplate(&b, f.tmpl, v); err != nil {
			return nil, fmt.Errorf("cppgen: model %q: %s: %w", iface.Model, f.name, err)
		}
		files[f.name] = b.Bytes()
	}
	return files, nil
}

// Generate writes the header, the validation program, the latency program
// and the CMakeLists.txt for iface into dir (created if missing) and
// returns their paths in that order. A file that already holds the right bytes is left
// untouched, so that a build directory reused across calls rebuilds only
// when the interface changed.
func Generate(dir string, iface Interface) ([]string, error) {
	files, err := Render(iface)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cppgen: %w", err)
	}
	names := iface.Names()
	var paths []string
	for _, name := range []string{names.Header, names.Source, names.LatencySource, "CMakeLists.txt"} {
		path := filepath.Join(dir, name)
		paths = append(paths, path)
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, files[name]) {
			continue
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil {
			return nil, fmt.Errorf("cppgen: writing %s: %w", name, err)
		}
	}
	return paths, nil
}
