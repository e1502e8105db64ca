"""Write episodes as MP4 (ffmpeg from imageio-ffmpeg) or GIF, with a status strip on each frame."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np


def annotate(frame: np.ndarray, lines: Iterable[str]) -> np.ndarray:
    """Draw text lines in a dark strip at the top of a copy of ``frame``."""
    out = np.ascontiguousarray(frame.copy())
    lines = list(lines)
    strip = 18 * len(lines) + 6
    out[:strip] = (out[:strip] * 0.35).astype(np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(out, line, (6, 18 + 18 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


class VideoWriter:
    """Collects frames and writes MP4 (H.264) or GIF by the file's suffix."""

    def __init__(self, path: str | Path, fps: float) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".gif"):
            raise ValueError(f"video path must end in .mp4 or .gif, got {self.path.name}")
        self.fps = fps
        self.frames: list[np.ndarray] = []

    def add(self, frame: np.ndarray) -> None:
        self.frames.append(frame)

    def close(self) -> Path:
        import imageio.v2 as imageio

        if not self.frames:
            raise ValueError("no frames to write")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix.lower() == ".gif":
            imageio.mimsave(self.path, self.frames, duration=1.0 / self.fps, loop=0)
        else:
            with imageio.get_writer(self.path, fps=self.fps, codec="libx264", quality=7,
                                    macro_block_size=8, ffmpeg_log_level="error") as writer:
                for frame in self.frames:
                    writer.append_data(frame)
        return self.path
