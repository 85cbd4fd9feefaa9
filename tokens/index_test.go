package tokens

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

// TestTokenIndexMatchesAMap drives the index and a map with the same random
// additions and removals and compares them. The keys share few low bits, so
// probe runs are long, wrap around the table's end, and removals shift keys
// back across the wrap.
func TestTokenIndexMatchesAMap(t *testing.T) {
	tests := []struct {
		name string
		key  func(r *rand.Rand) uint64
	}{
		{"uniform", func(r *rand.Rand) uint64 { return r.Uint64() | 1 }},
		// 64 distinct low bits: heavy clustering in a table of 1024 slots
		// and more.
		{"clustered", func(r *rand.Rand) uint64 { return r.Uint64()<<16 | uint64(1000+r.IntN(64)) }},
		{"near the end", func(r *rand.Rand) uint64 { return r.Uint64()<<16 | uint64(1020+r.IntN(4)) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			x := newTokenIndex(0)
			model := map[uint64]bool{}
			var keys []uint64
			for i := range 20000 {
				switch {
				case len(keys) > 0 && r.IntN(3) == 0: // remove a present key
					j := r.IntN(len(keys))
					k := keys[j]
					keys[j] = keys[len(keys)-1]
					keys = keys[:len(keys)-1]
					x.apply([]Change{{Removed: k}})
					delete(model, k)
				case r.IntN(10) == 0: // remove an absent key
					x.apply([]Change{{Removed: tt.key(r)}})
				default:
					k := tt.key(r)
					x.apply([]Change{{Added: k}})
					if !model[k] {
						model[k] = true
						keys = append(keys, k)
					}
				}
				if i%1000 == 0 || i == 19999 {
					if x.len() != len(model) {
						t.Fatalf("after %d steps the index holds %d keys, want %d", i, x.len(), len(model))
					}
					for k := range model {
						if !x.contains(k) {
							t.Fatalf("after %d steps key %x is missing", i, k)
						}
					}
					for range 1000 {
						if k := tt.key(r); !model[k] && x.contains(k) {
							t.Fatalf("after %d steps absent key %x is found", i, k)
						}
					}
				}
			}
		})
	}
}

func TestIndexKeyIsNeverZero(t *testing.T) {
	if k := IndexKey(Hash{}); k == 0 {
		t.Fatal("IndexKey of a hash starting with 8 zero bytes is 0, the empty slot")
	}
	h := Hash{1, 2, 3, 4, 5, 6, 7, 8, 9}
	if k := IndexKey(h); k != 0x0807060504030201 {
		t.Fatalf("IndexKey = %x, want the first 8 bytes little-endian", k)
	}
}

// TestIndexCheckDoesNotAllocate: the check a flood of unknown tokens makes
// costs no allocation.
func TestIndexCheckDoesNotAllocate(t *testing.T) {
	x := newTokenIndex(0)
	for i := range uint64(5000) {
		x.add(i*0x9e3779b97f4a7c15 | 1)
	}
	var k uint64 = 42
	if n := testing.AllocsPerRun(1000, func() {
		k = k*6364136223846793005 + 1442695040888963407
		x.contains(k)
	}); n != 0 {
		t.Errorf("index check: %v allocations, want 0", n)
	}
}

// TestIndexMemoryPerMillionTokens measures what a million tokens cost.
func TestIndexMemoryPerMillionTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates a million keys")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	x := newTokenIndex(0)
	r := rand.New(rand.NewPCG(3, 4))
	for range 1_000_000 {
		x.add(r.Uint64() | 1)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(x)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("1,000,000 tokens: table %d bytes (%.1f MiB), live heap %+d bytes, %.1f bytes per token",
		x.bytes(), float64(x.bytes())/(1<<20), heap, float64(x.bytes())/1e6)
	if x.bytes() > 24<<20 {
		t.Errorf("a million tokens take %d bytes, want at most 24 MiB", x.bytes())
	}
}

func BenchmarkIndexMiss(b *testing.B) {
	for _, n := range []int{1000, 1_000_000} {
		b.Run(itoa(n), func(b *testing.B) {
			x := newTokenIndex(0)
			r := rand.New(rand.NewPCG(5, 6))
			for range n {
				x.add(r.Uint64() | 1)
			}
			k := r.Uint64()
			b.ReportAllocs()
			for b.Loop() {
				k = k*6364136223846793005 + 1442695040888963407
				if x.contains(k) {
					b.Fatal("a random key was found")
				}
			}
		})
	}
}

func itoa(n int) string {
	if n >= 1_000_000 {
		return "1M"
	}
	if n >= 1000 {
		return "1k"
	}
	return "small"
}
