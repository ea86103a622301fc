"""``lvsa generate``'s documented errors (docs/troubleshooting.md): one line on stderr that says
what is wrong and what to do, exit status 2, nothing written."""

import pytest

pytest.importorskip("diffusers")

import tiny_pipelines  # noqa: E402
from lvsa.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    return tiny_pipelines.wan(tmp_path_factory.mktemp("models") / "wan")


def _error(capsys, model, *extra):
    argv = ["generate", "--model", str(model), "--prompt", "x", "--num-frames", "33", "--height", "16",
            "--width", "16", "--steps", "1", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after diffusers' loading bars, if any
    assert err.startswith("lvsa generate: error: ")
    return err


def test_frame_count_off_the_grid_names_the_nearest_valid_counts(wan, tmp_path, capsys):
    err = _error(capsys, wan, "--num-frames", "35", "--output-dir", str(tmp_path))
    assert "--num-frames 35 is off the grid" in err and "use 4k+1 frames; nearest valid: 33 or 37" in err
    assert not list(tmp_path.iterdir())


def test_size_off_the_grid(wan, capsys):
    err = _error(capsys, wan, "--height", "20")
    assert "--height 20 must be a multiple of 16" in err and "nearest valid: 16 or 32" in err


def test_missing_folder_says_what_to_download(tmp_path, capsys):
    err = _error(capsys, tmp_path / "no-such-model")
    assert "does not exist" in err and "hf download Wan-AI/Wan2.1-T2V-1.3B-Diffusers --local-dir" in err


def test_folder_without_model_index(tmp_path, capsys):
    err = _error(capsys, tmp_path)
    assert "is not a diffusers pipeline folder (it has no model_index.json)" in err


def test_hub_id_not_in_the_local_cache(tmp_path, capsys, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    err = _error(capsys, "lvsa-test/not-downloaded")
    assert "neither a folder nor in the local Hugging Face cache" in err and "hf download lvsa-test/not-downloaded" in err


def test_hub_id_in_the_local_cache_is_used(wan, tmp_path, monkeypatch):
    """A cached snapshot (the layout ``hf download`` leaves) loads without a network."""
    import shutil

    import huggingface_hub.constants

    repo = tmp_path / "models--lvsa-test--tiny-wan"
    shutil.copytree(wan, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert main(["generate", "--model", "lvsa-test/tiny-wan", "--prompt", "x", "--num-frames", "5", "--height", "16",
                 "--width", "16", "--steps", "1", "--output-latent", "--output-dir", str(tmp_path / "out")]) == 0


@pytest.mark.parametrize("flag, value, needs", [("--window-size", "12", "--lvsa"), ("--show-mask", None, "--lvsa"),
                                                 ("--riflex-s", "2", "--riflex")])
def test_knobs_without_their_feature(wan, capsys, flag, value, needs):
    err = _error(capsys, wan, flag, *([value] if value else []))
    assert f"{flag} tune" in err and f"add {needs} to use it" in err


def test_invalid_knob_values(wan, capsys):
    assert "k must be an int in [0, 4)" in _error(capsys, wan, "--riflex", "--riflex-k", "9")
    assert "--steps must be >= 1" in _error(capsys, wan, "--steps", "0")
    assert "backend must be one of" in _error(capsys, wan, "--lvsa", "--backend", "gpu")


def test_unparsable_arguments_are_argparse_errors(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "--prompt", "x"])
    assert exit_.value.code == 2 and "--model" in capsys.readouterr().err
