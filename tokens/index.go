package tokens

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// IndexKey is the part of a token hash that the live-token index holds: its
// first 8 bytes. SHA-256 spreads them evenly, so they serve as the set's hash
// too. 0 marks an empty slot, so a prefix of 0 becomes 1 (two tokens in 2^64
// share a key either way: the index only decides whether a store lookup is
// worth making, never whether a token is valid).
func IndexKey(h Hash) uint64 {
	if k := binary.LittleEndian.Uint64(h[:8]); k != 0 {
		return k
	}
	return 1
}

// indexMinSlots is the smallest table: 8 KiB.
const indexMinSlots = 1024

// tokenIndex is the set of the keys of every stored token, in an
// open-addressing table with linear probing. It holds 8 bytes per slot and
// stays between 3/8 and 3/4 full, so between 10.7 and 21.3 bytes per token
// (16 MiB for a million: 2^21 slots). A lookup that misses reads one or two
// cache lines and never allocates.
type tokenIndex struct {
	mu    sync.RWMutex
	slots []uint64 // a power of two; 0 is empty
	n     int
	// seq is the last change-log sequence applied to the set.
	seq atomic.Int64
}

func newTokenIndex(expected int) *tokenIndex {
	size := indexMinSlots
	for size*3/4 < expected {
		size *= 2
	}
	return &tokenIndex{slots: make([]uint64, size)}
}

func (x *tokenIndex) contains(k uint64) bool {
	x.mu.RLock()
	found := x.find(k) >= 0
	x.mu.RUnlock()
	return found
}

// find returns the slot holding k, or -1.
func (x *tokenIndex) find(k uint64) int {
	mask := uint64(len(x.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		switch x.slots[i] {
		case k:
			return int(i)
		case 0:
			return -1
		}
	}
}

// add must run with mu held for writing.
func (x *tokenIndex) add(k uint64) {
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	if x.insert(k) {
		x.n++
	}
}

func (x *tokenIndex) insert(k uint64) bool {
	mask := uint64(len(x.slots) - 1)
	for i := k & mask; ; i = (i + 1) & mask {
		switch x.slots[i] {
		case k:
			return false
		case 0:
			x.slots[i] = k
			return true
		}
	}
}

func (x *tokenIndex) grow() {
	old := x.slots
	x.slots = make([]uint64, 2*len(old))
	for _, k := range old {
		if k != 0 {
			x.insert(k)
		}
	}
}

// remove must run with mu held for writing. It shifts the following run of
// keys back instead of leaving a tombstone, so misses stay short however
// many tokens come and go.
func (x *tokenIndex) remove(k uint64) {
	i := x.find(k)
	if i < 0 {
		return
	}
	mask := len(x.slots) - 1
	for j := (i + 1) & mask; x.slots[j] != 0; j = (j + 1) & mask {
		home := int(x.slots[j] & uint64(mask))
		// The key at j may move to the hole at i unless its home slot lies
		// cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = 0
	x.n--
}

// apply adds and removes the keys that changes name.
func (x *tokenIndex) apply(changes []Change) {
	x.mu.Lock()
	for _, c := range changes {
		if c.Removed != 0 {
			x.remove(c.Removed)
		}
		if c.Added != 0 {
			x.add(c.Added)
		}
	}
	x.mu.Unlock()
}

// advance records that the changes up to seq are applied.
func (x *tokenIndex) advance(seq int64) {
	for {
		cur := x.seq.Load()
		if seq <= cur || x.seq.CompareAndSwap(cur, seq) {
			return
		}
	}
}

func (x *tokenIndex) len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.n
}

// bytes is the memory the table holds.
func (x *tokenIndex) bytes() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return 8 * len(x.slots)
}
