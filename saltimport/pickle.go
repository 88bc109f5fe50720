package saltimport

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/pytorch"
	"github.com/nlpodyssey/gopickle/types"
)

// What reading a checkpoint may spend, set by the number of tensor
// storages its archive holds. A Lightning checkpoint's pickle needs about
// 45 opcodes and 140 bytes per storage (the state_dict, the optimizer's
// state, the hyper-parameters and loop state around them: 8,063 opcodes
// and 25 kB for the 179 storages of the PyTorch twin's checkpoint); the
// limits allow 5 to 30 times that, plus a fixed allowance for a large
// configuration in hyper_parameters. Storages beyond maxCountedStorages
// (GN2 with AdamW's moments has about 900) raise no limit, so that
// members added to an archive cannot buy a larger pickle. Unpickling
// within the limits allocates at worst about 250 bytes per opcode (lists
// of empty lists): 130 MB without storages, 390 MB at most.
const (
	pickleBaseBytes    = 16 << 20 // bytes of data.pkl whatever the storages
	pickleBytesPer     = 4 << 10  // more bytes per storage
	pickleBaseOps      = 1 << 19  // opcodes
	pickleOpsPer       = 256
	pickleMaxStack     = 1 << 16 // items on the stack and under marks, in all
	pickleStackPer     = 64
	maxCountedStorages = 4096
	maxInflatedMember  = 1 << 30 // bytes a compressed storage may inflate to
)

// pickleLimits bounds the unpickling of one checkpoint's data.pkl.
type pickleLimits struct {
	bytes      int64
	ops, stack int
}

// limitsFor returns the limits for a checkpoint of n storages.
func limitsFor(n int) pickleLimits {
	n = min(n, maxCountedStorages)
	return pickleLimits{
		bytes: pickleBaseBytes + int64(n)*pickleBytesPer,
		ops:   pickleBaseOps + n*pickleOpsPer,
		stack: pickleMaxStack + n*pickleStackPer,
	}
}

// ckptArchive is a checkpoint's zip archive: the members by their name
// below the archive's top folder (data.pkl, data/0, …).
type ckptArchive struct {
	path    string
	size    int64
	members map[string]*zip.File
	top     string // the top folder, for messages
}

// openArchive opens a checkpoint's zip archive and finds its data.pkl.
// The caller closes the returned file.
func openArchive(path string) (*ckptArchive, *os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("saltimport: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("saltimport: %w", err)
	}
	z, err := zip.NewReader(f, st.Size())
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: %v (a truncated copy, or not a file torch.save wrote)", path, ErrNotCheckpoint, err)
	}
	// torch.save writes NAME/data.pkl, NAME/data/0, …: the members of
	// the folder that holds data.pkl.
	a := &ckptArchive{path: path, size: st.Size(), members: map[string]*zip.File{}}
	for _, e := range z.File {
		if dir, name := path2(e.Name); name == "data.pkl" {
			a.top = dir
			break
		}
	}
	for _, e := range z.File {
		if dir, name := path2(e.Name); dir == a.top && name != "" {
			if _, dup := a.members[name]; !dup {
				a.members[name] = e
			}
		}
	}
	if _, ok := a.members["data.pkl"]; !ok {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: the archive has no data.pkl", path, ErrNotCheckpoint)
	}
	if _, ok := a.members["constants.pkl"]; ok {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: this is a TorchScript archive (torch.jit.save), not a Lightning checkpoint", path, ErrNotCheckpoint)
	}
	return a, f, nil
}

// path2 splits a member name into its top folder and the rest: torch.save
// writes NAME/data.pkl, NAME/data/0, … .
func path2(name string) (top, rest string) {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "", name
}

// memberName is a member's name as the archive spells it, for messages.
func (a *ckptArchive) memberName(name string) string {
	if a.top == "" {
		return name
	}
	return a.top + "/" + name
}

