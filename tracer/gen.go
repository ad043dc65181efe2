package tracer

//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -cflags "-O2 -g -Wall -Werror" -target amd64,arm64 -type pt_event -type pt_kind -type pt_via -type pt_event_flags -type pt_sock -type ctr_key -type hold_hist porttrace ../bpf/porttrace.bpf.c -- -I../bpf/headers
