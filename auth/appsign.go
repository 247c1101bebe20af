package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
)

// appSignPrefix versions the appSign encoding.
const appSignPrefix = "lim1."

// ErrBadAppSign is returned by ParseAppSign for a string it cannot read.
var ErrBadAppSign = errors.New("auth: malformed appSign")

// AppSign is the public client credential passed to the SDK's init: it
// names the app and the gateway URLs the client should connect to. It is
// not a secret; tokens carry the authentication.
type AppSign struct {
	AppID string   `json:"a"`
	URLs  []string `json:"u"`
}

// Encode returns the opaque appSign string: "lim1." followed by unpadded
// base64url JSON.
func (s AppSign) Encode() string {
	b, _ := json.Marshal(s) // a struct of strings always marshals
	return appSignPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseAppSign decodes an appSign string made by Encode.
func ParseAppSign(v string) (AppSign, error) {
	rest, ok := strings.CutPrefix(v, appSignPrefix)
	if !ok {
		return AppSign{}, ErrBadAppSign
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return AppSign{}, errors.Join(ErrBadAppSign, err)
	}
	var s AppSign
	if err := json.Unmarshal(b, &s); err != nil {
		return AppSign{}, errors.Join(ErrBadAppSign, err)
	}
	if s.AppID == "" {
		return AppSign{}, ErrBadAppSign
	}
	return s, nil
}
