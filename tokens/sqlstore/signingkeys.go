package sqlstore

import (
	"context"
	"fmt"

	"github.com/jmoiron/sqlx"

	"github.com/scimgate/scimgate/tokens"
)

// signingKeyRow is a row of signing_keys.
type signingKeyRow struct {
	ID         string `db:"id"`
	Algorithm  string `db:"algorithm"`
	PrivateKey []byte `db:"private_key"`
	CreatedAt  int64  `db:"created_at"`
	ActiveFrom int64  `db:"active_from"`
	NotAfter   int64  `db:"not_after"`
}

const signingKeyColumns = "id, algorithm, private_key, created_at, active_from, not_after"

func (r *signingKeyRow) key() tokens.SigningKey {
	return tokens.SigningKey{
		ID:         r.ID,
		Algorithm:  r.Algorithm,
		PrivateKey: r.PrivateKey,
		CreatedAt:  fromMicros(r.CreatedAt),
		ActiveFrom: fromMicros(r.ActiveFrom),
		NotAfter:   fromMicros(r.NotAfter),
	}
}

// SigningKeys returns every stored assertion signing key, oldest
// ActiveFrom first.
func (s *Store) SigningKeys(ctx context.Context) ([]tokens.SigningKey, error) {
	keys, err := signingKeys(ctx, s.db)
	if err != nil {
		return nil, fmt.Errorf("read signing keys: %w", err)
	}
	return keys, nil
}

func signingKeys(ctx context.Context, q sqlx.QueryerContext) ([]tokens.SigningKey, error) {
	var rows []signingKeyRow
	if err := sqlx.SelectContext(ctx, q, &rows, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY active_from, id`); err != nil {
		return nil, classify(err)
	}
	keys := make([]tokens.SigningKey, len(rows))
	for i := range rows {
		keys[i] = rows[i].key()
	}
	return keys, nil
}

// UpdateSigningKeys reads the signing keys under a lock that every other
// caller, in this process or another, waits for; gives them to decide,
// which returns the keys to add and the IDs of those to delete; and writes
// that, all in one transaction. So replicas that rotate at the same moment
// add one key, not one each.
func (s *Store) UpdateSigningKeys(ctx context.Context, decide func(keys []tokens.SigningKey) (add []tokens.SigningKey, remove []string, err error)) error {
	release, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer release()
	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update signing keys: begin transaction: %w", classify(err))
	}
	defer tx.Rollback()
	if s.dialect == Postgres {
		// The table, not a row: the first replicas to start find it empty.
		// EXCLUSIVE lets plain reads (SigningKeys) through.
		if _, err := tx.ExecContext(ctx, `LOCK TABLE signing_keys IN EXCLUSIVE MODE`); err != nil {
			return fmt.Errorf("update signing keys: lock: %w", classify(err))
		}
	} // SQLite: BEGIN IMMEDIATE already holds the database's write lock.
	keys, err := signingKeys(ctx, tx)
	if err != nil {
		return fmt.Errorf("update signing keys: read: %w", err)
	}
	add, remove, err := decide(keys)
	if err != nil {
		return err
	}
	if len(add) == 0 && len(remove) == 0 {
		return nil
	}
	for _, k := range add {
		_, err := tx.ExecContext(ctx, tx.Rebind(`INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES (?, ?, ?, ?, ?, ?)`),
			k.ID, k.Algorithm, k.PrivateKey, micros(k.CreatedAt), micros(k.ActiveFrom), micros(k.NotAfter))
		if err != nil {
			return fmt.Errorf("update signing keys: add %s: %w", k.ID, classify(err))
		}
	}
	for _, id := range remove {
		if _, err := tx.ExecContext(ctx, tx.Rebind(`DELETE FROM signing_keys WHERE id = ?`), id); err != nil {
			return fmt.Errorf("update signing keys: delete %s: %w", id, classify(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("update signing keys: commit: %w", classify(err))
	}
	return nil
}
