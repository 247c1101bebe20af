package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/liveim/liveim/auth"
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
	c := startCluster(t, cqlHosts(t), 2, 2)
	for round := range 40 {
		nonce := auth.NewNonce(auth.DefaultNonceLength)
		creds := [2]auth.Credentials{c.issue(fmt.Sprintf("racer-a%d", round), nonce), c.issue(fmt.Sprintf("racer-b%d", round), nonce)}
		var errs [2]error
		var wg sync.WaitGroup
		for i := range creds {
			wg.Go(func() { errs[i] = c.loginWith(c.wsURLs[i], creds[i]) })
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
		if err := c.loginWith(c.wsURLs[1-winner], creds[winner]); err != nil {
			t.Fatalf("round %d: the winner's token again, on the other gateway: %v", round, err)
		}
	}
}

// loginWith logs in on url with cr and closes the client.
func (c *liveCluster) loginWith(url string, cr auth.Credentials) error {
	cl, err := loginAs(context.Background(), url, c.app.AppID, cr)
	if err == nil {
		cl.Close()
	}
	return err
}

// issue is a token of the cluster's app for user with nonce.
func (c *liveCluster) issue(user, nonce string) auth.Credentials {
	return auth.Issue(c.app.AppID, c.app.AppKey, user, "", nonce, time.Hour, time.Now())
}

// TestNonceStreamFullOnReplicatedStream: with the nonce stream R3 at its
// cap (--nonce-max-bindings), a fresh nonce logs in unbound, and a bound
// nonce still refuses another token and takes its own. A clustered
// stream's leader reports the stream full before it looks at the subject,
// so a router that took "full" for "not bound" would let the other token
// in.
func TestNonceStreamFullOnReplicatedStream(t *testing.T) {
	c := startCluster(t, cqlHosts(t), 2, 2, "--nonce-max-bindings", "2") // the admin's login in startCluster binds one
	bound := auth.NewNonce(auth.DefaultNonceLength)
	if err := c.loginWith(c.wsURLs[0], c.issue("alice", bound)); err != nil {
		t.Fatalf("alice, binding the stream's last place: %v", err)
	}
	if err := c.loginWith(c.wsURLs[1], c.issue("bob", auth.NewNonce(auth.DefaultNonceLength))); err != nil {
		t.Fatalf("bob, a fresh nonce with the stream full: %v, want let through unbound", err)
	}
	for i := range 2 { // through both gateways, so most likely both routers
		if err := c.loginWith(c.wsURLs[i], c.issue("mallory", bound)); liveimpbCode(err) != 401 {
			t.Fatalf("another token with alice's nonce, the stream full: %v, want 401", err)
		}
	}
}

// TestNonceBindingsSurviveNATSRestart: a nonce bound to a token stays
// bound when every NATS node of the cluster dies (kill -9) and comes back,
// as in a full restart of the NATS StatefulSet: another token with the
// nonce is still refused. A nonce stream in memory came back empty; its
// replicas were also what a long fault run saw wedged without a leader
// ("catchup aborted, no leader for stream"), so that a restarted router
// could not set up.
func TestNonceBindingsSurviveNATSRestart(t *testing.T) {
	c := startCluster(t, cqlHosts(t), 1, 1)
	nonce := auth.NewNonce(auth.DefaultNonceLength)
	if err := c.loginWith(c.wsURLs[0], c.issue("alice", nonce)); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.nats {
		n.kill9()
	}
	for _, n := range c.nats {
		n.start()
	}
	// Bindings work again once a fresh nonce binds: a login lets its
	// token in and a second token with the nonce is refused (while the
	// stream is down, logins go through unbound).
	deadline := time.Now().Add(2 * time.Minute)
	for i := 0; ; i++ {
		probe := auth.NewNonce(auth.DefaultNonceLength)
		err := c.loginWith(c.wsURLs[0], c.issue(fmt.Sprint("probe-", i), probe))
		if err == nil {
			err = c.loginWith(c.wsURLs[0], c.issue(fmt.Sprint("probe-again-", i), probe))
			if liveimpbCode(err) == 401 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nonces not bound again within 2 minutes of the NATS restart: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := c.loginWith(c.wsURLs[0], c.issue("mallory", nonce)); liveimpbCode(err) != 401 {
		t.Fatalf("another token with alice's nonce after the NATS restart: %v, want 401", err)
	}
}
