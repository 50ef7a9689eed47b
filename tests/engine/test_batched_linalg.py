"""Batched Krylov solvers and block-diagonal operators against scipy/numpy on real-size systems."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from engine.solver.batched.linalg import (
    BatchedPattern,
    BiCGStab,
    ConjugateGradient,
    DenseInverse,
    Refined,
    Stragglers,
    jacobi_sweeps,
)
from engine.solver.batched.stepper import stack_csr
from engine.solver.spaces import ElementPattern


def _laplacian_1d(n: int, shift: float) -> sp.csr_matrix:
    return sp.diags([-1.0, 2.0 + shift, -1.0], [-1, 0, 1], shape=(n, n), format="csr")


def _padded(vectors: list[np.ndarray], width: int) -> torch.Tensor:
    out = torch.zeros((len(vectors), width), dtype=torch.float64)
    for b, v in enumerate(vectors):
        out[b, : len(v)] = torch.as_tensor(v)
    return out


@pytest.fixture(autouse=True)
def _one_thread():
    # torch's CPU CSR kernels crawl when OpenMP threads fight other processes for 2 cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_stacked_csr_is_block_diagonal_with_empty_padding():
    mats = [
        sp.random(5, 4, density=0.5, random_state=1, format="csr"),
        sp.random(3, 6, density=0.5, random_state=2, format="csr"),
    ]
    stacked = stack_csr(mats, 5, 6, torch.float64, "cpu")
    x = torch.randn(2, 6, dtype=torch.float64)
    y = stacked @ x
    assert y.shape == (2, 5)
    np.testing.assert_allclose(y[0].numpy(), mats[0] @ x[0, :4].numpy(), atol=1e-14)
    np.testing.assert_allclose(y[1, :3].numpy(), mats[1] @ x[1].numpy(), atol=1e-14)
    assert torch.all(y[1, 3:] == 0)


def test_batched_pattern_scatters_element_matrices_like_the_cpu_pattern():
    rng = np.random.default_rng(0)
    dofs = [np.array([[0, 1, 2], [1, 2, 3]]).T, np.array([[0, 1, 2]]).T]
    patterns = [ElementPattern.from_dofs(d, d, (int(d.max()) + 1,) * 2) for d in dofs]
    local = [rng.normal(size=(d.shape[1], 3, 3)) for d in dofs]
    batched = BatchedPattern.stack(patterns, 4, 4)
    data = batched.assemble_local(torch.as_tensor(np.concatenate([x.ravel() for x in local])))
    dense = batched.matrix(data).csr.to_dense().numpy()
    expected = sp.block_diag(
        [p.matrix(p.data(x)) for p, x in zip(patterns, local, strict=True)]
    ).toarray()
    np.testing.assert_allclose(dense[:4, :4], expected[:4, :4], atol=1e-14)
    np.testing.assert_allclose(dense[4:7, 4:7], expected[4:, 4:], atol=1e-14)
    assert np.all(dense[7] == 0)  # padding row of the smaller mesh


def test_fp32_inverse_preconditions_cg_to_fp64_accuracy():
    mats = [_laplacian_1d(400, 0.0)]  # condition number ~6e4: fp32 alone is not enough
    a = stack_csr(mats, 400, 400, torch.float64, "cpu")
    inv = DenseInverse(mats, 400, torch.float32)
    b = torch.randn(1, 400, dtype=torch.float64)
    solver = ConjugateGradient(
        lambda x: a @ x, inv, b, rtol=1e-12, max_iterations=50, check_every=1
    )
    result = solver.solve(b, torch.zeros_like(b))
    assert result.iterations <= 6
    exact = np.linalg.solve(mats[0].toarray(), b[0].numpy())
    np.testing.assert_allclose(result.x[0].numpy(), exact, rtol=1e-9)


def test_dense_inverse_pads_with_identity():
    mats = [_laplacian_1d(6, 0.0), _laplacian_1d(4, 0.5)]
    inv = DenseInverse(mats, 6, torch.float64)
    r = torch.randn(2, 6, dtype=torch.float64)
    z = inv(r)
    np.testing.assert_allclose(z[0].numpy(), np.linalg.solve(mats[0].toarray(), r[0].numpy()))
    np.testing.assert_allclose(z[1, :4].numpy(), np.linalg.solve(mats[1].toarray(), r[1, :4]))
    np.testing.assert_allclose(z[1, 4:].numpy(), r[1, 4:].numpy())


def test_dense_inverse_factorises_a_bucket_in_chunks_of_mixed_sizes():
    # Sizes 6, 5, 5 share a bucket (padded to 6) factorised two at a time; 4 gets its own.
    sizes = [5, 6, 4, 5]
    mats = [_laplacian_1d(n, 0.1 * k) for k, n in enumerate(sizes)]
    inv = DenseInverse(mats, 6, torch.float64, chunk_bytes=8 * 6 * 6 * 2)
    assert sorted(len(systems) for systems, _ in inv.buckets) == [1, 3]
    r = torch.randn(4, 6, dtype=torch.float64)
    z = inv(r)
    for b, (a, n) in enumerate(zip(mats, sizes, strict=True)):
        np.testing.assert_allclose(z[b, :n].numpy(), np.linalg.solve(a.toarray(), r[b, :n]))
        np.testing.assert_allclose(z[b, n:].numpy(), r[b, n:].numpy())


def test_cg_solves_each_system_of_a_batch_as_if_alone():
    sizes = [300, 180]
    mats = [_laplacian_1d(n, 0.01) for n in sizes]
    rng = np.random.default_rng(3)
    rhs = [rng.normal(size=n) for n in sizes]
    a = stack_csr(mats, 300, 300, torch.float64, "cpu")
    mask = _padded([np.ones(n) for n in sizes], 300)
    apply = lambda x: mask * (a @ (mask * x)) + (1 - mask) * x  # noqa: E731
    b = _padded(rhs, 300)
    settings = {"rtol": 1e-12, "max_iterations": 2000}
    both = ConjugateGradient(apply, lambda r: r / 2.01, b, **settings)
    both = both.solve(b, torch.zeros_like(b))
    single = stack_csr(mats[1:], 180, 180, torch.float64, "cpu")
    alone = ConjugateGradient(lambda x: single @ x, lambda r: r / 2.01, b[1:, :180], **settings)
    alone = alone.solve(b[1:, :180], torch.zeros_like(b[1:, :180]))
    np.testing.assert_allclose(both.x[1, :180].numpy(), alone.x[0].numpy(), rtol=1e-13, atol=1e-14)
    for k, (m, f) in enumerate(zip(mats, rhs, strict=True)):
        exact = sp.linalg.spsolve(m.tocsc(), f)
        np.testing.assert_allclose(both.x[k, : len(f)].numpy(), exact, rtol=1e-8, atol=1e-9)
    assert torch.all(both.residual <= 1e-12)


def test_bicgstab_solves_nonsymmetric_systems_per_row():
    n = 250
    rng = np.random.default_rng(4)
    mats = [
        (_laplacian_1d(n, 1.0) + sp.diags([0.4 * k], [1], shape=(n, n))).tocsr() for k in (1, 2)
    ]
    a = stack_csr(mats, n, n, torch.float64, "cpu")
    b = torch.as_tensor(rng.normal(size=(2, n)))
    solver = BiCGStab(lambda x: a @ x, lambda r: r / 3.0, b, rtol=1e-12, max_iterations=500)
    result = solver.solve(b, torch.zeros_like(b))
    for k, m in enumerate(mats):
        exact = sp.linalg.spsolve(m.tocsc(), b[k].numpy())
        np.testing.assert_allclose(result.x[k].numpy(), exact, rtol=1e-9, atol=1e-10)


def test_refined_fp32_iterations_meet_an_fp64_tolerance():
    n = 300
    mats = [(_laplacian_1d(n, 0.5) + sp.diags([0.3], [1], shape=(n, n))).tocsr()]
    a64 = stack_csr(mats, n, n, torch.float64, "cpu")
    a32 = stack_csr(mats, n, n, torch.float32, "cpu")
    b = torch.as_tensor(np.random.default_rng(5).normal(size=(1, n)))
    inner = BiCGStab(lambda x: a32 @ x, lambda r: r / 2.5, b.float(), rtol=1e-5, max_iterations=500)
    result = Refined(lambda x: a64 @ x, inner, rtol=1e-12).solve(b, torch.zeros_like(b))
    assert result.x.dtype == torch.float64
    assert float(result.residual[0]) <= 1e-12  # far below what fp32 alone can reach
    exact = sp.linalg.spsolve(mats[0].tocsc(), b[0].numpy())
    np.testing.assert_allclose(result.x[0].numpy(), exact, rtol=1e-10, atol=1e-11)


class _BreaksDownOnSystemOne(BiCGStab):
    """BiCGStab whose correction for system 1 is garbage, as an fp32 breakdown returns."""

    def solve(self, *args, **kwargs):
        result = super().solve(*args, **kwargs)
        result.x[1] = 1e12
        return result


def test_refined_undoes_a_correction_that_raises_the_residual_and_stops_that_system():
    n = 200
    mats = [_laplacian_1d(n, 0.5), _laplacian_1d(n, 0.5)]
    a64 = stack_csr(mats, n, n, torch.float64, "cpu")
    a32 = stack_csr(mats, n, n, torch.float32, "cpu")
    b = torch.ones(2, n, dtype=torch.float64)
    inner = _BreaksDownOnSystemOne(
        lambda x: a32 @ x, lambda r: r / 2.5, b.float(), rtol=1e-5, max_iterations=500
    )
    result = Refined(lambda x: a64 @ x, inner, rtol=1e-12).solve(b, torch.zeros_like(b))
    assert float(result.residual[0]) <= 1e-12  # the healthy system is unaffected
    exact = sp.linalg.spsolve(mats[0].tocsc(), b[0].numpy())
    np.testing.assert_allclose(result.x[0].numpy(), exact, rtol=1e-10)
    assert torch.all(result.x[1] == 0)  # the garbage never reached the solution
    assert float(result.residual[1]) == pytest.approx(1.0)  # reported as unsolved


def test_refined_budget_stops_a_hopeless_system_without_starving_the_others():
    # System 0 cannot converge in 40 iterations; system 1 converges in its first round to the
    # fp32 floor and needs a second round for 1e-12, after system 0 has spent its budget.
    n = 300
    mats = [_laplacian_1d(n, 1e-4), _laplacian_1d(n, 1.0)]
    a64 = stack_csr(mats, n, n, torch.float64, "cpu")
    a32 = stack_csr(mats, n, n, torch.float32, "cpu")
    b = torch.ones(2, n, dtype=torch.float64)
    inner = ConjugateGradient(
        lambda x: a32 @ x, lambda r: r, b.float(), rtol=1e-5, max_iterations=500
    )
    result = Refined(lambda x: a64 @ x, inner, rtol=1e-12, max_iterations=40).solve(
        b, torch.zeros_like(b)
    )
    assert int(result.per_system[0]) == 40
    assert float(result.residual[0]) > 1e-6
    assert float(result.residual[1]) <= 1e-12
    exact = sp.linalg.spsolve(mats[1].tocsc(), b[1].numpy())
    np.testing.assert_allclose(result.x[1].numpy(), exact, rtol=1e-10)


def test_per_system_iterations_show_what_each_system_needed():
    easy, hard = _laplacian_1d(200, 10.0), _laplacian_1d(200, 0.001)  # diagonal-dominant vs not
    a = stack_csr([easy, hard], 200, 200, torch.float64, "cpu")
    b = torch.ones(2, 200, dtype=torch.float64)
    solver = ConjugateGradient(lambda x: a @ x, lambda r: r, b, rtol=1e-10, max_iterations=2000)
    result = solver.solve(b, torch.zeros_like(b))
    easy_its, hard_its = result.per_system.tolist()
    assert easy_its < hard_its <= result.iterations  # the batch pays for its slowest system


def test_stragglers_gather_the_chosen_systems_matrices_exactly():
    sizes = [5, 7, 6, 4]
    rng = np.random.default_rng(6)
    mats = []
    for n in sizes:
        m = (sp.random(n, n, density=0.5, random_state=rng) + 4 * sp.eye(n)).tocsr()
        m.sort_indices()
        mats.append(m)
    patterns = [ElementPattern(m.shape, m.indptr, m.indices, np.zeros(0, int)) for m in mats]
    batched = BatchedPattern.stack(patterns, 7, 7)
    data = batched.data([m.data for m in mats], torch.float64)
    mask = torch.ones((4, 7, 2), dtype=torch.float64)
    for b, n in enumerate(sizes):
        mask[b, n:] = 0.0  # padding dofs
    jacobi = torch.ones_like(mask)
    few = Stragglers(
        BiCGStab, batched, data, mask, jacobi, capacity=3, rtol=1e-12, max_iterations=200
    )
    b = torch.as_tensor(rng.normal(size=(4, 7, 2))) * mask
    chosen = torch.tensor([3, 1])
    result = few.solve(b, torch.full((4,), 1e-12, dtype=torch.float64), chosen)
    for k, system in enumerate(chosen.tolist()):
        n = sizes[system]
        exact = sp.linalg.spsolve(mats[system].tocsc(), b[system, :n].numpy())
        np.testing.assert_allclose(result.x[k, :n].numpy(), exact, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(result.x[k, n:].numpy(), 0.0)


class _CutRoundOvershoots(BiCGStab):
    """BiCGStab whose unfinished iterates (a round cut short for the stragglers) overshoot, as
    BiCGStab's need not lower the residual before it converges."""

    def solve(self, b, x0, rtol=None, stop_at=0, max_iterations=None):
        result = super().solve(b, x0, rtol, stop_at, max_iterations)
        if stop_at:
            unfinished = result.residual > self.rtol
            result.x[unfinished] *= 50.0
        return result


