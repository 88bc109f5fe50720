package train

import "strconv"

// formatFloat formats a value for a metrics table (run.TrainColumns,
// run.ValColumns): eight significant digits.
func formatFloat(v float64) string { return strconv.FormatFloat(v, 'g', 8, 64) }
