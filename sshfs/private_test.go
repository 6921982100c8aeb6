package sshfs

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// openPacket is an SFTP OPEN of path with pflags and no attributes.
func openPacket(id uint32, path string, pflags uint32) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint32(b, uint32(1+4+4+len(path)+4+4))
	b = append(b, fxpOpen)
	b = binary.BigEndian.AppendUint32(b, id)
	b = binary.BigEndian.AppendUint32(b, uint32(len(path)))
	b = append(b, path...)
	b = binary.BigEndian.AppendUint32(b, pflags)
	return binary.BigEndian.AppendUint32(b, 0)
}

// An OPEN that creates a file gets mode 0600; any other packet, and an
// OPEN's look-alike inside another packet's bytes, go on as they were.
func TestPrivateCreates(t *testing.T) {
	var out bytes.Buffer
	p := &privateCreates{w: &out}
	create := openPacket(7, "/www/.x.tmp", 0x02|fxfCreat|0x20)
	read := openPacket(8, "/www/a", 0x01)
	// A WRITE whose data is an OPEN's bytes, its head and data written
	// apart as the client does.
	data := openPacket(9, "/etc/evil", fxfCreat)
	var head []byte
	head = binary.BigEndian.AppendUint32(head, uint32(1+4+len(data)))
	head = append(head, 6)
	head = binary.BigEndian.AppendUint32(head, 10)
	for _, w := range [][]byte{create, read, head, data} {
		if n, err := p.Write(w); err != nil || n != len(w) {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	want := openPacket(7, "/www/.x.tmp", 0x02|fxfCreat|0x20)
	want = want[:len(want)-4]
	want = binary.BigEndian.AppendUint32(want, fxAttrPerm)
	want = binary.BigEndian.AppendUint32(want, 0o600)
	binary.BigEndian.PutUint32(want, uint32(len(want)-4))
	wantAll := append(append(append(append([]byte(nil), want...), read...), head...), data...)
	if !bytes.Equal(out.Bytes(), wantAll) {
		t.Errorf("written:\n%x\nwant:\n%x", out.Bytes(), wantAll)
	}
}
