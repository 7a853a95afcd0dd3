"""classsr_cli.io.files: what a name given as an input says before anything is read."""

from __future__ import annotations

from pathlib import Path

import pytest

from classsr_cli.errors import InputError
from classsr_cli.io.files import url_refusal

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
