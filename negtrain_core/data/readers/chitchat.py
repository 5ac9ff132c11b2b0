"""Reader for the embedded default corpus: the Chit Chat Challenge dataset (PyPI ``chitchat-dataset``, MIT).

The installed package holds 7,168 two-party conversations as ``{conversation id: {"messages": [turn, ...]}}``, each
turn a list of ``{"text", "sender", "timestamp"}`` messages of one sender. One utterance per turn: the turn's
message texts joined with a space (consecutive turns never share a sender in the released data).

3,150 conversations are a single unanswered turn; they hold no (context, response) pair and preprocessing drops
them, leaving 4,014 (of 4,018 with two or more turns: 4 lose a turn that normalises to nothing).

Split (``datasets.chitchat.split`` in config.yaml; the reader fixes none): preprocessing orders the usable
conversation ids by the SHA-256 hex digest of the id (``order: sorted_id_hash``), so the split depends on the ids
alone, not on file order or a seed. In that order, train = all but the last 600 (3,414 conversations),
valid = the next 300, test = the final 300 (``negtrain_core.data.preprocess.split_ids``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from negtrain_core.config import DataSettings
from negtrain_core.data.readers import Dialogue, ReadResult
from negtrain_core.data.readers.archive import Tally

SOURCE = "chitchat_dataset package"


def turn_text(turn: Any) -> str | None:
    """The turn's message texts joined by a space, or None when the turn is not a non-empty list of messages."""
    if not isinstance(turn, list) or not turn:
        return None
    texts = [m.get("text") if isinstance(m, dict) else None for m in turn]
    if any(not isinstance(t, str) for t in texts):
        return None
    return " ".join(texts)


def from_conversations(conversations: Mapping[str, Any], source: str = SOURCE) -> ReadResult:
    """Dialogues from ``{id: {"messages": [[{text, sender, timestamp}, ...], ...]}}``, in mapping order.

    A record is one turn; a turn that is not a list of messages with string ``text`` is malformed and skipped
    (the rest of its conversation is kept). A conversation without a ``messages`` list is one malformed record,
    one with an empty list an empty conversation (dropped).
    """
    tally, dialogues = Tally(), []
    for cid, conv in conversations.items():
        turns = conv.get("messages") if isinstance(conv, dict) else None
        if not isinstance(turns, list):
            tally.bad(f"{source}:{cid}", "no 'messages' list", file=source)
            continue
        if not turns:
            tally.empty_file(f"{source}:{cid}", "conversation without turns", file=source)
            continue
        utterances = []
        for i, turn in enumerate(turns):
            text = turn_text(turn)
            if text is None:
                tally.bad(f"{source}:{cid}/turn {i}", "not a list of messages with text", file=source)
            else:
                tally.ok()
                utterances.append(text)
        dialogues.append(Dialogue(str(cid), tuple(utterances)))
    notes = {"source": source, "conversations": len(dialogues),
             "one_turn_conversations": sum(1 for d in dialogues if len(d.utterances) < 2)}
    return tally.result(dialogues, notes=notes)


def read(data: DataSettings) -> ReadResult:
    """All conversations of the installed package (``data.raw`` is unused: nothing to download)."""
    import chitchat_dataset

    return from_conversations(chitchat_dataset.Dataset())