// storages counts the archive's tensor storages (data/<key>).
func (a *ckptArchive) storages() int {
	n := 0
	for name := range a.members {
		if strings.HasPrefix(name, "data/") {
			n++
		}
	}
	return n
}

// loadPickle unpickles a checkpoint's data.pkl within the limits its
// number of storages sets, loading each tensor storage it refers to after
// checking the storage's bytes against its declared size.
func loadPickle(path string) (any, error) {
	a, f, err := openArchive(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	lim := limitsFor(a.storages())
	pkl := a.members["data.pkl"]
	name := a.memberName("data.pkl")
	if pkl.UncompressedSize64 > uint64(lim.bytes) {
		return nil, fmt.Errorf("%s: %w: %s declares %d bytes; a Lightning checkpoint of %d tensor storages needs far less (at most %d bytes are read)",
			path, ErrNotCheckpoint, name, pkl.UncompressedSize64, a.storages(), lim.bytes)
	}
	data, err := readMember(pkl, lim.bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s: %v", path, ErrNotCheckpoint, name, err)
	}
	if err := scanPickle(data, lim); err != nil {
		return nil, fmt.Errorf("%s: %w: %s: %v", path, ErrNotCheckpoint, name, err)
	}
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = findTorchClass
	loaded := map[string]pytorch.StorageInterface{}
	u.PersistentLoad = func(id any) (any, error) {
		s, err := a.loadStorage(id, loaded)
		if err != nil {
			return nil, storageError{err}
		}
		return s, nil
	}
	obj, err := u.Load()
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %s: %s", path, ErrNotCheckpoint, name, unpickleError(err))
	}
	return obj, nil
}

// storageError is an error of loadStorage, which the unpickler returns
// as it is.
type storageError struct{ error }

// gopickleWords rewrites the Go names in the unpickler's messages.
var gopickleWords = strings.NewReplacer(
	"*Tuple", "a tuple", "requires ListAppender", "requires a list", "requires List", "requires a list",
	"requires DictSetter", "requires a dictionary", "requires SetAdder", "requires a set",
	"a Callable object", "something callable", "a PyNewable object", "a class",
	"a PyDictSettable instance", "an object", "str name", "a string name", "str module", "a string module")

// unpickleError says in words why the unpickler stopped: a storage's
// problem as loadStorage put it, otherwise the unpickler's message
// without the Go rendering of the value it objected to.
func unpickleError(err error) string {
	var se storageError
	if errors.As(err, &se) {
		return se.Error()
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the pickle ends before its end"
	}
	msg, _, _ := strings.Cut(err.Error(), ": ")
	msg = gopickleWords.Replace(msg)
	if i := strings.IndexAny(msg, "&*{"); i >= 0 { // a value in Go's rendering
		msg = strings.TrimSpace(msg[:i]) + " what it was given"
	}
	return "the pickle does not unpickle: " + msg
}

// readMember reads a zip member of at most limit bytes whole; a member
// that is shorter than it declares, longer, or damaged is an error.
func readMember(e *zip.File, limit int64) ([]byte, error) {
	r, err := e.Open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	switch {
	case err != nil && errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("it ends after %d of its %d bytes", len(b), e.UncompressedSize64)
	case err != nil:
		return nil, err
	case int64(len(b)) > limit:
		return nil, fmt.Errorf("it holds more than %d bytes", limit)
	case uint64(len(b)) != e.UncompressedSize64:
		return nil, fmt.Errorf("it holds %d bytes, not the %d it declares", len(b), e.UncompressedSize64)
	}
	return b, nil
}

