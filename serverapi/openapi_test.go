package serverapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/callback"
)

type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		OperationID string             `json:"operationId"`
		Security    []map[string][]any `json:"security"`
		Responses   map[string]any     `json:"responses"`
		RequestBody *struct {
			Content map[string]struct{ Schema schemaRef }
		} `json:"requestBody"`
		Parameters []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

type schemaRef struct {
	Ref string `json:"$ref"`
}

func loadDoc(t *testing.T) openAPIDoc {
	t.Helper()
	var doc openAPIDoc
	if err := json.Unmarshal(OpenAPI(), &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi.json is OpenAPI %q, want 3.1.0", doc.OpenAPI)
	}
	return doc
}

// TestOpenAPIMatchesRoutes: every operation the server serves is in
// openapi.json and every operation there is served, with its path
// parameters, a 200 and an error reply, and the right credentials.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadDoc(t)
	s := &Server{mux: http.NewServeMux()}
	served := s.register()
	var documented []string
	for path, ops := range doc.Paths {
		for method, op := range ops {
			route := strings.ToUpper(method) + " " + Prefix + path
			documented = append(documented, route)
			if op.OperationID == "" || op.Responses["200"] == nil || op.Responses["default"] == nil {
				t.Errorf("%s: needs an operationId, a 200 and a default (error) response", route)
			}
			wantSec := "appSignature"
			if strings.HasPrefix(path, "/admin/") {
				wantSec = "adminKey"
			}
			if len(op.Security) != 1 || op.Security[0][wantSec] == nil {
				t.Errorf("%s: security %v, want %s", route, op.Security, wantSec)
			}
			for _, seg := range strings.Split(path, "/") {
				if name, ok := strings.CutPrefix(seg, "{"); ok {
					name = strings.TrimSuffix(name, "}")
					if !slices.ContainsFunc(op.Parameters, func(p struct {
						Name string `json:"name"`
						In   string `json:"in"`
					}) bool {
						return p.Name == name && p.In == "path"
					}) {
						t.Errorf("%s: path parameter %s not described", route, name)
					}
				}
			}
			if op.RequestBody != nil {
				ref := op.RequestBody.Content["application/json"].Schema.Ref
				if _, ok := doc.Components.Schemas[strings.TrimPrefix(ref, "#/components/schemas/")]; !ok {
					t.Errorf("%s: request schema %q missing", route, ref)
				}
			}
		}
	}
	slices.Sort(served)
	slices.Sort(documented)
	if !slices.Equal(served, documented) {
		t.Fatalf("served and documented operations differ:\nserved:     %q\ndocumented: %q", served, documented)
	}
}

// TestOpenAPIMatchesTypes: the JSON fields of the Go types the API reads
// and writes are the properties of their schemas, no more, no fewer.
func TestOpenAPIMatchesTypes(t *testing.T) {
	doc := loadDoc(t)
	types := map[string]any{
		"AppSettings": AppSettings{}, "CreateApp": createAppRequest{}, "App": AppView{}, "RotateKey": rotateKeyRequest{},
		"TokenRequest": tokenRequest{}, "TokenReply": auth.TokenReply{},
		"CreateGroup": createGroupRequest{}, "CreateGroupReply": createGroupReply{}, "Group": GroupView{},
		"ModifyGroup": modifyGroupRequest{}, "Mutes": MuteView{}, "Send": sendRequest{}, "SendReply": SendReply{},
		"BroadcastReply": BroadcastReply{}, "Message": callback.Message{}, "OnlineRequest": onlineRequest{},
		"OnlineReply": OnlineReply{}, "Kick": kickRequest{}, "MuteAll": muteAllRequest{}, "MuteUsers": muteUsersRequest{},
		"Error": Error{},
	}
	for name, v := range types {
		sc, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("schema %s missing", name)
			continue
		}
		var documented []string
		for p := range sc.Properties {
			documented = append(documented, p)
		}
		fields := jsonFields(reflect.TypeOf(v))
		slices.Sort(fields)
		slices.Sort(documented)
		if !slices.Equal(fields, documented) {
			t.Errorf("schema %s: Go fields %q, documented %q", name, fields, documented)
		}
	}
}

// jsonFields lists the JSON names of t's fields, embedded structs'
// included.
func jsonFields(t reflect.Type) []string {
	var out []string
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out = append(out, name)
	}
	return out
}
