"""Speed and memory of automatic preprocessing: detect + track + cut, one CPU core.

Renders synthetic full-field recordings (video.synthetic.render_recording,
1392x976 at 15 fps, 60 cells, debris, noise) frame by frame and streams them
through video.pipeline.recording_process. Each length runs in its own
subprocess pinned to one core (sched_setaffinity, cv2.setNumThreads(1)) so that
peak RSS (ru_maxrss) belongs to that run alone.

- frames_per_s: frames / CPU seconds spent in detect + track + cut (clip arrays),
  with the time the renderer takes to draw each frame subtracted (the renderer
  stands in for the decoder; decoding speed is measured separately, below). The
  process is single-threaded and pinned to one core, so its CPU time is what the
  wall time would be on an idle core; on a shared, loaded machine wall time
  mostly measures the other processes, so it is reported too
  (frames_per_s_wall) together with the load average;
- decode_frames_per_s: PyAV decoding (to RGB) of the same recording stored as
  H.264, per CPU second of the process (all decoder threads on the one core);
- mp4_s_per_clip: H.264 encoding of one kept 16x150x150 clip (done once per clip,
  not per frame);
- peak_mem_mb (whole process) and pipeline_mem_mb (peak minus the RSS just before
  the pipeline starts) for 175 and 350 frames: memory must not grow with length.
  The renderer precomputes every cell's path for the whole recording, so the
  whole-process figure grows a little with length; the pipeline's does not.

Usage: .venv/bin/python benchmarks/preprocess.py [--frames 175] [--compare 350]
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WIDTH, HEIGHT, FPS, N_SPERM = 1392, 976, 15.0, 60


def _pin_one_core() -> str:
    import cv2

    cv2.setNumThreads(1)
    try:
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"cpu {cpu}"
    except (AttributeError, OSError):
        return "unpinned"


def _recording(n_frames: int, seed: int = 0):
    import numpy as np

    from video.synthetic import render_recording

    return render_recording(
        n_sperm=N_SPERM,
        n_frames=n_frames,
        width=WIDTH,
        height=HEIGHT,
        fps=FPS,
        rng=np.random.default_rng(seed),
    )


def _pipeline_config():
    from video.detection import DETECTOR_PRESETS
    from video.pipeline import PipelineConfig

    # The synthetic renderer draws bright heads ~11 px long (0.5 um/px).
    return PipelineConfig(detector=DETECTOR_PRESETS["synthetic"], encode_mp4=False)


def child(n_frames: int, *, decode: bool) -> dict:
    where = _pin_one_core()
    from video.pipeline import recording_process

    recording = _recording(n_frames)
    rss_before = _rss_mb()
    render_wall = render_cpu = 0.0

    def timed_frames():
        nonlocal render_wall, render_cpu
        frames = recording.iter_frames()
        while True:
            w0, c0 = time.perf_counter(), time.process_time()
            try:
                frame = next(frames)
            except StopIteration:
                return
            render_wall += time.perf_counter() - w0
            render_cpu += time.process_time() - c0
            yield frame

    w0, c0 = time.perf_counter(), time.process_time()
    result = recording_process(
        timed_frames(), fps=FPS, um_per_px=0.5, config=_pipeline_config()
    )
    work = time.process_time() - c0 - render_cpu
    work_wall = time.perf_counter() - w0 - render_wall
    t1 = time.perf_counter()
    for clip in result.clips:
        clip.clip.mp4()
    mp4_seconds = (time.perf_counter() - t1) / max(1, len(result.clips))
    out = {
        "frames": result.n_frames,
        "frames_per_s": result.n_frames / work,
        "frames_per_s_wall": result.n_frames / work_wall,
        "pipeline_cpu_seconds": work,
        "render_cpu_seconds": render_cpu,
        "clips": len(result.clips),
        "tracks": result.n_tracks,
        "mp4_s_per_clip": mp4_seconds,
        "peak_mem_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_pipeline_mb": rss_before,
        "core": where,
    }
    if decode:
        out["decode_frames_per_s"] = _decode_speed(recording)
    return out


def _rss_mb() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return float("nan")


def _decode_speed(recording) -> float:
    import av

    from video.io import iter_frames

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "recording.mp4"
        with av.open(str(path), mode="w") as container:
            stream = container.add_stream("libx264", rate=Fraction(int(FPS)))
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            stream.options = {"crf": "18", "preset": "ultrafast"}
            for frame in recording.iter_frames():
                image = av.VideoFrame.from_ndarray(frame, format="rgb24")
                for packet in stream.encode(image):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        c0 = time.process_time()
        n = sum(1 for _ in iter_frames(path))
        return n / (time.process_time() - c0)


def run_child(n_frames: int, *, decode: bool) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n_frames)]
    if decode:
        cmd.append("--decode")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=175)
    parser.add_argument("--compare", type=int, default=350)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--decode", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, decode=args.decode)))
        return
    main_run = run_child(args.frames, decode=True)
    long_run = run_child(args.compare, decode=False)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, load average {load:.1f} at start")
    print(
        f"{'frames':>7} {'fps(cpu)':>9} {'fps(wall)':>10} {'peak MB':>8} "
        f"{'pipeline MB':>12} {'clips':>6} {'tracks':>7}"
    )
    for run in (main_run, long_run):
        print(
            f"{run['frames']:>7} {run['frames_per_s']:>9.1f} "
            f"{run['frames_per_s_wall']:>10.1f} {run['peak_mem_mb']:>8.1f} "
            f"{run['peak_mem_mb'] - run['rss_before_pipeline_mb']:>12.1f} "
            f"{run['clips']:>6} {run['tracks']:>7}"
        )
    print(
        "peak MB: whole process (imports + renderer state + pipeline); pipeline MB: "
        "peak minus the RSS just before the pipeline started."
    )
    print(
        f"decode (PyAV, H.264 {WIDTH}x{HEIGHT}): "
        f"{main_run['decode_frames_per_s']:.1f} frames/s; "
        f"mp4 per clip {main_run['mp4_s_per_clip'] * 1000:.0f} ms"
    )
    print(
        json.dumps(
            {
                "frames_per_s": round(main_run["frames_per_s"], 1),
                "peak_mem_mb": round(main_run["peak_mem_mb"], 1),
                "frames": main_run["frames"],
                "frames_per_s_wall": round(main_run["frames_per_s_wall"], 1),
                "peak_mem_mb_at_compare": round(long_run["peak_mem_mb"], 1),
                "pipeline_mem_mb": round(
                    main_run["peak_mem_mb"] - main_run["rss_before_pipeline_mb"], 1
                ),
                "pipeline_mem_mb_at_compare": round(
                    long_run["peak_mem_mb"] - long_run["rss_before_pipeline_mb"], 1
                ),
                "frames_compare": long_run["frames"],
                "decode_frames_per_s": round(main_run["decode_frames_per_s"], 1),
                "mp4_ms_per_clip": round(main_run["mp4_s_per_clip"] * 1000, 1),
                "clips": main_run["clips"],
                "load_average": round(load, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
