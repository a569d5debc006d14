package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"gregor/internal/testcluster"
)

// TestACLsAnswerSecurityDisabled: a broker without an authorizer answers
// every ACL request as Kafka's does, SECURITY_DISABLED, so that tools
// listing ACLs see "no authorizer" rather than an unsupported API.
func TestACLsAnswerSecurityDisabled(t *testing.T) {
	c := testcluster.Start(t, 1, nil)
	adm := kadm.NewClient(newClient(t, c))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	acls := kadm.NewACLs().Allow("User:alice").AllowHosts("*").Topics("orders").Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)

	described, err := adm.DescribeACLs(ctx, acls)
	for _, r := range described {
		err = errors.Join(err, r.Err)
	}
	if !errors.Is(err, kerr.SecurityDisabled) {
		t.Errorf("DescribeACLs: %v, want SECURITY_DISABLED", err)
	}
	created, err := adm.CreateACLs(ctx, acls)
	if err != nil || len(created) == 0 {
		t.Fatalf("CreateACLs: %v, %d results", err, len(created))
	}
	for _, r := range created {
		if !errors.Is(r.Err, kerr.SecurityDisabled) {
			t.Errorf("CreateACLs result: %v, want SECURITY_DISABLED", r.Err)
		}
	}
	deleted, err := adm.DeleteACLs(ctx, acls)
	if err != nil || len(deleted) == 0 {
		t.Fatalf("DeleteACLs: %v, %d results", err, len(deleted))
	}
	for _, r := range deleted {
		if !errors.Is(r.Err, kerr.SecurityDisabled) {
			t.Errorf("DeleteACLs result: %v, want SECURITY_DISABLED", r.Err)
		}
	}
}
