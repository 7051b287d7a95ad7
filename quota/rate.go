package quota

import "time"

// Kafka's defaults: quota.window.num (11) samples of quota.window.size.seconds (1s).
const (
	numSamples = 11
	sampleSpan = time.Second
)

// rate is Kafka's Rate over a SampledStat: the sum recorded in the last
// numSamples samples of sampleSpan each, divided by the time they cover,
// which is taken to be at least numSamples-1 spans so a first burst is not
// measured over a few milliseconds. Not safe for concurrent use.
type rate struct {
	samples [numSamples]sample
	cur     int
}

type sample struct {
	start time.Time
	value float64
}

func newRate(now time.Time) *rate {
	r := &rate{}
	for i := range r.samples {
		r.samples[i].start = now
	}
	return r
}

// record adds v at now, starting a new sample once the current one has
// lasted a span.
func (r *rate) record(v float64, now time.Time) {
	s := &r.samples[r.cur]
	if now.Sub(s.start) >= sampleSpan {
		r.cur = (r.cur + 1) % numSamples
		s = &r.samples[r.cur]
		*s = sample{start: now}
	}
	s.value += v
}

// purge resets samples too old to count.
func (r *rate) purge(now time.Time) {
	for i := range r.samples {
		if now.Sub(r.samples[i].start) >= numSamples*sampleSpan {
			r.samples[i] = sample{start: now}
		}
	}
}

// window is the time the samples cover: since the oldest sample started,
// and at least numSamples-1 spans (Kafka's Rate.windowSize).
func (r *rate) window(now time.Time) time.Duration {
	r.purge(now)
	oldest := now
	for _, s := range r.samples {
		if s.start.Before(oldest) {
			oldest = s.start
		}
	}
	elapsed := now.Sub(oldest)
	full := int(elapsed / sampleSpan)
	if full < numSamples-1 {
		elapsed += time.Duration(numSamples-1-full) * sampleSpan
	}
	return max(elapsed, time.Millisecond)
}

// measure returns the rate per second at now.
func (r *rate) measure(now time.Time) float64 {
	w := r.window(now)
	var sum float64
	for _, s := range r.samples {
		sum += s.value
	}
	return sum / w.Seconds()
}

// throttle is how long the client must wait for the rate to come back to
// bound (Kafka's QuotaUtils.throttleTime): (rate - bound) / bound of the
// window. Zero when within bound.
func (r *rate) throttle(bound float64, now time.Time) time.Duration {
	m := r.measure(now)
	if m <= bound {
		return 0
	}
	w := r.window(now)
	d := time.Duration((m - bound) / bound * float64(w))
	return d.Round(time.Millisecond)
}
