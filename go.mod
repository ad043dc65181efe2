module github.com/porttrace/porttrace

go 1.26.0

require (
	github.com/cilium/ebpf v0.22.0
	github.com/fatih/color v1.19.0
	github.com/mattn/go-isatty v0.0.20
	github.com/spf13/pflag v1.1.0
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)

require github.com/mattn/go-colorable v0.1.14 // indirect

tool github.com/cilium/ebpf/cmd/bpf2go
