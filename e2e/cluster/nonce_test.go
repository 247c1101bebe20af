package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/proto/liveimpb"
)

// TestNonceBindsOnReplicatedStream: on a production-shaped cluster (three
// NATS nodes, the nonce stream R3, two routers), two tokens with one nonce
// race to log in at once, one through each gateway, 40 times: each time
// exactly one gets in and the other is refused 401, whichever routers they
// reach, and the winner's token logs in again. The loser's router is
// refused its binding while the winner's may still be in flight; a router
// that read the binding from a replica, or took "not found" for an answer,
// let both in (the KV bucket of earlier versions did, in some round of
// most runs).
func TestNonceBindsOnReplicatedStream(t *testing.T) {
	hosts := cqlHosts(t)
	c := startCluster(t, hosts, 2, 2)
	ctx := context.Background()
	loginWith := func(url string, cr auth.Credentials) error {
		ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		cl, err := client.Dial(ctx, url)
		if err != nil {
			return err
		}
		defer cl.Close()
		_, err = cl.Login(ctx, client.Login{AppID: c.app.AppID, UserID: cr.UserID,
			Auth: &liveimpb.UserAuth{Timestamp: cr.Timestamp, Nonce: cr.Nonce, Role: cr.Role, Token: cr.Token}})
		return err
	}
	for round := range 40 {
		nonce := auth.NewNonce(auth.DefaultNonceLength)
		creds := [2]auth.Credentials{
			auth.Issue(c.app.AppID, c.app.AppKey, fmt.Sprintf("racer-a%d", round), "", nonce, time.Hour, time.Now()),
			auth.Issue(c.app.AppID, c.app.AppKey, fmt.Sprintf("racer-b%d", round), "", nonce, time.Hour, time.Now()),
		}
		var errs [2]error
		var wg sync.WaitGroup
		for i := range creds {
			wg.Go(func() { errs[i] = loginWith(c.wsURLs[i], creds[i]) })
		}
		wg.Wait()
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner < 0:
				winner = i
			case err == nil:
				t.Fatalf("round %d: both tokens of one nonce logged in", round)
			case liveimpbCode(err) != 401:
				t.Fatalf("round %d: %s: %v, want 401 or a login", round, creds[i].UserID, err)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: neither token logged in: %v", round, errs)
		}
		if err := loginWith(c.wsURLs[1-winner], creds[winner]); err != nil {
			t.Fatalf("round %d: the winner's token again, on the other gateway: %v", round, err)
		}
	}
}
