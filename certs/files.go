package certs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	certDirMode  = 0o700
	certFileMode = 0o600
)

// writeFileIfChanged atomically replaces dir/name with data, mode 0600,
// unless it already holds exactly data. It reports whether it wrote.
//
// Skipping identical content matters: controller-runtime's certwatcher
// reloads on every write event, and the periodic resync must not make it.
// The write is a rename of a fully written, synced temporary file in the same
// directory, so a reader never sees a truncated certificate.
func writeFileIfChanged(dir, name string, data []byte) (bool, error) {
	path := filepath.Join(dir, name)
	old, err := os.ReadFile(path)
	switch {
	case err == nil && bytes.Equal(old, data):
		// Same content; still tighten a mode someone loosened.
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm() != certFileMode {
			return false, os.Chmod(path, certFileMode)
		}
		return false, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, err
	}

	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*") // CreateTemp uses 0600
	if err != nil {
		return false, err
	}
	tmpName := tmp.Name()
	defer func() {
		if tmpName != "" {
			_ = os.Remove(tmpName)
		}
	}()
	if err := tmp.Chmod(certFileMode); err != nil {
		_ = tmp.Close()
		return false, err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return false, err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return false, err
	}
	if err := tmp.Close(); err != nil {
		return false, err
	}
	if err := os.Rename(tmpName, path); err != nil {
		return false, err
	}
	tmpName = ""
	return true, nil
}

// writeServingPair writes the key, then the certificate. The two renames are
// not one atomic step; certwatcher copes because a reload that finds a
// mismatched pair fails and keeps serving the previous pair, and the second
// rename (or its periodic poll) triggers a reload that succeeds.
func writeServingPair(dir, certName, keyName string, cert, key []byte) (bool, error) {
	if err := os.MkdirAll(dir, certDirMode); err != nil {
		return false, fmt.Errorf("creating %s: %w", dir, err)
	}
	wroteKey, err := writeFileIfChanged(dir, keyName, key)
	if err != nil {
		return false, fmt.Errorf("writing %s: %w", keyName, err)
	}
	wroteCert, err := writeFileIfChanged(dir, certName, cert)
	if err != nil {
		return wroteKey, fmt.Errorf("writing %s: %w", certName, err)
	}
	return wroteKey || wroteCert, nil
}
