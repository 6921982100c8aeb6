package sshfs

import (
	"encoding/binary"
	"io"
)

// privateCreates makes every file the SFTP client creates start as 0600
// (less the server's umask), whatever its mode will be. The client
// (pkg/sftp) opens a new file with no attributes, so the server creates
// it 0666 less its umask, and cairn sets the file's own mode only once
// its bytes are in: another user of the host who opened the file in
// between (watching the directory) would keep reading what is written to
// it — the old bytes of a file being patched, a wp-config.php. The server
// takes a mode in the OPEN request that creates the file (OpenSSH's
// sftp-server does): privateCreates adds it to the request, on its way
// to the server.
//
// It reads the stream the client writes as SFTP packets (a uint32
// length, then the packet), so that only the start of a packet is ever
// taken for one; the client writes each packet whole, its head in one
// Write (pkg/sftp's sendPacket), and an OPEN is all head. A Write that
// is not so is passed on as it is.
type privateCreates struct {
	w    io.Writer
	left int  // bytes of the current packet not yet written
	lost bool // a Write left the packets' starts unknown: pass all on
}

// SFTP (draft-ietf-secsh-filexfer-02) numbers: the OPEN request, its
// flag that creates the file, and the attribute flag of a mode.
const (
	fxpOpen        = 3
	fxfCreat       = 0x08
	fxAttrPerm     = 0x04
	privateNewMode = 0o600
)

func (p *privateCreates) Write(b []byte) (int, error) {
	n := len(b)
	if p.lost {
		_, err := p.w.Write(b)
		return n, err
	}
	for len(b) > 0 {
		if p.left > 0 {
			k := min(p.left, len(b))
			if _, err := p.w.Write(b[:k]); err != nil {
				return 0, err
			}
			p.left, b = p.left-k, b[k:]
			continue
		}
		if len(b) < 4 {
			// Not a packet's start as the client writes them: pass it
			// on, and all that follows.
			p.lost = true
			_, err := p.w.Write(b)
			return n, err
		}
		size := 4 + int(binary.BigEndian.Uint32(b))
		if size <= len(b) {
			if err := p.packet(b[:size]); err != nil {
				return 0, err
			}
			b = b[size:]
			continue
		}
		p.left = size - len(b)
		if _, err := p.w.Write(b); err != nil {
			return 0, err
		}
		b = nil
	}
	return n, nil
}

// packet writes one whole packet, an OPEN that creates a file with the
// mode privateNewMode added.
func (p *privateCreates) packet(pk []byte) error {
	if out, ok := withPrivateMode(pk); ok {
		pk = out
	}
	_, err := p.w.Write(pk)
	return err
}

// withPrivateMode returns an OPEN packet that creates a file and names
// no attributes with privateNewMode as its attributes.
func withPrivateMode(pk []byte) ([]byte, bool) {
	// length, type, id, path (uint32 length, bytes), pflags, attr flags
	if len(pk) < 4+1+4+4 || pk[4] != fxpOpen {
		return nil, false
	}
	pathLen := int(binary.BigEndian.Uint32(pk[9:13]))
	at := 13 + pathLen
	if pathLen < 0 || at+8 != len(pk) {
		return nil, false
	}
	pflags, attrs := binary.BigEndian.Uint32(pk[at:]), binary.BigEndian.Uint32(pk[at+4:])
	if pflags&fxfCreat == 0 || attrs != 0 {
		return nil, false
	}
	out := make([]byte, 0, len(pk)+4)
	out = binary.BigEndian.AppendUint32(out, uint32(len(pk)+4-4))
	out = append(out, pk[4:at+4]...)
	out = binary.BigEndian.AppendUint32(out, fxAttrPerm)
	out = binary.BigEndian.AppendUint32(out, privateNewMode)
	return out, true
}
