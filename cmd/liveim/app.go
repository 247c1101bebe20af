package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/liveim/liveim/apiclient"
	"github.com/liveim/liveim/serverapi"
)

const appUsage = `usage: liveim app [--data DIR]                 print the demo app of a liveim serve data directory
       liveim app create [--id ID] [settings]     create an app (new key; a new ID unless --id)
       liveim app list
       liveim app show ID
       liveim app set ID [settings]             change the settings given, keep the rest
       liveim app rotate-key ID [--grace 24h]    new key; the old one stays valid for --grace
       liveim app disable ID                    refuse its logins and server API calls
Each talks to a running cluster's admin API (--api, --admin-key-file, also from LIVEIM_API and
LIVEIM_ADMIN_KEY_FILE) and prints JSON (--no-key: without the app's keys). Settings come from the
command line only, never from LIVEIM_* variables or --config.
create --if-missing --id ID prints an existing app as it is instead of failing.`

// runApp manages apps through the admin API of a running cluster.
func runApp(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return runDemoApp(args, stdout)
	}
	cmd, args := args[0], args[1:]
	var id string
	if cmd != "create" && cmd != "list" {
		if len(args) == 0 || strings.HasPrefix(args[0], "-") {
			return fmt.Errorf("liveim app %s needs an app ID\n%s", cmd, appUsage)
		}
		id, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("app "+cmd, flag.ContinueOnError)
	api := fs.String("api", "http://127.0.0.1:8081", "a router's internal listener (liveim serve: its --http-addr)")
	keyFile := fs.String("admin-key-file", "./data/"+serverapi.AdminKeyFile, "file holding the admin key")
	noKey := fs.Bool("no-key", false, "print the app without its keys (for logs others may read)")
	var settings serverapi.AppSettings
	var grace time.Duration
	var ifMissing bool
	switch cmd {
	case "create":
		fs.StringVar(&id, "id", "", "app ID (default: a new one)")
		fs.BoolVar(&ifMissing, "if-missing", false, "with --id: an app that exists already is printed as it is, not an error")
		registerSettings(fs, &settings)
	case "set":
		registerSettings(fs, &settings)
	case "rotate-key":
		fs.DurationVar(&grace, "grace", 24*time.Hour, "how long the old key stays valid")
	case "list", "show", "disable":
	default:
		return fmt.Errorf("unknown app command %q\n%s", cmd, appUsage)
	}
	// Only the command line sets an app's settings: a LIVEIM_* variable
	// meant for the router this runs beside (LIVEIM_ROOM_RATE) must not
	// change an app. The API address and the admin key file may come from
	// the environment.
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := flagsFromEnv(fs, "api", "admin-key-file"); err != nil {
		return err
	}
	if ifMissing && id == "" {
		return fmt.Errorf("--if-missing needs --id")
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q\n%s", fs.Args(), appUsage)
	}
	key, err := serverapi.ReadAdminKey(*keyFile)
	if err != nil {
		return err
	}
	c := apiclient.New(*api, apiclient.Admin(key))
	var out json.RawMessage
	path := "/admin/apps/" + id
	switch cmd {
	case "create":
		body := map[string]any{}
		if err := merge(body, settings); err != nil {
			return err
		}
		if id != "" {
			body["app_id"] = id
		}
		if ifMissing && c.Do(ctx, "GET", path, nil, nil, &out) == nil {
			break // there already: printed as it is
		}
		err = c.Do(ctx, "POST", "/admin/apps", nil, body, &out)
		if err != nil && ifMissing && c.Do(ctx, "GET", path, nil, nil, &out) == nil {
			err = nil // made meanwhile by someone else
		}
	case "list":
		err = c.Do(ctx, "GET", "/admin/apps", nil, nil, &out)
	case "show":
		err = c.Do(ctx, "GET", path, nil, nil, &out)
	case "set":
		err = c.Do(ctx, "PATCH", path, nil, settings, &out)
	case "rotate-key":
		err = c.Do(ctx, "POST", path+"/rotate-key", nil, map[string]any{"grace_seconds": int64(grace / time.Second)}, &out)
	case "disable":
		err = c.Do(ctx, "POST", path+"/disable", nil, nil, &out)
	}
	if err != nil {
		return err
	}
	if *noKey {
		if out, err = withoutKeys(out); err != nil {
			return err
		}
	}
	return printJSON(stdout, out)
}

