"""`hf_lrsched.atomic`: the one place that writes files and folders whole or not at all (the LR curve, the plots, the
snapshots, and the examples' results and checkpoints go through it)."""

import os

import pytest

from hf_lrsched import atomic


def test_write_text_replaces_a_file_whole_and_keeps_its_permissions(tmp_path):
    path = tmp_path / "all_results.json"
    path.write_text("old")
    os.chmod(path, 0o640)
    atomic.write_text(path, '{"eval_accuracy": 0.97}\n')
    assert path.read_text() == '{"eval_accuracy": 0.97}\n'
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o640)
    assert os.listdir(tmp_path) == ["all_results.json"]


def test_a_write_text_interrupted_at_the_rename_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "lr_schedule.csv"
    path.write_text("step,lr\n1,0.0\n")

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_text(path, "step,lr\n1,0.0\n2,0.5\n")
    assert path.read_text() == "step,lr\n1,0.0\n"
    assert os.listdir(tmp_path) == ["lr_schedule.csv"]  # no temporary file left behind


def folder(path, text):
    path.mkdir()
    (path / "model.safetensors").write_text(text)
    return path


def test_replace_folder_puts_the_new_folder_in_place_and_removes_the_old_one(tmp_path):
    folder(tmp_path / "step_4", "old")
    folder(tmp_path / "step_4.tmp", "new")
    atomic.replace_folder(tmp_path / "step_4.tmp", tmp_path / "step_4")
    assert (tmp_path / "step_4" / "model.safetensors").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["step_4"]
    folder(tmp_path / "snapshot-9.tmp", "first")  # no folder there yet
    atomic.replace_folder(tmp_path / "snapshot-9.tmp", tmp_path / "snapshot-9")
    assert (tmp_path / "snapshot-9" / "model.safetensors").read_text() == "first"


def test_a_failed_replace_folder_leaves_the_old_folder_in_place(tmp_path, monkeypatch):
    folder(tmp_path / "step_4", "old")
    folder(tmp_path / "step_4.tmp", "new")
    real = os.replace

    def second_rename_fails(src, dst):
        if str(src).endswith(".tmp"):
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", second_rename_fails)
    with pytest.raises(OSError, match="No space left"):
        atomic.replace_folder(tmp_path / "step_4.tmp", tmp_path / "step_4")
    assert (tmp_path / "step_4" / "model.safetensors").read_text() == "old"
    assert not (tmp_path / "step_4.old").exists()


def test_replace_folder_replaces_a_link_keeps_its_target_and_clears_a_stale_old(tmp_path):
    target = folder(tmp_path / "elsewhere", "kept")
    (tmp_path / "step_4").symlink_to(target)
    (tmp_path / "step_4.old").write_text("left by a kill")  # not a folder: must not block the next save
    for text in ("first", "second"):  # saved twice: the second save replaces the first
        folder(tmp_path / "step_4.tmp", text)
        atomic.replace_folder(tmp_path / "step_4.tmp", tmp_path / "step_4")
        assert not (tmp_path / "step_4").is_symlink()
        assert (tmp_path / "step_4" / "model.safetensors").read_text() == text
    assert (target / "model.safetensors").read_text() == "kept"
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "step_4"]
