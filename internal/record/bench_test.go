package record

import (
	"errors"
	"io"
	"os"
	"testing"
)

// BenchmarkReadRecording reads the recording named by PORTTRACE_RECORDING
// (for profiling the report's reading side).
func BenchmarkReadRecording(b *testing.B) {
	path := os.Getenv("PORTTRACE_RECORDING")
	if path == "" {
		b.Skip("set PORTTRACE_RECORDING to a recording")
	}
	for i := 0; i < b.N; i++ {
		r, err := Open([]string{path}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); errors.Is(err, io.EOF) {
				break
			}
		}
		r.Close()
	}
}
