package tests

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	historypb "go.temporal.io/api/history/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// secretNeedles are the forms a secret may take in a history: as is, JSON
// escaped (with and without HTML escaping), and base64 (standard and URL
// alphabets, at each of the three byte alignments it can start at inside a
// longer encoded value, e.g. a []byte field of a JSON payload).
func secretNeedles(secret string) []string {
	needles := []string{secret}
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(secret)
		needles = append(needles, strings.TrimSuffix(strings.TrimSpace(b.String()), `"`)[1:])
	}
	for _, alphabet := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		for pad := range 3 {
			enc := alphabet.EncodeToString(append(make([]byte, pad), secret...))
			// Drop the first group when it holds the padding bytes and the
			// last group, which depends on what follows the secret.
			skip := 0
			if pad > 0 {
				skip = 4
			}
			needles = append(needles, enc[skip:len(enc)-4])
		}
	}
	return needles
}

// eventTexts is what to search in one history event: its protojson form
// and, decoded, the data and metadata of every payload anywhere in it
// (protojson shows payload data as base64, where no secret can be seen).
func eventTexts(t *testing.T, ev *historypb.HistoryEvent) []string {
	t.Helper()
	raw, err := protojson.Marshal(ev)
	require.NoError(t, err)
	texts := []string{string(raw)}
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		if p, ok := m.Interface().(*commonpb.Payload); ok {
			texts = append(texts, string(p.GetData()))
			for _, v := range p.GetMetadata() {
				texts = append(texts, string(v))
			}
			return
		}
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message())
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Kind() == protoreflect.MessageKind:
				walk(v.Message())
			}
			return true
		})
	}
	walk(proto.Message(ev).ProtoReflect())
	return texts
}

// findSecret says which form of which secret occurs in the texts, or "".
func findSecret(texts []string, secrets ...string) string {
	for _, s := range secrets {
		for _, n := range secretNeedles(s) {
			for _, text := range texts {
				if strings.Contains(text, n) {
					return s + " (as " + n + ")"
				}
			}
		}
	}
	return ""
}

// The scanner must see through the encodings: a value inside a payload
// (base64 in protojson), inside a []byte field of a JSON payload (base64
// twice) and JSON-escaped; and must not cry wolf.
func TestSecretScannerSeesThroughEncodings(t *testing.T) {
	const secret = "ldap-Pa55word-7f3a91<&>"
	event := func(data []byte) *historypb.HistoryEvent {
		return &historypb.HistoryEvent{EventId: 5, Attributes: &historypb.HistoryEvent_ActivityTaskScheduledEventAttributes{
			ActivityTaskScheduledEventAttributes: &historypb.ActivityTaskScheduledEventAttributes{
				Input: &commonpb.Payloads{Payloads: []*commonpb.Payload{{
					Metadata: map[string][]byte{"encoding": []byte("json/plain")}, Data: data,
				}}},
			},
		}}
	}
	plain, err := json.Marshal(map[string]string{"command": "echo " + secret})
	require.NoError(t, err)
	raw, err := protojson.Marshal(event(plain))
	require.NoError(t, err)
	require.NotContains(t, string(raw), "Pa55word", "protojson alone hides payload data: the old scan saw nothing")
	require.NotEmpty(t, findSecret(eventTexts(t, event(plain)), secret), "JSON-escaped in a payload")
	for pad := range 4 {
		bytesField, err := json.Marshal(map[string][]byte{"manifest": append([]byte(strings.Repeat("x", pad)), secret+" trailing"...)})
		require.NoError(t, err)
		require.NotEmpty(t, findSecret(eventTexts(t, event(bytesField)), secret), "base64 in a JSON payload, offset %d", pad)
	}
	clean, err := json.Marshal(map[string]string{"command": "echo [redacted]"})
	require.NoError(t, err)
	require.Empty(t, findSecret(eventTexts(t, event(clean)), secret))
}
