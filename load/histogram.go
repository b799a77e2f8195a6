package load

import (
	"math/bits"
	"time"
)

// subBits sets the histogram's precision: 2^subBits buckets per power of
// two, so a quantile is within 1/2^subBits (about 3 %) of the true value.
const subBits = 5

const (
	subCount = 1 << subBits
	// nBuckets covers every non-negative int64 nanosecond count.
	nBuckets = (64 - subBits) * subCount
)

// Histogram records durations in log-linear buckets: fixed memory
// whatever the number of samples, exact minimum, maximum and mean.
// The zero value is empty and ready to use; it is not safe for concurrent
// use.
type Histogram struct {
	counts   [nBuckets]int64
	n        int64
	sum      time.Duration
	min, max time.Duration
}

// bucket is the index of d's bucket: below 2^subBits ns one bucket per
// nanosecond, above it subCount buckets per power of two.
func bucket(d time.Duration) int {
	v := uint64(d)
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1 // v>>shift is in [subCount, 2*subCount)
	return (shift+1)*subCount + int(v>>shift) - subCount
}

// bucketRange is the smallest and largest duration of bucket i.
func bucketRange(i int) (lo, hi time.Duration) {
	if i < subCount {
		return time.Duration(i), time.Duration(i)
	}
	shift := i/subCount - 1
	base := uint64(i%subCount + subCount)
	return time.Duration(base << shift), time.Duration((base+1)<<shift - 1)
}

// Record adds one sample; a negative one counts as 0.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
	h.counts[bucket(d)]++
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.n += o.n
	h.sum += o.sum
	for i, c := range o.counts {
		h.counts[i] += c
	}
}

// Count is the number of samples.
func (h *Histogram) Count() int64 { return h.n }

// Min is the smallest sample (0 when there is none).
func (h *Histogram) Min() time.Duration { return h.min }

// Max is the largest sample (0 when there is none).
func (h *Histogram) Max() time.Duration { return h.max }

// Mean is the average sample (0 when there is none).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile is the sample below which a fraction q of the samples lie
// (q in [0, 1]), to the histogram's precision: the middle of the bucket
// holding it, kept within [Min, Max]. It is 0 when there is no sample.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	switch {
	case q <= 0:
		return h.min
	case q >= 1:
		return h.max
	}
	rank := int64(q*float64(h.n) + 0.5) // the rank-th smallest sample, from 1
	rank = max(rank, 1)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			return min(max(lo+(hi-lo)/2, h.min), h.max)
		}
	}
	return h.max
}
