"""A campaign job end to end on the CPU: real datagen in the background, training, evaluation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from engine.data.trajectory import Trajectory
from engine.training.campaign import CampaignJob, run_job, schedule_note, seed_note
from engine.training.checkpoint import read_checkpoint
from engine.training.config import TrainConfig

CONFIG = Path(__file__).parents[2] / "configs" / "tiny-cpu.json"


@pytest.mark.slow
@pytest.mark.parametrize(
    "datagen_device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.gpu,
                pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
            ],
        ),
    ],
)
def test_campaign_job_trains_while_generating_and_hands_back_few_small_files(
    tmp_path: Path, datagen_device: str
) -> None:
    job = CampaignJob(
        config=TrainConfig.load(CONFIG),
        out=tmp_path / "out",
        minutes=1.0,
        data=tmp_path / "data",
        workers=1,
        datagen_steps=6,
        datagen_max_dt=0.002,
        count=8,  # uncapped, the generator writes ~90 such trajectories in the job's minute
        datagen_device=datagen_device,
        eval_minutes=0.3,
        eval_steps=3,
    )
    metrics = run_job(job)
    files = sorted(p.name for p in job.out.iterdir())
    assert len(files) <= 8 and metrics["oversized_files"] == []
    assert {"model.safetensors", "model.json", "trainer.json", "metrics.json"} <= set(files)
    assert json.loads((job.out / "metrics.json").read_text())["job"] == 1
    state = read_checkpoint(job.out).state
    assert state.step > 0 and state.jobs == 1
    assert metrics["trajectories"]["train"] >= 1 and metrics["datagen_exit"] is not None
    assert metrics["datagen_failures"] == []  # would name each failed trajectory and why
    assert sum(metrics["trajectories"].values()) == 8
    assert metrics["datagen_device"] == datagen_device
    # The cap reached the generator: every trajectory was solved at internal steps ≤ 2 ms.
    steps_used = {Trajectory.load(p).attrs["internal_dt"] for p in job.data.glob("*.h5")}
    assert steps_used and max(steps_used) <= 0.002 + 1e-12
    assert metrics["datagen_max_dt"] == 0.002
    assert metrics["seconds"]["total"] < 60.0  # stopped itself inside its minute


def test_campaign_refuses_a_resume_folder_that_is_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing --resume path is an error, not a silent fresh start (it cost a GPU job once)."""
    from engine.cli import main

    missing = tmp_path / "runs" / "job3"
    status = main(
        ["campaign", str(CONFIG), "--out", str(tmp_path / "out"), "--resume", str(missing)]
    )
    assert status != 0
    assert f"--resume {missing}: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_job_whose_schedule_ends_early_says_so() -> None:
    config = TrainConfig.load(CONFIG).replace(time_minutes=13.0, epochs=None)
    assert schedule_note(config, train_seconds=0.0, window_minutes=6.0) is None
    assert schedule_note(config, train_seconds=7 * 60.0, window_minutes=6.0) is None  # 6 left
    note = schedule_note(config, train_seconds=12.5 * 60.0, window_minutes=5.0)
    assert note is not None
    assert "0.5 of the schedule's 13 minutes" in note and "4.5 minutes before" in note
    assert schedule_note(config.replace(time_minutes=None, epochs=3), 1e6, 5.0) is None


def test_a_campaign_from_trained_weights_is_warned_off_the_first_jobs_scenarios() -> None:
    config = TrainConfig.load(CONFIG)
    assert seed_note(config, seed=0) is None  # a new model: any data is new
    continued = config.replace(init_weights="default")
    note = seed_note(continued, seed=0)
    assert note is not None and "--seed" in note and "default" in note
    assert seed_note(continued, seed=59) is None
    assert seed_note(continued, seed=100_003) is None  # a resumed job moves on
