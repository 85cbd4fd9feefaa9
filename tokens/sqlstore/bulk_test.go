package sqlstore_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/scimgate/scimgate/tokens"
	"github.com/scimgate/scimgate/tokens/sqlstore"
	"github.com/scimgate/scimgate/tokens/sqlstore/sqltest"
)

// TestBulkLoad checks that what BulkLoad writes reads back through the
// store as if the service had written it: rows, lower-cased copies,
// emails, members, and credentials by hash.
func TestBulkLoad(t *testing.T) {
	for _, dialect := range sqltest.Dialects(t) {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			s := sqltest.Open(t, dialect)
			f := newFixture(t, s)
			ctx := context.Background()
			at := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
			users := []tokens.User{
				{ID: "usr_b1", OrgID: f.org.ID, UserName: "Bob.Bulk", ExternalID: "00u1", DisplayName: "Bob",
					GivenName: "Bob", FamilyName: "Bulk", EmployeeNumber: "7", ManagerID: f.user.ID, Active: true,
					Emails:    []tokens.Email{{Value: "Bob@Example.com", Type: "work", Primary: true}, {Value: "bob@home.example"}},
					Sites:     []string{}, // a user read back is in no site
					CreatedAt: at, UpdatedAt: at.Add(time.Hour), Version: 3},
				{ID: "usr_b2", OrgID: f.org.ID, UserName: "carol", Active: false, CreatedAt: at, UpdatedAt: at, Version: 1},
			}
			group := tokens.Group{ID: "grp_b", OrgID: f.org.ID, DisplayName: "Bulk Team", ExternalID: "00g1",
				MemberIDs: []string{"usr_b2", "usr_b1", "usr_b1"}, CreatedAt: at, UpdatedAt: at, Version: 1}
			su := tokens.ServiceUser{ID: "svc_b", OrgID: f.org.ID, Name: "robot", PermissionSets: []string{tokens.PermUsers}, CreatedAt: at}
			// More tokens than one INSERT statement holds.
			var toks []tokens.Token
			var secrets []tokens.Secret
			for i := range 2500 {
				sec := tokens.NewSecret(tokens.KindUser)
				toks = append(toks, tokens.Token{ID: fmt.Sprintf("tok_b%04d", i), OrgID: f.org.ID, Kind: tokens.KindUser,
					OwnerID: "usr_b1", Name: fmt.Sprint("t", i), DisplayPrefix: sec.DisplayPrefix(), Hash: sec.Hash(),
					InactivityDays: 45, Status: tokens.StatusActive, CreatedAt: at, StatusChangedAt: at})
				secrets = append(secrets, sec)
			}
			toks[7].LastUsedAt, toks[7].UseCount = at.Add(time.Minute), 12
			ssec := tokens.NewSecret(tokens.KindService)
			toks = append(toks, tokens.Token{ID: "tok_bs", OrgID: f.org.ID, Kind: tokens.KindService, OwnerID: su.ID,
				Name: "robot", DisplayPrefix: ssec.DisplayPrefix(), Hash: ssec.Hash(), InactivityDays: 31,
				Status: tokens.StatusActive, CreatedAt: at, StatusChangedAt: at})

			err := s.BulkLoad(ctx, sqlstore.Bulk{Users: users, Groups: []tokens.Group{group},
				ServiceUsers: []tokens.ServiceUser{su}, Tokens: toks})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Analyze(ctx); err != nil {
				t.Fatal(err)
			}

			got, err := f.svc.User(ctx, f.org.ID, "usr_b1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, users[0]) {
				t.Errorf("user read back:\n got %+v\nwant %+v", *got, users[0])
			}
			byName, err := f.svc.UserByName(ctx, f.org.ID, "BOB.BULK")
			if err != nil || byName.ID != "usr_b1" {
				t.Errorf("UserByName(BOB.BULK) = %v, %v; want usr_b1", byName, err)
			}
			byEmail, total, err := f.svc.Users(ctx, f.org.ID, tokens.UserFilter{Email: "BOB@example.COM"})
			if err != nil || total != 1 || byEmail[0].ID != "usr_b1" {
				t.Errorf("Users(Email) = %v, %d, %v; want usr_b1", byEmail, total, err)
			}
			g, err := f.svc.Group(ctx, f.org.ID, "grp_b")
			if err != nil {
				t.Fatal(err)
			}
			if want := []string{"usr_b1", "usr_b2"}; !reflect.DeepEqual(g.MemberIDs, want) {
				t.Errorf("members = %v, want %v", g.MemberIDs, want)
			}
			if err := f.svc.CreateGroup(ctx, tokens.Operator, &tokens.Group{OrgID: f.org.ID, DisplayName: "BULK TEAM"}); tokens.ErrorCode(err) != tokens.Conflict {
				t.Errorf("a group named like a bulk-loaded one in another case: %v, want a conflict", err)
			}

			c, err := s.LookupCredential(ctx, secrets[7].Hash())
			if err != nil {
				t.Fatal(err)
			}
			if c.Token != toks[7] || c.OwnerName != "Bob.Bulk" || !c.OwnerActive || !reflect.DeepEqual(c.Groups, []string{"Bulk Team"}) {
				t.Errorf("credential = %+v, want token %+v of Bob.Bulk in Bulk Team", c, toks[7])
			}
			sc, err := s.LookupCredential(ctx, ssec.Hash())
			if err != nil || sc.OwnerName != "robot" || !reflect.DeepEqual(sc.PermissionSets, []string{tokens.PermUsers}) {
				t.Errorf("service credential = %+v, %v", sc, err)
			}
			var n int
			err = s.View(ctx, func(tx tokens.Tx) (err error) {
				n, err = tx.CountTokens(tokens.TokenFilter{OrgID: f.org.ID, OwnerID: "usr_b1"})
				return err
			})
			if err != nil || n != 2500 {
				t.Errorf("tokens of usr_b1 = %d, %v; want 2500", n, err)
			}

			// A batch that breaks a rule is refused, naming the rows.
			err = s.BulkLoad(ctx, sqlstore.Bulk{Tokens: toks[:1]})
			if tokens.ErrorCode(err) != tokens.Conflict {
				t.Errorf("loading a token twice: %v, want a conflict", err)
			}
		})
	}
}
