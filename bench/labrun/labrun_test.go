package labrun

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repo makes a repository root whose hack/testenv.sh is script.
func repo(t *testing.T, script string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "hack"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hack", "testenv.sh"), []byte("#!/bin/sh\n"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBinaries(t *testing.T) {
	herald := filepath.Join(t.TempDir(), "herald")
	if err := os.WriteFile(herald, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                 string
		herald, assets, repo string
		wantAssets           string
		wantErr              string
	}{
		{"assets given", herald, "/given/assets", repo(t, "exit 1"), "/given/assets", ""},
		{"assets from testenv.sh", herald, "", repo(t, "echo /from/script"), "/from/script", ""},
		{"testenv.sh fails", herald, "", repo(t, "exit 3"), "", "hack/testenv.sh"},
		{"no herald binary", herald + ".missing", "/given/assets", ".", "", "make build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, a, err := Binaries(context.Background(), tt.herald, tt.assets, tt.repo)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h != herald || a != tt.wantAssets {
				t.Errorf("Binaries = %q, %q; want %q, %q", h, a, herald, tt.wantAssets)
			}
		})
	}
}

func TestOptions(t *testing.T) {
	herald := filepath.Join(t.TempDir(), "herald")
	if err := os.WriteFile(herald, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	kept := t.TempDir()
	tests := []struct {
		name, logs string
		wantNew    bool
	}{
		{"-logs given", kept, false},
		{"a new log folder", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := Inputs{Herald: herald, Assets: "/assets", Repo: "/repo", Logs: tt.logs}
			opts, err := in.Options(context.Background(), "labrun-test-", nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantNew {
				defer os.RemoveAll(in.Logs)
				if !strings.HasPrefix(filepath.Base(in.Logs), "labrun-test-") {
					t.Errorf("log folder %q is not named after the prefix", in.Logs)
				}
				if st, err := os.Stat(in.Logs); err != nil || !st.IsDir() {
					t.Errorf("log folder %q: %v", in.Logs, err)
				}
			} else if in.Logs != tt.logs {
				t.Errorf("Logs = %q, want %q", in.Logs, tt.logs)
			}
			if opts.LogDir != in.Logs || opts.Herald != herald || opts.Assets != "/assets" || opts.CRDs != "/repo/config/crd/bases" {
				t.Errorf("Options = %+v (logs %q)", opts, in.Logs)
			}
		})
	}
}

func TestRegister(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", "/env/assets")
	tests := []struct {
		name string
		args []string
		want Inputs
	}{
		{"defaults", nil, Inputs{Herald: "bin/herald", Assets: "/env/assets", Repo: "."}},
		{"every flag", []string{"-herald", "/h", "-assets", "/a", "-repo", "/r", "-logs", "/l"}, Inputs{Herald: "/h", Assets: "/a", Repo: "/r", Logs: "/l"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("bench", flag.ContinueOnError)
			var in Inputs
			in.Register(fs)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if in != tt.want {
				t.Errorf("got %+v, want %+v", in, tt.want)
			}
		})
	}
}
