package activities

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/drover-dr/drover/catalog"
	"github.com/drover-dr/drover/contract"
	"github.com/drover-dr/drover/drivers/storage"
)

func TestDamagedByNamesThePointHoldingTheDamagedFile(t *testing.T) {
	inBase := fmt.Errorf("restore member db from point full-1: %w",
		&storage.CorruptError{File: "plan-a/points/full-1/g.db.tar.zst", Reason: "checksum mismatch"})
	assert.Equal(t, contract.Damage{Point: "full-1", File: "plan-a/points/full-1/g.db.tar.zst"}, damagedBy("plan-a", "cum-7", inBase))

	inItself := &storage.CorruptError{File: "plan-a/points/cum-7/g.db.tar.zst", Reason: "truncated"}
	assert.Equal(t, "cum-7", damagedBy("plan-a", "cum-7", inItself).Point)

	// A file the driver names some other way, or a manifest that cannot be
	// read, is charged to the point being restored.
	assert.Equal(t, "cum-7", damagedBy("plan-a", "cum-7", &storage.CorruptError{File: "elsewhere/x", Reason: "bad"}).Point)
	assert.Equal(t, contract.Damage{Point: "cum-7"}, damagedBy("plan-a", "cum-7", fmt.Errorf("load: %w", catalog.ErrCorrupt)))
}
