package serverapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// AdminKeyFile is the admin key's file in `liveim serve`'s data directory.
const AdminKeyFile = "admin.key"

// ReadAdminKey reads an admin key file (surrounding space trimmed).
func ReadAdminKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("admin key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if len(key) < MinAdminKeyLen {
		return "", fmt.Errorf("admin key: %s holds fewer than %d characters", path, MinAdminKeyLen)
	}
	return key, nil
}

// EnsureAdminKey returns the admin key in dir/AdminKeyFile, creating the
// file (mode 0600) with a fresh key the first time.
func EnsureAdminKey(dir string) (path, key string, err error) {
	path = filepath.Join(dir, AdminKeyFile)
	key, err = ReadAdminKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return path, key, err
	}
	key = NewKey()
	if err := os.WriteFile(path, []byte(key+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("admin key: %w", err)
	}
	return path, key, nil
}
