"""The README's pictures of TensorBoard, taken from a real sweep as a user sees them.

    uv run python scripts/screenshots.py            # needs Debian's chromium (apt-get install chromium)

Trains `dltips-train -m experiment=vanishing_gradient seed=0,1,2` (sigmoid, ReLU and maxout, 10
hidden layers, three seeds each), serves it with `tensorboard` on 127.0.0.1 and screenshots the
HPARAMS table (one row per setting), TIME SERIES, CUSTOM SCALARS (the gradient flow; each
setting's mean with its 95% interval) and IMAGES tabs in headless Chromium into
outputs/screenshots/, with the sigmoid and ReLU runs' gradient-flow figures at full size and
dltips-compare's figure of the settings. `--sweep DIR` screenshots an existing sweep instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from dltips.observe.tags import GRADIENT_FLOW

ROOT = Path(__file__).resolve().parents[1]
SWEEP = ["experiment=vanishing_gradient", "seed=0,1,2", "trainer.progress=log"]
# Each tab with the question it answers; the file names are the README's.
TABS = {
    "hparams": "hparams",  # which setting won
    "timeseries": "time_series",  # the train and val curves first
    "custom_scalars": "gradient_flow_charts",  # every layer's log10 ‖∂C/∂W‖ over training
    "images": "gradient_flow_images",  # the lecture's figure, per run, over training
}
# The means alone (TensorBoard's run filter, in the URL): which setting is better, with its interval.
MEANS = ("custom_scalars&regexInput=%5E~mean", "mean_over_seeds")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
]
# TIME SERIES draws its charts with WebGL, which headless Chromium without a GPU leaves blank;
# TensorBoard's forceSVG switch draws the same charts as SVG.
URL = "http://127.0.0.1:{port}/?forceSVG=true#{tab}"


def train_sweep(sweep_dir: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    subprocess.run(
        [sys.executable, "-m", "dltips.train", "-m", *SWEEP, f"hydra.sweep.dir={sweep_dir}"], check=True, env=env
    )


def serve(logdir: Path) -> tuple[subprocess.Popen, int]:
    """tensorboard on a free loopback port, once it answers with the sweep's runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5) as r:
                if len(r.read()) > 2:  # "[]" until the event files are loaded
                    time.sleep(3)  # let it finish reading every run
                    return server, port
        except OSError:
            pass
        time.sleep(1)
    server.terminate()
    raise SystemExit("tensorboard did not start within 120 s")


def screenshot(url: str, out: Path, height: int = 1000) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("chromium not found: apt-get install -y chromium")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--window-size=1600,{height}",
                f"--user-data-dir={profile}",
                f"--screenshot={out}",
                url,
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    print(f"wrote {out}")


def save_image(port: int, run: str, tag: str, out: Path) -> None:
    """A run's last image of `tag` at full size, as TensorBoard serves it when clicked."""
    base = f"http://127.0.0.1:{port}/data/plugin/images"
    query = urllib.parse.urlencode({"run": run, "tag": tag, "sample": 0})
    with urllib.request.urlopen(f"{base}/images?{query}", timeout=30) as r:
        last = json.loads(r.read())[-1]
    with urllib.request.urlopen(f"{base}/individualImage?{last['query']}", timeout=30) as r:
        out.write_bytes(r.read())
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", type=Path, help="screenshot this sweep directory instead of training one")
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "screenshots")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        sweep_dir = args.sweep or Path(tmp) / "vanishing_gradient"
        if args.sweep is None:
            train_sweep(sweep_dir)
        server, port = serve(sweep_dir)
        try:
            for tab, name in TABS.items():
                # The time series are two groups of cards (train, val): a taller window shows both.
                screenshot(
                    URL.format(port=port, tab=tab), args.out / f"{name}.png", 1500 if tab == "timeseries" else 1000
                )
            screenshot(URL.format(port=port, tab=MEANS[0]), args.out / f"{MEANS[1]}.png", 1700)
            for activation in ("sigmoid", "relu"):  # the figure itself, at full size
                save_image(
                    port, f"activation={activation},seed=0", GRADIENT_FLOW, args.out / f"gradient_flow_{activation}.png"
                )
        finally:
            server.terminate()
            server.wait(timeout=30)
        compare = Path(tmp) / "compare"  # the settings as dltips-compare draws them
        subprocess.run(
            [sys.executable, "-m", "dltips.observe.compare", str(sweep_dir), "--out", str(compare)], check=True
        )
        shutil.copy(compare / "curves.png", args.out / "compare_settings.png")
        print(f"wrote {args.out / 'compare_settings.png'}")


if __name__ == "__main__":
    main()
