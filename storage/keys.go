package storage

import (
	"encoding/binary"

	"github.com/weftnet/weft/crypto"
	"github.com/weftnet/weft/protocol"
)

// Key layout. Every key starts with a one-byte table prefix; all but the
// event locator are scoped by thread ID.
//
//	e thread event            -> encoded event (pruned once deleted)
//	m thread event            -> protocol.EventMeta
//	i event                   -> thread (find an event's thread by its ID)
//	s thread writer seq(8)    -> event ID (per-writer sequence: what sync serves)
//	o thread order(40)        -> kind (linear order of all events)
//	c thread event            -> "" (control events: loaded at open)
//	v thread writer           -> seq(8) event ID (tips: the version vector)
//	t thread                  -> thread record (heads, counters)
//	M thread message          -> protocol.MessageState
//	g thread order(40)        -> "" (visible messages in linear order: paging)
//	r thread message order(40)-> kind (updates and deletes acting on a message)
//	h thread event            -> encoded event held for missing parents
//	q thread writer seq(8)    -> rejected event ID (equivocations, before version 2; not read)
//	f thread writer seq(8)    -> IDs of the versions beyond the first of a forked sequence number
//	d thread                  -> "" (the thread is deleted and pruned to its tombstone)
const (
	pEvent   = 'e'
	pMeta    = 'm'
	pLocator = 'i'
	pSeq     = 's'
	pOrder   = 'o'
	pControl = 'c'
	pTip     = 'v'
	pThread  = 't'
	pMessage = 'M'
	pList    = 'g'
	pActs    = 'r'
	pHeld    = 'h'
	pEquivoc = 'q'
	pDeleted = 'd'
	pFork    = 'f'
)

func key(prefix byte, thread protocol.ThreadID, parts ...[]byte) []byte {
	n := 1 + 32
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n)
	k = append(k, prefix)
	k = append(k, thread[:]...)
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func eventKey(t protocol.ThreadID, id protocol.EventID) []byte { return key(pEvent, t, id[:]) }
func metaKey(t protocol.ThreadID, id protocol.EventID) []byte  { return key(pMeta, t, id[:]) }
func locatorKey(id protocol.EventID) []byte                    { return append([]byte{pLocator}, id[:]...) }
func seqKey(t protocol.ThreadID, w crypto.UserID, seq uint64) []byte {
	return key(pSeq, t, w[:], binary.BigEndian.AppendUint64(nil, seq))
}
func orderKey(t protocol.ThreadID, o protocol.Order) []byte { return key(pOrder, t, o.AppendKey(nil)) }
func controlKey(t protocol.ThreadID, id protocol.EventID) []byte {
	return key(pControl, t, id[:])
}
func tipKey(t protocol.ThreadID, w crypto.UserID) []byte { return key(pTip, t, w[:]) }
func threadKey(t protocol.ThreadID) []byte               { return key(pThread, t) }
func messageKey(t protocol.ThreadID, m protocol.EventID) []byte {
	return key(pMessage, t, m[:])
}
func listKey(t protocol.ThreadID, o protocol.Order) []byte { return key(pList, t, o.AppendKey(nil)) }
func actsKey(t protocol.ThreadID, m protocol.EventID, o protocol.Order) []byte {
	return key(pActs, t, m[:], o.AppendKey(nil))
}
func heldKey(t protocol.ThreadID, id protocol.EventID) []byte { return key(pHeld, t, id[:]) }
func forkKey(t protocol.ThreadID, w crypto.UserID, seq uint64) []byte {
	return key(pFork, t, w[:], binary.BigEndian.AppendUint64(nil, seq))
}
func deletedKey(t protocol.ThreadID) []byte                { return key(pDeleted, t) }
func threadPrefix(prefix byte, t protocol.ThreadID) []byte { return key(prefix, t) }
