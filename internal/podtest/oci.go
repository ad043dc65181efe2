// Package podtest runs pods the way the kubelet does, through a real
// containerd's CRI API, for tests: its own containerd (config, root, state,
// socket), images written here as OCI archives from a static binary (no
// registry is reachable), and a CNI bridge on a private subnet.
package podtest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

type blob struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int    `json:"size"`
}

// writeOCIArchive writes an OCI image archive to file: one layer holding
// binary as /podbin, run by entrypoint, named name (as ctr import reads it).
func writeOCIArchive(file, name, binary string, entrypoint []string) error {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return err
	}
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	lw.WriteHeader(&tar.Header{Name: "podbin", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg})
	lw.Write(bin)
	lw.Close()

	blobs := map[string][]byte{}
	put := func(mediaType string, b []byte) blob {
		sum := sha256.Sum256(b)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = b
		return blob{mediaType, d, len(b)}
	}
	lay := put("application/vnd.oci.image.layer.v1.tar", layer.Bytes())
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": entrypoint},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{lay.Digest}},
	})
	cb := put("application/vnd.oci.image.config.v1+json", cfg)
	man, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": cb, "layers": []blob{lay}})
	mb := put("application/vnd.oci.image.manifest.v1+json", man)
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []any{map[string]any{
		"mediaType": mb.MediaType, "digest": mb.Digest, "size": mb.Size,
		"annotations": map[string]string{"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name},
	}}})

	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	w := tar.NewWriter(f)
	add := func(name string, b []byte) {
		w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		w.Write(b)
	}
	add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	add("index.json", index)
	for d, b := range blobs {
		add(fmt.Sprintf("blobs/sha256/%s", d[len("sha256:"):]), b)
	}
	return w.Close()
}
