package proxy

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// repeatInterval is how often an error that repeats is logged.
const repeatInterval = 10 * time.Second

// repeatLog logs an error the first time it happens, then at most once per
// interval with how many times it happened since, so that an outage that
// fails every request writes a line every few seconds, not one per request.
type repeatLog struct {
	logger   *slog.Logger
	interval time.Duration
	mu       sync.Mutex
	seen     map[string]*repeated
}

// repeated is a message being held back.
type repeated struct {
	level slog.Level
	msg   string
	attrs []slog.Attr
	count int // since the last line
	timer *time.Timer
}

// maxRepeatKeys bounds the messages held back; past it, messages are told
// apart by their text alone.
const maxRepeatKeys = 64

func newRepeatLog(log *slog.Logger, interval time.Duration) *repeatLog {
	return &repeatLog{logger: log, interval: interval, seen: map[string]*repeated{}}
}

// log logs msg with attrs, unless a message with the same text and key was
// logged less than an interval ago; then it is counted, and the count is
// logged when the interval ends.
func (l *repeatLog) log(ctx context.Context, level slog.Level, msg, key string, attrs ...slog.Attr) {
	l.mu.Lock()
	if len(l.seen) >= maxRepeatKeys {
		key = ""
	}
	key = msg + "\x00" + key
	if r := l.seen[key]; r != nil {
		r.count++
		r.level, r.attrs = level, attrs // the latest, for the summary
		l.mu.Unlock()
		return
	}
	r := &repeated{level: level, msg: msg}
	l.seen[key] = r
	r.timer = time.AfterFunc(l.interval, func() { l.flush(key) })
	l.mu.Unlock()
	l.logger.LogAttrs(ctx, level, msg, attrs...)
}

// flush ends an interval: it logs the repeats counted, and keeps counting
// for another interval if there were any.
func (l *repeatLog) flush(key string) {
	l.mu.Lock()
	r := l.seen[key]
	if r == nil {
		l.mu.Unlock()
		return
	}
	if r.count == 0 {
		delete(l.seen, key)
		l.mu.Unlock()
		return
	}
	count, level, attrs := r.count, r.level, r.attrs
	r.count = 0
	r.timer.Reset(l.interval)
	l.mu.Unlock()
	attrs = append(attrs[:len(attrs):len(attrs)], slog.Int("repeated", count), slog.Duration("within", l.interval))
	l.logger.LogAttrs(context.Background(), level, r.msg+" (repeated)", attrs...)
}
