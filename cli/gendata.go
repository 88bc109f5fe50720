package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/gendata"
	"github.com/urfave/cli/v2"
)

func genDataCommand() *cli.Command {
	return &cli.Command{
		Name:  "gen-data",
		Usage: "write generated b, c, light and tau jets as Salt-format train/val/test HDF5 files",
		Description: `Writes DIR/train.h5, DIR/val.h5 and DIR/test.h5 in Salt's layout (a jets
dataset with the jet kinematics, labels, the truth hadron's pt and decay
length (HadronConeExclTruthLabelPt, HadronConeExclTruthLabelLxy; NaN for
light jets) and a mass_hypothesis parameter (NaN but for b-jets), whose
flavour_label attribute names the classes of flavour_label (bjets, cjets,
ujets, taujets) as the ftag preprocessing records them, and a
(n_jets, max-tracks) tracks dataset with GN2's 19 track variables, the
tracks' pt, eta and phi, ftagTruthOriginLabel, ftagTruthVertexIndex and
valid), with
--flows N an (n_jets, N) flows dataset (pt, energy, deta, dphi, dr,
isCharged and valid: the jet's charged and neutral particles), with
--electrons N an (n_jets, N) electrons dataset (ptfrac, ptrel, dr, abs_eta,
d0RelativeToBeamspotSignificance, eProbabilityHT, Rhad, Eratio, origin and
valid: electrons from semileptonic b, c and tau decays, and fakes), with
--truth-hadrons N an (n_jets, N) truth_hadrons dataset for Salt's MaskFormer
(barcode, flavour 5 or 4 and -1 for an empty slot, pt, eta, phi, mass,
deta, dphi, dr, Lxy and valid: the b hadron of b-jets and the c hadron of
its decay, the c hadron of c-jets) and the tracks' ftagTruthParentBarcode,
the barcode of the hadron each track comes from (-1 for none), plus
DIR/norm_dict.yaml and DIR/class_dict.yaml computed from the training file.
Heavy-flavour hadrons fly and decay into displaced tracks with signed
impact parameters; light jets have prompt tracks; pile-up and fake tracks
are mixed in. The same seed gives byte-identical files.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Usage: "directory to write (created if needed)", Required: true},
			&cli.Uint64Flag{Name: "seed", Value: 42, Usage: "random seed"},
			&cli.IntFlag{Name: "train", Value: 100000, Usage: "training jets"},
			&cli.IntFlag{Name: "val", Value: 10000, Usage: "validation jets"},
			&cli.IntFlag{Name: "test", Value: 10000, Usage: "test jets"},
			&cli.IntFlag{Name: "max-tracks", Value: 40, Usage: "track slots per jet"},
			&cli.IntFlag{Name: "flows", Usage: "also write a flows dataset with this many slots per jet (0: none)"},
			&cli.IntFlag{Name: "electrons", Usage: "also write an electrons dataset with this many slots per jet (0: none)"},
			&cli.IntFlag{Name: "truth-hadrons", Usage: "also write a truth_hadrons dataset with this many slots per jet and the tracks' ftagTruthParentBarcode, for MaskFormer (0: none)"},
			&cli.StringFlag{Name: "fractions", Value: "0.30,0.20,0.45,0.05", Usage: "b,c,light,tau flavour fractions"},
			&cli.BoolFlag{Name: "no-dicts", Usage: "do not write norm_dict.yaml and class_dict.yaml"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return cli.Exit("salt-ort gen-data: unexpected arguments "+strings.Join(c.Args().Slice(), " "), ExitUsage)
			}
			fr, err := parseFractions(c.String("fractions"))
			if err != nil {
				return cli.Exit("salt-ort gen-data: --fractions: "+err.Error(), ExitUsage)
			}
			cfg := gendata.Config{
				Seed: c.Uint64("seed"), Train: c.Int("train"), Val: c.Int("val"), Test: c.Int("test"),
				MaxTracks: c.Int("max-tracks"), Flows: c.Int("flows"), Electrons: c.Int("electrons"), TruthHadrons: c.Int("truth-hadrons"), Fractions: fr, NoDicts: c.Bool("no-dicts"),
			}
			if cfg.Train < 0 || cfg.Val < 0 || cfg.Test < 0 || cfg.MaxTracks <= 0 || cfg.Electrons < 0 || cfg.Flows < 0 || cfg.TruthHadrons < 0 {
				return cli.Exit("salt-ort gen-data: jet counts, --flows, --electrons and --truth-hadrons must be ≥ 0 and --max-tracks > 0", ExitUsage)
			}
			res, err := gendata.Generate(cfg, c.String("out"))
			if err != nil {
				return cli.Exit(err, ExitFailure)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "wrote %s (%d jets), %s (%d jets), %s (%d jets)\n", res.Train, cfg.Train, res.Val, cfg.Val, res.Test, cfg.Test)
			if res.NormDict != "" {
				fmt.Fprintf(w, "wrote %s and %s\n", res.NormDict, res.ClassDict)
			}
			return nil
		},
	}
}

// parseFractions reads "b,c,light,tau".
func parseFractions(s string) (gendata.Fractions, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 4 {
		return gendata.Fractions{}, fmt.Errorf("want four numbers b,c,light,tau, got %q", s)
	}
	var v [4]float64
	for i, p := range parts {
		x, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || x < 0 {
			return gendata.Fractions{}, fmt.Errorf("%q is not a fraction ≥ 0", p)
		}
		v[i] = x
	}
	if v[0]+v[1]+v[2]+v[3] <= 0 {
		return gendata.Fractions{}, fmt.Errorf("fractions sum to zero")
	}
	return gendata.Fractions{B: v[0], C: v[1], Light: v[2], Tau: v[3]}, nil
}
