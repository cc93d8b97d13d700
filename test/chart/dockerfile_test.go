package chart

import (
	"bufio"
	"debug/elf"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// goBuild is one `go build` command line, parsed.
type goBuild struct {
	env     map[string]string
	flags   map[string]string // -trimpath -> "", -ldflags -> "-s -w"
	pkg     string
	outPath string
}

// parseGoBuild parses "[VAR=value ...] go build [flags] pkg" with single
// or double quotes, as a shell would split it.
func parseGoBuild(t *testing.T, line string) goBuild {
	t.Helper()
	words := shellWords(t, line)
	b := goBuild{env: map[string]string{}, flags: map[string]string{}}
	i := 0
	for ; i < len(words) && strings.Contains(words[i], "=") && !strings.HasPrefix(words[i], "-"); i++ {
		k, v, _ := strings.Cut(words[i], "=")
		b.env[k] = v
	}
	if i+1 >= len(words) || words[i] != "go" || words[i+1] != "build" {
		t.Fatalf("not a go build line: %q", line)
	}
	for i += 2; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-o":
			i++
			b.outPath = words[i]
		case w == "-ldflags" || w == "-tags" || w == "-gcflags":
			i++
			b.flags[w] = words[i]
		case strings.HasPrefix(w, "-"):
			k, v, _ := strings.Cut(w, "=")
			b.flags[k] = v
		default:
			b.pkg = w
		}
	}
	return b
}

func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// dockerfile is the parts of the Dockerfile that matter.
type dockerfile struct {
	froms      []string
	build      string // the RUN ... go build line
	user       string
	entrypoint string
	cmd        string
	copies     []string
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var d dockerfile
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			d.froms = append(d.froms, rest)
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.build = rest
			}
		case "USER":
			d.user = rest
		case "ENTRYPOINT":
			d.entrypoint = rest
		case "CMD":
			d.cmd = rest
		case "COPY":
			d.copies = append(d.copies, rest)
		}
	}
	return d
}

// makeBuild returns `make build`'s go build line with the Makefile's
// variables substituted.
func makeBuild(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"GO": "go", "BIN": "bin"}
	assign := regexp.MustCompile(`^([A-Z_]+)\s*[:?]?=\s*(.*)$`)
	var recipe []string
	inBuild := false
	for _, line := range strings.Split(string(data), "\n") {
		if m := assign.FindStringSubmatch(line); m != nil {
			if _, set := vars[m[1]]; !set {
				vars[m[1]] = strings.TrimSpace(m[2])
			}
		}
		switch {
		case strings.HasPrefix(line, "build:"):
			inBuild = true
		case inBuild && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimSpace(line))
		case inBuild:
			inBuild = false
		}
	}
	for _, line := range recipe {
		if strings.Contains(line, "build") && strings.Contains(line, "$(GO)") {
			return regexp.MustCompile(`\$\(([A-Z_]+)\)`).ReplaceAllStringFunc(line, func(v string) string {
				return vars[v[2:len(v)-1]]
			})
		}
	}
	t.Fatal("no go build line in the Makefile's build target")
	return ""
}

