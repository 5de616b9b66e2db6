import subprocess

import pytest

from speedrun.tracking import environment
from speedrun.tracking.environment import detect_environment, git_info, hardware_text
from speedrun.domain.hardware import hardware_class

KEYS = {"device_type", "gpu_name", "gpu_count", "gpu_memory_gb", "cuda_version", "driver_version", "cpu_model",
        "cpu_cores", "ram_gb", "os", "python_version", "torch_version", "torchvision_version", "hostname",
        "is_colab", "hardware"}


def test_detect_environment_reports_every_key_for_the_cpu():
    env = detect_environment("cpu")
    assert set(env) == KEYS
    assert env["device_type"] == "cpu"
    assert env["cpu_cores"] >= 1 and isinstance(env["cpu_model"], str)
    assert env["hardware"] == f"CPU: {env['cpu_model']} ({env['cpu_cores']} cores)"
    assert hardware_class(env["hardware"], env["device_type"]) == "CPU"


def test_hardware_text_for_colab_and_gpus():
    base = {"cpu_model": "Intel Xeon", "cpu_cores": 2, "gpu_count": 1, "is_colab": False}
    colab = hardware_text({**base, "device_type": "cuda", "gpu_name": "Tesla T4", "is_colab": True})
    assert colab == "Google Colab, Tesla T4" and hardware_class(colab) == "T4"
    two = hardware_text({**base, "device_type": "cuda", "gpu_name": "NVIDIA A100-SXM4-40GB", "gpu_count": 2})
    assert two == "2× NVIDIA A100-SXM4-40GB" and hardware_class(two) == "A100"
    assert hardware_class(hardware_text({**base, "device_type": "mps", "gpu_name": "Apple MPS"}), "mps") == "MPS"


def test_bf16_support_follows_cpu_flags(monkeypatch):
    monkeypatch.setattr(environment, "cpu_flags", lambda: {"avx2", "avx512f", "avx512_bf16"})
    assert environment.cpu_has_native_bf16()
    monkeypatch.setattr(environment, "cpu_flags", lambda: {"avx2", "fma"})
    assert not environment.cpu_has_native_bf16()


def test_physical_cores_never_exceed_usable_cpus():
    assert 1 <= environment.physical_cores() <= len(environment.usable_cpus())


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_info_in_and_out_of_a_checkout(tmp_path):
    outside = tmp_path / "plain"
    outside.mkdir()
    assert git_info(outside) == (None, None)

    repo = tmp_path / "repo"
    repo.mkdir()
    try:
        _git(repo, "init", "-q")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("git is not available")
    (repo / "a.txt").write_text("one")
    _git(repo, "add", "a.txt")
    _git(repo, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", "first")
    commit, dirty = git_info(repo)
    assert commit is not None and len(commit) == 40 and dirty is False
    (repo / "a.txt").write_text("two")
    assert git_info(repo) == (commit, True)
