package certs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestWriteFileIfChanged(t *testing.T) {
	tests := []struct {
		name      string
		existing  []byte // nil: no file
		mode      os.FileMode
		data      []byte
		wantWrote bool
	}{
		{name: "new file", data: []byte("a"), wantWrote: true},
		{name: "same content", existing: []byte("a"), mode: 0o600, data: []byte("a"), wantWrote: false},
		{name: "same content, loose mode tightened", existing: []byte("a"), mode: 0o644, data: []byte("a"), wantWrote: false},
		{name: "changed content", existing: []byte("a"), mode: 0o644, data: []byte("b"), wantWrote: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "tls.crt")
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil { // umask-proof
					t.Fatal(err)
				}
			}
			wrote, err := writeFileIfChanged(dir, "tls.crt", tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if wrote != tt.wantWrote {
				t.Errorf("wrote = %v, want %v", wrote, tt.wantWrote)
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != string(tt.data) {
				t.Errorf("content %q, %v", got, err)
			}
			if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("temporary files left behind: %v", entries)
			}
		})
	}
}

func TestWriteServingPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "certs")
	wrote, err := writeServingPair(dir, "tls.crt", "tls.key", []byte("cert"), []byte("key"))
	if err != nil || !wrote {
		t.Fatalf("first write: wrote=%v err=%v", wrote, err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v, want 0700", fi.Mode().Perm())
	}
	// Unchanged content must not touch the files: certwatcher would reload.
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	for _, n := range []string{"tls.crt", "tls.key"} {
		if err := os.Chtimes(filepath.Join(dir, n), old, old); err != nil {
			t.Fatal(err)
		}
	}
	wrote, err = writeServingPair(dir, "tls.crt", "tls.key", []byte("cert"), []byte("key"))
	if err != nil || wrote {
		t.Fatalf("second write: wrote=%v err=%v", wrote, err)
	}
	for _, n := range []string{"tls.crt", "tls.key"} {
		if fi, _ := os.Stat(filepath.Join(dir, n)); !fi.ModTime().Equal(old) {
			t.Errorf("%s rewritten", n)
		}
	}
}
