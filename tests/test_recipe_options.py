"""Every recorded setting took effect: each recipe's declared options reach its loop, others are refused.

For each recipe and each option it declares, a tiny real training (64 synthetic images, 2 epochs,
the recipe's own loop around tests/tinynets.py's stand-in nets, the model name asked for traced) runs once with the recipe's value and once with another; a trace of what
the loop did (the optimizers' param groups at every step, the modules called and their BatchNorm
momentum, the autocast dtype, the loss's label smoothing, the augmentation built, the TTA level,
lookahead updates, compilation, the steps and batch sizes) must differ. A declared option whose
value changes nothing fails here, and so does an option added to a recipe without a probe.
Every option a recipe does not declare is refused by `train`, `train --dry-run` and `sweep`.
"""

from __future__ import annotations


import pytest
import torch
import torch.nn.functional as F
from torch.nn.modules.module import register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_pre_hook
from typer.testing import CliRunner

from speedrun.cli import app
from speedrun.domain.hyperparams import HYPER, HYPERS
from speedrun.errors import SpeedrunError
from speedrun.recipes import all_recipes, get_recipe
from speedrun.training import fastloop, loop
from speedrun.training.data import Cifar10
from tests.helpers import MemoryRecorder
from tests import tinynets

runner = CliRunner()
RECIPES = tuple(all_recipes())

# The base of every tiny run: small batches, two epochs, full precision (the amp probe turns it on).
BASE = {"batch_size": 16, "epochs": 2, "amp": False}
# Another value of each option; per recipe where its default differs.
OTHER = {
    "model": "resnet9", "optimizer": "adamw", "batch_size": 32, "lr": 0.1, "lr_per_1024": 5.0, "muon_lr": 0.1,
    "epochs": 1, "momentum": 0.5, "weight_decay": 0.01, "nesterov": True, "cosine": False, "warmup": 1,
    "bn": False, "amp": True, "compile": True, "augment": ("flip",), "label_smoothing": 0.05, "tta": 0,
    "lookahead": False, "whiten_bias_epochs": 1, "bn_momentum": 0.9, "bias_lr_scale": 2.0, "bias_lr": 0.01,
    "head_lr": 0.1, "sgd_momentum": 0.5,
}
OTHER_IN = {
    "airbench94": {"augment": ("altflip",), "nesterov": False},
    "airbench94-muon": {"augment": ("altflip",), "nesterov": False, "lookahead": True},
}
# Options with one possible value in a recipe: the other values are refused, not ignored.
SINGLE_CHOICE = {"airbench94": {"model": "resnet18", "optimizer": "adam"},
                 "airbench94-muon": {"model": "resnet18", "optimizer": "sgd"}}
# Read only on a CUDA GPU (tests/test_cuda.py): on this CPU, asking for it is refused.
CUDA_ONLY = {"graph"}


def _tiny_cifar(data_dir, device, *, subset=None, val_subset=None):
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g)
    test = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g)
    as_images = lambda x: x.contiguous(memory_format=torch.channels_last).to(device)  # noqa: E731
    data = Cifar10(as_images(train), torch.randint(0, 10, (64,), generator=g).to(device),
                   as_images(test), torch.randint(0, 10, (16,), generator=g).to(device))
    return data


class Trace:
    """What one training did, as comparable values."""

    def __init__(self):
        self.events: list = []

    def __call__(self, *event):
        self.events.append(event)


