"""FLOPs per image, device peaks and MFU: each figure checked against a hand computation."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from speedrun.domain.efficiency import (
    FP32, HALF, TF32, Peak, efficiency, fmt_efficiency, measured_cpu_peak, precision_of, published_peak,
)
from speedrun.training.flops import MODELS_BY_PARAMETERS, count_flops
from tests.helpers import model_flops
from speedrun.training.nets import AirbenchNet, build_model, count_parameters


def test_one_conv_layer_by_hand():
    conv = nn.Conv2d(3, 64, 3, padding=1, bias=False)
    # forward: 2 FLOPs per multiply-add, 64 filters of 3*3*3 at each of the 32*32 positions
    forward = 2 * 32 * 32 * 64 * 3 * 3 * 3
    assert forward == 3_538_944
    counted = count_flops(conv, "conv3-64")
    assert counted.evaluate == forward
    # backward of the first layer: only the weight gradient (the images need none), as costly as forward
    assert counted.train == 2 * forward


def test_whole_net_matches_flop_counter_on_real_tensors():
    model = build_model("resnet18")
    x = torch.zeros(2, 3, 32, 32)
    with FlopCounterMode(display=False) as counter:
        model(x).sum().backward()
    assert model_flops("resnet18").train == counter.get_total_flops() // 2
    assert model_flops("resnet18").train == 3_328_997_376  # the "about 3.33 GFLOP per trained image"


def test_tta_views_multiply_the_evaluation_count():
    net = AirbenchNet()
    once = count_flops(net, "airbench94-test", eval_views=1)
    six = count_flops(net, "airbench94-test", eval_views=6)
    assert six.evaluate == 6 * once.evaluate and six.train == once.train


def test_counting_leaves_the_model_alone():
    model = build_model("resnet9")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    count_flops(model, "resnet9-untouched")
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("params, name_bn", sorted(MODELS_BY_PARAMETERS.items()))
def test_parameter_counts_name_the_network(params, name_bn):
    name, bn = name_bn
    assert count_parameters(build_model(name, bn=bn)) == params


@pytest.mark.parametrize("name, device", [
    ("Tesla T4", "NVIDIA T4"),  # Colab's spelling
    ("Google Colab (Python 3 Google Compute Engine backend), T4 GPU", "NVIDIA T4"),  # the user's notebook
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 (40 or 80 GB)"),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 (40 or 80 GB)"),
    ("NVIDIA L4", "NVIDIA L4"),
    ("NVIDIA A10", "NVIDIA A10"),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
    ("NVIDIA H200", "NVIDIA H200 SXM"),
    ("NVIDIA GeForce RTX 3090", "NVIDIA GeForce RTX 3090"),
    ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090"),
])
def test_published_peaks_by_recorded_name(name, device):
    peak = published_peak(name)
    assert peak is not None and peak.device == device and peak.source.startswith("published")
    assert peak.half_tflops > peak.fp32_tflops > 0


@pytest.mark.parametrize("name", ["NVIDIA A10G", "AMD Ryzen 7 5700U", None, ""])
def test_unknown_devices_have_no_published_peak(name):
    assert published_peak(name) is None


def test_mfu_of_the_users_a100_run_by_hand():
    # 50,000 images per epoch in 10.5 s at 3,328,997,376 FLOP each, against the A100's 312 TFLOP/s
    e = efficiency(50_000, 10.5, 3_328_997_376, peak=published_peak("A100"), precision=precision_of(True),
                   derived=True)
    assert e.images_per_s == pytest.approx(4761.9, abs=0.1)
    assert e.tflops == pytest.approx(50_000 / 10.5 * 3_328_997_376 / 1e12)
    assert e.mfu == pytest.approx(15.852 / 312, rel=1e-3)
    assert fmt_efficiency(e) == ("4,762 img/s, 15.9 TFLOP/s, 5.1% of the 312 TFLOP/s fp16/bf16 peak (published) "
                                 "[derived from logged durations]")


def test_fp32_runs_are_measured_against_the_fp32_peak():
    peak = Peak("x", 100.0, 10.0, "measured (torch.matmul probe)")
    e = efficiency(1000, 1.0, 10**9, peak=peak, precision=precision_of(False))
    assert e.precision == FP32 and e.peak_tflops == 10.0 and e.mfu == pytest.approx(0.1)
    assert precision_of(True) == HALF


def test_tf32_counts_as_its_own_peak_where_the_training_ran_fp32_on_tensor_cores():
    # An fp32 ResNet on an A100 runs its convolutions in TF32 by PyTorch's default: against the fp32
    # peak of 19.5 TFLOP/s its MFU read 3.2x the truth (and could pass 100%).
    a100 = published_peak("A100")
    assert precision_of(False, tf32=True) == TF32 and precision_of(True, tf32=True) == HALF
    e = efficiency(50_000, 20.0, 3_328_997_376, peak=a100, precision=precision_of(False, tf32=True))
    assert e.peak_tflops == 156.0 and "of the 156 TFLOP/s tf32 peak" in fmt_efficiency(e)
    assert published_peak("T4").for_precision(TF32) == 8.1  # no TF32 cores: the fp32 peak


def test_a_trained_runs_recorded_tf32_picks_the_tf32_peak():
    from dataclasses import asdict
    from types import SimpleNamespace

    from speedrun.domain.efficiency import run_efficiency

    def run(machine):
        return SimpleNamespace(source="train", param_dict={"model": "resnet18", "amp": False, "bn": True},
                               extra={"machine": machine, "train_images": 50_000,
                                      "peak": asdict(published_peak("A100"))}, mean_epoch_s=20.0,
                               param_count=11_173_962, hardware="NVIDIA A100-SXM4-40GB", environment=None,
                               epochs=[])

    assert run_efficiency(run({"tf32": True})).peak_tflops == 156.0
    assert run_efficiency(run({})).peak_tflops == 19.5


def test_no_duration_no_figure():
    assert efficiency(50_000, 0, 10**9, peak=None, precision=HALF) is None
    assert fmt_efficiency(None) == "—"


def test_cpu_peak_is_measured_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []
    import speedrun.domain.efficiency as eff

    monkeypatch.setattr(eff, "_matmul_tflops", lambda dtype, **kw: calls.append(dtype) or 0.5)
    first = measured_cpu_peak("Test CPU", 2)
    second = measured_cpu_peak("Test CPU", 2)
    assert first == second and first.source.startswith("measured") and len(calls) == 2
    assert (tmp_path / "speedrun" / "cpu-peak.json").exists()


# --- a run's figures, through the CLI ---------------------------------------------------------------------

@pytest.mark.parametrize("name, build", [
    ("resnet18", lambda: build_model("resnet18")),
    ("resnet9", lambda: build_model("resnet9")),
    ("airbench94", AirbenchNet),
])
def test_the_written_flop_table_is_the_count(name, build):
    from speedrun.domain.efficiency import FLOPS_PER_TRAINED_IMAGE

    assert FLOPS_PER_TRAINED_IMAGE[name] == count_flops(build(), f"table-{name}").train


A100_LOG = """Using device: cuda
Model parameters: 11,173,962
Config: LR=0.04, BATCH_SIZE=64, EPOCHS=2, COSINE=True, AMP=True
Epoch [1/2], Loss: 1.2000, Val Accuracy: 60.00%, Duration: 10.50s, Total: 10.5s
Epoch [2/2], Loss: 0.9000, Val Accuracy: 70.00%, Duration: 10.50s, Total: 21.0s
Finished Training. Training loop time: 21.00 seconds
Final Validation Accuracy: 70.00%
"""


def test_an_imported_a100_log_gets_derived_figures(cli, tmp_path):
    log = tmp_path / "a100.txt"
    log.write_text(A100_LOG)
    assert cli("import-log", str(log), "--hardware", "Colab A100").exit_code == 0
    import json

    figures = json.loads(cli("show", "1", "--json").output)["efficiency"]
    # The network is known by its parameter count; 50,000 images per 10.5 s epoch at 3,328,997,376 FLOP.
    assert figures["derived"] is True and figures["precision"] == HALF
    assert figures["tflops"] == pytest.approx(50_000 / 10.5 * 3_328_997_376 / 1e12)
    assert figures["mfu"] == pytest.approx(50_000 / 10.5 * 3_328_997_376 / 1e12 / 312)
    assert figures["peak_source"].startswith("published")
    shown = cli("show", "1").output
    assert "5.1% of the 312 TFLOP/s fp16/bf16 peak (published) [derived from logged durations]" in shown
    assert "~5.1%" in cli("list").output


def test_a_cpu_training_is_measured_against_the_measured_peak(cli, tmp_path, monkeypatch):
    import json

    import speedrun.domain.efficiency as eff
    from speedrun.training.data import write_synthetic_cifar10

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(eff, "_matmul_tflops", lambda dtype, **kw: 0.25)  # the probe, made exact
    write_synthetic_cifar10(tmp_path / "data", n_train=32, n_test=16)  # the real resnet9: its FLOPs are checked
    result = cli("train", "--data-dir", str(tmp_path / "data"), "--epochs", "1", "--device", "cpu", "--no-amp",
                 "--model", "resnet9", "--bs", "16", "--seed", "1")
    assert result.exit_code == 0, result.output
    detail = json.loads(cli("show", "1", "--json").output)
    figures = detail["efficiency"]
    assert figures["derived"] is False and figures["precision"] == FP32
    assert figures["peak_source"].startswith("measured") and figures["peak_tflops"] == 0.25
    seconds = detail["mean_epoch_s"]
    assert figures["tflops"] == pytest.approx(32 / seconds * 2_272_032_768 / 1e12)
    assert figures["mfu"] == pytest.approx(figures["tflops"] / 0.25)
    # Recorded as it trains: each epoch's figures, the FLOPs and the peak with the run, and the log's line.
    assert detail["extra"]["flops"] == {"train": 2_272_032_768, "evaluate": model_flops("resnet9").evaluate}
    assert not any(isinstance(v, str) for v in detail["extra"].values())  # strings in extra are the user's notes
    (epoch,) = detail["epoch_metrics"]
    assert epoch["extra"]["tflops"] == pytest.approx(epoch["images_per_s"] * 2_272_032_768 / 1e12)
    assert epoch["extra"]["mfu"] == pytest.approx(epoch["extra"]["tflops"] / 0.25)
    assert epoch["mfu"] == pytest.approx(epoch["extra"]["mfu"])
    assert "Throughput of the training epochs:" in result.output and "of the 0.25 TFLOP/s fp32 peak (measured)" in result.output
    shown = cli("show", "1").output
    assert "MFU" in shown and "TFLOP/s" in shown


def test_tta_view_counts():
    from speedrun.training.tta import view_count

    assert [view_count(level) for level in (0, 1, 2)] == [1, 2, 6]


def test_a_fast_recipe_counts_its_tta_passes_in_the_evaluation(cli, tmp_path, monkeypatch):
    import json

    import speedrun.domain.efficiency as eff
    from speedrun.training.data import write_synthetic_cifar10

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(eff, "_matmul_tflops", lambda dtype, **kw: 0.25)
    write_synthetic_cifar10(tmp_path / "data", n_train=64, n_test=16)  # the real airbench net: its FLOPs are checked
    result = cli("train", "--recipe", "airbench94", "--data-dir", str(tmp_path / "data"), "--epochs", "1",
                 "--device", "cpu", "--bs", "32", "--tta", "2", "--seed", "1")
    assert result.exit_code == 0, result.output
    flops = json.loads(cli("show", "1", "--json").output)["extra"]["flops"]
    once = count_flops(AirbenchNet(), "airbench94-tta", eval_views=1)
    assert flops == {"train": once.train, "evaluate": 6 * once.evaluate}


T4_LOG = A100_LOG.replace("10.50s", "60.00s").replace("Total: 10.5s", "Total: 60.0s").replace("21.0s", "120.0s")


def test_report_names_the_best_mfu_per_hardware_class(cli, tmp_path):
    for name, text, hardware in [("a100.txt", A100_LOG, "Colab A100"), ("t4.txt", T4_LOG, "Colab T4"),
                                 ("a100-slow.txt", A100_LOG.replace("10.50s", "21.00s"), "Colab A100")]:
        (tmp_path / name).write_text(text)
        assert cli("import-log", str(tmp_path / name), "--hardware", hardware).exit_code == 0
    report = cli("report").output
    section = report.split("## Distance from the hardware's limit", 1)[1].split("##", 1)[0]
    a100 = 50_000 / 10.5 * 3_328_997_376 / 1e12 / 312
    t4 = 50_000 / 60.0 * 3_328_997_376 / 1e12 / 65
    assert f"- A100: Run 1, 4,762 img/s, 15.9 TFLOP/s, {a100:.1%} of the 312 TFLOP/s fp16/bf16 peak" in section
    assert f"- T4: Run 2, 833 img/s, 2.77 TFLOP/s, {t4:.1%} of the 65 TFLOP/s fp16/bf16 peak" in section
    assert "Run 3" not in section
    # each run's computed block says it too, marked as derived
    assert report.count("Efficiency: ") == 3 and "[derived from logged durations]" in report


def test_compare_gives_an_mfu_verdict_only_where_repeats_measure_it(cli, tmp_path):
    import json

    logs = {"a1": "10.50s", "a2": "10.60s", "a3": "10.40s", "b1": "12.00s", "b2": "12.20s", "b3": "11.90s"}
    for name, duration in logs.items():
        (tmp_path / f"{name}.txt").write_text(A100_LOG.replace("10.50s", duration))
        assert cli("import-log", str(tmp_path / f"{name}.txt"), "--hardware", "Colab A100").exit_code == 0
    assert cli("group", "a", "1", "2", "3").exit_code == 0 and cli("group", "b", "4", "5", "6").exit_code == 0
    data = json.loads(cli("compare", "g:a", "g:b", "--json").output)
    assert any(row["key"] == "mfu" for row in data["metrics"])
    mfu = [v for v in data["verdicts"] if v["metric"] == "mfu"]
    assert len(mfu) == 1 and mfu[0]["p_value"] is not None and mfu[0]["p_value"] < 0.05
    single = json.loads(cli("compare", "1", "4", "--json").output)
    assert any(row["key"] == "mfu" for row in single["metrics"])
    assert not [v for v in single["verdicts"] if v["metric"] == "mfu"]


def test_the_parameter_count_names_the_network_before_the_users_name_for_it(cli, tmp_path):
    # The user's notebook calls its 11,173,962-parameter net "ResNet-9"; its FLOPs are our resnet18's.
    log = tmp_path / "a100.txt"
    log.write_text(A100_LOG.replace("AMP=True", "AMP=True, MODEL=ResNet-9"))
    assert cli("import-log", str(log), "--hardware", "Colab A100").exit_code == 0
    import json

    figures = json.loads(cli("show", "1", "--json").output)["efficiency"]
    assert figures["tflops"] == pytest.approx(50_000 / 10.5 * 3_328_997_376 / 1e12)


def test_an_imported_log_that_states_no_precision_gets_a_range_and_no_best_efficiency(cli, tmp_path):
    import json

    # The T4 pair: the slow run of a recipe (no AMP on its Config line, once taken as fp32: 48% of
    # the fp32 peak) was named "most efficient" over the fast one (AMP stated: 9.1%).
    fast = T4_LOG.replace("60.00s", "35.00s").replace("Total: 60.0s", "Total: 35.0s").replace("120.0s", "70.0s")
    slow = T4_LOG.replace(", AMP=True", "").replace("60.00s", "120.00s").replace("Total: 60.0s", "Total: 120.0s") \
        .replace("120.0s", "240.0s")
    for name, text in [("fast.txt", fast), ("slow.txt", slow)]:
        (tmp_path / name).write_text(text)
        assert cli("import-log", str(tmp_path / name), "--hardware", "Colab T4").exit_code == 0
    figures = json.loads(cli("show", "2", "--json").output)["efficiency"]
    tflops = 50_000 / 120.0 * 3_328_997_376 / 1e12  # 1.39 TFLOP/s: 2.1% of 65, 17.1% of 8.1
    assert figures["precision"] == "precision not stated" and figures["mfu"] is None
    assert figures["mfu_range"] == [pytest.approx(tflops / 65), pytest.approx(tflops / 8.1)]
    assert (f"{tflops / 65:.1%} to {tflops / 8.1:.1%} of the peak (65 TFLOP/s fp16/bf16 to 8.1 fp32, published; "
            "precision not stated)") in cli("show", "2").output
    section = cli("report").output.split("## Distance from the hardware's limit", 1)[1].split("##", 1)[0]
    assert "- T4: Run 1, " in section and "Run 2" not in section


def test_a_run_that_beats_a_stale_cpu_peak_probes_again(tmp_path, monkeypatch):
    """A peak probed while the machine was busy made the README's first run report 221% of the peak:
    a run that beats the cached peak probes again (keeping the higher figure) and is judged by that."""
    from speedrun.training import loop
    from speedrun.training.config import TrainConfig
    from speedrun.training.data import write_synthetic_cifar10
    from speedrun.training.recording import Reporter
    from tests.helpers import MemoryRecorder

    import speedrun.domain.efficiency as eff

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    probes = iter([1e-3, 1e-3, 1e3, 1e3])  # the busy probe (bf16, fp32), then the real one
    monkeypatch.setattr(eff, "_matmul_tflops", lambda dtype, **kw: next(probes))
    write_synthetic_cifar10(tmp_path / "data", n_train=32, n_test=16)
    config = TrainConfig(model="resnet9", batch_size=16, epochs=1, amp=False, device="cpu", seed=0,
                         data_dir=str(tmp_path / "data")).resolve()
    from io import StringIO

    from rich.console import Console

    recorder = MemoryRecorder()
    loop.train_resnet(config, recorder, reporter=Reporter(Console(file=StringIO()), progress=False))
    epoch = recorder.epochs[0]
    assert 0 < epoch.extra["mfu"] <= 1
    assert recorder.finish_args["extra"]["peak"]["fp32_tflops"] == 1e3
    from speedrun.tracking.environment import cpu_model

    assert measured_cpu_peak(cpu_model(), config.threads).fp32_tflops == 1e3  # the cache keeps the higher figure


def test_an_imported_fp32_run_on_an_a100_is_measured_against_both_of_its_possible_peaks(cli, tmp_path):
    import json

    # AMP=False on an A100: PyTorch runs the convolutions on TF32 cores (156 TFLOP/s) by default, unless the
    # script turned that off (19.5 fp32), which no log says. 15.9 TFLOP/s was "81.3% of the fp32 peak".
    log = tmp_path / "a100-fp32.txt"
    log.write_text(A100_LOG.replace("AMP=True", "AMP=False"))
    assert cli("import-log", str(log), "--hardware", "Colab A100").exit_code == 0
    figures = json.loads(cli("show", "1", "--json").output)["efficiency"]
    tflops = 50_000 / 10.5 * 3_328_997_376 / 1e12
    assert figures["precision"] == "fp32 without AMP: TF32 unless turned off" and figures["mfu"] is None
    assert figures["mfu_range"] == [pytest.approx(tflops / 156), pytest.approx(tflops / 19.5)]
    assert (f"{tflops / 156:.1%} to {tflops / 19.5:.1%} of the peak (156 TFLOP/s tf32 to 19.5 fp32, published; "
            "fp32 without AMP: TF32 unless turned off)") in cli("show", "1").output
    # A T4 has no TF32 cores: its fp32 peak is the one.
    (tmp_path / "t4-fp32.txt").write_text(T4_LOG.replace("AMP=True", "AMP=False"))
    assert cli("import-log", str(tmp_path / "t4-fp32.txt"), "--hardware", "Colab T4").exit_code == 0
    assert json.loads(cli("show", "2", "--json").output)["efficiency"]["precision"] == "fp32"
