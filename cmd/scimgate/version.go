package main

import (
	"fmt"
	"runtime/debug"
	"strings"
)

// buildInfo is what the binary knows of its own build, from the Go
// toolchain's build information: the module version ("(devel)" for a build
// from a checkout, a tag such as v1.2.0 for "go install …@v1.2.0"), the
// VCS revision and whether the checkout had uncommitted changes, and the Go
// version.
type buildInfo struct {
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"revision_time,omitempty"`
	Modified  bool   `json:"modified"`
	GoVersion string `json:"go_version"`
}

func readBuildInfo() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return buildInfo{Version: "unknown"}
	}
	b := buildInfo{Version: bi.Main.Version, GoVersion: bi.GoVersion}
	if b.Version == "" {
		b.Version = "(devel)"
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// String is one line: "scimgate v1.2.0 (revision 1a2b3c4d5e6f, modified) go1.26.0".
func (b buildInfo) String() string {
	var detail []string
	if b.Revision != "" {
		detail = append(detail, "revision "+b.Revision[:min(12, len(b.Revision))])
	}
	if b.Time != "" {
		detail = append(detail, b.Time)
	}
	if b.Modified {
		detail = append(detail, "modified")
	}
	s := "scimgate " + b.Version
	if len(detail) > 0 {
		s += " (" + strings.Join(detail, ", ") + ")"
	}
	return s + " " + b.GoVersion
}

func (c *cli) printVersion() error {
	b := readBuildInfo()
	if c.global.json {
		return printJSON(c.stdout, b)
	}
	_, err := fmt.Fprintln(c.stdout, b)
	return err
}
