package deploy_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/salt-ort/salt-ort/deploy"
	"github.com/salt-ort/salt-ort/internal/testkit/examplerun"
)

// ExampleExport trains a tiny model and exports its best checkpoint for
// ATLAS's C++: the one-jet interface, with validation vectors and a model
// card beside it, checked on those vectors before anything is written.
func ExampleExport() {
	ctx := context.Background()
	rt, err := examplerun.OpenRuntime()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "deploy-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	run, err := examplerun.Train(ctx, rt, dir)
	if err != nil {
		log.Fatal(err)
	}

	ex, err := deploy.Export(ctx, deploy.ExportOptions{
		RunDir:         run,
		Out:            filepath.Join(dir, "Tiny.onnx"),
		ValidationJets: 50,
		Runtime:        rt,
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range []string{ex.Model, ex.Vectors, ex.Card, ex.CardJSON} {
		fmt.Println("wrote", filepath.Base(f))
	}
	fmt.Printf("%s interface, reproduced on %d validation jets: %v\n", ex.Validation.Interface, ex.Validation.Jets, ex.Validation.Pass())
	// Output:
	// wrote Tiny.onnx
	// wrote Tiny.validation.h5
	// wrote Tiny.md
	// wrote Tiny.card.json
	// athena interface, reproduced on 50 validation jets: true
}

// ExampleValidate runs an exported model on the validation vectors
// written beside it and compares every output, as `salt-ort validate`
// does.
func ExampleValidate() {
	ctx := context.Background()
	rt, err := examplerun.OpenRuntime()
	if err != nil {
		log.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "deploy-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	run, err := examplerun.Train(ctx, rt, dir)
	if err != nil {
		log.Fatal(err)
	}
	model := filepath.Join(dir, "Tiny.onnx")
	if _, err := deploy.Export(ctx, deploy.ExportOptions{RunDir: run, Out: model, ValidationJets: 50, Runtime: rt}); err != nil {
		log.Fatal(err)
	}

	rep, err := deploy.Validate(ctx, deploy.ValidateOptions{Model: model, Runtime: rt})
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range rep.Outputs {
		fmt.Printf("%s %s: reproduced %v\n", o.Name, o.Type, o.Pass())
	}
	fmt.Println("pass:", rep.Pass())
	// Output:
	// Tiny_pb float32: reproduced true
	// Tiny_pc float32: reproduced true
	// Tiny_pu float32: reproduced true
	// Tiny_ptau float32: reproduced true
	// pass: true
}
