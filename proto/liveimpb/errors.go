package liveimpb

import (
	"errors"
	"fmt"
)

// Error is a client-visible error from the catalogue of ErrorCode: the code
// travels in Reply.code and the message in Reply.msg. Two Errors match with
// errors.Is when their codes are equal, whatever their messages.
type Error struct {
	Code    ErrorCode
	Message string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("%d: %s", int32(e.Code), e.Message)
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// With returns a copy of e with a more specific message, keeping the code.
func (e *Error) With(format string, args ...any) *Error {
	return &Error{Code: e.Code, Message: fmt.Sprintf(format, args...)}
}

// The catalogue. Match with errors.Is(err, liveimpb.ErrMuted).
var (
	ErrAlreadyLoggedIn   = &Error{ErrorCode_ERROR_CODE_ALREADY_LOGGED_IN, "already logged in"}
	ErrInvalidParameter  = &Error{ErrorCode_ERROR_CODE_INVALID_PARAMETER, "invalid parameter"}
	ErrUnauthorized      = &Error{ErrorCode_ERROR_CODE_UNAUTHORIZED, "token invalid or expired"}
	ErrForbidden         = &Error{ErrorCode_ERROR_CODE_FORBIDDEN, "no permission"}
	ErrNoSession         = &Error{ErrorCode_ERROR_CODE_NO_SESSION, "no session: reconnect"}
	ErrTooFast           = &Error{ErrorCode_ERROR_CODE_TOO_FAST, "sending too fast"}
	ErrTooLarge          = &Error{ErrorCode_ERROR_CODE_TOO_LARGE, "message too large"}
	ErrReceiverOffline   = &Error{ErrorCode_ERROR_CODE_RECEIVER_OFFLINE, "receiver offline"}
	ErrNotJoined         = &Error{ErrorCode_ERROR_CODE_NOT_JOINED, "not joined to the group"}
	ErrGroupNotFound     = &Error{ErrorCode_ERROR_CODE_GROUP_NOT_FOUND, "group does not exist"}
	ErrGroupClosed       = &Error{ErrorCode_ERROR_CODE_GROUP_CLOSED, "group closed"}
	ErrMuted             = &Error{ErrorCode_ERROR_CODE_MUTED, "muted"}
	ErrLimitReached      = &Error{ErrorCode_ERROR_CODE_LIMIT_REACHED, "limit reached"}
	ErrModerationRefused = &Error{ErrorCode_ERROR_CODE_MODERATION_REFUSED, "refused by moderation"}
	ErrInternal          = &Error{ErrorCode_ERROR_CODE_INTERNAL, "internal error"}
	ErrUnavailable       = &Error{ErrorCode_ERROR_CODE_UNAVAILABLE, "temporarily unavailable: retry"}
	ErrSDKInvalidState   = &Error{ErrorCode_ERROR_CODE_SDK_INVALID_STATE, "invalid state"}
	ErrSDKNotLoggedIn    = &Error{ErrorCode_ERROR_CODE_SDK_NOT_LOGGED_IN, "not logged in"}
	ErrSDKStaleReply     = &Error{ErrorCode_ERROR_CODE_SDK_STALE_REPLY, "reply from a previous session"}
	ErrSDKParse          = &Error{ErrorCode_ERROR_CODE_SDK_PARSE_ERROR, "parse error"}
	ErrSDKAlreadyInit    = &Error{ErrorCode_ERROR_CODE_SDK_ALREADY_INITIALIZED, "already initialised"}
	ErrSDKEngineFailed   = &Error{ErrorCode_ERROR_CODE_SDK_ENGINE_FAILED, "engine creation failed"}
	ErrSDKInitBadConfig  = &Error{ErrorCode_ERROR_CODE_INIT_BAD_CONFIG, "bad configuration"}
)

// InvalidParam returns a 400 error naming the offending field.
func InvalidParam(field, format string, args ...any) *Error {
	return &Error{ErrorCode_ERROR_CODE_INVALID_PARAMETER, field + ": " + fmt.Sprintf(format, args...)}
}

// AsError maps any error onto the catalogue: catalogue errors pass through,
// anything else becomes 500 so internals never leak to clients.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternal
}

// ErrorReply builds the Reply for err; a nil err is a success reply.
func ErrorReply(err error) *Reply {
	if err == nil {
		return &Reply{}
	}
	e := AsError(err)
	return &Reply{Code: int32(e.Code), Msg: e.Message}
}

// ReplyError returns the catalogue error a non-zero Reply carries, or nil.
func ReplyError(r *Reply) error {
	if r == nil || r.Code == 0 {
		return nil
	}
	return &Error{Code: ErrorCode(r.Code), Message: r.Msg}
}
