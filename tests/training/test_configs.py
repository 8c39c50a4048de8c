"""Every config and overlay, and the cluster job commands, parse with the CLI."""

from __future__ import annotations

import shlex

import pytest
import yaml
from helpers.paths import ROOT

from tweetcls.training.cli import run_cli_class
from tweetcls.training.preprocess_cli import PreprocessCLI

BASES = ["configs/minilm.yaml", "configs/mpnet.yaml", "configs/roberta.yaml", "configs/tiny.yaml"]


def parse(args: list[str]):
    return run_cli_class(PreprocessCLI, args, run=False).config


@pytest.mark.parametrize("base", BASES)
def test_overlays_compose_with_every_base_config(base, monkeypatch):
    monkeypatch.chdir(ROOT)
    config = parse(
        [
            "--config",
            base,
            "--config",
            "configs/trainer/ddp.yaml",
            "--config",
            "configs/logger/wandb.yaml",
        ]
    )
    assert config.trainer.precision == "bf16-mixed"
    assert config.trainer.strategy.class_path.endswith("DDPStrategy")
    assert config.trainer.logger.class_path == "tweetcls.training.tracking.TrackedWandbLogger"
    # the default callback groups survive the overlays (tests/training/test_cli_defaults.py)
    assert config.early_stopping.monitor == "val/f1"


def test_vertex_ai_job_runs_a_command_the_cli_accepts(monkeypatch):
    monkeypatch.chdir(ROOT)
    job = yaml.safe_load((ROOT / "cloud" / "vertex-ai-job.yaml").read_text())
    pools = job["workerPoolSpecs"]
    assert len(pools) == 2 and all(p["containerSpec"]["imageUri"] for p in pools)
    script = pools[0]["containerSpec"]["args"][0]
    fit = shlex.split(script.split("-m tweetcls fit", 1)[1].replace('"${WORLD_SIZE:-1}"', "2"))
    config = parse(fit)
    assert config.trainer.num_nodes == 2
    assert config.trainer.devices == -1


def test_slurm_script_matches_the_ddp_overlay():
    script = (ROOT / "cloud" / "slurm.sbatch").read_text()
    assert "--config configs/trainer/ddp.yaml" in script
    assert '--trainer.num_nodes "$SLURM_NNODES"' in script
