package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/salt-ort/salt-ort/loader"
)

// FlavourLabel is the jet label field whose class names the ftag
// preprocessing (UPP) records in an attribute of the same name on the
// jet dataset, in label order (attrs["flavour_label"] = ["bjets", ...]).
const FlavourLabel = "flavour_label"

// namesFromFile reports whether a task takes its class names from the
// training file, as Salt's CLI does (get_object_class_names): a jet
// classification of flavour_label that lists no class names and maps no
// values.
func namesFromFile(t Task) bool {
	return t.Kind == "jet_classification" && t.Label == FlavourLabel && len(t.ClassNames) == 0 &&
		len(t.LabelMap) == 0 && !t.UseLabeller
}

// classNamesFromFile fills in the class names of the tasks that take them
// from the first training file's jet dataset (namesFromFile) and notes
// where they came from. A file that cannot supply them leaves the task
// without names and the reason in c.namesErr, for Validate to report
// in its turn.
func (c *Config) classNamesFromFile() {
	var first string
	for i := range c.Model.Tasks {
		t := &c.Model.Tasks[i]
		if !namesFromFile(*t) || len(c.Data.Train) == 0 {
			continue
		}
		if first == "" {
			files, err := c.Files("train")
			if err != nil {
				c.setNamesErr(t.Name, err)
				continue
			}
			first = files[0]
		}
		names, err := loader.ReadStringsAttr(first, c.Data.DatasetOf(c.Data.JetDataset), FlavourLabel)
		if err == nil && len(names) < 2 {
			err = fmt.Errorf("it names %d classes (%s); a classification needs at least 2", len(names), quoteList(names))
		}
		if err != nil {
			c.setNamesErr(t.Name, c.namesError(*t, first, err))
			continue
		}
		t.ClassNames = names
		c.notes = append(c.notes, fmt.Sprintf("task %s: class_names = [%s], read from the %s attribute of dataset %q in %s (the first training file)",
			t.Name, quoteList(names), FlavourLabel, c.Data.JetDataset, first))
	}
}

func (c *Config) setNamesErr(task string, err error) {
	if c.namesErr == nil {
		c.namesErr = map[string]error{}
	}
	c.namesErr[task] = err
}

// namesError explains why the first training file cannot supply a task's
// class names, at the task's label line, and gives the fix.
func (c *Config) namesError(t Task, file string, err error) error {
	fix := fmt.Sprintf("list the classes in the order of %s's values, e.g. class_names = [\"bjets\", \"cjets\", \"ujets\", \"taujets\"]", FlavourLabel)
	var msg string
	var ae *loader.AttrError
	if errors.As(err, &ae) && ae.Missing {
		has := "it has no attributes"
		if len(ae.Attrs) > 0 {
			has = "it has " + strings.Join(ae.Attrs, ", ")
		}
		msg = fmt.Sprintf("task %s: class_names is not set, and the first training file %s cannot supply them: its dataset %q has no %s attribute (%s), which the ftag preprocessing writes; %s",
			t.Name, file, c.Data.JetDataset, FlavourLabel, has, fix)
	} else {
		msg = fmt.Sprintf("task %s: class_names is not set, and the %s attribute of dataset %q in the first training file %s cannot supply them: %v; %s",
			t.Name, FlavourLabel, c.Data.JetDataset, file, err, fix)
	}
	e := c.taskErrorf(t.Name, "model.tasks.label", "%s", msg).(*Error)
	e.Key = "model.tasks.class_names"
	return e
}

func quoteList(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

// Notes lists what Load took from outside the configuration text (class
// names read from a training file), for the run's log.
func (c *Config) Notes() []string { return append([]string(nil), c.notes...) }
