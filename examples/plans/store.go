package plans

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// labFolderStore is the lab plan's store: a folder held by dc2 (its path
// as the plan spells it, or as a test spelled it out).
var labFolderStore = regexp.MustCompile(`(?m)^(  store:\n    site: \S+\n)    path: [^\n]+\n`)

// S3Store is a bucket to keep the lab's recovery points in instead of its
// folder store.
type S3Store struct {
	// Endpoint is host:port of the S3 API; Bucket must exist.
	Endpoint string
	Bucket   string
	Prefix   string
	// AccessKey and SecretKey are secret references (env:NAME,
	// file:PATH), never the keys themselves.
	AccessKey string
	SecretKey string
	TLS       bool
}

// LabWithS3Store returns the lab plan text with its storage.store moved
// from the folder into the bucket: captures wait in
// ${DROVER_LAB_DIR}/staging for their upload; layout and guarantees are the
// folder's.
func LabWithS3Store(text string, s S3Store) (string, error) {
	loc := labFolderStore.FindStringSubmatchIndex(text)
	if loc == nil {
		return "", fmt.Errorf("the lab plan has no storage.store with a site and a path to move into a bucket")
	}
	var b strings.Builder
	b.WriteString(text[loc[2]:loc[3]])
	b.WriteString("    s3:\n")
	fmt.Fprintf(&b, "      endpoint: %s\n", strconv.Quote(s.Endpoint))
	fmt.Fprintf(&b, "      bucket: %s\n", strconv.Quote(s.Bucket))
	if s.Prefix != "" {
		fmt.Fprintf(&b, "      prefix: %s\n", strconv.Quote(s.Prefix))
	}
	fmt.Fprintf(&b, "      accessKey: %s\n", strconv.Quote(s.AccessKey))
	fmt.Fprintf(&b, "      secretKey: %s\n", strconv.Quote(s.SecretKey))
	if s.TLS {
		b.WriteString("      tls: true\n")
	}
	b.WriteString("    staging: ${DROVER_LAB_DIR}/staging\n")
	return text[:loc[0]] + b.String() + text[loc[1]:], nil
}
