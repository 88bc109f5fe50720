// Command salt-ort trains multitask jet-tagging transformers described by a
// TOML file, with every graph (forward, gradients, optimizer) built as ONNX
// and run by ONNX Runtime, and exports them for C++ deployment.
package main

import (
	"os"

	"github.com/salt-ort/salt-ort/cli"
)

func main() {
	app := cli.App(os.Stdout, os.Stderr)
	if err := app.Run(cli.Interspersed(app, os.Args)); err != nil {
		// Commands return cli.Exit errors with their exit codes; anything
		// else is a usage error reported by the flag parser.
		app.ErrWriter.Write([]byte("salt-ort: " + err.Error() + "\n"))
		os.Exit(cli.ExitUsage)
	}
}
