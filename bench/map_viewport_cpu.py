"""CPU time of one map socket viewport message on the event loop, worst case (issue #13).

What a `{"type": "viewport", "bbox": [...]}` costs the server's event loop before the snapshot's
database read (which runs in a thread): parse the frame, check the box, and compute the coarse
cells covering it (`tracking.selectors.coarse_cells_for_bbox`, h3). Timed with the thread's CPU
clock (`time.thread_time`), best of a few repeats, for hand-made hostile boxes (a sliver from pole
to pole, thin strips, boxes just under the size guard at every latitude) and a random search.
No database or Redis needed. `--quick` searches fewer random boxes.

    .venv/bin/python bench/map_viewport_cpu.py [--quick]

Prints progress on stderr and one JSON object on the last line of stdout.
"""

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "o2o.settings")
os.environ.setdefault("O2O_IGNORE_DOTENV", "1")
os.environ.setdefault("DJANGO_ENV", "development")

import django  # noqa: E402

django.setup()

from tracking import selectors  # noqa: E402


def cpu_ms(bbox: list[float], repeats: int = 3) -> tuple[float, int | None]:
    """Best-of-`repeats` CPU ms of parsing and covering one viewport frame; the cell count."""
    frame = json.dumps({"type": "viewport", "bbox": bbox})
    best, count = math.inf, None
    for _ in range(repeats):
        start = time.thread_time()
        content = json.loads(frame)
        s, w, n, e = content["bbox"]
        cells = selectors.coarse_cells_for_bbox(south=s, west=w, north=n, east=e)
        best = min(best, (time.thread_time() - start) * 1000)
        count = None if cells is None else len(cells)
    return best, count


def hostile_boxes() -> dict[str, list[float]]:
    boxes = {
        "pole to pole, 0.0209 deg wide (issue #13)": [-89.999, 0, 89.999, 0.0209],
        "south pole to equator": [-89.999, 0, 0, 0.0209],
        "north pole cap": [89.0, -180, 89.999, 180],
        "equator strip, 2 deg long": [0, 0, 2, 0.001],
        "equator strip, 20 deg long": [0, 0, 20, 0.001],
        "equator strip, 1.5 deg long (just under the bound)": [0, 0, 1.5, 0.0001],
        "strip at 60 deg, 1.5 deg long": [60, 0, 61.5, 0.0001],
        "wide strip at 80 deg": [80, -179, 80.001, 179],
        "whole world": [-90, -180, 90, 180],
    }
    for lat in (0, 30, 60, 75, 85, 89):
        for aspect in (1, 4, 16, 64):
            # a box of ~300 km^2 (about MAP_MAX_GROUPS cells at resolution 7) of this aspect
            height_km = math.sqrt(300 * aspect)
            width_km = 300 / height_km
            dlat = height_km / 111.2
            dlng = width_km / (111.2 * max(math.cos(math.radians(lat)), 1e-6))
            south = min(lat, 89.9 - dlat)
            boxes[f"~300 km2 at {lat} deg, aspect {aspect}"] = [
                south,
                10.0,
                south + dlat,
                min(10.0 + dlng, 180.0),
            ]
    return boxes


def random_boxes(n: int, rng: random.Random) -> list[list[float]]:
    boxes = []
    for _ in range(n):
        south = rng.uniform(-90, 89.99)
        north = min(90.0, south + 10 ** rng.uniform(-3, 2.3))
        west = rng.uniform(-180, 179.99)
        east = min(180.0, west + 10 ** rng.uniform(-4, 2.5))
        boxes.append([south, west, north, east])
    return boxes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    results = []
    for name, bbox in hostile_boxes().items():
        ms, count = cpu_ms(bbox)
        results.append((ms, name, bbox, count))
        print(f"{ms:9.2f} ms  cells={count!s:>5}  {name}", file=sys.stderr)
    rng = random.Random(13)
    searched = 300 if args.quick else 3000
    for bbox in random_boxes(searched, rng):
        ms, count = cpu_ms(bbox, repeats=1)
        results.append((ms, "random", bbox, count))
    results.sort(key=lambda r: r[0], reverse=True)
    worst = results[0]
    print(f"worst: {worst[0]:.2f} ms {worst[1]} {worst[2]} cells={worst[3]}", file=sys.stderr)
    print(
        json.dumps(
            {
                "benchmark": "map_viewport_cpu",
                "searched_random": searched,
                "worst_cpu_ms": round(worst[0], 2),
                "worst_case": worst[1],
                "worst_bbox": worst[2],
                "worst_cells": worst[3],
                "top5": [[round(ms, 2), name, bbox] for ms, name, bbox, _ in results[:5]],
                "loadavg": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
