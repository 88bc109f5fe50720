package onnxpb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedUpToDate regenerates onnx.pb.go with the pinned protoc and
// protoc-gen-go that `make deps` installs and checks that the committed file
// is what they produce from third_party/onnx/onnx.proto.
func TestGeneratedUpToDate(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(root, "third_party/bin/protoc-gen-go")
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Skip("protoc is not installed (apt-get install protobuf-compiler, or `make deps`)")
	}
	if _, err := os.Stat(plugin); err != nil {
		t.Skip("protoc-gen-go is not installed under third_party/bin (`make deps`)")
	}
	out := t.TempDir()
	cmd := exec.Command("protoc", "--plugin=protoc-gen-go="+plugin,
		"--proto_path="+filepath.Join(root, "third_party/onnx"),
		"--go_out="+out, "--go_opt=paths=source_relative", "onnx.proto")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protoc: %v\n%s", err, msg)
	}
	fresh, err := os.ReadFile(filepath.Join(out, "onnx.pb.go"))
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("onnx.pb.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Fatal("codegen/onnxpb/onnx.pb.go is stale: run `make generate` and commit it")
	}
}
