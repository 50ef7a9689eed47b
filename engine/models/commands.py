"""``python -m engine models``: list the available models and their cards."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list learned models (assets/models/ and given paths) with their cards",
        description="List model files (NAME.safetensors + NAME.json) in assets/models/ and in "
        "the given folders or files, with architecture, training envelope and metrics.",
    )
    parser.add_argument("paths", nargs="*", type=Path, help="more model folders or files")
    parser.add_argument("--json", action="store_true", help="print the cards as JSON")
    parser.set_defaults(run=run)


def _range(r: list[float] | tuple[float, float] | None, fmt: str = ".4g") -> str:
    return "-" if r is None else f"{r[0]:{fmt}}–{r[1]:{fmt}}"


def run(args: argparse.Namespace) -> int:
    from engine.models.card import ModelCard
    from engine.models.zoo import find_models

    found = find_models(args.paths)
    if args.json:
        out = [
            {"path": str(stem), "card": card.to_dict()}
            if isinstance(card, ModelCard)
            else {"path": str(stem), "error": str(card)}
            for stem, card in found
        ]
        print(json.dumps(out, indent=2))
        return 0
    if not found:
        print("no models found (looked in assets/models/ and the given paths)")
        return 0
    for stem, card in found:
        if not isinstance(card, ModelCard):
            print(f"{stem}: unreadable card: {card}")
            continue
        env = card.envelope
        print(f"{card.name}  [{card.architecture}]  {stem}")
        print(
            f"    Re {_range(env.reynolds)}, dt·Ū/L {_range(env.dt_nondim)}, "
            f"nodes {_range(env.nodes, '.0f')}, shapes {', '.join(env.shape_classes) or '-'}"
        )
        if card.metrics:
            shown = ", ".join(
                f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                for k, v in card.metrics.items()
            )
            print(f"    metrics: {shown}")
    return 0
