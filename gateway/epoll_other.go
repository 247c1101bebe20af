//go:build !linux

package gateway

// haveEpoll: without epoll, IOPortable is the only path.
const haveEpoll = false

func newEpoll(*Gateway) (engine, error) { return nil, errNoEpoll }
