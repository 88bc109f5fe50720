package loader

import (
	"math"
	"math/bits"
	"math/rand/v2"
)

// rng is a small deterministic generator. It uses math/rand/v2's PCG (a
// fixed, documented algorithm) for bits and implements every distribution
// here, so that batch orders and generated files do not change with the Go
// release.
type rng struct {
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

// newRNG returns a generator for the stream identified by seed and keys.
func newRNG(seed uint64, keys ...uint64) *rng {
	a, b := splitmix64(seed), splitmix64(seed^0x5851f42d4c957f2d)
	for _, k := range keys {
		a = splitmix64(a ^ k)
		b = splitmix64(b + k*0x2545f4914f6cdd1d)
	}
	r := &rng{}
	r.src.Seed(a, b)
	return r
}

func (r *rng) u64() uint64 { return r.src.Uint64() }

// float returns a uniform value in [0, 1).
func (r *rng) float() float64 { return float64(r.u64()>>11) * (1.0 / (1 << 53)) }

// uniform returns a uniform value in [lo, hi).
func (r *rng) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float() }

// intn returns a uniform integer in [0, n) (Lemire's method, unbiased).
func (r *rng) intn(n int) int {
	if n <= 1 {
		return 0
	}
	bound := uint64(n)
	for {
		hi, lo := bits.Mul64(r.u64(), bound)
		if lo >= bound || lo >= (-bound)%bound {
			return int(hi)
		}
	}
}

// normal returns a standard normal value (Box–Muller).
func (r *rng) normal() float64 {
	if r.haveSpare {
		r.haveSpare = false
		return r.spare
	}
	u1 := 1 - r.float() // (0, 1]
	u2 := r.float()
	rad := math.Sqrt(-2 * math.Log(u1))
	s, c := math.Sincos(2 * math.Pi * u2)
	r.spare, r.haveSpare = rad*s, true
	return rad * c
}

// exp returns an exponential value with mean 1.
func (r *rng) exp() float64 { return -math.Log(1 - r.float()) }

// bernoulli returns true with probability p.
func (r *rng) bernoulli(p float64) bool { return r.float() < p }

// poisson returns a Poisson count with the given mean.
func (r *rng) poisson(mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*r.normal())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.float()
		if p <= l {
			return k
		}
		k++
	}
}

// binomial returns the number of successes in n trials of probability p.
func (r *rng) binomial(n int, p float64) int {
	k := 0
	for range n {
		if r.float() < p {
			k++
		}
	}
	return k
}

// perm fills p with a uniform random permutation of 0..len(p)-1.
func (r *rng) perm(p []int32) {
	for i := range p {
		p[i] = int32(i)
	}
	for i := len(p) - 1; i > 0; i-- {
		j := r.intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
}
