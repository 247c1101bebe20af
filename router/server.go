package router

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/liveim/liveim/internal/subject"
)

// Requests of the server API (an app's backend, through serverapi) travel
// to routers like the gateways' do, through the RPC stream, so they reach
// the owner of their group. They carry Liveim-Server-Mac: an HMAC of the
// request under the cluster secret, which routers keep in a bucket only
// routers may read. A gateway cannot make one, so the privileges of
// Caller.Server (owner's rights, skipping moderation and mutes, system
// message types, kicks and deletes) never come from a client.

// clusterSecretKey is the key of the cluster secret in ClusterBucket.
const clusterSecretKey = "server-mac"

// loadSecret reads the cluster secret, making it the first time.
func (r *Router) loadSecret(ctx context.Context) error {
	kv, err := r.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      subject.ClusterBucket,
		Description: "secrets the routers share",
		Storage:     jetstream.FileStorage,
		Replicas:    r.cfg.StreamReplicas,
	})
	if err != nil {
		return fmt.Errorf("router: bucket %s: %w", subject.ClusterBucket, err)
	}
	var b [32]byte
	_, _ = rand.Read(b[:])
	if _, err := kv.Create(ctx, clusterSecretKey, []byte(hex.EncodeToString(b[:]))); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("router: make the cluster secret: %w", err)
	}
	e, err := kv.Get(ctx, clusterSecretKey) // another router may have made it first
	if err != nil {
		return fmt.Errorf("router: read the cluster secret: %w", err)
	}
	secret, err := hex.DecodeString(string(e.Value()))
	if err != nil || len(secret) < 16 {
		return fmt.Errorf("router: the cluster secret in %s is damaged", subject.ClusterBucket)
	}
	r.secret = secret
	return nil
}

// LiveGateways is how many gateways this router hears from.
func (r *Router) LiveGateways() int { return r.gateways.live(r.now()) }

// SignServer marks a server API request (the RouterRequest bytes data) as
// such: it sets the header that makes routers trust it. It may be called
// once Ready is closed.
func (r *Router) SignServer(h nats.Header, data []byte) {
	h.Set(subject.HeaderServerMAC, r.serverMAC(data))
}

func (r *Router) serverMAC(data []byte) string {
	mac := hmac.New(sha256.New, r.secret)
	mac.Write(data)
	return hex.EncodeToString(mac.Sum(nil))
}

// fromServer reports whether a request carries a valid server MAC.
func (r *Router) fromServer(h nats.Header, data []byte) bool {
	got, err := hex.DecodeString(h.Get(subject.HeaderServerMAC))
	if err != nil || len(got) == 0 {
		return false
	}
	want, _ := hex.DecodeString(r.serverMAC(data))
	return hmac.Equal(got, want)
}
