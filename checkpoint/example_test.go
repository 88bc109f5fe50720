package checkpoint_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/salt-ort/salt-ort/checkpoint"
)

// Example writes a checkpoint of two named parameters and some metadata,
// reads it back and takes a parameter out, as salt-ort's training loop
// and export do with whole models.
func Example() {
	dir, err := os.MkdirTemp("", "checkpoint-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	var f checkpoint.File
	f.Metadata = map[string]string{"epoch": "3", "step": "1200"}
	f.SetFloat32("encoder/layer0/attn/in_proj/weight", []int64{2, 3}, []float32{0.1, 0.2, 0.3, 0.4, 0.5, 0.6})
	f.SetFloat32("encoder/layer0/attn/in_proj/bias", []int64{2}, []float32{0, -1})
	path := filepath.Join(dir, "last.safetensors")
	if err := checkpoint.Write(path, &f); err != nil {
		log.Fatal(err)
	}

	back, err := checkpoint.Read(path)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("tensors:", back.Names())
	fmt.Println("epoch:", back.Metadata["epoch"])
	w, shape, err := back.Float32("encoder/layer0/attn/in_proj/weight")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("weight:", shape, w)
	// Output:
	// tensors: [encoder/layer0/attn/in_proj/bias encoder/layer0/attn/in_proj/weight]
	// epoch: 3
	// weight: [2 3] [0.1 0.2 0.3 0.4 0.5 0.6]
}

// Example_damaged shows what a checkpoint whose tensor bytes changed on
// disk gets from Read: an error naming the file that wraps ErrChecksum,
// never another model.
func Example_damaged() {
	dir, err := os.MkdirTemp("", "checkpoint-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	var f checkpoint.File
	f.SetFloat32("w", []int64{4}, []float32{1, 2, 3, 4})
	path := filepath.Join(dir, "last.safetensors")
	if err := checkpoint.Write(path, &f); err != nil {
		log.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	b[len(b)-1] ^= 0x01 // flip one bit of the last tensor byte
	if err := os.WriteFile(path, b, 0o644); err != nil {
		log.Fatal(err)
	}

	_, err = checkpoint.Read(path)
	fmt.Println("checksum error:", errors.Is(err, checkpoint.ErrChecksum))
	// Output:
	// checksum error: true
}

// ExampleEncode shows the canonical safetensors bytes: the 8-byte header
// length, the JSON header (metadata first, tensors in name order, padded
// with spaces to a multiple of 8 bytes) and the little-endian data.
func ExampleEncode() {
	var f checkpoint.File
	f.Metadata = map[string]string{"format": "pt"}
	f.SetInt64("step", nil, []int64{7})
	var buf bytes.Buffer
	if err := checkpoint.Encode(&buf, &f); err != nil {
		log.Fatal(err)
	}
	b := buf.Bytes()
	n := binary.LittleEndian.Uint64(b)
	fmt.Printf("header (%d bytes): %q\n", n, b[8:8+n])
	fmt.Printf("data: % x\n", b[8+n:])
	// Output:
	// header (88 bytes): "{\"__metadata__\":{\"format\":\"pt\"},\"step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}} "
	// data: 07 00 00 00 00 00 00 00
}

// ExampleCompare checks a checkpoint against the tensors a model expects
// before loading it, as eval and export do, and names the first
// difference.
func ExampleCompare() {
	var ckpt, model checkpoint.File
	ckpt.SetFloat32("init/tracks/0/weight", []int64{16, 7}, make([]float32, 16*7))
	ckpt.SetFloat32("init/tracks/0/bias", []int64{16}, make([]float32, 16))
	model.SetFloat32("init/tracks/0/weight", []int64{16, 8}, make([]float32, 16*8))
	model.SetFloat32("init/tracks/0/bias", []int64{16}, make([]float32, 16))

	err := checkpoint.Compare(&ckpt, &model)
	fmt.Println(errors.Is(err, checkpoint.ErrMismatch))
	fmt.Println(err)
	// Output:
	// true
	// checkpoint: checkpoint does not match the model: tensor "init/tracks/0/weight": shape [16 7] in checkpoint, [16 8] in model
}
