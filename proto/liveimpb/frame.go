package liveimpb

import "google.golang.org/protobuf/reflect/protoreflect"

// FrameGroupID returns the group_id of the request in f and whether its
// body has that field at all.
func FrameGroupID(f *ClientFrame) (string, bool) {
	m := f.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("body"))
	if fd == nil || fd.Kind() != protoreflect.MessageKind {
		return "", false
	}
	g, ok := m.Get(fd).Message().Interface().(interface{ GetGroupId() string })
	if !ok {
		return "", false
	}
	return g.GetGroupId(), true
}

// OpName returns the operation f asks for, as the SDK names it
// ("sendGroupMessage"), or "" for an empty frame.
func OpName(f *ClientFrame) string {
	m := f.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().ByName("body"))
	if fd == nil {
		return ""
	}
	return fd.JSONName()
}

// MaxUserExtension is the largest userExtension, in bytes (SPEC): a
// login's, and a server API sender's.
const MaxUserExtension = 512
