"""``nevseg bench``: speed and accuracy against MONAI (filled in by the speed issue)."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="benchmark speed and accuracy (see README)")
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
