// Command apiproxy is a test tool: an HTTP proxy in front of liveim's
// server API that signs every request it forwards, with the app key for
// app operations and the admin key for /api/v1/admin. scripts/schemathesis
// points schemathesis at it, so the fuzzer's requests reach the API's
// logic instead of stopping at the signature check (which e2e tests
// cover). It listens on loopback only; never run it in front of a real
// cluster.
//
//	apiproxy -listen 127.0.0.1:8090 -api http://127.0.0.1:8081 -app demo -app-key-file data/app.json -admin-key-file data/admin.key
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/liveim/liveim/auth"
	"github.com/liveim/liveim/serverapi"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to listen on (printed on stdout)")
	api := flag.String("api", "http://127.0.0.1:8081", "the server API's root")
	appID := flag.String("app", "demo", "app the requests are signed for")
	appFile := flag.String("app-key-file", "", "app.json of liveim serve (holds app_key)")
	adminFile := flag.String("admin-key-file", "", "admin key file")
	flag.Parse()
	if err := run(*listen, *api, *appID, *appFile, *adminFile); err != nil {
		log.Fatal(err)
	}
}

func run(listen, api, appID, appFile, adminFile string) error {
	target, err := url.Parse(api)
	if err != nil {
		return err
	}
	b, err := os.ReadFile(appFile)
	if err != nil {
		return err
	}
	var app struct {
		AppKey string `json:"app_key"`
	}
	if err := json.Unmarshal(b, &app); err != nil || app.AppKey == "" {
		return fmt.Errorf("%s: no app_key", appFile)
	}
	adminKey, err := serverapi.ReadAdminKey(adminFile)
	if err != nil {
		return err
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	direct := proxy.Director
	proxy.Director = func(r *http.Request) {
		direct(r)
		var body []byte
		if r.Body != nil {
			body, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		if strings.HasPrefix(r.URL.Path, serverapi.Prefix+"/admin/") || r.URL.Path == serverapi.Prefix+"/admin" {
			r.Header.Set("Authorization", "Bearer "+adminKey)
			return
		}
		auth.SignRequest(r, appID, app.AppKey, body, time.Now())
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	if !ln.Addr().(*net.TCPAddr).IP.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", listen)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{Handler: proxy, ReadHeaderTimeout: 10 * time.Second}
	return srv.Serve(ln)
}
