package protocol

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

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

// IsInboxTopic reports whether name is an inbox topic.
func IsInboxTopic(name string) bool { return strings.HasPrefix(name, "/weft/inbox/1/") }

// GossipMessageID is the GossipSub message ID of an event published on a
// topic. On a thread topic it is the event ID, so the same event reached
// by two paths is one message. On an inbox topic it is bound to the topic
// as well: pubsub keeps one "seen" set for all topics, and an event that is
// published on its thread topic and then on a member's inbox would
// otherwise be dropped there as a duplicate of itself.
func GossipMessageID(topic string, id EventID) string {
	if !IsInboxTopic(topic) {
		return string(id[:])
	}
	h := sha256.New()
	h.Write([]byte("weft-gossip-inbox-v1\x00"))
	h.Write([]byte(topic))
	h.Write([]byte{0})
	h.Write(id[:])
	return string(h.Sum(nil))
}