@pytest.fixture
def traced():
    """train(recipe, config) -> the trace of a real tiny training with that config."""

    def train(recipe, config):
        with pytest.MonkeyPatch.context() as monkeypatch:
            return _train(recipe, config, monkeypatch)

    def _train(recipe, config, monkeypatch):
        trace = Trace()
        tinynets.install(monkeypatch.setattr)  # the real loop, around a net of a thousand parameters
        monkeypatch.setattr(loop, "build_model", lambda name, **k: (trace("model", name, tuple(sorted(k.items()))),
                                                                    tinynets.tiny_model(name, **k))[1])
        monkeypatch.setattr(loop, "load_cifar10", _tiny_cifar)
        monkeypatch.setattr(fastloop, "load_cifar10", _tiny_cifar)
        real_ce, real_tta, real_images = F.cross_entropy, fastloop.evaluate_tta, fastloop.AlternatingFlipTranslate
        monkeypatch.setattr(F, "cross_entropy", lambda *a, **k: (
            trace("loss", k.get("label_smoothing", 0.0), k.get("reduction", "mean")), real_ce(*a, **k))[1])
        monkeypatch.setattr(fastloop, "evaluate_tta", lambda *a, **k: (trace("tta", k.get("level")), real_tta(*a, **k))[1])

        def images(train_images, *, pad, flip, dtype):
            trace("fast augment", pad, flip)
            return real_images(train_images, pad=pad, flip=flip, dtype=dtype)

        monkeypatch.setattr(fastloop, "AlternatingFlipTranslate", images)
        real_prep = loop.Preprocess
        monkeypatch.setattr(loop, "Preprocess", lambda augment, dev: (trace("augment", tuple(augment)),
                                                                        real_prep(augment, dev))[1])
        from speedrun.recipes import airbench94_muon

        for module in (loop, fastloop, airbench94_muon):  # compiling on this CPU takes minutes: note it, run eagerly
            monkeypatch.setattr(module, "compiled", lambda fn: (trace("compiled", type(fn).__name__), fn)[1])
        real_lookahead = fastloop.Lookahead

        class Lookahead(real_lookahead):
            def update(self, decay):
                trace("lookahead", round(float(decay), 6))
                return super().update(decay)

        monkeypatch.setattr(fastloop, "Lookahead", Lookahead)

        def step_hook(optimizer, args, kwargs):
            trace("step", type(optimizer).__name__, tuple(
                (tuple(sorted((k, round(v, 9) if isinstance(v, float) else v) for k, v in g.items()
                              if isinstance(v, (bool, int, float, str)))),
                 sum(p.requires_grad for p in g["params"]), len(g["params"]))
                for g in optimizer.param_groups))

        def forward_hook(module, inputs):
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                trace("bn", module.momentum)
            elif isinstance(module, torch.nn.Conv2d) and module.training:
                trace("conv batch", inputs[0].shape[0])
            trace("module", type(module).__name__, torch.is_autocast_enabled("cpu") and
                  str(torch.get_autocast_dtype("cpu")))

        hooks = [register_optimizer_step_pre_hook(step_hook),
                 register_module_forward_pre_hook(forward_hook)]
        try:
            resolved = config.resolve()
            if "amp" in config.reads:
                assert resolved.amp == bool(config.amp)
            result = recipe.train(resolved, MemoryRecorder(label="test.db"))
            trace("epochs", len(result.epochs) if hasattr(result, "epochs") else None)
        finally:
            for hook in hooks:
                hook.remove()
        return sorted(set(trace.events), key=repr), trace.events

    return train


def _config(name, **changes):
    recipe = get_recipe(name)
    base = {k: v for k, v in BASE.items() if k in recipe.options}
    return recipe.configure(device="cpu", seed=0, **{**base, **changes})


def _cases():
    for name in RECIPES:
        for option in get_recipe(name).options:
            if option not in CUDA_ONLY and option not in SINGLE_CHOICE.get(name, {}):
                yield pytest.param(name, option, id=f"{name}-{option}")


@pytest.fixture(scope="module")
def baselines():
    return {}


@pytest.mark.parametrize("name, option", list(_cases()))
def test_each_declared_option_changes_what_trains(name, option, traced, baselines):
    recipe = get_recipe(name)
    other = OTHER_IN.get(name, {}).get(option, OTHER[option])
    base_config = _config(name)
    assert getattr(base_config, option) != other, f"pick another value of {option} for {name}"
    if name not in baselines:
        baselines[name] = traced(recipe, base_config)
    changed_config = _config(name, **{option: other})
    changed = traced(recipe, changed_config)
    assert changed[0] != baselines[name][0], f"{name}: --{option} {other} trained exactly as the default"
    assert changed_config.to_params()[option] == (",".join(other) if option == "augment" else other)


@pytest.mark.parametrize("name", RECIPES)
def test_every_declared_option_has_a_probe_and_a_declaration(name):
    recipe = get_recipe(name)
    assert set(recipe.options) <= set(HYPER)
    assert set(recipe.options) - CUDA_ONLY - set(SINGLE_CHOICE.get(name, {})) <= set(OTHER)
    assert len(set(recipe.options)) == len(recipe.options)


@pytest.mark.parametrize("name", [n for n in RECIPES if n in SINGLE_CHOICE])
def test_an_option_with_one_choice_refuses_the_others(name):
    for option, value in SINGLE_CHOICE[name].items():
        with pytest.raises(SpeedrunError, match=f"not available in recipe {name}"):
            _config(name, **{option: value})


def test_graph_is_refused_where_no_cuda_graph_can_run():
    with pytest.raises(SpeedrunError, match="--graph"):
        _config("resnet18", graph=True).resolve()


def test_only_what_the_recipe_reads_is_recorded():
    for name in RECIPES:
        recipe = get_recipe(name)
        recorded = set(_config(name).to_params())
        hypers = recorded & set(HYPER)
        assert hypers <= set(recipe.options), (name, hypers - set(recipe.options))
    adam = _config("resnet18", optimizer="adam").to_params()
    assert "momentum" not in adam and "nesterov" not in adam  # Adam has no momentum option


def test_machine_facts_are_not_params():
    config = _config("resnet18").resolve()
    assert "threads" not in config.to_params() and "amp_dtype" not in config.to_params()
    assert config.machine()["threads"] >= 1


