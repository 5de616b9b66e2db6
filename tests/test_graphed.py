"""The graphed training step (training.graphed), everything but the CUDA capture itself, on the CPU.

The object that a GPU captures runs the same step eagerly here, over the same static buffers, with
the lr as a tensor and the momentum buffers created before the first step; these tests hold it to
the eager loop's numbers, so a graph replaying it trains the same run.
"""

from __future__ import annotations

import pytest
import torch

from speedrun.errors import SpeedrunError
from speedrun.training import loop
from speedrun.training.config import TrainConfig
from speedrun.training.data import load_cifar10, write_synthetic_cifar10
from speedrun.training.graphed import graphable, prime_state


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cifar")
    write_synthetic_cifar10(root, n_train=50, n_test=10)
    return load_cifar10(root, "cpu")


def parts_for(seed: int, **overrides):
    config = TrainConfig(model="resnet9", batch_size=16, amp=False, device="cpu", seed=seed, **overrides)
    torch.manual_seed(seed)
    return config, loop.build_parts(config, torch.device("cpu"))


def weights(parts):
    return {k: v.clone() for k, v in parts.model.state_dict().items()}


def test_the_static_step_trains_exactly_as_the_eager_loop(data, tiny_nets):
    """Two epochs, the last batch partial (50 = 3×16 + 2), lr changed between them: same losses, same
    accuracies, same weights, bit for bit."""
    _, eager = parts_for(3)
    _, static = parts_for(3)
    graphed = loop.graphed_epochs(static, data, 16, capture=False)
    results = {"eager": [], "static": []}
    for name, parts in (("eager", eager), ("static", static)):
        torch.manual_seed(11)
        for lr in (0.05, 0.01):
            if name == "eager":
                for group in parts.optimizer.param_groups:
                    group["lr"] = lr
                results[name].append(loop.train_epoch(parts, data, 16, lambda n: None))
            else:
                graphed.set_lr(lr)
                order = torch.randperm(data.num_train)
                results[name].append(graphed.epoch(order, lambda n: None))
    assert results["static"] == results["eager"]
    after_eager, after_static = weights(eager), weights(static)
    assert all(torch.equal(after_eager[k], after_static[k]) for k in after_eager)


def test_the_lr_is_one_device_tensor_read_at_every_step(data, tiny_nets):
    _, parts = parts_for(1)
    graphed = loop.graphed_epochs(parts, data, 16, capture=False)
    lrs = [group["lr"] for group in parts.optimizer.param_groups]
    assert all(isinstance(lr, torch.Tensor) and lr is graphed.lr for lr in lrs)
    graphed.set_lr(0.0)
    before = {k: v for k, v in weights(parts).items() if "running" not in k and "num_batches" not in k}
    graphed.epoch(torch.randperm(data.num_train), lambda n: None)
    after = weights(parts)
    assert all(torch.equal(before[k], after[k]) for k in before)  # lr 0: no weight moved
    graphed.set_lr(0.1)
    graphed.epoch(torch.randperm(data.num_train), lambda n: None)
    assert not all(torch.equal(before[k], weights(parts)[k]) for k in before)


def test_the_last_partial_batch_has_its_own_static_step(data, tiny_nets):
    _, parts = parts_for(1)
    graphed = loop.graphed_epochs(parts, data, 16, capture=False)
    assert sorted(graphed.steps) == [2, 16]
    seen = []
    graphed.epoch(torch.randperm(data.num_train), seen.append)
    assert seen == [16, 16, 16, 2]
    whole = loop.graphed_epochs(parts_for(1)[1], data, 25, capture=False)
    assert sorted(whole.steps) == [25]  # 50 = 2×25: no partial batch, no second step


def test_momentum_buffers_exist_as_zeros_before_the_first_step():
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    prime_state(optimizer)
    buffers = [optimizer.state[p]["momentum_buffer"] for p in model.parameters()]
    assert all(torch.count_nonzero(b) == 0 for b in buffers)
    no_momentum = torch.optim.SGD(model.parameters(), lr=0.1)
    prime_state(no_momentum)
    assert not no_momentum.state


def test_nothing_is_captured_off_cuda_or_with_a_grad_scaler():
    assert not graphable(None, torch.device("cpu"))
    assert graphable(None, torch.device("cuda"))
    assert not graphable(object(), torch.device("cuda"))


@pytest.mark.parametrize("graph, amp_dtype, compile_, expected", [
    (None, "bfloat16", False, True),   # Ampere and newer: on by default
    (None, None, False, True),         # full precision
    (None, "float16", False, False),   # a T4: fp16 needs the GradScaler, which cannot be captured
    (None, "bfloat16", True, False),   # --compile keeps the eager step
    (False, "bfloat16", False, False),
])
def test_where_the_graph_is_used_and_recorded(graph, amp_dtype, compile_, expected):
    config = TrainConfig(graph=graph, compile=compile_)
    assert config._graph("cuda", amp_dtype) is expected
    assert TrainConfig(graph=expected).to_params()["graph"] is expected


@pytest.mark.parametrize("config, device, amp_dtype, message", [
    (TrainConfig(graph=True), "cpu", None, "needs --device cuda"),
    (TrainConfig(graph=True, recipe="airbench94"), "cuda", "bfloat16", "the fast recipes have their own loop"),
    (TrainConfig(graph=True), "cuda", "float16", "use --no-amp or --no-graph"),
])
def test_a_graph_that_cannot_run_is_one_clear_error(config, device, amp_dtype, message):
    with pytest.raises(SpeedrunError, match=message):
        config._graph(device, amp_dtype)


def test_a_cpu_run_records_nothing_about_graphs():
    resolved = TrainConfig(device="cpu", graph=False).resolve()
    assert resolved.graph is None and "graph" not in resolved.to_params()


def test_train_refuses_graph_on_the_cpu_in_one_line(cli):
    result = cli("train", "--graph", "--device", "cpu", "--dry-run")
    assert result.exit_code == 1
    assert "Error: --graph captures the resnet recipes' training step on a CUDA GPU" in " ".join(result.output.split())