// TestDockerfile checks the image recipe without a Docker engine: its
// stages and user, that its build line is `make build`'s, and that the
// binary those flags produce is static and records them.
func TestDockerfile(t *testing.T) {
	d := readDockerfile(t)
	goVersion := goDirective(t)
	if len(d.froms) != 2 || d.froms[0] != "golang:"+goVersion+" AS build" ||
		d.froms[1] != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("stages %q: want golang:%s AS build, then gcr.io/distroless/static-debian12:nonroot", d.froms, goVersion)
	}
	if uid, _, _ := strings.Cut(d.user, ":"); !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(uid) {
		t.Errorf("USER %q: want a numeric non-root uid, so the kubelet can enforce runAsNonRoot", d.user)
	}
	if d.entrypoint != `["/fitgate"]` || d.cmd != `["serve"]` {
		t.Errorf("ENTRYPOINT %s CMD %s", d.entrypoint, d.cmd)
	}
	if !slices.Contains(d.copies, "--from=build /fitgate /fitgate") {
		t.Errorf("COPY lines %q do not take /fitgate from the build stage", d.copies)
	}

	docker := parseGoBuild(t, d.build)
	local := parseGoBuild(t, makeBuild(t))
	if docker.env["CGO_ENABLED"] != "0" || local.env["CGO_ENABLED"] != "0" {
		t.Errorf("CGO_ENABLED: Dockerfile %q, Makefile %q; want 0 in both", docker.env["CGO_ENABLED"], local.env["CGO_ENABLED"])
	}
	if _, ok := docker.flags["-trimpath"]; !ok {
		t.Errorf("the Dockerfile builds without -trimpath: %q", d.build)
	}
	if !maps.Equal(docker.flags, local.flags) || docker.pkg != local.pkg || docker.pkg != "./cmd/fitgate" {
		t.Errorf("Dockerfile builds %s with %v, make build %s with %v", docker.pkg, docker.flags, local.pkg, local.flags)
	}
	if docker.outPath != "/fitgate" {
		t.Errorf("the Dockerfile builds %s, the runtime stage copies /fitgate", docker.outPath)
	}

	// Build with the Dockerfile's flags and read them back.
	bin := filepath.Join(t.TempDir(), "fitgate")
	args := []string{"build"}
	for _, f := range []string{"-trimpath", "-ldflags"} {
		if v, ok := docker.flags[f]; ok {
			if f == "-ldflags" {
				args = append(args, f, v)
			} else {
				args = append(args, f)
			}
		}
	}
	cmd := exec.Command("go", append(args, "-o", bin, docker.pkg)...)
	cmd.Dir = repoRoot(t)
	cmd.Env = os.Environ()
	for k, v := range docker.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
	out, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	// go does not record -ldflags when -trimpath is set (they may hold
	// paths); -s -w is checked on the ELF below instead.
	for _, want := range []string{"build\tCGO_ENABLED=0", "build\t-trimpath=true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("go version -m lacks %q:\n%s", want, out)
		}
	}
	// Static: no interpreter, no shared libraries, so it runs on
	// distroless/static, which has no libc.
	ef, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	libs, _ := ef.ImportedLibraries()
	for _, p := range ef.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is dynamically linked")
		}
	}
	if len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %v", libs)
	}
	// -s -w: no symbol table, no DWARF.
	if docker.flags["-ldflags"] == "-s -w" {
		if syms, err := ef.Symbols(); err == nil && len(syms) > 0 {
			t.Errorf("-s: the binary still has %d symbols", len(syms))
		}
		for _, sec := range ef.Sections {
			if strings.HasPrefix(sec.Name, ".debug_") || strings.HasPrefix(sec.Name, ".zdebug_") {
				t.Errorf("-w: the binary still has DWARF section %s", sec.Name)
			}
		}
	}
	// -trimpath: no path of this machine in the binary.
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), repoRoot(t)) {
		t.Errorf("the binary contains the build directory %s", repoRoot(t))
	}
}

// TestDockerignoreKeepsTheBuildInputs: the build context excludes a lot
// (bin/ alone is hundreds of megabytes); nothing `go build ./cmd/fitgate`
// reads may be among it.
func TestDockerignoreKeepsTheBuildInputs(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimSuffix(line, "/"))
		}
	}
	cmd := exec.Command("go", "list", "-deps", "-f",
		`{{if .Module}}{{if eq .Module.Path "`+modulePath+`"}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`,
		"./cmd/fitgate")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	inputs := []string{"go.mod", "go.sum"}
	for _, f := range strings.Fields(string(out)) {
		rel, _ := filepath.Rel(repoRoot(t), f)
		inputs = append(inputs, rel)
	}
	if len(inputs) < 10 {
		t.Fatalf("only %d build inputs: %v", len(inputs), inputs)
	}
	for _, in := range inputs {
		if p := ignoredBy(patterns, in); p != "" {
			t.Errorf("%s is a build input but .dockerignore excludes it (%s)", in, p)
		}
	}
	for _, want := range []string{"bin/kube-apiserver", "test/e2e/webhook_test.go", "charts/fitgate/values.yaml", ".git/config"} {
		if ignoredBy(patterns, want) == "" {
			t.Errorf(".dockerignore lets %s into the build context", want)
		}
	}
}

// ignoredBy returns the pattern excluding path (Docker's rules, minus
// negation, which .dockerignore does not use): a pattern matches the path
// or one of its parent directories; **/ matches any number of directories.
func ignoredBy(patterns []string, path string) string {
	parts := strings.Split(path, "/")
	for _, p := range patterns {
		for i := 1; i <= len(parts); i++ {
			prefix := strings.Join(parts[:i], "/")
			if ok, _ := filepath.Match(p, prefix); ok {
				return p
			}
			if rest, ok := strings.CutPrefix(p, "**/"); ok {
				for j := 0; j < i; j++ {
					if ok, _ := filepath.Match(rest, strings.Join(parts[j:i], "/")); ok {
						return p
					}
				}
			}
		}
	}
	return ""
}

// goDirective is go.mod's language version as an image tag: 1.26.
func goDirective(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(data)
	if m == nil {
		t.Fatal("no go directive in go.mod")
	}
	return string(m[1])
}
