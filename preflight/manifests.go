package preflight

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fitgate/fitgate/feasibility"
)

// Stdin is the source name that reads standard input, as in kubectl.
const Stdin = "-"

// manifestExts are the file extensions a directory is searched for, as
// kubectl apply -f DIR does.
var manifestExts = map[string]bool{".yaml": true, ".yml": true, ".json": true}

// ReadManifests reads every document of the given sources, in order: files,
// directories (every *.yaml, *.yml and *.json below them, in lexical order;
// hidden directories are skipped) and Stdin. A malformed document stops its
// own stream only: the other sources are still read, so that one run names
// every broken file. The error joins one *feasibility.DecodeError (or I/O
// error) per broken source.
func ReadManifests(sources []string, stdin io.Reader) ([]feasibility.Document, error) {
	var docs []feasibility.Document
	var errs []error
	stdinSeen := false
	for _, src := range sources {
		if src == Stdin {
			if stdinSeen {
				errs = append(errs, errors.New(`"-" (stdin) given more than once`))
				continue
			}
			stdinSeen = true
			got, err := feasibility.DecodeDocuments(Stdin, stdin)
			docs = append(docs, got...)
			if err != nil {
				errs = append(errs, err)
			}
			continue
		}
		files, err := manifestFiles(src)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			got, err := readFile(f)
			docs = append(docs, got...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return docs, errors.Join(errs...)
}

// manifestFiles expands a path: a file is itself, whatever its name (the
// user named it); a directory is every manifest file below it.
func manifestFiles(path string) ([]string, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !info.IsDir() {
		return []string{path}, nil
	}
	var out []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != path && strings.HasPrefix(d.Name(), ".") {
				return filepath.SkipDir // .git, .helm and the like hold no manifests
			}
			return nil
		}
		if manifestExts[strings.ToLower(filepath.Ext(p))] {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

func readFile(path string) ([]feasibility.Document, error) {
	return readFileWith(path, feasibility.DecodeDocuments)
}

// readFileWith opens path and decodes it with decode: strict for manifests,
// lenient for cluster state.
func readFileWith(path string, decode func(string, io.Reader) ([]feasibility.Document, error)) ([]feasibility.Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return decode(path, f)
}

// describe names a document's object for messages:
// "example.com/v1 Widget shop/foo (widgets.yaml, document 2)".
func describe(d feasibility.Document) string {
	var apiVersion, kind, ns, name string
	switch {
	case d.Unknown != nil:
		apiVersion, kind = d.Unknown.GetAPIVersion(), d.Unknown.GetKind()
		ns, name = d.Unknown.GetNamespace(), d.Unknown.GetName()
	case d.Object != nil:
		gvk := d.Object.GetObjectKind().GroupVersionKind()
		apiVersion, kind = gvk.GroupVersion().String(), gvk.Kind
		ns, name = objectNamespace(d.Object), objectName(d.Object)
	}
	if ns != "" {
		name = ns + "/" + name
	}
	return fmt.Sprintf("%s %s %s (%s)", apiVersion, kind, name, where(d))
}

// where names a document's place: "deploy.yaml, document 2". Documents are
// counted from 0, as in feasibility.DecodeError.
func where(d feasibility.Document) string {
	src := d.Source
	if src == Stdin {
		src = "stdin"
	}
	return fmt.Sprintf("%s, document %d", src, d.Index)
}