// storageClasses are the storage classes a checkpoint's pickle may name,
// with the size of their elements.
var storageClasses = map[string]struct {
	class pytorch.StorageClassInterface
	size  int
}{
	"FloatStorage":    {&pytorch.FloatStorageClass{}, 4},
	"HalfStorage":     {&pytorch.HalfStorageClass{}, 2},
	"BFloat16Storage": {&pytorch.BFloat16StorageClass{}, 2},
	"DoubleStorage":   {&pytorch.DoubleStorageClass{}, 8},
	"LongStorage":     {&pytorch.LongStorageClass{}, 8},
	"IntStorage":      {&pytorch.IntStorageClass{}, 4},
	"ShortStorage":    {&pytorch.ShortStorageClass{}, 2},
	"CharStorage":     {&pytorch.CharStorageClass{}, 1},
	"ByteStorage":     {&pytorch.ByteStorageClass{}, 1},
	"BoolStorage":     {&pytorch.BoolStorageClass{}, 1},
}

// storageClass is a storage class the pickle named, with its torch name.
type storageClass struct {
	name string
	pytorch.StorageClassInterface
}

// findTorchClass resolves the torch classes of tensors (the rebuild
// function and storage classes) and leaves the rest to findClass.
func findTorchClass(module, name string) (any, error) {
	if module == "torch" {
		if c, ok := storageClasses[name]; ok {
			return &storageClass{name: name, StorageClassInterface: c.class}, nil
		}
	}
	if module == "torch._utils" && name == "_rebuild_tensor_v2" {
		return &pytorch.RebuildTensorV2{}, nil
	}
	return findClass(module, name)
}

// loadStorage reads the storage a persistent id names, ('storage', class,
// key, location, elements): its member data/<key> must hold the bytes of
// that many elements before any is allocated.
func (a *ckptArchive) loadStorage(id any, loaded map[string]pytorch.StorageInterface) (any, error) {
	t, ok := id.(*types.Tuple)
	if !ok || t.Len() < 5 {
		return nil, errors.New("a tensor's storage reference is not the ('storage', class, key, location, size) torch.save writes")
	}
	kind, _ := t.Get(0).(string)
	class, classOK := t.Get(1).(*storageClass)
	key, keyOK := t.Get(2).(string)
	location, locOK := t.Get(3).(string)
	n, nOK := t.Get(4).(int)
	switch {
	case kind != "storage":
		return nil, fmt.Errorf("a persistent reference to %q, not to a tensor storage", kind)
	case !classOK:
		return nil, fmt.Errorf("tensor storage %s has an element type salt-ort does not read (%s)", key, describe(t.Get(1)))
	case !keyOK || !locOK || !nOK || n < 0:
		return nil, fmt.Errorf("tensor storage %v: its reference has no key, location or size", t.Get(2))
	}
	if s, ok := loaded[key]; ok {
		return s, nil
	}
	member := "data/" + key
	e, ok := a.members[member]
	if !ok {
		return nil, fmt.Errorf("tensor storage %s: the archive has no member %s", key, a.memberName(member))
	}
	elem := storageClasses[class.name].size
	need := uint64(n) * uint64(elem)
	if n > 0 && need/uint64(n) != uint64(elem) || need > e.UncompressedSize64 {
		return nil, fmt.Errorf("tensor storage %s: %s holds %d bytes, too few for the %d %s elements its tensors declare",
			key, a.memberName(member), e.UncompressedSize64, n, strings.TrimSuffix(class.name, "Storage"))
	}
	if e.Method == zip.Store && e.CompressedSize64 > uint64(a.size) || e.Method != zip.Store && e.UncompressedSize64 > maxInflatedMember {
		return nil, fmt.Errorf("tensor storage %s: %s declares %d bytes, more than the file holds or salt-ort inflates", key, a.memberName(member), e.UncompressedSize64)
	}
	r, err := e.Open()
	if err != nil {
		return nil, fmt.Errorf("tensor storage %s: %s: %v", key, a.memberName(member), err)
	}
	defer r.Close()
	s := class.New(n, location)
	if err := s.SetFromFileWithSize(r, n); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("tensor storage %s: %s ends before its %d bytes", key, a.memberName(member), need)
		}
		return nil, fmt.Errorf("tensor storage %s: %s: %v", key, a.memberName(member), err)
	}
	loaded[key] = s
	return s, nil
}

