package sshfs_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cairn-backup/cairn/internal/testenv"
)

func adv2Open(id uint32, path string, pflags uint32) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(1+4+4+len(path)+4+4))
	b = append(b, 3)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, uint32(len(path)))
	b = append(b, path...)
	b = binary.BigEndian.AppendUint32(b, pflags)
	return binary.BigEndian.AppendUint32(b, 0)
}

func TestAdv2Modes(t *testing.T) {
	srv := testenv.NewSSHD(t)
	dir := filepath.Join(t.TempDir(), "www")
	os.MkdirAll(dir, 0o755)
	tr := remote(t, srv, dir)
	ctx := context.Background()
	var crafted []byte
	for i := 0; len(crafted) < 3<<20; i++ {
		crafted = append(crafted, adv2Open(uint32(i), "/tmp/adv2evil", 0x1a)...)
	}
	crafted2 := bytes.Repeat([]byte("\x00\x00\x00\x15\x03"), 700000)
	type c struct {
		name string
		data []byte
		mode fs.FileMode
	}
	cases := []c{{"crafted.bin", crafted, 0o644}, {"crafted2.bin", crafted2, 0o755}, {"empty", nil, 0o644}, {"zero", []byte("x"), 0}, {"ro", []byte("r"), 0o444}, {"x.sh", []byte("#!/bin/sh\n"), 0o755}, {"g", []byte("g"), 0o664}, {"o", []byte("o"), 0o777}}
	for i := 0; i < 200; i++ {
		cases = append(cases, c{fmt.Sprintf("small/f%03d", i), bytes.Repeat(adv2Open(uint32(i), "/x", 0x08), i), []fs.FileMode{0o600, 0o644, 0o755, 0o640, 0o700, 0o444}[i%6]})
	}
	os.MkdirAll(filepath.Join(dir, "small"), 0o755)
	var wg sync.WaitGroup
	errs := make(chan error, len(cases))
	sem := make(chan struct{}, 32)
	for _, k := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := tr.WriteFile(ctx, k.name, bytes.NewReader(k.data), k.mode, testenv.MemTime); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	for _, k := range cases {
		fi, err := os.Stat(filepath.Join(dir, k.name))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != k.mode {
			t.Errorf("%s: mode %v want %v", k.name, fi.Mode().Perm(), k.mode)
		}
		b, _ := os.ReadFile(filepath.Join(dir, k.name))
		if !bytes.Equal(b, k.data) {
			t.Errorf("%s: content differs (%d vs %d bytes)", k.name, len(b), len(k.data))
		}
	}
	if _, err := os.Stat("/tmp/adv2evil"); err == nil {
		t.Errorf("/tmp/adv2evil created!")
	}
	// Patch path with crafted content, final mode 0755
	old := bytes.Repeat(adv2Open(1, "/tmp/adv2evil2", 0x1a), (9<<20)/30)
	os.WriteFile(filepath.Join(dir, "big.bin"), old, 0o644)
	want := bytes.Clone(old)
	copy(want[5<<20:], adv2Open(99, "/tmp/adv2evil3", 0x1a))
	want = append(want, crafted...)
	sent, same, err := tr.Patch(ctx, "big.bin", bytes.NewReader(want), int64(len(want)), 0o755, testenv.MemTime)
	t.Logf("patch sent %d same %v err %v", sent, same, err)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "big.bin"))
	fi, _ := os.Stat(filepath.Join(dir, "big.bin"))
	if !bytes.Equal(b, want) || fi.Mode().Perm() != 0o755 {
		t.Errorf("big.bin: equal %v mode %v", bytes.Equal(b, want), fi.Mode())
	}
	for _, p := range []string{"/tmp/adv2evil2", "/tmp/adv2evil3"} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s created", p)
		}
	}
	if ts := temps(dir); len(ts) > 0 {
		t.Errorf("temps left: %v", ts)
	}
}
