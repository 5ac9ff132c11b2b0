"""Checkpoints: a weights_only-loadable, self-describing file; vocabulary mismatches refused in one line."""

from __future__ import annotations

import pytest
import torch

from negtrain_core.models import checkpoint
from negtrain_core.config import ModelSettings, TrainSettings
from negtrain_core.models.lstm import LSTMLM, Seq2Seq
from negtrain_core.data.vocab import Vocab

VOCAB = Vocab.build([["a", "b", "c", "d", "e", "f"]], 6)


def model(kind: str = "seq2seq") -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelSettings(vocab_size=len(VOCAB), embedding_dim=4, hidden_dim=6, dropout=0.3, attention="release")
    return (Seq2Seq if kind == "seq2seq" else LSTMLM)(cfg)


def test_round_trip_rebuilds_the_same_model(tmp_path):
    m, path = model(), tmp_path / "m.pt"
    bufs = [torch.randn(3)]
    checkpoint.save(path, m, kind="seq2seq", vocab=VOCAB, train_settings=TrainSettings(lr=0.5), epoch=7,
                    optimizer_state=bufs, rng_state={"torch": torch.get_rng_state()}, extra={"valid_ppl": 12.5})
    ck = checkpoint.load(path, VOCAB)
    assert ck.kind == "seq2seq" and ck.vocab == VOCAB and ck.model_settings == m.cfg and not ck.model.training
    assert ck.meta["epoch"] == 7 and ck.meta["train_settings"]["lr"] == 0.5 and ck.meta["extra"]["valid_ppl"] == 12.5
    assert torch.equal(ck.meta["optimizer_state"][0], bufs[0])
    for (k, a), (k2, b) in zip(m.state_dict().items(), ck.model.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    src, tgt = torch.randint(5, len(VOCAB), (2, 4)), torch.randint(5, len(VOCAB), (2, 5))
    m.eval()
    assert torch.equal(ck.model(src, tgt).token_logp, m(src, tgt).token_logp)


def test_file_holds_only_weights_only_safe_contents(tmp_path):
    checkpoint.save(tmp_path / "lm.pt", model("lm"), kind="lm", vocab=VOCAB)
    raw = torch.load(tmp_path / "lm.pt", weights_only=True)
    assert raw["vocab_sha256"] == VOCAB.sha256 and raw["kind"] == "lm"
    assert isinstance(checkpoint.load(tmp_path / "lm.pt").model, LSTMLM)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lm.pt"]          # no temporary file left behind


def test_a_different_vocabulary_is_refused_in_one_line(tmp_path):
    path = tmp_path / "m.pt"
    checkpoint.save(path, model(), kind="seq2seq", vocab=VOCAB)
    other = Vocab(VOCAB.tokens[:5] + tuple(reversed(VOCAB.tokens[5:])))           # same size, other ids
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(path, other)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "vocabulary mismatch" in msg and VOCAB.sha256[:12] in msg


def test_wrong_kind_and_foreign_files_are_refused(tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="does not match"):
        checkpoint.save(tmp_path / "x.pt", model("lm"), kind="seq2seq", vocab=VOCAB)
    torch.save({"state": 1}, tmp_path / "foreign.pt")
    with pytest.raises(checkpoint.CheckpointError, match="not a negtrain checkpoint"):
        checkpoint.load(tmp_path / "foreign.pt")
    with pytest.raises(checkpoint.CheckpointError, match="no such checkpoint"):
        checkpoint.load(tmp_path / "missing.pt")


def test_identical_saves_give_identical_bytes_whatever_the_file_name(tmp_path):
    import zipfile

    m = model()
    for name in ("a.pt", "b.pt"):
        checkpoint.save(tmp_path / name, m, kind="seq2seq", vocab=VOCAB, epoch=3, extra={"stage": "x"})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    names = zipfile.ZipFile(tmp_path / "a.pt").namelist()
    assert {n.split("/")[0] for n in names} == {"archive"}                # no temporary file name inside
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]


@pytest.mark.parametrize("keep", [0, 0.1, 0.5, 0.99])
def test_truncated_checkpoint_fails_in_one_line_naming_it(tmp_path, keep):
    good = tmp_path / "good.pt"
    checkpoint.save(good, model(), kind="seq2seq", vocab=VOCAB)
    path = tmp_path / "seq2seq.pt"
    data = good.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.load(path, VOCAB)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"{path}: truncated or corrupt checkpoint (")
    assert msg.endswith("delete it and rerun the workflow to rebuild it")


def test_a_damaged_tensor_fails_its_crc_check(tmp_path):
    import zipfile

    path = tmp_path / "m.pt"
    checkpoint.save(path, model(), kind="seq2seq", vocab=VOCAB)
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("archive/data/0")
    data, head = bytearray(path.read_bytes()), info.header_offset
    start = head + 30 + int.from_bytes(data[head + 26: head + 28], "little") + \
        int.from_bytes(data[head + 28: head + 30], "little")           # local header: name and extra-field lengths
    data[start + info.compress_size // 2] ^= 0xFF                      # one byte in the middle of the first tensor
    path.write_bytes(bytes(data))
    with pytest.raises(checkpoint.CheckpointError, match=r"record archive/data/0 fails its CRC check.*delete it"):
        checkpoint.read(path)


def test_load_refuses_another_kind_or_architecture_and_reads_a_file_without_arch_as_an_lstm(tmp_path):
    path = tmp_path / "lm.pt"
    checkpoint.save(path, model("lm"), kind="lm", vocab=VOCAB)
    with pytest.raises(checkpoint.CheckpointError, match=r"lm.pt: an LM checkpoint where a seq2seq is expected"):
        checkpoint.load(path, VOCAB, kind="seq2seq")
    with pytest.raises(checkpoint.CheckpointError, match=r"lm.pt: an LSTM checkpoint, but model.arch is transformer"):
        checkpoint.load(path, VOCAB, arch="transformer")
    assert checkpoint.load(path, VOCAB, arch="lstm", kind="lm").kind == "lm"
    payload = torch.load(path, weights_only=True)
    del payload["arch"]                                                # a file written before the field
    (tmp_path / "old.pt").write_bytes(checkpoint.serialise(payload))
    with pytest.raises(checkpoint.CheckpointError, match=r"old.pt: an LSTM checkpoint, but model.arch is transformer"):
        checkpoint.load(tmp_path / "old.pt", arch="transformer")


def test_rng_state_is_recorded_and_a_state_of_another_run_is_not_resumed(tmp_path):
    path, rng = tmp_path / "m.pt.state", torch.get_rng_state()
    checkpoint.save(path, model(), kind="seq2seq", vocab=VOCAB, rng_state={"torch": rng}, extra={"fingerprint": "A"})
    assert torch.equal(checkpoint.load(path).meta["rng_state"]["torch"], rng)
    said: list[str] = []
    assert checkpoint.read_state(path, "A", said.append)["extra"]["fingerprint"] == "A" and not said
    assert checkpoint.read_state(path, "B", said.append) is None and "starting afresh" in said[0]
    assert checkpoint.read_state(tmp_path / "none.state", "A", said.append) is None