# ------------------------------------------------------------------------- refused, not recorded

def _undeclared():
    for name in RECIPES:
        recipe = get_recipe(name)
        for h in HYPERS:
            if h.name not in recipe.options:
                yield pytest.param(name, h.name, id=f"{name}-{h.name}")


def _typed_argument(option):
    kind = HYPER[option].kind
    return [HYPER[option].flag] if kind == "bool" else [HYPER[option].flag, {"int": "2", "float": "0.5"}.get(kind, "x")]


@pytest.mark.parametrize("name, option", list(_undeclared()))
def test_train_and_dry_run_refuse_an_option_the_recipe_does_not_read(name, option, tmp_path):
    for extra in (["--dry-run"], []):
        result = runner.invoke(app, ["--db", str(tmp_path / "runs.db"), "train", "--recipe", name, "--device", "cpu",
                                     *_typed_argument(option), *extra])
        assert result.exit_code == 2, result.output
        assert f"recipe {name} does not read {HYPER[option].flag}" in result.output
        readers = [r for r in RECIPES if option in get_recipe(r).options]
        if readers:  # the message names the recipe that does read it
            assert f"of recipe {' and '.join(readers)}" in result.output
        assert not (tmp_path / "runs.db").exists() or "Run 1" not in result.output


@pytest.mark.parametrize("name, option", [p for p in _undeclared() if HYPER[p.values[1]].searchable])
def test_sweep_refuses_an_option_the_recipe_does_not_read(name, option, tmp_path):
    value = {"bool": "on,off", "int": "1,2", "float": "0.1,0.2"}.get(HYPER[option].kind, "x")
    result = runner.invoke(app, ["--db", str(tmp_path / "runs.db"), "sweep", "--recipe", name, "--device", "cpu",
                                 HYPER[option].flag, value])
    assert result.exit_code == 2, result.output
    assert f"recipe {name} does not read {HYPER[option].flag}" in result.output


def test_momentum_under_adam_is_refused_not_recorded():
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--optimizer", "adam", "--momentum", "0.5"])
    assert result.exit_code == 2
    assert "does not read --momentum with --optimizer adam" in result.output


def test_the_lr_of_each_recipe_has_its_own_name_and_unit():
    assert get_recipe("resnet18").config.lr == 0.04 and "lr" in get_recipe("resnet18").options
    assert "lr" not in get_recipe("airbench94").options and "lr_per_1024" in get_recipe("airbench94").options
    assert "lr" not in get_recipe("airbench94-muon").options and "muon_lr" in get_recipe("airbench94-muon").options
    assert HYPER["lr_per_1024"].unit == "per 1,024 images"
    result = runner.invoke(app, ["recipes", "airbench94"])
    assert result.exit_code == 0
    assert "--lr-per-1024" in result.output and "per 1,024 images" in result.output
    assert "Fixed by the recipe:" in result.output and "triangular" in result.output
    assert "--cosine" not in result.output


def test_dry_run_shows_units():
    result = runner.invoke(app, ["train", "--dry-run", "--device", "cpu", "--recipe", "airbench94"])
    assert result.exit_code == 0
    assert any(line.split()[:1] == ["batch_size"] and line.endswith("(images)") for line in result.output.splitlines())


def test_the_importer_reads_every_declared_name_and_flag():
    from speedrun.domain.params import canonical_name

    for h in HYPERS:
        for spelling in (h.name, h.name.upper(), *(f.lstrip("-") for f in h.flags_all)):
            assert canonical_name(spelling) == h.name, spelling


def test_a_fast_recipes_log_reads_back_with_its_own_rate():
    from speedrun.notebook.logformat import config_line, epoch_line
    from speedrun.notebook.logs import parse_log_lines

    params = _config("airbench94").to_params()
    lines = [config_line(params, fastloop.EXTRA_CONFIG_KEYS), epoch_line(1, 2, 1.0, 50.0, 1.0, 1.0)]
    assert "LR_PER_1024=11.5" in lines[0]
    (record,) = parse_log_lines(lines, "log.txt")
    assert record.params["lr_per_1024"] == 11.5 and "lr" not in record.params


def test_the_stand_ins_are_costed_as_themselves_after_a_count_of_the_real_network(monkeypatch):
    # A real airbench94 training earlier in the session (test_efficiency's) cached 707 MFLOP an image under
    # the name the stand-ins train as: every tiny run after it read an MFU over 100% and probed the CPU's
    # peak again, a second each (this file's 111 tests took 200 s in the suite, 11 s alone).
    from speedrun.recipes import airbench94
    from speedrun.training import flops, nets

    real = flops.count_flops(nets.AirbenchNet(), ("airbench94", "fast"))
    tinynets.install(monkeypatch.setattr)
    tiny = flops.count_flops(airbench94.AirbenchNet(), ("airbench94", "fast"))
    assert tiny.train < real.train / 10  # 14 MFLOP, not 707
