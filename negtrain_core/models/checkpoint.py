"""One self-describing checkpoint file per model, and the one loader used everywhere.

A checkpoint holds only tensors and primitive containers, so ``torch.load(..., weights_only=True)`` reads it:
the model state, the model settings, the kind (``seq2seq`` | ``lm``), the architecture (``lstm`` |
``transformer``; a file without one is an LSTM's, as every file was before there was a choice), the vocabulary
tokens and their sha256, the training settings, the epoch, the device the model was on when saved
(``device.describe``: for a GPU its physical id, name and UUID; a file without one predates the field), and, where
given, the optimiser state (momentum buffers), RNG states and any extra primitives. It is serialised in memory (so
the archive's root folder has a fixed name, not the temporary file's, and identical saves give identical bytes) and
written atomically. ``load`` rebuilds the model, refuses a vocabulary whose hash differs (and, asked for one, a
model of another architecture), and turns a truncated or corrupt file into one line that says how to rebuild it.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from negtrain_core.device import describe as describe_device
from negtrain_core.config import ModelSettings, TrainSettings, TransformerSettings
from negtrain_core.io import atomic_write_bytes
from negtrain_core.models.lstm import LSTMLM, Seq2Seq
from negtrain_core.models.transformer import TransformerLM, TransformerSeq2Seq
from negtrain_core.data.vocab import Vocab

FORMAT = "negtrain-checkpoint-v1"
KINDS: dict[str, type[nn.Module]] = {"seq2seq": Seq2Seq, "lm": LSTMLM}
ARCHS: dict[str, dict[str, type[nn.Module]]] = {"lstm": KINDS,
                                                "transformer": {"seq2seq": TransformerSeq2Seq, "lm": TransformerLM}}


class CheckpointError(ValueError):
    """A checkpoint that cannot be used here, stated in one line naming the file."""


class Checkpoint(NamedTuple):
    """A loaded checkpoint: the model (eval mode, on the requested device) and what describes it."""

    model: nn.Module
    kind: str
    vocab: Vocab
    model_settings: ModelSettings
    meta: dict[str, Any]


def build_model(kind: str, model_settings: ModelSettings) -> nn.Module:
    """A fresh model of ``kind`` ("seq2seq" | "lm") in the architecture of ``model_settings.arch``."""
    if kind not in KINDS:
        raise CheckpointError(f"unknown model kind '{kind}' (expected one of {', '.join(KINDS)})")
    if model_settings.arch not in ARCHS:
        raise CheckpointError(f"unknown model arch '{model_settings.arch}' (expected one of {', '.join(ARCHS)})")
    return ARCHS[model_settings.arch][kind](model_settings)


def model_settings(values: dict[str, Any]) -> ModelSettings:
    """The ``ModelSettings`` a checkpoint recorded (``dataclasses.asdict``: the transformer block as a dict)."""
    values = dict(values)
    if isinstance(values.get("transformer"), dict):
        values["transformer"] = TransformerSettings(**values["transformer"])
    return ModelSettings(**values)


def save(path: str | Path, model: nn.Module, *, kind: str, vocab: Vocab,
         train_settings: TrainSettings | None = None, epoch: int | None = None,
         optimizer_state: list[torch.Tensor] | None = None, rng_state: dict[str, Any] | None = None,
         extra: dict[str, Any] | None = None) -> None:
    """Write ``model`` and what describes it to ``path`` atomically (weights_only-safe contents)."""
    arch = model.cfg.arch
    if kind not in KINDS or not isinstance(model, ARCHS.get(arch, {}).get(kind, ())):
        raise CheckpointError(f"{path}: kind '{kind}' of arch '{arch}' does not match the model class "
                              f"{type(model).__name__}")
    payload = {
        "format": FORMAT, "kind": kind, "arch": arch,
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_settings": dataclasses.asdict(model.cfg),
        "vocab_tokens": list(vocab.tokens), "vocab_sha256": vocab.sha256,
        "train_settings": dataclasses.asdict(train_settings) if train_settings is not None else None,
        "epoch": epoch, "device": describe_device(next(model.parameters()).device),
        "optimizer_state": [t.detach().cpu() for t in optimizer_state] if optimizer_state is not None else None,
        "rng_state": rng_state, "extra": extra or {},
    }
    atomic_write_bytes(path, serialise(payload))


def serialise(payload: dict[str, Any]) -> bytes:
    """``torch.save`` bytes of ``payload``, made in memory: the archive's root folder is then always ``archive``
    (saved to a file, torch names it after the file's stem, so the temporary name would end up inside)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


LOAD_ERRORS = (RuntimeError, OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError)


def check_archive(path: Path) -> None:
    """Raise ``zipfile.BadZipFile`` unless ``path`` is a zip archive whose every record passes its CRC check:
    torch itself reads a truncated file with a bare zip error and a flipped byte in a tensor without any."""
    with zipfile.ZipFile(path) as archive:
        bad = archive.testzip()
    if bad is not None:
        raise zipfile.BadZipFile(f"record {bad} fails its CRC check")


def read(path: str | Path) -> dict[str, Any]:
    """The raw contents of a checkpoint file (tensors on cpu), checked for the format tag."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        check_archive(path)
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0][:160]
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({reason}); delete it and rerun the "
                              f"workflow to rebuild it") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a negtrain checkpoint (expected format '{FORMAT}')")
    return payload


def read_state(path: Path, fingerprint: str, say: Callable[[str], None]) -> dict[str, Any] | None:
    """The contents of the resumable state ``path`` (written after an epoch, its ``extra["fingerprint"]`` naming
    the run) when it belongs to the run of ``fingerprint``; None without the file, or, said in one line, for a
    state of another run (other settings or inputs), which is then not resumed."""
    if not path.is_file():
        return None
    payload = read(path)
    if payload["extra"].get("fingerprint") != fingerprint:
        say(f"{path}: written by a run with other settings or inputs; starting afresh")
        return None
    return payload


def check_vocab(path: str | Path, payload: dict[str, Any], vocab: Vocab) -> None:
    """Refuse a checkpoint whose vocabulary hash differs from ``vocab``'s, in one line."""
    if payload["vocab_sha256"] != vocab.sha256:
        raise CheckpointError(
            f"{path}: vocabulary mismatch: the checkpoint was trained with vocabulary sha256 "
            f"{payload['vocab_sha256'][:12]} ({len(payload['vocab_tokens'])} tokens), the dataset's is "
            f"{vocab.sha256[:12]} ({len(vocab)} tokens); retrain it on this dataset's vocab.txt")


_WITH_ARTICLE = {"lstm": "an LSTM", "transformer": "a Transformer", "lm": "an LM", "seq2seq": "a seq2seq"}


def _named(what: str) -> str:
    """An architecture or kind as messages name it, with its article."""
    return _WITH_ARTICLE.get(what, what)


def check_arch(path: str | Path, payload: dict[str, Any], arch: str) -> None:
    """Refuse a checkpoint of another architecture than ``arch``, in one line naming the file and both."""
    found = payload.get("arch", "lstm")
    if found != arch:
        raise CheckpointError(f"{path}: {_named(found)} checkpoint, but model.arch is {arch}; delete it and rerun the "
                              f"workflow to retrain it as {_named(arch)}, or set model.arch: {found}")


def check_kind(path: str | Path, payload: dict[str, Any], kind: str) -> None:
    """Refuse a checkpoint of another kind than ``kind`` (an LM where a seq2seq is read, or the reverse)."""
    if payload["kind"] != kind:
        raise CheckpointError(f"{path}: {_named(payload['kind'])} checkpoint where {_named(kind)} is expected; delete "
                              f"it and rerun the workflow to rebuild it")


def load(path: str | Path, vocab: Vocab | None = None, device: torch.device | str = "cpu",
         arch: str | None = None, kind: str | None = None) -> Checkpoint:
    """Rebuild the model of ``path`` in eval mode on ``device``; with ``vocab``, refuse a different vocabulary, with
    ``arch``, a model of another architecture, with ``kind``, a model of another kind. The stages pass all that
    their settings fix: a checkpoint that Snakemake does not rebuild (copied results, ``--rerun-triggers mtime``)
    is refused in one line rather than used."""
    payload = read(path)
    if kind is not None:
        check_kind(path, payload, kind)
    if vocab is not None:
        check_vocab(path, payload, vocab)
    if arch is not None:
        check_arch(path, payload, arch)
    settings = model_settings(payload["model_settings"])
    model = build_model(payload["kind"], settings)
    model.load_state_dict(payload["model_state"])
    model.to(device).eval()
    meta = {k: v for k, v in payload.items()
            if k not in ("model_state", "model_settings", "vocab_tokens", "kind", "arch")}
    return Checkpoint(model, payload["kind"], Vocab(tuple(payload["vocab_tokens"])), settings, meta)
