package admin

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket: rate requests a second, in bursts of up to
// ten seconds' worth (at least one).
type limiter struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newLimiter(rate float64, now func() time.Time) *limiter {
	burst := max(1, math.Floor(rate*10))
	return &limiter{rate: rate, burst: burst, tokens: burst, last: now(), now: now}
}

// take spends one request. It returns 0 if the request may go, or how many
// whole seconds to wait before the next one can.
func (l *limiter) take() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if elapsed := now.Sub(l.last).Seconds(); elapsed > 0 {
		l.tokens = min(l.burst, l.tokens+elapsed*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return 0
	}
	return int(math.Ceil((1 - l.tokens) / l.rate))
}