def test_a_system_left_mid_solve_for_the_stragglers_is_finished_by_them():
    n = 60
    mats = [_laplacian_1d(n, 10.0), _laplacian_1d(n, 10.0), _laplacian_1d(n, 1e-3)]
    patterns = [ElementPattern(m.shape, m.indptr, m.indices, np.zeros(0, int)) for m in mats]
    batched = BatchedPattern.stack(patterns, n, n)
    data = batched.data([m.data for m in mats], torch.float64)
    mask = torch.ones((3, n, 2), dtype=torch.float64)
    jacobi = torch.ones_like(mask)
    a = batched.matrix(data)
    few = Stragglers(
        BiCGStab, batched, data, mask, jacobi, capacity=1, rtol=1e-12, max_iterations=400
    )
    b = torch.ones((3, n, 2), dtype=torch.float64)
    inner = _CutRoundOvershoots(
        lambda x: a @ x, lambda r: r, b, rtol=1e-5, max_iterations=400, cuda_graph=False
    )
    refined = Refined(lambda x: a @ x, inner, rtol=1e-12, stragglers=few)
    result = refined.solve(b, torch.zeros_like(b))
    # The slow system 2 was left mid-solve with an overshooting iterate: that correction is
    # undone, and the stragglers, not a stop, finish it.
    assert torch.all(result.residual <= 1e-12)
    exact = sp.linalg.spsolve(mats[2].tocsc(), np.ones(n))
    np.testing.assert_allclose(result.x[2, :, 0].numpy(), exact, rtol=1e-9)


