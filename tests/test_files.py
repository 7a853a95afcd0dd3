"""classsr_cli.io.files: what a name given as an input says before anything is read; output folders made."""

from __future__ import annotations

from pathlib import Path

import pytest

from classsr_cli.errors import InputError, OutputError
from classsr_cli.io.files import make_folder, url_refusal

READ = "a URL; classsr reads files on this machine and fetches nothing: download it first"


@pytest.mark.parametrize(("spec", "said"), [
    ("https://example.com/a.png", "https://example.com/a.png"),
    (Path("https://example.com/a.png"), "https://example.com/a.png"),  # a path makes its "//" one "/"
    ("HTTP://EXAMPLE.COM/a.png?x=1", "HTTP://EXAMPLE.COM/a.png?x=1"),
    ("rtsp://camera.local/stream", "rtsp://camera.local/stream"),
])
def test_a_url_is_named_as_one(spec: str | Path, said: str) -> None:
    assert url_refusal(spec) == f"{said}: {READ}"
    assert url_refusal(spec, output=True) == (f"{said}: a URL; classsr writes files on this machine and sends "
                                              "nothing: write here, then upload it")


@pytest.mark.parametrize("spec", ["photo.png", "C:/photos/a.png", "a:b.png", "file:///tmp/a.png", "shots/", "-"])
def test_names_that_are_not_urls_are_left_alone(spec: str) -> None:
    assert url_refusal(spec) is None


def test_a_folder_of_such_a_name_that_exists_is_not_a_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "https:" / "example.com").mkdir(parents=True)
    assert url_refusal("https://example.com") is None


def test_bench_and_training_name_a_url_given_as_their_pictures() -> None:
    """`classsr bench URL` said "no such file or folder, and no set of that name", `classsr train --hr URL`
    "https:/...: no such folder"."""
    from classsr_cli import bench
    from classsr_cli.train import data

    url = "https://example.com/photos"
    with pytest.raises(InputError, match=rf"^{url}: {READ}$"):
        bench.find_images([url])
    with pytest.raises(InputError, match=rf"^{url}: {READ}$"):
        data.find_images([url])


def test_convert_names_a_url_given_as_a_checkpoint() -> None:
    from classsr_cli.convert import load_original
    from classsr_cli.errors import CheckpointError

    url = "https://example.com/ClassSR_FSRCNN.pth"
    with pytest.raises(CheckpointError, match=rf"^{url}: {READ}$"):
        load_original(url)


def test_an_output_folder_is_made_or_refused_in_one_line(tmp_path: Path) -> None:
    """A missing folder is made with its parents; a file in its place, or in a parent's, is named (it was an internal
    FileExistsError or NotADirectoryError from `train prepare -o photo.png` and `train --out photo.png`)."""
    assert make_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    assert make_folder(tmp_path / "a") == tmp_path / "a"  # there already
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"x")
    with pytest.raises(OutputError, match=r"^\S*photo\.png: is a file, not a folder$"):
        make_folder(photo)
    with pytest.raises(OutputError) as e:
        make_folder(photo / "run" / "data")
    assert str(e.value) == f"{photo / 'run' / 'data'}: cannot write ({photo} is a file, not a folder)"
    assert photo.read_bytes() == b"x"
