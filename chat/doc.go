// Package chat is NoChat's real-time core: WebSocket connections (through
// melody), the two subprotocols, the send pipeline into the ordered log
// (db.Log), and the single broadcaster that hands every committed message
// to every connection in id order, feeding connections that fell behind
// from its replay window or the database.
//
// # Where things are
//
// A message's path, file by file:
//
//   - edge.go — the HTTP edge of the socket. ServeWSAs admits a connection
//     (the per-address and total limits, counted by admission; the origin;
//     the subprotocol; ?after= and ?user=), takes it out of net/http
//     (hijacked) and upgrades it on a goroutine of its own. melody's
//     connect and disconnect callbacks hand the connection to the
//     broadcaster (opJoin, opLeave); onError files socket errors.
//   - frames.go — what a connection sends: each frame decoded, validated,
//     checked against the sender's rights and rate limit, and a message
//     appended to the log; a refusal (refuse) goes to the sender alone.
//   - db.Log (package db) — append, then each committed batch, in order,
//     to the broadcaster (opCommit). The SQLite Writer implements it.
//   - broadcast.go — the broadcaster: one goroutine, the one registry of
//     connections (conns, live, inRoom: each room's connections, accounts,
//     the peak and online count), and every change to it as a typed
//     operation (op) applied in one switch (broadcaster.apply): join,
//     leave, commit, delete, prune, rename, nick, typing, presence, rejoin,
//     membership, room, marked. "Who receives this?" is answered in one
//     function, broadcaster.recipients: a message goes to its room's live
//     connections; deliver sends a committed batch to it, notify sends a
//     notice (deleted, room, membership to a room's connections; person,
//     presence to all). Readers of the registry (Snapshot, Disconnect,
//     EndSessions...) run on the broadcaster too (opRead); nothing else
//     reads its maps.
//   - rooms.go — the rooms: the directory (every room, and the memberships
//     read so far, changed only after the store), AccessTo (who may see,
//     post in, join, invite to and manage a room: the one statement of the
//     rules), and the room API (CreateRoom, Join, Invite, Leave,
//     RemoveMember, ChangeRoom, Rooms), each telling the broadcaster with
//     an op once the store has the change. A connection's rooms are an
//     immutable set (client.rooms) the broadcaster replaces.
//   - markup.go — a message's text as the page shows it (RenderHTML): the
//     small markup and links, sanitized, rendered once on the server.
//   - window.go — the replay window (the newest encoded messages), and
//     catchUp: a connection out of the live set, resuming or fallen
//     behind, is fed from the window or SQLite (its rooms' messages only,
//     and none the broadcaster has not published) until it rejoins
//     (opRejoin).
//   - queue.go — a connection's outgoing queue, the only place its frames
//     are counted: stream (messages, within the stream budget), send
//     (frames it must get), both waiting in order when melody's small
//     buffer is full; wrote (melody's sent handler) moves them on.
//     coalesce.go — the connection melody writes through, which sends a
//     backlog's frames in one write. client.go — who the connection is
//     and what it read. keepalive.go — every connection's ping, from one
//     goroutine, slot by slot (melody's would grow each write goroutine).
//   - protocol.go — the frames of nochat.v1 and echo-protocol, each
//     message encoded once per protocol (frames), not once per recipient.
//
// The rest: hub.go is the wiring (Options, New, Close and its order) and
// the send API (Send, SendAs, Stats); admin.go and people.go the API the
// admin pages and the account handlers use; errlog.go the admin's error
// log and the recovery of panics; validate.go and names.go what a message
// and a name may be; series.go the dashboard's last hour.
package chat
