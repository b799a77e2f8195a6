package main

import (
	"runtime"
	"runtime/debug"
)

// versionLine is what --version and `gatehouse version` print: the module
// version, the VCS revision the binary was built from (with "+modified"
// for a dirty tree), and the Go version.
func versionLine() string {
	rev, modified := "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	switch {
	case rev == "":
		rev = "unknown (built without VCS information)"
	case modified:
		rev += "+modified"
	}
	return version() + ", revision " + rev + ", " + runtime.Version()
}
