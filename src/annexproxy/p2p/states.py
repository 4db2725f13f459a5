"""The P2P conversation as a transition table (wire.md 2.6 and 2.8).

The table is shared by both roles: a state names whose turn it is, and each entry says
which message the speaker may send there and where the conversation goes next. The
connection (`annexproxy.p2p.connection`) is the one place that consults it. DATA payloads
are handled by the connection; the table only says where a DATA leads after its payload.
Pure: no I/O.
"""

from __future__ import annotations

from enum import Enum

from annexproxy.p2p import messages as m


class Role(Enum):
    """Who opened the connection (client) and who only answers (server)."""

    CLIENT = "client"
    SERVER = "server"

    @property
    def peer(self) -> Role:
        """The other role."""
        return Role.SERVER if self is Role.CLIENT else Role.CLIENT


class State(Enum):
    """Conversation states; the comment says whose turn it is."""

    START = "start"  # server (AUTH-SUCCESS unprompted) or client (AUTH)
    AUTHING = "authing"  # server
    IDLE = "idle"  # client
    VERSIONING = "versioning"  # server
    AWAIT_CHECKPRESENT = "await-checkpresent"  # server
    AWAIT_LOCK = "await-lock"  # server
    LOCKED = "locked"  # client
    AWAIT_REMOVE = "await-remove"  # server
    AWAIT_TIMESTAMP = "await-timestamp"  # server
    AWAIT_GET_DATA = "await-get-data"  # server
    GET_VALIDITY = "get-validity"  # server
    AWAIT_GET_ACK = "await-get-ack"  # client
    AWAIT_PUT_REPLY = "await-put-reply"  # server
    AWAIT_PUT_DATA = "await-put-data"  # client
    PUT_VALIDITY = "put-validity"  # client
    AWAIT_PUT_RESULT = "await-put-result"  # server
    AWAIT_CHANGED = "await-changed"  # server
    RELAY = "relay"  # both
    RELAY_DONE = "relay-done"  # both
    CLOSED = "closed"  # nobody


C, S = Role.CLIENT, Role.SERVER
RESULTS = (m.Success, m.Failure, m.SuccessPlus, m.FailurePlus)
PLUS = (m.SuccessPlus, m.FailurePlus, m.AlreadyHavePlus)

