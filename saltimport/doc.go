// Package saltimport carries a model that Salt (github.com/umami-hep/salt)
// trained into a salt-ort run directory: it converts the LightningCLI
// config.yaml Salt writes into its log directory into salt-ort's TOML
// configuration, reads Salt's Lightning checkpoint (a torch zip archive
// with a pickle) with Go alone, maps Salt's parameter names and layouts
// onto salt-ort's, and writes the run directory that eval, export,
// validate and train --resume read.
package saltimport
