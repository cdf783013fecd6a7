// Package protocol defines weft's replicated data and the rules every replica
// applies to it: the six event kinds, their versioned binary encoding, the
// validity rules of a thread's signed, hash-linked event log, the
// deterministic linear order, version vectors, and the fold that turns an
// ordered log into thread and message state.
//
// Everything here is deterministic and free of goroutines and I/O, so it can
// be tested exhaustively; package node wraps it with storage and networking.
//
// # Events
//
// An event has a header (kind, thread, writer, per-writer sequence number,
// parents, Lamport time, author time, key epoch), a control part whose
// meaning depends on the kind (member changes, wrapped keys, policy, the
// target of a message edit) and a content part (public metadata, sealed
// private metadata, sealed data). The author signs the header, the control
// part and the SHA-256 of the content; the event ID is the SHA-256 of those
// signed bytes and the thread ID is the ID of its ThreadCreate event. Because
// the signature covers only the hash of the content, a replica can drop the
// content of a deleted message or thread and still prove, to itself and to
// its peers, that the event is authentic ("pruned" events).
//
// # Validity and state
//
// Validity depends only on an event's causal past (its ancestors), so every
// honest replica that holds the same events accepts exactly the same ones,
// whatever order they arrived in. Membership, managers, policy and the key
// epoch at an event's causal position are the fold, in linear order, of the
// control events in its causal past. To find those cheaply every event
// carries (in its EventMeta, derived locally, never sent) a control vector:
// for each writer of control events, the highest sequence number of such an
// event in its causal past. Since every writer's events form a chain, a
// control event (w, s) is an ancestor of e exactly when e's control vector
// has an entry for w of at least s.
//
// Concurrent changes resolve in the linear order (Lamport time, event ID).
// The visible state of a thread is the fold of all its events in that order,
// in which an event whose writer is no longer permitted at its position is
// void: it stays stored (so replicas converge to identical event sets) but
// has no effect and is not shown. A member removed concurrently with its own
// posts therefore loses them once the removal is known; and since Lamport
// time is derived from parents, a removed member that pretends not to have
// seen its removal can only place a bounded number of events before it.
//
// # Key epochs
//
// Epoch 0's key is wrapped to every member in the ThreadCreate event; a
// ThreadUpdate that removes someone or rotates explicitly starts the next
// epoch and wraps a fresh key to the remaining members. HPKE key wraps are
// bound to the thread and the epoch number. A ThreadCreate cannot name its
// own thread ID (the ID is the hash of the event that carries the wraps), so
// wraps inside a ThreadCreate are bound to its random 32-byte nonce, which
// the thread ID commits to; every later wrap is bound to the thread ID.
// Because two managers may rotate concurrently, a key is identified by the
// event that introduced it (its KeyRef), not by its epoch number alone.
package protocol