// withoutKeys drops app_key and previous_key from an app or a list of
// apps.
func withoutKeys(raw json.RawMessage) (json.RawMessage, error) {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, err
	}
	strip := func(x any) {
		if m, ok := x.(map[string]any); ok {
			delete(m, "app_key")
			delete(m, "previous_key")
		}
	}
	strip(v)
	if m, ok := v.(map[string]any); ok {
		if apps, ok := m["apps"].([]any); ok {
			for _, a := range apps {
				strip(a)
			}
		}
	}
	return json.Marshal(v)
}

// flagsFromEnv sets the named flags not given on the command line from
// their LIVEIM_* variables.
func flagsFromEnv(fs *flag.FlagSet, names ...string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range names {
		env := "LIVEIM_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok && !set[name] {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("%s: %w", env, err)
			}
		}
	}
	return nil
}

// merge adds v's JSON fields to m.
func merge(m map[string]any, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, &m)
}

func printJSON(w io.Writer, raw json.RawMessage) error {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// registerSettings adds a flag per app setting; only the flags given (or
// set by environment or config file) are sent.
func registerSettings(fs *flag.FlagSet, s *serverapi.AppSettings) {
	intFlag(fs, &s.RetentionDays, "retention-days", "days of history kept (0: forever)")
	intFlag(fs, &s.MaxGroups, "max-groups", "open groups the app may have (0: the router default)")
	boolFlag(fs, &s.MultiDevice, "multi-device", "let a user log in from several devices")
	fs.Func("room-rate", "NORMAL messages per second per group (0: the router default)", func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		s.RoomRate = &f
		return err
	})
	listFlag(fs, &s.BlockedWords, "blocked-words", "comma-separated words refused in messages")
	stringFlag(fs, &s.AuditURL, "audit-url", "before-send audit hook URL (empty: none)")
	boolFlag(fs, &s.AuditFailOpen, "audit-fail-open", "let messages pass when the audit hook fails")
	stringFlag(fs, &s.CallbackURL, "callback-url", "URL the app's events are POSTed to (empty: none)")
	listFlag(fs, &s.CallbackEvents, "callback-events", "comma-separated event types (empty: all)")
	listFlag(fs, &s.GatewayURLs, "gateway-urls", "comma-separated ws(s) URLs of the gateways, for appSign")
	listFlag(fs, &s.AllowedOrigins, "allowed-origins", "comma-separated web origins that may log in (empty: all)")
	intFlag(fs, &s.NonceLength, "nonce-length", "login token nonce length (0: 32)")
	fs.Func("max-token-lifetime", "longest login token lifetime, e.g. 168h (0: 7 days)", func(v string) error {
		d, err := time.ParseDuration(v)
		sec := int64(d / time.Second)
		s.MaxTokenLifetimeSec = &sec
		return err
	})
	boolFlag(fs, &s.Disabled, "disabled", "refuse the app's logins and server API calls")
}

func intFlag(fs *flag.FlagSet, p **int, name, usage string) {
	fs.Func(name, usage, func(v string) error {
		n, err := strconv.Atoi(v)
		*p = &n
		return err
	})
}

func boolFlag(fs *flag.FlagSet, p **bool, name, usage string) {
	fs.BoolFunc(name, usage, func(v string) error {
		b, err := strconv.ParseBool(v)
		*p = &b
		return err
	})
}

func stringFlag(fs *flag.FlagSet, p **string, name, usage string) {
	fs.Func(name, usage, func(v string) error {
		*p = &v
		return nil
	})
}

func listFlag(fs *flag.FlagSet, p **[]string, name, usage string) {
	fs.Func(name, usage, func(v string) error {
		list := []string{}
		for _, x := range strings.Split(v, ",") {
			if x = strings.TrimSpace(x); x != "" {
				list = append(list, x)
			}
		}
		*p = &list
		return nil
	})
}
