package metastoretest

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/siltstream/silt/metastore"
)

func scramCred(user, mech string, iterations int32, seed byte) metastore.ScramCredential {
	return metastore.ScramCredential{
		ScramCredentialKey: metastore.ScramCredentialKey{User: user, Mechanism: mech},
		Salt:               bytes.Repeat([]byte{seed}, 16),
		Iterations:         iterations,
		StoredKey:          bytes.Repeat([]byte{seed + 1}, 32),
		ServerKey:          bytes.Repeat([]byte{seed + 2}, 32),
	}
}

func testScramCredentials(t *testing.T, s metastore.Store) {
	ctx := ctxFor(t)
	const sha256, sha512 = "SCRAM-SHA-256", "SCRAM-SHA-512"
	if _, err := s.ScramCredential(ctx, "alice", sha256); !errors.Is(err, metastore.ErrUnknownCredential) {
		t.Fatalf("ScramCredential of nobody: %v, want ErrUnknownCredential", err)
	}
	alice256, alice512, bob := scramCred("alice", sha256, 4096, 1), scramCred("alice", sha512, 8192, 10), scramCred("bob", sha512, 4096, 20)
	notFound, err := s.AlterScramCredentials(ctx, nil, []metastore.ScramCredential{bob, alice512, alice256})
	if err != nil || len(notFound) != 0 {
		t.Fatalf("AlterScramCredentials(upserts) = %v, %v", notFound, err)
	}
	got, err := s.ScramCredential(ctx, "alice", sha512)
	if err != nil || !reflect.DeepEqual(got, alice512) {
		t.Fatalf("ScramCredential(alice, 512) = %+v, %v; want %+v", got, err, alice512)
	}
	all, err := s.ScramCredentials(ctx, nil)
	if err != nil || !reflect.DeepEqual(all, []metastore.ScramCredential{alice256, alice512, bob}) {
		t.Fatalf("ScramCredentials(all) = %+v, %v", all, err)
	}
	some, err := s.ScramCredentials(ctx, []string{"bob", "carol"})
	if err != nil || !reflect.DeepEqual(some, []metastore.ScramCredential{bob}) {
		t.Fatalf("ScramCredentials(bob, carol) = %+v, %v", some, err)
	}
	none, err := s.ScramCredentials(ctx, []string{})
	if err != nil || len(none) != 0 {
		t.Fatalf("ScramCredentials(no users) = %+v, %v", none, err)
	}

	// An upsert replaces; a deletion of something absent is reported and
	// does not stop the rest.
	alice256b := scramCred("alice", sha256, 5000, 30)
	notFound, err = s.AlterScramCredentials(ctx,
		[]metastore.ScramCredentialKey{{User: "bob", Mechanism: sha512}, {User: "carol", Mechanism: sha256}},
		[]metastore.ScramCredential{alice256b})
	if err != nil || !reflect.DeepEqual(notFound, []metastore.ScramCredentialKey{{User: "carol", Mechanism: sha256}}) {
		t.Fatalf("AlterScramCredentials(delete bob, carol; replace alice) = %v, %v", notFound, err)
	}
	if _, err := s.ScramCredential(ctx, "bob", sha512); !errors.Is(err, metastore.ErrUnknownCredential) {
		t.Fatalf("bob's deleted credential: %v, want ErrUnknownCredential", err)
	}
	got, err = s.ScramCredential(ctx, "alice", sha256)
	if err != nil || !reflect.DeepEqual(got, alice256b) {
		t.Fatalf("replaced credential = %+v, %v; want %+v", got, err, alice256b)
	}
}
