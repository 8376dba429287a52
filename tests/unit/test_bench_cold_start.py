"""bench.cold_start measures the functions as deployed: the config layer is built the way template.yaml
says (config/ as it is, or config/Makefile's JSON), and ROLEWARDEN_CONFIG points at the layer's file."""

from __future__ import annotations

import copy
from pathlib import Path

from bench.cold_start import _sample, config_layer

from rolewarden.config import parse_config
from rwlocal.stack import load_template

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (ROOT / "config" / "rolewarden.yaml").read_text()


def test_a_layer_without_build_method_is_its_content_uri_as_it_is(tmp_path: Path) -> None:
    template = copy.deepcopy(load_template())
    template["Resources"]["ConfigLayer"].pop("Metadata", None)
    assert config_layer(template, tmp_path) == ROOT / "config"
    assert not (tmp_path / "config-layer").exists()


def test_a_makefile_layer_is_what_config_makefile_builds(tmp_path: Path) -> None:
    template = copy.deepcopy(load_template())
    template["Resources"]["ConfigLayer"]["Metadata"] = {"BuildMethod": "makefile"}
    opt = config_layer(template, tmp_path)
    assert opt == tmp_path.resolve() / "config-layer"
    assert [p.name for p in opt.iterdir()] == ["rolewarden.json"]
    assert parse_config((opt / "rolewarden.json").read_text()) == parse_config(SHIPPED)


def test_rolewarden_config_is_the_layer_s_file_the_template_names(tmp_path: Path) -> None:
    value = {"Fn::If": ["UseSsmConfig", {"Fn::Sub": "ssm:${ConfigParameterName}"}, "/opt/rolewarden.json"]}
    assert _sample(value, {}, "ROLEWARDEN_CONFIG", tmp_path) == str(tmp_path / "rolewarden.json")
    assert _sample("/opt/rolewarden.yaml", {}, "ROLEWARDEN_CONFIG", tmp_path) == str(tmp_path / "rolewarden.yaml")
    assert _sample("plain", {}, "OTHER", tmp_path) == "plain"
