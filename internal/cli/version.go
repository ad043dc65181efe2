package cli

import "runtime/debug"

// version is set at link time by the Makefile (-X); otherwise it comes from
// the module's build information.
var version = ""

// Version of this build.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	v := bi.Main.Version
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		v = rev
		if dirty {
			v += "-dirty"
		}
	}
	if v == "" || v == "(devel)" {
		return "devel"
	}
	return v
}
