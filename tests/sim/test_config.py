import pytest

from sim.config import EnvConfig
from sim.configio import ConfigError, apply_overrides, load_yaml, save_yaml


def test_yaml_round_trip_and_overrides(tmp_path):
    cfg = apply_overrides(EnvConfig(), ["task.goal_mode=z", "randomization.mass=[0.9, 1.1]", "scene.substeps=20"])
    path = tmp_path / "env.yaml"
    save_yaml(cfg, path)
    loaded = load_yaml(EnvConfig, path, ["task.success_threshold=0.3"])
    assert loaded.task.goal_mode == "z"
    assert loaded.randomization.mass == (0.9, 1.1)
    assert loaded.scene.substeps == 20
    assert loaded.task.success_threshold == 0.3


@pytest.mark.parametrize(
    ("override", "names"),
    [
        ("task.goal_mod=z", "task.goal_mod"),
        ("task.goal_mode=sideways", "task.goal_mode"),
        ("scene.substeps=many", "scene.substeps"),
        ("randomization.mass=[2.0, 1.0]", "randomization.mass"),
        ("randomization.strength=1.5", "randomization.strength"),
        ("nonsense", "field.path=value"),
    ],
)
def test_bad_override_names_the_field(override, names):
    with pytest.raises(ConfigError, match=names.replace(".", r"\.").replace("[", r"\[")):
        apply_overrides(EnvConfig(), [override])


def test_unknown_yaml_field_is_named(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("task:\n  goal_mode: z\n  sucess_threshold: 0.3\n")
    with pytest.raises(ConfigError, match=r"task\.sucess_threshold"):
        load_yaml(EnvConfig, path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(EnvConfig, tmp_path / "nope.yaml")
