package catalog

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnrestorableFollowsACumulativePointToItsFull(t *testing.T) {
	full := Point{ID: "f1", Mode: ModeFull, Validity: Validity{State: Valid}}
	damaged := Point{ID: "f2", Mode: ModeFull, Validity: Validity{State: Invalid, Reason: "restore refused damaged data"}}
	unreadable := Point{ID: "f3", Mode: ModeFull, Problem: "corrupt manifest: bad json"}
	onGood := Point{ID: "c1", Mode: ModeCumulative, BaseID: "f1", Validity: Validity{State: Valid}}
	onDamaged := Point{ID: "c2", Mode: ModeCumulative, BaseID: "f2", Validity: Validity{State: Valid}}
	onUnreadable := Point{ID: "c3", Mode: ModeCumulative, BaseID: "f3"}
	onGone := Point{ID: "c4", Mode: ModeCumulative, BaseID: "f9"}
	onCumulative := Point{ID: "c5", Mode: ModeCumulative, BaseID: "c1"}
	byID := ByID([]Point{full, damaged, unreadable, onGood, onDamaged, onUnreadable, onGone, onCumulative})

	assert.Empty(t, Unrestorable(byID, full))
	assert.Empty(t, Unrestorable(byID, onGood))
	assert.Equal(t, "invalid: restore refused damaged data", Unrestorable(byID, damaged))
	assert.Equal(t, "its full point f2 cannot be restored: invalid: restore refused damaged data", Unrestorable(byID, onDamaged))
	assert.Equal(t, "its full point f3 cannot be restored: corrupt manifest: bad json", Unrestorable(byID, onUnreadable))
	assert.Equal(t, "its full point f9 is gone", Unrestorable(byID, onGone))
	assert.Equal(t, "its base c1 is not a full point", Unrestorable(byID, onCumulative))
}
