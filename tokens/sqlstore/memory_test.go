package sqlstore_test

import (
	"context"
	"os"
	"testing"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
)

func TestMemoryDatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	ctx := context.Background()
	s, err := sqlstore.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	policy, _ := tokens.NewPolicy(tokens.PolicyConfig{})
	svc := tokens.NewService(s, policy)
	if _, err := svc.CreateOrg(ctx, tokens.Operator, "acme", 0); err != nil {
		t.Fatal(err)
	}
	orgs, err := svc.Orgs(ctx)
	if err != nil || len(orgs) != 1 {
		t.Fatalf("Orgs = %v, %v; want the one org created", orgs, err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		t.Errorf("an in-memory database left %s in the working directory", e.Name())
	}
}
