// Package cli defines salt-ort's command-line interface: the commands, their
// flags and how they map onto the loader, graph and runtime packages.
package cli

import (
	"fmt"
	"io"

	"github.com/salt-ort/salt-ort/runtime"
	"github.com/urfave/cli/v2"
)

// Version is salt-ort's release version.
const Version = "0.1.0-dev"

// Exit codes, documented in docs/bad-input.md.
const (
	ExitOK      = 0 // success
	ExitFailure = 1 // a runtime failure: bad data, a failed run, an I/O error
	ExitUsage   = 2 // a usage or configuration error
)

// App returns the salt-ort command-line application writing to stdout and
// stderr.
func App(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:      "salt-ort",
		Usage:     "train multitask jet-tagging transformers as ONNX graphs run by ONNX Runtime",
		Version:   versionString(),
		Writer:    stdout,
		ErrWriter: stderr,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:    "ort-lib",
				Usage:   "path of libonnxruntime.so (default: $" + runtime.LibraryEnv + ", then the one `make deps` installs)",
				EnvVars: []string{runtime.LibraryEnv},
			},
		},
		Commands: []*cli.Command{
			versionCommand(),
			genDataCommand(),
			normCommand(),
			trainCommand(),
			evalCommand(),
			explainCommand(),
			checkCommand(),
			exportCommand(),
			validateCommand(),
			benchCommand(),
			importSaltCommand(),
		},
	}
}

func versionString() string {
	v := Version
	if rev, _ := buildRevision(); len(rev) >= 12 {
		v += "+" + rev[:12]
	}
	return v
}

// openRuntime loads ONNX Runtime from the --ort-lib flag or its defaults.
func openRuntime(c *cli.Context) (*runtime.Runtime, error) {
	path, err := runtime.LibraryPath(c.String("ort-lib"))
	if err != nil {
		return nil, err
	}
	return runtime.Open(path)
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print salt-ort's version and the ONNX Runtime it loads",
		Action: func(c *cli.Context) error {
			rt, err := openRuntime(c)
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			fmt.Fprintf(c.App.Writer, "salt-ort %s\nONNX Runtime %s (%s)\n", versionString(), rt.Version(), rt.Path())
			return nil
		},
	}
}
