package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// The proxy's keyring must see the same keys on every replica, and two
// replicas rotating at once must add one key, not two.
func TestSigningKeys(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			ctx := context.Background()
			s := sqltest.Open(t, dialect)
			keys, err := s.SigningKeys(ctx)
			if err != nil || len(keys) != 0 {
				t.Fatalf("SigningKeys of a new store = %v, %v; want none", keys, err)
			}
			at := time.Date(2026, 3, 1, 12, 0, 0, 123000, time.UTC)
			key := func(id string, from time.Time) tokens.SigningKey {
				return tokens.SigningKey{ID: id, Algorithm: "ES256", PrivateKey: []byte{0x30, 0x00, 0xff, byte(len(id))},
					CreatedAt: at, ActiveFrom: from, NotAfter: from.Add(24 * time.Hour)}
			}

			// Many callers at once, each adding a key only if there is none
			// (as replicas starting together do): one key.
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Go(func() {
					errs[i] = s.UpdateSigningKeys(ctx, func(keys []tokens.SigningKey) ([]tokens.SigningKey, []string, error) {
						if len(keys) > 0 {
							return nil, nil, nil
						}
						time.Sleep(20 * time.Millisecond) // widen the window
						return []tokens.SigningKey{key(fmt.Sprint("k", i), at)}, nil, nil
					})
				})
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			keys, err = s.SigningKeys(ctx)
			if err != nil || len(keys) != 1 {
				t.Fatalf("8 concurrent first rotations stored %d keys (%v), want 1", len(keys), err)
			}
			first := keys[0]
			want := key(first.ID, at)
			if first.Algorithm != want.Algorithm || !bytes.Equal(first.PrivateKey, want.PrivateKey) || !first.CreatedAt.Equal(at) ||
				!first.ActiveFrom.Equal(at) || !first.NotAfter.Equal(want.NotAfter) {
				t.Errorf("stored %+v, want %+v", first, want)
			}

			// Add the next and remove the first in one transaction; an
			// error from decide changes nothing.
			boom := errors.New("boom")
			err = s.UpdateSigningKeys(ctx, func([]tokens.SigningKey) ([]tokens.SigningKey, []string, error) {
				return []tokens.SigningKey{key("never", at)}, []string{first.ID}, boom
			})
			if !errors.Is(err, boom) {
				t.Errorf("UpdateSigningKeys returned %v, want decide's error", err)
			}
			err = s.UpdateSigningKeys(ctx, func([]tokens.SigningKey) ([]tokens.SigningKey, []string, error) {
				return []tokens.SigningKey{key("next", at.Add(time.Hour))}, []string{first.ID}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			keys, _ = s.SigningKeys(ctx)
			if len(keys) != 1 || keys[0].ID != "next" {
				t.Errorf("after the rotation: %v, want only the next key", keys)
			}
			// A key ID is unique.
			err = s.UpdateSigningKeys(ctx, func([]tokens.SigningKey) ([]tokens.SigningKey, []string, error) {
				return []tokens.SigningKey{key("next", at)}, nil, nil
			})
			if tokens.ErrorCode(err) != tokens.Conflict {
				t.Errorf("adding a key ID twice: %v, want a conflict", err)
			}
		})
	}
}
