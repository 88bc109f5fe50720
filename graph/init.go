package graph

import "math/rand/v2"

// Sample draws n initial values from the distribution i describes.
func (i Init) Sample(r *rand.Rand, n int) []float64 {
	v := make([]float64, n)
	for k := range v {
		switch i.Kind {
		case "ones":
			v[k] = 1
		case "constant":
			v[k] = i.Value
		case "uniform":
			v[k] = (2*r.Float64() - 1) * i.Value
		case "normal":
			v[k] = r.NormFloat64() * i.Value
		case "normal_zero_lead":
			if int64(k)%i.Period >= i.Lead {
				v[k] = r.NormFloat64() * i.Value
			}
		}
	}
	return v
}
