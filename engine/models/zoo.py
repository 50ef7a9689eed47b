"""Where model files live: ``NAME.safetensors`` + ``NAME.json`` pairs, shipped in assets/models/."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from engine.errors import ModelError
from engine.models.card import ModelCard

MODELS_DIR = Path(__file__).resolve().parents[2] / "assets" / "models"
WEIGHTS_SUFFIX, CARD_SUFFIX = ".safetensors", ".json"


def model_files(path_or_name: str | Path) -> tuple[Path, Path]:
    """(weights, card) paths for a path stem, either file of a pair, or a bare name.

    A bare name (no folder, no suffix) that is not a file here resolves in ``assets/models/``.
    """
    p = Path(path_or_name).expanduser()
    if p.suffix in (WEIGHTS_SUFFIX, CARD_SUFFIX):
        p = p.with_suffix("")
    if p.parent == Path(".") and not p.with_suffix(CARD_SUFFIX).exists():
        p = MODELS_DIR / p.name
    weights, card = p.with_suffix(WEIGHTS_SUFFIX), p.with_suffix(CARD_SUFFIX)
    missing = [str(f) for f in (weights, card) if not f.is_file()]
    if missing:
        raise ModelError(f"model {path_or_name!s}: missing {' and '.join(missing)}")
    return weights, card


def find_models(places: Iterable[str | Path] = ()) -> list[tuple[Path, ModelCard | ModelError]]:
    """Every model pair in ``assets/models/`` and the given folders or files, with its card.

    A card that fails to parse is returned as its error, so listings can show why.
    """
    stems: dict[Path, None] = {}
    for place in [MODELS_DIR, *map(Path, places)]:
        if place.is_dir():
            for card in sorted(place.glob(f"*{CARD_SUFFIX}")):
                if card.with_suffix(WEIGHTS_SUFFIX).is_file():
                    stems[card.with_suffix("").resolve()] = None
        elif place.exists() or place.with_suffix(CARD_SUFFIX).exists():
            stems[model_files(place)[1].with_suffix("").resolve()] = None
        elif place != MODELS_DIR:
            raise ModelError(f"{place}: no such model or folder")
    found: list[tuple[Path, ModelCard | ModelError]] = []
    for stem in stems:
        try:
            found.append((stem, ModelCard.load(stem.with_suffix(CARD_SUFFIX))))
        except ModelError as exc:
            found.append((stem, exc))
    return found
