// Package detrand is a small deterministic random-number generator for
// the data salt-ort generates and the order it reads: it takes bits from
// math/rand/v2's PCG (a fixed, documented algorithm) and implements every
// distribution itself, so that batch orders and generated files do not
// change with the Go release.
package detrand

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// Stream is one deterministic random stream.
type Stream struct {
	src       rand.PCG
	spare     float64
	haveSpare bool
}

// splitmix64 scrambles x; used to derive independent streams from seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// New returns the stream identified by seed and keys: the same seed and
// keys give the same values, other keys an independent stream.
func New(seed uint64, keys ...uint64) *Stream {
	a, b := splitmix64(seed), splitmix64(seed^0x5851f42d4c957f2d)
	for _, k := range keys {
		a = splitmix64(a ^ k)
		b = splitmix64(b + k*0x2545f4914f6cdd1d)
	}
	r := &Stream{}
	r.src.Seed(a, b)
	return r
}

// Uint64 returns 64 random bits.
func (r *Stream) Uint64() uint64 { return r.src.Uint64() }

// Float returns a uniform value in [0, 1).
func (r *Stream) Float() float64 { return float64(r.Uint64()>>11) * (1.0 / (1 << 53)) }

// Uniform returns a uniform value in [lo, hi).
func (r *Stream) Uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.Float() }

// IntN returns a uniform integer in [0, n) (Lemire's method, unbiased).
func (r *Stream) IntN(n int) int {
	if n <= 1 {
		return 0
	}
	bound := uint64(n)
	for {
		hi, lo := bits.Mul64(r.Uint64(), bound)
		if lo >= bound || lo >= (-bound)%bound {
			return int(hi)
		}
	}
}

// Normal returns a standard normal value (Box–Muller).
func (r *Stream) Normal() float64 {
	if r.haveSpare {
		r.haveSpare = false
		return r.spare
	}
	u1 := 1 - r.Float() // (0, 1]
	u2 := r.Float()
	rad := math.Sqrt(-2 * math.Log(u1))
	s, c := math.Sincos(2 * math.Pi * u2)
	r.spare, r.haveSpare = rad*s, true
	return rad * c
}

// Exp returns an exponential value with mean 1.
func (r *Stream) Exp() float64 { return -math.Log(1 - r.Float()) }

// Bernoulli returns true with probability p.
func (r *Stream) Bernoulli(p float64) bool { return r.Float() < p }

// Poisson returns a Poisson count with the given mean.
func (r *Stream) Poisson(mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*r.Normal())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float()
		if p <= l {
			return k
		}
		k++
	}
}

// Binomial returns the number of successes in n trials of probability p.
func (r *Stream) Binomial(n int, p float64) int {
	k := 0
	for range n {
		if r.Float() < p {
			k++
		}
	}
	return k
}

// Perm fills p with a uniform random permutation of 0..len(p)-1.
func (r *Stream) Perm(p []int32) {
	for i := range p {
		p[i] = int32(i)
	}
	for i := len(p) - 1; i > 0; i-- {
		j := r.IntN(i + 1)
		p[i], p[j] = p[j], p[i]
	}
}
