"""Window sizes: the default fitted to the screen, and ``--size`` parsed."""

from __future__ import annotations

import pytest

from app.__main__ import build_parser
from app.main_window import DEFAULT_SIZE, fitted_size


def test_the_default_window_shrinks_to_a_small_screen_and_keeps_its_size_on_a_big_one() -> None:
    assert fitted_size((1920, 1080)) == DEFAULT_SIZE
    width, height = fitted_size((1280, 720))
    assert width <= 1280 and height <= 720
    assert (width, height) == (1216, 648)


def test_size_is_parsed_and_a_bad_one_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    assert build_parser().parse_args(["--size", "640X400"]).size == (640, 400)
    for bad in ("12x", "wide", "100x100"):
        with pytest.raises(SystemExit) as stop:
            build_parser().parse_args(["--size", bad])
        assert stop.value.code == 2
        assert repr(bad) in capsys.readouterr().err
