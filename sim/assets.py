"""Where the OpenAI Shadow Hand model comes from: gymnasium-robotics' assets, or a folder you name.

The asset files are read in place and never copied into this repository.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

ASSETS_ENV_VAR = "DEXHAND_HAND_ASSETS"
HAND_XML = "manipulate_block.xml"


class AssetsNotFoundError(FileNotFoundError):
    """The hand model's XML/STL files cannot be found."""


def assets_root() -> Path:
    """The folder holding ``hand/``, ``stls/hand`` and ``textures/`` (gymnasium-robotics layout).

    ``$DEXHAND_HAND_ASSETS`` wins, for machines that carry only the 2 MB of hand assets; otherwise
    the installed gymnasium-robotics package (found without importing it, which is slow and noisy).
    """
    override = os.environ.get(ASSETS_ENV_VAR)
    if override:
        root = Path(override).expanduser()
        if not (root / "hand" / HAND_XML).is_file():
            raise AssetsNotFoundError(
                f"${ASSETS_ENV_VAR}={override} does not hold hand/{HAND_XML} "
                "(expected gymnasium-robotics' envs/assets layout: hand/, stls/hand/, textures/)"
            )
        return root
    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or not spec.submodule_search_locations:
        raise AssetsNotFoundError(
            f"the Shadow Hand assets need gymnasium-robotics (pip install gymnasium-robotics) or "
            f"${ASSETS_ENV_VAR} pointing at a copy of its envs/assets folder"
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "envs" / "assets"
    if not (root / "hand" / HAND_XML).is_file():
        raise AssetsNotFoundError(
            f"gymnasium-robotics is installed but {root / 'hand' / HAND_XML} is missing"
        )
    return root


def hand_xml() -> Path:
    return assets_root() / "hand" / HAND_XML