TRANSITIONS: dict[tuple[State, Role, type], State] = {
    (State.START, S, m.AuthSuccess): State.IDLE,
    (State.START, C, m.Auth): State.AUTHING,
    (State.AUTHING, S, m.AuthSuccess): State.IDLE,
    (State.AUTHING, S, m.AuthFailure): State.START,
    (State.IDLE, C, m.Version): State.VERSIONING,
    (State.VERSIONING, S, m.Version): State.IDLE,
    (State.IDLE, C, m.Bypass): State.IDLE,
    (State.IDLE, C, m.CheckPresent): State.AWAIT_CHECKPRESENT,
    (State.AWAIT_CHECKPRESENT, S, m.Success): State.IDLE,
    (State.AWAIT_CHECKPRESENT, S, m.Failure): State.IDLE,
    (State.IDLE, C, m.LockContent): State.AWAIT_LOCK,
    (State.AWAIT_LOCK, S, m.Success): State.LOCKED,
    (State.AWAIT_LOCK, S, m.Failure): State.IDLE,
    (State.LOCKED, C, m.UnlockContent): State.IDLE,
    (State.IDLE, C, m.Remove): State.AWAIT_REMOVE,
    (State.IDLE, C, m.RemoveBefore): State.AWAIT_REMOVE,
    **{(State.AWAIT_REMOVE, S, r): State.IDLE for r in RESULTS},
    (State.IDLE, C, m.GetTimestamp): State.AWAIT_TIMESTAMP,
    (State.AWAIT_TIMESTAMP, S, m.Timestamp): State.IDLE,
    (State.IDLE, C, m.Get): State.AWAIT_GET_DATA,
    (State.AWAIT_GET_DATA, S, m.Data): State.GET_VALIDITY,
    (State.GET_VALIDITY, S, m.Valid): State.AWAIT_GET_ACK,
    (State.GET_VALIDITY, S, m.Invalid): State.AWAIT_GET_ACK,
    **{(State.AWAIT_GET_ACK, C, r): State.IDLE for r in RESULTS},
    (State.IDLE, C, m.Put): State.AWAIT_PUT_REPLY,
    (State.AWAIT_PUT_REPLY, S, m.AlreadyHave): State.IDLE,
    (State.AWAIT_PUT_REPLY, S, m.AlreadyHavePlus): State.IDLE,
    (State.AWAIT_PUT_REPLY, S, m.PutFrom): State.AWAIT_PUT_DATA,
    (State.AWAIT_PUT_DATA, C, m.Data): State.PUT_VALIDITY,
    (State.AWAIT_PUT_DATA, C, m.DataPresent): State.AWAIT_PUT_RESULT,
    (State.AWAIT_PUT_DATA, C, m.Error): State.IDLE,
    (State.PUT_VALIDITY, C, m.Valid): State.AWAIT_PUT_RESULT,
    (State.PUT_VALIDITY, C, m.Invalid): State.AWAIT_PUT_RESULT,
    **{(State.AWAIT_PUT_RESULT, S, r): State.IDLE for r in RESULTS},
    (State.IDLE, C, m.NotifyChange): State.AWAIT_CHANGED,
    (State.AWAIT_CHANGED, S, m.Changed): State.IDLE,
    (State.IDLE, C, m.Connect): State.RELAY,
    (State.RELAY, C, m.Data): State.RELAY,
    (State.RELAY, S, m.Data): State.RELAY,
    (State.RELAY, S, m.ConnectDone): State.RELAY_DONE,
    (State.RELAY, C, m.ConnectDone): State.RELAY_DONE,
    (State.RELAY_DONE, S, m.ConnectDone): State.CLOSED,
    (State.RELAY_DONE, C, m.ConnectDone): State.CLOSED,
    (State.IDLE, C, m.Error): State.CLOSED,
}

# States where the client speaks next; in every other state (but RELAY) the server does.
CLIENT_TURN = frozenset(
    {
        State.IDLE,
        State.LOCKED,
        State.AWAIT_GET_ACK,
        State.AWAIT_PUT_DATA,
        State.PUT_VALIDITY,
    }
)

# Where a DATA leads once its payload is through, when the version has no VALID/INVALID.
NO_VALIDITY_AFTER_DATA = {
    State.GET_VALIDITY: State.AWAIT_GET_ACK,
    State.PUT_VALIDITY: State.AWAIT_PUT_RESULT,
}

# What a git-annex server answers when the client sends the wrong thing in a state where an
# operation is under way (wire.md 2.7); the operation is then abandoned.
EXPECTED_REPLY = {
    State.LOCKED: "expected UNLOCKCONTENT",
    State.AWAIT_PUT_DATA: "expected DATA",
    State.PUT_VALIDITY: "expected VALID or INVALID",
    State.AWAIT_GET_ACK: "expected SUCCESS or SUCCESS-PLUS or FAILURE or FAILURE-PLUS",
}
EXPECTED_REPLY_V0 = {State.AWAIT_GET_ACK: "expected SUCCESS or FAILURE"}
# Where such a mistake leads (IDLE unless listed). git-annex treats a bad validity line
# after an upload as INVALID: it still verifies and answers the PUT (observed, 10.20261026).
AFTER_MISTAKE = {State.PUT_VALIDITY: State.AWAIT_PUT_RESULT}


def allowed(state: State, sender: Role, kind: type) -> State | None:
    """Where the conversation goes when ``sender`` sends a ``kind`` message, or None."""
    if kind is m.Error:
        # A server fails the operation it was asked for; a client abandons its own step.
        if sender is Role.SERVER and state not in CLIENT_TURN:
            return State.START if state in (State.START, State.AUTHING) else State.IDLE
        if sender is Role.SERVER and state is State.IDLE:
            return State.IDLE
        if sender is Role.CLIENT and state in CLIENT_TURN and state is not State.IDLE:
            return State.IDLE
    return TRANSITIONS.get((state, sender, kind))