// pickleOp is what the scan needs of a pickle opcode: its argument (none,
// n fixed bytes, n lines, or a length prefix of n bytes) and its effect on
// the stack (items popped and pushed, or the work of a mark).
type pickleOp struct {
	arg       byte // 0: none, 'f': fixed, 'l': lines, 'p': length-prefixed, 'F': frame
	n         int
	pop, push int
	mark      byte // 0, '(': sets a mark, 't': pops to the mark and pushes one, 'e': pops to the mark
}

// pickleOps are the opcodes of pickle protocols 0 to 5.
var pickleOps = func() (ops [256]*pickleOp) {
	set := func(codes string, op pickleOp) {
		for i := 0; i < len(codes); i++ {
			o := op
			ops[codes[i]] = &o
		}
	}
	set("N\x88\x89])}\x8f\x97", pickleOp{push: 1})         // constants, empty containers, NEXT_BUFFER
	set("2", pickleOp{pop: 1, push: 2})                    // DUP
	set("KqhC\x8c\x80\x82U\x8a", pickleOp{arg: 'f', n: 1}) // 1-byte argument (fixed below)
	set("M\x83", pickleOp{arg: 'f', n: 2, push: 1})        // BININT2, EXT2
	set("Jjr\x84", pickleOp{arg: 'f', n: 4})               // 4-byte argument (fixed below)
	set("G", pickleOp{arg: 'f', n: 8, push: 1})            // BINFLOAT
	set("ILFSVPg", pickleOp{arg: 'l', n: 1, push: 1})      // text values, PERSID, GET
	set("p", pickleOp{arg: 'l', n: 1})                     // PUT
	set("c", pickleOp{arg: 'l', n: 2, push: 1})            // GLOBAL
	set("i", pickleOp{arg: 'l', n: 2, mark: 't'})          // INST
	set("TXB\x8b", pickleOp{arg: 'p', n: 4, push: 1})      // 4-byte lengths
	set("\x8d\x8e\x96", pickleOp{arg: 'p', n: 8, push: 1}) // 8-byte lengths
	set("\x95", pickleOp{arg: 'F', n: 8})                  // FRAME
	set("Q\x85\x94\x98", pickleOp{pop: 1, push: 1})        // BINPERSID, TUPLE1, MEMOIZE, READONLY_BUFFER
	set("0", pickleOp{pop: 1})                             // POP
	set("ab", pickleOp{pop: 2, push: 1})                   // APPEND, BUILD: into the object below
	set("s", pickleOp{pop: 3, push: 1})                    // SETITEM
	set("R\x81\x93\x86", pickleOp{pop: 2, push: 1})        // REDUCE, NEWOBJ, STACK_GLOBAL, TUPLE2
	set("\x87\x92", pickleOp{pop: 3, push: 1})             // TUPLE3, NEWOBJ_EX
	set("(", pickleOp{mark: '('})                          // MARK
	set("tld\x91o", pickleOp{mark: 't'})                   // TUPLE, LIST, DICT, FROZENSET, OBJ
	set("eu\x901", pickleOp{mark: 'e'})                    // APPENDS, SETITEMS, ADDITEMS, POP_MARK
	set(".", pickleOp{})                                   // STOP
	// One-byte arguments that push (BININT1, BINGET, EXT1) or not (BINPUT,
	// PROTO); SHORT_BINSTRING, SHORT_BINUNICODE, SHORT_BINBYTES and LONG1
	// are length-prefixed.
	for _, c := range []byte("Kh\x82") {
		ops[c].push = 1
	}
	for _, c := range []byte("UC\x8c\x8a") {
		ops[c].arg, ops[c].push = 'p', 1
	}
	for _, c := range []byte("Jj") { // BININT, LONG_BINGET push; LONG_BINPUT, EXT4 below
		ops[c].push = 1
	}
	ops['\x84'].push = 1
	return ops
}()

