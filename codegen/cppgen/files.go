package cppgen

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Magic numbers and the versions of the binary formats (see the package
// documentation).
const (
	InputsMagic    = "SALTORTI"
	OutputsMagic   = "SALTORTO"
	InputsVersion  = 2
	OutputsVersion = 1
)

// maxCount bounds counts read from a file, so that a corrupt file fails
// before it allocates too much.
const maxCount = 1 << 28

// Constituents are one jet's constituents of one constituent input.
type Constituents struct {
	N        int       // constituents
	Features []float32 // [N, vars], row-major
}

// Jet is one jet of an inputs file.
type Jet struct {
	Features []float32 // [Inputs.JetVars]
	// Groups holds the jet's constituents of each constituent input, in
	// the order of Inputs.GroupVars.
	Groups []Constituents
}

// Inputs are the contents of an inputs file.
type Inputs struct {
	JetVars int // length of the jet input's last axis
	// GroupVars holds, per constituent input in the model's input order,
	// the length of its last axis.
	GroupVars []int
	Jets      []Jet
}

// OutputColumn is one output of an outputs file over all jets.
type OutputColumn struct {
	Name string
	Type ElementType
	// Jets holds the values per jet; int8 values are converted to float32,
	// which is exact.
	Jets [][]float32
}

// Outputs are the contents of an outputs file, outputs in graph order.
type Outputs struct {
	Jets    int
	Outputs []OutputColumn
}

// Column returns the output named name, or nil.
func (o *Outputs) Column(name string) *OutputColumn {
	for i := range o.Outputs {
		if o.Outputs[i].Name == name {
			return &o.Outputs[i]
		}
	}
	return nil
}

// WriteInputs writes in as an inputs file.
func WriteInputs(w io.Writer, in *Inputs) error {
	if in.JetVars < 0 {
		return fmt.Errorf("cppgen: inputs: negative number of jet variables %d", in.JetVars)
	}
	for g, n := range in.GroupVars {
		if n < 0 {
			return fmt.Errorf("cppgen: inputs: constituent input %d: negative number of variables %d", g, n)
		}
	}
	bw := bufio.NewWriter(w)
	e := encoder{w: bw}
	e.bytes([]byte(InputsMagic))
	e.u32(InputsVersion)
	e.u32(uint32(len(in.Jets)))
	e.u32(uint32(in.JetVars))
	e.u32(uint32(len(in.GroupVars)))
	for _, n := range in.GroupVars {
		e.u32(uint32(n))
	}
	for j, jet := range in.Jets {
		if len(jet.Features) != in.JetVars {
			return fmt.Errorf("cppgen: inputs: jet %d has %d jet features, want %d", j, len(jet.Features), in.JetVars)
		}
		if len(jet.Groups) != len(in.GroupVars) {
			return fmt.Errorf("cppgen: inputs: jet %d has %d constituent inputs, want %d", j, len(jet.Groups), len(in.GroupVars))
		}
		e.f32s(jet.Features)
		for g, c := range jet.Groups {
			if c.N < 0 || len(c.Features) != c.N*in.GroupVars[g] {
				return fmt.Errorf("cppgen: inputs: jet %d constituent input %d has %d features, want %d·%d", j, g, len(c.Features), c.N, in.GroupVars[g])
			}
			e.u32(uint32(c.N))
			e.f32s(c.Features)
		}
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	if e.err != nil {
		return fmt.Errorf("cppgen: writing inputs: %w", e.err)
	}
	return nil
}

// ReadInputs reads an inputs file.
func ReadInputs(r io.Reader) (*Inputs, error) {
	d := decoder{r: bufio.NewReader(r), what: "inputs"}
	if err := d.header(InputsMagic, InputsVersion); err != nil {
		return nil, err
	}
	n := d.count("the number of jets")
	in := &Inputs{JetVars: d.count("the number of jet variables")}
	groups := d.count("the number of constituent inputs")
	for g := 0; g < groups && d.err == nil; g++ {
		in.GroupVars = append(in.GroupVars, d.count(fmt.Sprintf("constituent input %d: the number of variables", g)))
	}
	for j := 0; j < n && d.err == nil; j++ {
		jet := Jet{Features: d.f32s(in.JetVars, fmt.Sprintf("jet %d: the jet features", j))}
		for g, vars := range in.GroupVars {
			c := Constituents{N: d.count(fmt.Sprintf("jet %d: constituent input %d: the number of constituents", j, g))}
			c.Features = d.f32s(c.N*vars, fmt.Sprintf("jet %d: constituent input %d: the features", j, g))
			jet.Groups = append(jet.Groups, c)
		}
		in.Jets = append(in.Jets, jet)
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return in, nil
}

// WriteOutputs writes out as an outputs file (as the generated program
// does; for tests and tools).
func WriteOutputs(w io.Writer, out *Outputs) error {
	bw := bufio.NewWriter(w)
	e := encoder{w: bw}
	e.bytes([]byte(OutputsMagic))
	e.u32(OutputsVersion)
	e.u32(uint32(out.Jets))
	e.u32(uint32(len(out.Outputs)))
	for _, c := range out.Outputs {
		if c.Type.Size() == 0 {
			return fmt.Errorf("cppgen: outputs: %s has unsupported element type %v", c.Name, c.Type)
		}
		if len(c.Jets) != out.Jets {
			return fmt.Errorf("cppgen: outputs: %s has %d jets, want %d", c.Name, len(c.Jets), out.Jets)
		}
		e.u32(uint32(len(c.Name)))
		e.bytes([]byte(c.Name))
		e.u32(uint32(c.Type))
	}
	for j := 0; j < out.Jets; j++ {
		for _, c := range out.Outputs {
			vals := c.Jets[j]
			e.u32(uint32(len(vals)))
			if c.Type == Float32 {
				e.f32s(vals)
				continue
			}
			b := make([]byte, len(vals))
			for i, v := range vals {
				if v != float32(int8(v)) {
					return fmt.Errorf("cppgen: outputs: %s jet %d value %d: %v is not an int8", c.Name, j, i, v)
				}
				b[i] = byte(int8(v))
			}
			e.bytes(b)
		}
	}
	if e.err == nil {
		e.err = bw.Flush()
	}
	if e.err != nil {
		return fmt.Errorf("cppgen: writing outputs: %w", e.err)
	}
	return nil
}

// ReadOutputs reads an outputs file.
func ReadOutputs(r io.Reader) (*Outputs, error) {
	d := decoder{r: bufio.NewReader(r), what: "outputs"}
	if err := d.header(OutputsMagic, OutputsVersion); err != nil {
		return nil, err
	}
	out := &Outputs{Jets: d.count("the number of jets")}
	n := d.count("the number of outputs")
	for i := 0; i < n && d.err == nil; i++ {
		name := string(d.bytes(d.count(fmt.Sprintf("output %d: the name length", i)), fmt.Sprintf("output %d: the name", i)))
		typ := ElementType(int32(d.u32(fmt.Sprintf("output %s: the element type", name))))
		if d.err == nil && typ.Size() == 0 {
			return nil, fmt.Errorf("cppgen: outputs: output %s has unsupported element type %d", name, int32(typ))
		}
		out.Outputs = append(out.Outputs, OutputColumn{Name: name, Type: typ, Jets: make([][]float32, 0, min(out.Jets, 1<<16))})
	}
	for j := 0; j < out.Jets && d.err == nil; j++ {
		for i := range out.Outputs {
			c := &out.Outputs[i]
			where := fmt.Sprintf("jet %d: output %s", j, c.Name)
			k := d.count(where + ": the count")
			var vals []float32
			if c.Type == Float32 {
				vals = d.f32s(k, where)
			} else {
				b := d.bytes(k, where)
				vals = make([]float32, len(b))
				for m, x := range b {
					vals[m] = float32(int8(x))
				}
			}
			c.Jets = append(c.Jets, vals)
		}
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return out, nil
}

// encoder writes little-endian values, keeping the first error.
type encoder struct {
	w   io.Writer
	err error
}

func (e *encoder) bytes(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *encoder) u32(v uint32) {
	e.bytes(binary.LittleEndian.AppendUint32(nil, v))
}

func (e *encoder) f32s(v []float32) {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	e.bytes(b)
}

// decoder reads little-endian values, keeping the first error, which
// names what it was reading.
type decoder struct {
	r    *bufio.Reader
	what string // "inputs" or "outputs"
	err  error
}

func (d *decoder) fail(what string, err error) {
	if d.err != nil {
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("truncated")
	}
	d.err = fmt.Errorf("cppgen: %s: %s: %w", d.what, what, err)
}

func (d *decoder) bytes(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(d.r, b); err != nil {
		d.fail(what, err)
		return nil
	}
	return b
}

func (d *decoder) u32(what string) uint32 {
	b := d.bytes(4, what)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// count reads a u32 that sizes something.
func (d *decoder) count(what string) int {
	v := d.u32(what)
	if v > maxCount {
		d.fail(what, fmt.Errorf("implausible value %d", v))
		return 0
	}
	return int(v)
}

func (d *decoder) f32s(n int, what string) []float32 {
	if n > maxCount {
		d.fail(what, fmt.Errorf("implausible count %d", n))
		return nil
	}
	b := d.bytes(4*n, what)
	if b == nil {
		return nil
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func (d *decoder) header(magic string, version uint32) error {
	m := d.bytes(len(magic), "the magic")
	if d.err == nil && string(m) != magic {
		d.err = fmt.Errorf("cppgen: %s: not a salt-ort %s file (magic %q, want %q)", d.what, d.what, m, magic)
	}
	if v := d.u32("the version"); d.err == nil && v != version {
		d.err = fmt.Errorf("cppgen: %s: version %d, this salt-ort reads version %d", d.what, v, version)
	}
	return d.err
}

// end checks that nothing follows the last jet.
func (d *decoder) end() error {
	if d.err != nil {
		return d.err
	}
	if _, err := d.r.ReadByte(); err == nil {
		return fmt.Errorf("cppgen: %s: unexpected bytes after the last jet", d.what)
	} else if !errors.Is(err, io.EOF) {
		return fmt.Errorf("cppgen: %s: %w", d.what, err)
	}
	return nil
}
