"""Multi-object tracking of detected sperm heads (pure numpy/scipy).

Constant-velocity Kalman filter per track (state x, y, vx, vy; all tracks predicted
and updated together as batched arrays) and Hungarian assignment
(``scipy.optimize.linear_sum_assignment``) of detections to predicted positions
within a gate. A track is *confirmed* after ``min_hits`` measured frames; it
*coasts* on its prediction through up to ``max_misses`` frames without a detection
(crossings, a head briefly out of focus) and ends when it misses longer or its
prediction leaves the field of view. Only confirmed tracks are reported, with the
coasted frames at the end trimmed off.

Streaming: :meth:`MultiTracker.update` takes one frame's detections;
:meth:`MultiTracker.pop_finished` hands back tracks that have ended, so a long
recording never keeps every track in memory; :meth:`MultiTracker.finish` ends the
rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

from video.detection import Detections

_F = np.array(
    [[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=np.float64
)
_H = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], dtype=np.float64)


@dataclass(frozen=True)
class TrackerConfig:
    """Tracker parameters, in pixels and frames.

    ``gate_px``: largest distance between a prediction and a detection that may be
    assigned (plus the track's position uncertainty, capped at ``2 * gate_px``).
    ``accel_px``: standard deviation of the unmodelled acceleration per frame (sperm
    heads wobble laterally, so it is not small). ``border_px``: a track whose
    prediction lies further than this outside the frame ends at once.
    """

    gate_px: float = 20.0
    max_misses: int = 5
    min_hits: int = 3
    accel_px: float = 3.0
    measurement_px: float = 1.5
    border_px: float = 4.0


@dataclass
class Track:
    """One tracked object: per-frame positions, measured or predicted (coasting)."""

    id: int
    frames: list[int] = field(default_factory=list)
    points: list[tuple[float, float]] = field(default_factory=list)
    measured: list[bool] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    hits: int = 0

    @property
    def start(self) -> int:
        return self.frames[0]

    @property
    def end(self) -> int:
        return self.frames[-1]

    def __len__(self) -> int:
        return len(self.frames)

    def xy(self) -> np.ndarray:
        """(n, 2) float64 positions for frames ``start..end``."""
        return np.asarray(self.points, dtype=np.float64).reshape(-1, 2)

    def measured_fraction(self) -> float:
        return float(np.mean(self.measured)) if self.measured else 0.0

    def dense(self, n_frames: int) -> np.ndarray:
        """(n_frames, 2) positions with NaN outside the track's frames."""
        out = np.full((n_frames, 2), np.nan)
        frames = np.asarray(self.frames)
        ok = frames < n_frames
        out[frames[ok]] = self.xy()[ok]
        return out

    def _trim_coasting(self) -> None:
        while self.measured and not self.measured[-1]:
            for seq in (self.frames, self.points, self.measured, self.scores):
                seq.pop()


class MultiTracker:
    """Kalman + Hungarian multi-object tracker over a stream of detections."""

    def __init__(
        self,
        config: TrackerConfig | None = None,
        *,
        frame_size: tuple[int, int] | None = None,
    ) -> None:
        self.config = config or TrackerConfig()
        self.frame_size = frame_size  # (width, height) or None for no border test
        self._next_id = 1
        self._tracks: list[Track] = []
        self._misses = np.zeros(0, dtype=np.int64)
        self._x = np.zeros((0, 4))
        self._p = np.zeros((0, 4, 4))
        self._finished: list[Track] = []
        self._frame = -1
        a = self.config.accel_px
        # Piecewise-constant white acceleration, dt = 1 frame.
        g = np.array([[0.5, 0.0], [0.0, 0.5], [1.0, 0.0], [0.0, 1.0]])
        self._q = g @ g.T * a * a
        self._r = np.eye(2) * self.config.measurement_px**2

    @property
    def active(self) -> list[Track]:
        return list(self._tracks)

    def update(self, detections: Detections | np.ndarray) -> list[Track]:
        """Advance one frame with its detections (or an (N, 2) array of centres).

        Returns the confirmed tracks that are active after this frame.
        """
        self._frame += 1
        t = self._frame
        if isinstance(detections, Detections):
            centres = detections.centres.astype(np.float64)
            scores = detections.scores.astype(np.float64)
        else:
            centres = np.asarray(detections, dtype=np.float64).reshape(-1, 2)
            scores = np.ones(len(centres))
        cfg = self.config
        # Predict every track at once.
        self._x = self._x @ _F.T
        self._p = _F @ self._p @ _F.T + self._q
        n_tracks, n_det = len(self._tracks), len(centres)
        rows = cols = np.zeros(0, dtype=np.int64)
        if n_tracks and n_det:
            diff = self._x[:, None, :2] - centres[None, :, :]
            dist = np.sqrt((diff**2).sum(axis=2))
            spread = np.sqrt(self._p[:, 0, 0] + self._p[:, 1, 1])
            gate = np.minimum(cfg.gate_px + spread, 2 * cfg.gate_px)[:, None]
            cost = np.where(dist <= gate, dist, 1e9)
            rows, cols = linear_sum_assignment(cost)
            ok = cost[rows, cols] < 1e9
            rows, cols = rows[ok], cols[ok]
        if len(rows):
            self._kalman_update(rows, centres[cols])
        matched = np.zeros(n_tracks, dtype=bool)
        matched[rows] = True
        self._misses[matched] = 0
        self._misses[~matched] += 1
        for r, c in zip(rows, cols):
            track = self._tracks[r]
            track.frames.append(t)
            track.points.append((float(self._x[r, 0]), float(self._x[r, 1])))
            track.measured.append(True)
            track.scores.append(float(scores[c]))
            track.hits += 1
        for r in np.flatnonzero(~matched):
            track = self._tracks[r]
            track.frames.append(t)
            track.points.append((float(self._x[r, 0]), float(self._x[r, 1])))
            track.measured.append(False)
            track.scores.append(0.0)
        self._end_lost_tracks()
        # Births: unmatched detections start tentative tracks at rest.
        unmatched = np.ones(n_det, dtype=bool)
        unmatched[cols] = False
        births = np.flatnonzero(unmatched)
        if len(births):
            new_x = np.zeros((len(births), 4))
            new_x[:, :2] = centres[births]
            new_p = np.tile(
                np.diag([cfg.measurement_px**2] * 2 + [100.0, 100.0]),
                (
                    len(births),
                    1,
                    1,
                ),
            )
            self._x = np.concatenate([self._x, new_x])
            self._p = np.concatenate([self._p, new_p])
            self._misses = np.concatenate(
                [self._misses, np.zeros(len(births), dtype=np.int64)]
            )
            for b in births:
                track = Track(id=self._next_id, hits=1)
                self._next_id += 1
                track.frames.append(t)
                track.points.append((float(centres[b, 0]), float(centres[b, 1])))
                track.measured.append(True)
                track.scores.append(float(scores[b]))
                self._tracks.append(track)
        return [tr for tr in self._tracks if tr.hits >= cfg.min_hits]

    def _kalman_update(self, rows: np.ndarray, z: np.ndarray) -> None:
        x, p = self._x[rows], self._p[rows]
        s = _H @ p @ _H.T + self._r
        k = p @ _H.T @ np.linalg.inv(s)
        y = z - x[:, :2]
        self._x[rows] = x + np.einsum("nij,nj->ni", k, y)
        self._p[rows] = (np.eye(4) - k @ _H) @ p

    def _end_lost_tracks(self) -> None:
        cfg = self.config
        lost = self._misses > cfg.max_misses
        if self.frame_size is not None and len(self._x):
            w, h = self.frame_size
            b = cfg.border_px
            x, y = self._x[:, 0], self._x[:, 1]
            outside = (x < -b) | (y < -b) | (x > w - 1 + b) | (y > h - 1 + b)
            lost |= outside & (self._misses > 0)
        if not lost.any():
            return
        keep = ~lost
        for i in np.flatnonzero(lost):
            self._retire(self._tracks[i])
        self._tracks = [tr for tr, k in zip(self._tracks, keep) if k]
        self._x, self._p, self._misses = (
            self._x[keep],
            self._p[keep],
            self._misses[keep],
        )

    def _retire(self, track: Track) -> None:
        if track.hits >= self.config.min_hits:
            track._trim_coasting()
            self._finished.append(track)

    def pop_finished(self) -> list[Track]:
        """Confirmed tracks that have ended since the last call."""
        finished, self._finished = self._finished, []
        return finished

    def finish(self) -> list[Track]:
        """End every active track; return all confirmed tracks not yet popped."""
        for track in self._tracks:
            self._retire(track)
        self._tracks = []
        self._x, self._p = np.zeros((0, 4)), np.zeros((0, 4, 4))
        self._misses = np.zeros(0, dtype=np.int64)
        return self.pop_finished()


def tracks_from_detections(
    detections: list[Detections | np.ndarray],
    *,
    config: TrackerConfig | None = None,
    frame_size: tuple[int, int] | None = None,
) -> list[Track]:
    """Track a whole list of per-frame detections; confirmed tracks by id."""
    tracker = MultiTracker(config, frame_size=frame_size)
    tracks: list[Track] = []
    for frame_detections in detections:
        tracker.update(frame_detections)
        tracks.extend(tracker.pop_finished())
    tracks.extend(tracker.finish())
    return sorted(tracks, key=lambda tr: tr.id)
