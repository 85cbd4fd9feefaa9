package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// The deployment examples stay valid: the Kubernetes example's scimgate
// configuration passes serve --check-config, and every SCIMGATE_ variable
// the examples set is one scimgate reads.
func TestDeployExamples(t *testing.T) {
	root := filepath.Join("..", "..")
	k8s, err := os.ReadFile(filepath.Join(root, "deploy", "kubernetes", "scimgate.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(strings.NewReader(string(k8s)))
	var config string
	for {
		var doc struct {
			Kind string            `yaml:"kind"`
			Data map[string]string `yaml:"data"`
		}
		if err := dec.Decode(&doc); err != nil {
			break
		}
		if doc.Kind == "ConfigMap" {
			config = doc.Data["config.yaml"]
		}
	}
	if config == "" {
		t.Fatal("the Kubernetes example has no ConfigMap with config.yaml")
	}
	c := newTestCLI(t, "sqlite")
	if out := c.ok("serve", "--check-config", "--config", writeConfig(t, config)); out != "config ok\n" {
		t.Errorf("serve --check-config on the Kubernetes example printed %q", out)
	}

	known := map[string]bool{"SCIMGATE_CONFIG": true}
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range strings.FieldsFunc(string(src), func(r rune) bool { return r == '"' }) {
		if strings.HasPrefix(f, "SCIMGATE_") {
			known[f] = true
		}
	}
	for _, file := range []string{"Dockerfile", "deploy/kubernetes/scimgate.yaml", "deploy/systemd/scimgate.service"} {
		b, err := os.ReadFile(filepath.Join(root, file))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range strings.FieldsFunc(string(b), func(r rune) bool {
			return !(r == '_' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9')
		}) {
			if strings.HasPrefix(f, "SCIMGATE_") && !known[f] {
				t.Errorf("%s sets %s, which scimgate does not read", file, f)
			}
		}
	}
}
