"""Accuracy measures of a flow prediction: field RMSEs and the force statistics users care about.

Pure numpy on plain arrays, so the same numbers come out of ``compare``, ``evaluate``, training's
validation and the app's plots.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

# A lift amplitude below this (in c_L) is numerical noise, not vortex shedding.
SHEDDING_CL_AMPLITUDE = 0.02


def field_rmse(
    ref_velocity: np.ndarray,
    pred_velocity: np.ndarray,
    ref_pressure: np.ndarray,
    pred_pressure: np.ndarray,
    mask: np.ndarray | None = None,
) -> dict[str, float]:
    """RMSE of u, v, velocity (both components pooled) and p over every step and masked node.

    Shapes: velocity [T, N, 2], pressure [T, N], mask [N] bool. The pooled velocity RMSE is
    sqrt(mean of squared u and v errors), the all-rollout RMSE of the literature.
    """
    if mask is not None:
        ref_velocity, pred_velocity = ref_velocity[:, mask], pred_velocity[:, mask]
        ref_pressure, pred_pressure = ref_pressure[:, mask], pred_pressure[:, mask]
    dv = (pred_velocity.astype(np.float64) - ref_velocity) ** 2
    dp = (pred_pressure.astype(np.float64) - ref_pressure) ** 2
    return {
        "u": math.sqrt(float(dv[..., 0].mean())),
        "v": math.sqrt(float(dv[..., 1].mean())),
        "velocity": math.sqrt(float(dv.mean())),
        "p": math.sqrt(float(dp.mean())),
    }


def settled(samples: np.ndarray, settle_fraction: float) -> np.ndarray:
    """The samples after the first ``settle_fraction`` of them, as float64.

    The start-up transient is not part of the answer a user wants; the forces and the wake
    measures both take the tail this returns, so they always describe the same window.
    """
    tail = np.asarray(samples)[int(len(samples) * settle_fraction) :].astype(np.float64)
    if len(tail) == 0:
        raise ValueError("no samples left after the settling part")
    return tail


# A wake whose velocity fluctuates by less than this fraction of Ū (RMS over the computed
# nodes) is steady: a fluctuation ratio against it would divide noise by noise.
UNSTEADY_FLUCTUATION = 0.01


def wake_stats(
    ref_velocity: np.ndarray,
    pred_velocity: np.ndarray,
    speed: float,
    mask: np.ndarray | None = None,
    settle_fraction: float = 0.5,
) -> dict[str, float | None]:
    """Phase-blind measures of the settled flow, next to the all-rollout RMSE.

    A vortex street shed at a slightly wrong frequency drifts out of phase, and the pointwise
    RMSE then charges it twice per period, more than a prediction that has decayed to the mean
    flow and sheds nothing. These two numbers separate the cases: the RMSE of the time-averaged
    velocity (the mean flow, blind to phase) and the ratio of the predicted to the reference
    velocity fluctuation about those means (1 is right, near 0 a damped wake; None where the
    reference is steady). Both over the tail after ``settle_fraction``, like the forces.
    """
    if mask is not None:
        ref_velocity, pred_velocity = ref_velocity[:, mask], pred_velocity[:, mask]
    ref, pred = settled(ref_velocity, settle_fraction), settled(pred_velocity, settle_fraction)
    ref_mean, pred_mean = ref.mean(axis=0), pred.mean(axis=0)
    ref_fluctuation = math.sqrt(float(((ref - ref_mean) ** 2).mean()))
    pred_fluctuation = math.sqrt(float(((pred - pred_mean) ** 2).mean()))
    unsteady = ref_fluctuation > UNSTEADY_FLUCTUATION * speed
    return {
        "mean_flow_velocity_rmse_relative": math.sqrt(float(((pred_mean - ref_mean) ** 2).mean()))
        / speed,
        "fluctuation_ratio": pred_fluctuation / ref_fluctuation if unsteady else None,
    }


def relative_rmse(rmse: dict[str, float], speed: float, density: float) -> dict[str, float]:
    """RMSEs made dimensionless: velocities by the mean inflow speed Ū, pressure by ρŪ²."""
    return {k: v / (density * speed**2) if k == "p" else v / speed for k, v in rmse.items()}


def dominant_frequency(signal: np.ndarray, dt: float) -> float | None:
    """The frequency [1/time] of the strongest oscillation in an evenly sampled signal.

    A Hann window keeps leakage from the finite record off the peak; zero-padding by 8 and a
    parabola through the log-magnitudes of the three bins around the peak place it to a small
    fraction of a bin, so a few periods are enough for a Strouhal number good to well under 1 %.
    """
    x = np.asarray(signal, dtype=np.float64)
    x = x - x.mean()
    n = len(x)
    if n < 8 or not np.any(np.abs(x) > 1e-12 * max(1.0, float(np.abs(signal).max()))):
        return None
    spectrum = np.abs(np.fft.rfft(x * np.hanning(n), n=8 * n))
    k = 1 + int(np.argmax(spectrum[1:]))
    if k >= len(spectrum) - 1:
        return k / (8 * n * dt)
    a, b, c = np.log(np.maximum(spectrum[k - 1 : k + 2], 1e-300))
    denom = a - 2.0 * b + c
    delta = 0.5 * (a - c) / denom if denom < 0 else 0.0
    return float((k + delta) / (8 * n * dt))


@dataclass(frozen=True)
class ForceStats:
    """Force-coefficient statistics of one obstacle over the periodic part of a run."""

    cd_mean: float
    cd_max: float
    cl_amplitude: float  # half the peak-to-peak lift coefficient
    cl_max: float
    strouhal: float | None  # f L / Ū of the lift oscillation; None when the flow does not shed
    shedding: bool

    def to_dict(self) -> dict[str, float | bool | None]:
        return asdict(self)


def force_stats(
    coefficients: np.ndarray, dt: float, length: float, speed: float, settle_fraction: float = 0.5
) -> ForceStats:
    """Statistics of (c_D, c_L) samples [T, 2] after dropping the first ``settle_fraction``.

    The periodic part is taken as the tail of the run (:func:`settled`). When the lift
    oscillates, the mean drag is taken over a whole number of periods so it does not depend on
    the phase at which the record stops.
    """
    tail = settled(coefficients, settle_fraction)
    cd, cl = tail[:, 0], tail[:, 1]
    amplitude = 0.5 * float(cl.max() - cl.min())
    freq = dominant_frequency(cl, dt)
    periods = 0.0 if freq is None else freq * dt * len(cl)
    shedding = amplitude > SHEDDING_CL_AMPLITUDE and periods >= 2.0
    if shedding and freq is not None:
        whole = round(math.floor(periods) / (freq * dt))
        cd_window = cd[len(cd) - min(whole, len(cd)) :]
    else:
        cd_window = cd
    return ForceStats(
        cd_mean=float(cd_window.mean()),
        cd_max=float(cd.max()),
        cl_amplitude=amplitude,
        cl_max=float(cl.max()),
        strouhal=freq * length / speed if shedding and freq is not None else None,
        shedding=bool(shedding),
    )


def startup_force_error(
    reference: np.ndarray, prediction: np.ndarray, time: np.ndarray, ramp_time: float
) -> dict[str, float] | None:
    """Largest |Δc_D| and |Δc_L| over the inflow's start-up: the ramp and as long again.

    Why: the settled-tail statistics leave the start-up out, and there a learned pressure can be
    far off while the flow accelerates (on DFG 2D-2 the default's drag dipped to −0.7 at
    t = 0.4 s where the solver's read 2.75), which is what a user sees first in the force plot.
    Absolute, not relative: the reference forces start from zero there. None for an impulsive
    start (no ramp) or a record that ends before the first step.
    """
    until = 2.0 * ramp_time
    window = (time > 0.0) & (time <= until + 1e-9)
    if ramp_time <= 0.0 or not window.any():
        return None
    diff = np.abs(prediction[window] - reference[window])
    return {
        "until_time": until,
        "cd_max_abs_error": float(diff[:, 0].max()),
        "cl_max_abs_error": float(diff[:, 1].max()),
    }


def relative_error(pred: float | None, ref: float | None) -> float | None:
    """|pred − ref| / |ref|, or None when either is missing or the reference is zero."""
    if pred is None or ref is None or ref == 0:
        return None
    return abs(pred - ref) / abs(ref)


def force_errors(pred: ForceStats, ref: ForceStats) -> dict[str, float | None]:
    """Relative errors of the statistics a user compares: mean drag, lift amplitude, Strouhal."""
    return {
        "cd_mean": relative_error(pred.cd_mean, ref.cd_mean),
        "cl_amplitude": relative_error(pred.cl_amplitude, ref.cl_amplitude),
        "strouhal": relative_error(pred.strouhal, ref.strouhal),
    }
