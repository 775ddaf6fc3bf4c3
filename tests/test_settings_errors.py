"""A mistake in settings.yaml, as the operator meets it at the shell: one line naming the file and
the key (or the line and column of a syntax error), never a traceback, and nothing run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT


def haic(home: Path, settings: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HAIC_HOME": str(home), "HAIC_SETTINGS": str(settings)}
    return subprocess.run([sys.executable, "-m", "haic_cli", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("text, problem", [
    # The case: accepted before, both out of range; the first is named.
    ("human_presence:\n  min_people: -3\n  max_people: 0\n",
     "human_presence.min_people: Input should be greater than or equal to 0"),
    ("human_presence:\n  min_people: 3\n  max_people: 2\n",
     "human_presence.max_people: Value error, min_people 3 is above max_people 2"),
    # A changed minimum is checked against the maximum's default too.
    ("clips:\n  min_length_s: 30\n", "clips.max_length_s: Value error, min_length_s 30.0 is above max_length_s 20.0"),
    ("pose_tracks:\n  min_iou: 1.5\n", "pose_tracks.min_iou: Input should be less than or equal to 1"),
    ("action_filtered:\n  min_valid_keypoints: 18\n",
     "action_filtered.min_valid_keypoints: Input should be less than or equal to 17"),
    ("platform:\n  yield_band_pct: [2.0, 1.0]\n", "platform.yield_band_pct: Value error, expected [low, high] with "
                                                 "0 <= low <= high <= 100 (percent), got [2.0, 1.0]"),
    ("human_presence:\n  min_people: [1\nclips: {}\n",
     "not valid YAML (line 3, column 6): expected ',' or ']', but got ':'"),
    ("human_presence:\n\tmin_people: 1\n",
     "not valid YAML (line 2, column 1): found character '\\t' that cannot start any token"),
])
def test_a_settings_mistake_is_one_line_naming_the_file_and_the_key(tmp_path, text, problem):
    settings = tmp_path / "settings.yaml"
    settings.write_text(text)
    done = haic(tmp_path / "home", settings, "recurate", "--dry-run")
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"haic recurate: {settings}: {problem}\n")


def test_check_caption_reads_its_word_bounds_from_settings_checked_the_same_way(tmp_path):
    settings, caption = tmp_path / "settings.yaml", tmp_path / "caption.txt"
    settings.write_text("caption_judgement:\n  min_words: 700\n")  # above the default max_words 600
    caption.write_text("There is 1 subject in the video.\n")
    done = haic(tmp_path / "home", settings, "check-caption", str(caption))
    assert (done.returncode, done.stdout, done.stderr) == (
        2, "", f"haic check-caption: {settings}: caption_judgement.max_words: Value error, min_words 700 is above "
               "max_words 600\n")


def test_every_stage_config_accepts_its_defaults_and_refuses_a_negative_count():
    from pydantic import ValidationError

    from haic_assets.stages import STAGES

    for spec in STAGES:
        spec.config_class()  # the paper's defaults are within every bound
    from haic_assets.accumulation.human_presence import HumanPresenceConfig

    with pytest.raises(ValidationError):
        HumanPresenceConfig(samples=0)
