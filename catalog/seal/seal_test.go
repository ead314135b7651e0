package seal

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"
)

func testKey(t testing.TB, id string) *Key {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	k, err := NewKey(id, b)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ring(t testing.TB, keys ...*Key) *Ring {
	t.Helper()
	r, err := NewRing(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRoundTripSizes(t *testing.T) {
	r := ring(t, testKey(t, "k1"))
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		plain := make([]byte, n)
		_, _ = rand.Read(plain)
		sealed, err := r.SealBytes(plain)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(sealed)) != r.SealedSize(int64(n)) {
			t.Fatalf("%d bytes: sealed %d, SealedSize says %d", n, len(sealed), r.SealedSize(int64(n)))
		}
		if bytes.Contains(sealed, plain) && n > 16 {
			t.Fatalf("%d bytes: plaintext visible in the sealed data", n)
		}
		got, err := r.OpenBytes(sealed)
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("%d bytes: round trip differs", n)
		}
	}
}

func TestTruncationAndTamperingAreDetected(t *testing.T) {
	r := ring(t, testKey(t, "k1"))
	plain := make([]byte, 2*ChunkSize+100)
	sealed, err := r.SealBytes(plain)
	if err != nil {
		t.Fatal(err)
	}
	head := int(headerLen("k1"))
	cuts := map[string][]byte{
		"after the header":      sealed[:head],
		"after one whole chunk": sealed[:head+ChunkSize+tagLen],
		"inside the last chunk": sealed[:len(sealed)-1],
	}
	for name, data := range cuts {
		if _, err := r.OpenBytes(data); !errors.Is(err, ErrDamaged) {
			t.Errorf("cut %s: got %v, want ErrDamaged", name, err)
		}
	}
	flipped := append([]byte(nil), sealed...)
	flipped[head+ChunkSize/2] ^= 1
	if _, err := r.OpenBytes(flipped); !errors.Is(err, ErrDamaged) {
		t.Errorf("flipped bit: got %v, want ErrDamaged", err)
	}
	// Swapping two full chunks is caught by the counter in the nonce.
	swapped := append([]byte(nil), sealed[:head]...)
	c0 := sealed[head : head+ChunkSize+tagLen]
	c1 := sealed[head+ChunkSize+tagLen : head+2*(ChunkSize+tagLen)]
	swapped = append(append(append(swapped, c1...), c0...), sealed[head+2*(ChunkSize+tagLen):]...)
	if _, err := r.OpenBytes(swapped); !errors.Is(err, ErrDamaged) {
		t.Errorf("swapped chunks: got %v, want ErrDamaged", err)
	}
}

func TestKeysRotateAndWrongKeysAreNamed(t *testing.T) {
	old, cur := testKey(t, "2025"), testKey(t, "2026")
	sealedOld, err := ring(t, old).SealBytes([]byte("a point from last year"))
	if err != nil {
		t.Fatal(err)
	}
	rotated := ring(t, cur, old)
	if rotated.SealingID() != "2026" {
		t.Fatalf("sealing id %s", rotated.SealingID())
	}
	if got, err := rotated.OpenBytes(sealedOld); err != nil || string(got) != "a point from last year" {
		t.Fatalf("old point with the old key listed: %q %v", got, err)
	}
	if _, err := ring(t, cur).OpenBytes(sealedOld); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("old key not listed: got %v, want ErrUnknownKey", err)
	}
	impostor := testKey(t, "2025")
	if _, err := ring(t, impostor).OpenBytes(sealedOld); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("other key under the same id: got %v, want ErrWrongKey", err)
	}
	if _, err := rotated.OpenBytes([]byte(`{"format":1}`)); !errors.Is(err, ErrNotSealed) {
		t.Fatalf("clear data: got %v, want ErrNotSealed", err)
	}
}

func TestSameSaltSameBytes(t *testing.T) {
	r := ring(t, testKey(t, "k"))
	salt, _ := NewSalt()
	seal := func() []byte {
		var b bytes.Buffer
		w, err := r.NewWriterSalt(&b, salt)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(w, bytes.NewReader(make([]byte, ChunkSize+5)))
		_ = w.Close()
		return b.Bytes()
	}
	if !bytes.Equal(seal(), seal()) {
		t.Fatal("the same salt must give the same bytes (resumable uploads rely on it)")
	}
}

func TestParseKey(t *testing.T) {
	if _, err := ParseKey("k", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"); err != nil {
		t.Fatal(err)
	}
	_, err := ParseKey("k", "hunter2")
	if err == nil || bytes.Contains([]byte(err.Error()), []byte("hunter2")) {
		t.Fatalf("short key: %v (must fail without quoting it)", err)
	}
}
