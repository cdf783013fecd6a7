package protocol

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/weftnet/weft/crypto"
)

// ThreadTopic is the GossipSub topic of a thread. It is a hash, so the
// topic name shows neither the thread ID nor its members.
func ThreadTopic(t ThreadID) string {
	h := sha256.Sum256(append([]byte("weft-topic-thread-v1\x00"), t[:]...))
	return "/weft/thread/1/" + hex.EncodeToString(h[:])
}

// InboxTopic is a user's inbox topic: thread creations and additions of
// the user are published there, so the user's nodes (and bridges serving
// the user) learn of new threads even if the creator goes offline.
func InboxTopic(u crypto.UserID) string {
	h := sha256.Sum256(append([]byte("weft-topic-inbox-v1\x00"), u[:]...))
	return "/weft/inbox/1/" + hex.EncodeToString(h[:])
}
