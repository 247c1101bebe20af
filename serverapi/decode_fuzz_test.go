package serverapi

import (
	"testing"

	"github.com/liveim/liveim/storage"
)

// FuzzRequestBodies: whatever bytes an app's backend or the operator
// sends as a body, decoding and validating it never panics, and settings
// that pass validation leave an app whose lists hold no empty word.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"type":1,"data":"x","level":"high","sender_id":"u1"}`, `{"retention_days":3,"callback_events":["group.join"]}`,
		`{"callback_url":"http://x/y","gateway_urls":["wss://a/ws"],"allowed_origins":["https://*.example.com"]}`,
		`{"user_ids":["a","b"],"duration_seconds":60}`, `{"group_name":"g","admins":["a"]}`, `[`, `{"type":1}{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var send sendRequest
		if decode(body, &send) == nil {
			_, _ = send.check()
		}
		var settings AppSettings
		if decode(body, &settings) == nil {
			var app storage.App
			if settings.apply(&app) == nil {
				for _, w := range app.BlockedWords {
					if w == "" {
						t.Fatal("an empty blocked word passed")
					}
				}
			}
		}
		for _, v := range []any{&createGroupRequest{}, &modifyGroupRequest{}, &muteUsersRequest{}, &kickRequest{}, &tokenRequest{}, &onlineRequest{}, &rotateKeyRequest{}, &createAppRequest{}} {
			_ = decode(body, v)
		}
	})
}
