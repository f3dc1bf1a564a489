"""gsf.state_dicts: the one checkpoint reader and state-dict diff of the engine and the models."""

import pytest
import torch

from gsf.errors import GSFCheckpointError
from gsf.state_dicts import read_checkpoint, state_dict_diff


def test_reader_names_the_file_for_missing_truncated_and_non_dict_files(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(2)}, good)
    assert torch.equal(read_checkpoint(good)["w"], torch.ones(2))
    with pytest.raises(GSFCheckpointError, match="none.pt does not exist"):
        read_checkpoint(tmp_path / "none.pt")
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:20])
    with pytest.raises(GSFCheckpointError, match="cut.pt cannot be read"):
        read_checkpoint(cut)
    listed = tmp_path / "list.pt"
    torch.save([torch.ones(1)], listed)
    with pytest.raises(GSFCheckpointError, match="list.pt holds a list, not a dict"):
        read_checkpoint(listed)


def test_diff_lists_missing_unexpected_and_misshapen_keys():
    model = {"a": torch.zeros(2), "b": torch.zeros(3), "c": torch.zeros(1), "n": torch.zeros(())}
    file = {"a": torch.zeros(2), "b": torch.zeros(4), "x": torch.zeros(1)}
    diff = state_dict_diff(model, file)
    assert (diff.missing, diff.unexpected, diff.mismatched) == (["c", "n"], ["x"], ["b"])
    assert diff.describe() == ("missing [c, n], unexpected [x], shape mismatch [b] "
                               "(b: (4,) in the file, (3,) in the model)")
    assert state_dict_diff(model, file, may_be_missing=lambda k: k == "n").missing == ["c"]
    assert not state_dict_diff(model, dict(model))
    many = state_dict_diff({f"k{i}": torch.zeros(1) for i in range(6)}, {})
    assert many.describe(limit=2).startswith("missing [k0, k1 ... (6 in all)]")


def test_a_file_with_python_objects_is_refused_in_one_line_without_torchs_unsafe_advice(tmp_path):
    """torch.load(weights_only=True) suggests re-running with weights_only=False (arbitrary code execution):
    our message stands alone, one line, naming the file, what it holds and what was expected."""
    pickled = tmp_path / "objects.pt"
    torch.save({"model": object()}, pickled)
    with pytest.raises(GSFCheckpointError) as err:
        read_checkpoint(pickled)
    message = str(err.value)
    assert message.startswith(f"checkpoint {pickled} cannot be read: it holds Python objects (object)")
    assert "expected a checkpoint written by gsf train" in message
    assert "weights_only=False" not in message and "\n" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(GSFCheckpointError, match="notes.pt cannot be read: not a PyTorch file, or truncated"):
        read_checkpoint(text)