@pytest.mark.gpu
@pytest.mark.parametrize(
    "device",
    [
        pytest.param(
            "cuda",
            marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
        ),
        # Not the current device: the capture must record on the solve's own device's stream
        # (an empty graph on cuda:0 once made every `datagen --device cuda:1` trajectory fail).
        pytest.param(
            "cuda:1",
            marks=pytest.mark.skipif(
                torch.cuda.device_count() < 2, reason="needs two CUDA devices"
            ),
        ),
    ],
)
def test_cuda_graph_replay_solves_like_eager_launches(device: str):
    n = 250
    mats = [
        (_laplacian_1d(n, 1.0) + sp.diags([0.4 * k], [1], shape=(n, n))).tocsr() for k in (1, 2)
    ]
    a = stack_csr(mats, n, n, torch.float64, device)
    b = torch.as_tensor(np.random.default_rng(7).normal(size=(2, n)), device=device)
    results = []
    for graph in (True, False):
        solver = BiCGStab(
            lambda x: a @ x, lambda r: r / 3.0, b, rtol=1e-12, max_iterations=500, cuda_graph=graph
        )
        results.append(solver.solve(b, torch.zeros_like(b)))
    graphed, eager = results
    assert graphed.iterations == eager.iterations
    torch.testing.assert_close(graphed.x, eager.x, rtol=1e-12, atol=1e-13)


def test_two_damped_jacobi_sweeps_precondition_better_than_one():
    # Convection-diffusion in 1D with a strong upwind-free convection term: Jacobi alone is a
    # weak preconditioner here, the two-sweep polynomial a much better one.
    n = 400
    m = sp.diags([-1.0 - 0.9, 2.3, -1.0 + 0.9], [-1, 0, 1], shape=(n, n), format="csr")
    a = stack_csr([m], n, n, torch.float64, "cpu")
    apply = lambda x: a @ x  # noqa: E731
    inverse = torch.full((1, n), 1 / 2.3, dtype=torch.float64)
    b = torch.as_tensor(np.random.default_rng(8).normal(size=(1, n)))
    results = []
    for sweeps in (1, 2):
        precondition = jacobi_sweeps(apply, inverse, sweeps, damping=0.8)
        solver = BiCGStab(apply, precondition, b, rtol=1e-10, max_iterations=2000, check_every=1)
        results.append(solver.solve(b, torch.zeros_like(b)))
    one, two = results
    exact = sp.linalg.spsolve(m.tocsc(), b[0].numpy())
    np.testing.assert_allclose(two.x[0].numpy(), exact, rtol=1e-7, atol=1e-8)
    assert two.iterations < one.iterations
