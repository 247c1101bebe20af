package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/liveim/liveim/client"
	"github.com/liveim/liveim/internal/demo"
	"github.com/liveim/liveim/internal/demoapp"
	"github.com/liveim/liveim/proto/liveimpb"
)

// demoModerate POSTs a ModerationRequest as the demo page does and
// returns the status and the catalogue code of the reply (0 on success).
func demoModerate(t *testing.T, addr, path string, caller demoapp.TokenReply, group, user string, seconds int64) (int, int32) {
	t.Helper()
	b, _ := json.Marshal(demo.ModerationRequest{Auth: caller.Auth, AppToken: caller.AppToken, GroupID: group, UserID: user, Seconds: seconds})
	resp, err := http.Post("http://"+addr+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Code int32 `json:"code"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Code
}

// awaitExit waits for the exit event of group on c.
func awaitExit(t *testing.T, c *client.Client, group string) liveimpb.ExitReason {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-c.Events():
			if x := ev.GetExit(); x != nil && x.GetGroupId() == group {
				return x.GetReason()
			}
		case <-c.Done():
			t.Fatalf("connection ended waiting for exit: %v", c.Err())
		case <-timeout:
			t.Fatalf("no exit event for %s", group)
		}
	}
}

// checkDevModeration runs /dev/mute and /dev/kick of the page at addr
// against a real server: the room's owner mutes a member for a time and
// kicks it with a ban; a member may do neither, and nobody moderates the
// owner.
func checkDevModeration(t *testing.T, addr, group string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, aliceTok := demoToken(t, addr, "", "alice", "admin")
	_, bobTok := demoToken(t, addr, "", "bob", "")
	alice, bob := loginWithToken(t, aliceTok), loginWithToken(t, bobTok)
	if _, err := alice.CreateGroup(ctx, &liveimpb.CreateGroupRequest{GroupId: group, GroupName: group}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{alice, bob} {
		if _, err := c.JoinGroup(ctx, group); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name         string
		path         string
		caller       demoapp.TokenReply
		user         string
		status, code int
	}{
		{"a member kicks", demo.KickPath, bobTok, "alice", 403, 403},
		{"a member mutes", demo.MutePath, bobTok, "alice", 403, 403},
		{"the owner kicks herself", demo.KickPath, aliceTok, "alice", 403, 403},
	} {
		if status, code := demoModerate(t, addr, c.path, c.caller, group, c.user, 0); status != c.status || int(code) != c.code {
			t.Errorf("%s: %d code %d, want %d code %d", c.name, status, code, c.status, c.code)
		}
	}
	if status, code := demoModerate(t, addr, demo.KickPath, aliceTok, "no-such-room", "bob", 0); code != 440 {
		t.Errorf("kick in a missing room: %d code %d, want code 440", status, code)
	}

	// A mute for a minute: bob's sends are refused with 442.
	if status, code := demoModerate(t, addr, demo.MutePath, aliceTok, group, "bob", 60); status != 200 {
		t.Fatalf("/dev/mute: %d code %d", status, code)
	}
	send := &liveimpb.SendGroupMessageRequest{GroupId: group, Type: 10001, Data: "am I muted?"}
	if _, err := bob.SendGroupMessage(ctx, send); !errors.Is(err, liveimpb.ErrMuted) {
		t.Fatalf("bob sends while muted: %v, want 442", err)
	}
	// A kick with a ban: bob gets exit (kicked), and may not come back.
	if status, code := demoModerate(t, addr, demo.KickPath, aliceTok, group, "bob", 60); status != 200 {
		t.Fatalf("/dev/kick: %d code %d", status, code)
	}
	if r := awaitExit(t, bob, group); r != liveimpb.ExitReason_EXIT_REASON_KICKED {
		t.Fatalf("bob's exit reason %v, want kicked", r)
	}
	if _, err := bob.JoinGroup(ctx, group); !errors.Is(err, liveimpb.ErrForbidden) {
		t.Fatalf("bob joins while banned: %v, want 403", err)
	}
}

// TestServeDevModeration checks that `liveim serve` in development mode
// serves /dev/kick and /dev/mute through its own internal listener.
func TestServeDevModeration(t *testing.T) {
	addr := freeAddr(t)
	startServe(t, t.TempDir(), addr, freeAddr(t))
	checkDevModeration(t, addr, "stage")
}

func TestDialAddr(t *testing.T) {
	for _, c := range []struct{ listen, want string }{
		{"127.0.0.1:8081", "127.0.0.1:8081"},
		{"10.0.0.5:8081", "10.0.0.5:8081"},
		{"0.0.0.0:8081", "127.0.0.1:8081"},
		{"[::]:8081", "127.0.0.1:8081"},
		{"[::1]:8081", "[::1]:8081"},
	} {
		a, err := net.ResolveTCPAddr("tcp", c.listen)
		if err != nil {
			t.Fatal(err)
		}
		if got := dialAddr(a); got != c.want {
			t.Errorf("dialAddr(%s) = %s, want %s", c.listen, got, c.want)
		}
	}
}