// scanPickle walks a pickle's opcodes without building anything and
// refuses one that exceeds the limits or is malformed: more opcodes than
// lim.ops, a stack (with what marks hold) deeper than lim.stack, or an
// argument longer than the bytes left. Unpickling what passes allocates
// at most a few hundred bytes per opcode beyond the pickle itself.
func scanPickle(data []byte, lim pickleLimits) error {
	depth := 0 // items on the stack, under every mark
	var marks []int
	for pos, ops := 0, 0; ; ops++ {
		if pos >= len(data) {
			return fmt.Errorf("it ends at byte %d without a STOP opcode", pos)
		}
		if ops >= lim.ops {
			return fmt.Errorf("it holds more than %d opcodes, more than a Lightning checkpoint of its tensors needs", lim.ops)
		}
		code, at := data[pos], pos
		op := pickleOps[code]
		if op == nil {
			return fmt.Errorf("unknown opcode 0x%02x at byte %d", code, at)
		}
		pos++
		left := len(data) - pos
		switch op.arg {
		case 'f':
			if op.n > left {
				return fmt.Errorf("it ends inside the opcode at byte %d", at)
			}
			pos += op.n
		case 'l':
			for range op.n {
				i := bytes.IndexByte(data[pos:], '\n')
				if i < 0 {
					return fmt.Errorf("the opcode at byte %d has no end of line", at)
				}
				pos += i + 1
			}
		case 'p', 'F':
			if op.n > left {
				return fmt.Errorf("it ends inside the opcode at byte %d", at)
			}
			var n uint64
			switch op.n {
			case 1:
				n = uint64(data[pos])
			case 4:
				n = uint64(binary.LittleEndian.Uint32(data[pos:]))
			case 8:
				n = binary.LittleEndian.Uint64(data[pos:])
			}
			if n > uint64(left-op.n) {
				return fmt.Errorf("the opcode at byte %d declares %d bytes, more than the %d left", at, n, left-op.n)
			}
			pos += op.n
			if op.arg == 'p' {
				pos += int(n)
			}
		}
		base := 0
		if len(marks) > 0 {
			base = marks[len(marks)-1]
		}
		switch {
		case code == '.':
			return nil
		case code == '0' && depth == base && len(marks) > 0:
			// POP with nothing above the mark pops the mark.
			marks = marks[:len(marks)-1]
		case op.mark == '(':
			marks = append(marks, depth)
		case op.mark != 0:
			if len(marks) == 0 {
				return fmt.Errorf("the opcode at byte %d needs a mark, and there is none", at)
			}
			depth, marks = base, marks[:len(marks)-1]
			if op.mark == 't' {
				depth++
			}
		default:
			if depth-op.pop < base {
				return fmt.Errorf("the opcode at byte %d takes more from the stack than it holds", at)
			}
			depth += op.push - op.pop
		}
		if depth+len(marks) > lim.stack {
			return fmt.Errorf("its stack grows past %d items at byte %d, more than a Lightning checkpoint of its tensors needs", lim.stack, at)
		}
	}
}

// describe names a pickled value's kind in words for messages: what
// Python would call it, never a Go type.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		return "a boolean"
	case int:
		return "an integer"
	case *types.Tuple:
		return "a tuple"
	case float64:
		return "a number (" + strconv.FormatFloat(x, 'g', -1, 64) + ")"
	case string:
		return "a string"
	case []byte, *types.ByteArray:
		return "bytes"
	case *types.List:
		return "a list"
	case *types.Dict, *types.OrderedDict:
		return "a dictionary"
	case *types.Set, *types.FrozenSet:
		return "a set"
	case *pytorch.Tensor:
		return "a tensor"
	case *opaque:
		return "an object of class " + strings.TrimSuffix(x.class, "()")
	case *storageClass:
		return "torch." + x.name
	}
	return "a value salt-ort does not read"
}
