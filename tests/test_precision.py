"""`training.precision = "auto"`: the policy it resolves to on each kind of machine."""

import keras
import pytest
import tensorflow as tf

from keras_inception.training import load_recipe, precision
from keras_inception.training.recipe import TrainingConfig
from keras_inception.training.trainer import _run_settings


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2", "avx512f", "avx512_bf16"}, "mixed_bfloat16"),  # AVX512-BF16 (Cooper Lake, Zen 4)
        ({"avx2", "amx_tile", "amx_bf16"}, "mixed_bfloat16"),  # AMX (Sapphire Rapids)
        ({"avx2", "avx512f", "fma"}, "float32"),  # bfloat16 only emulated
        (set(), "float32"),
    ],
)
def test_cpu_precision_follows_the_bfloat16_flags(flags, expected):
    assert precision.cpu_precision(frozenset(flags)) == expected


@pytest.mark.parametrize(
    ("capability", "expected"),
    [
        ((9, 0), "mixed_bfloat16"),
        ((8, 0), "mixed_bfloat16"),
        ((7, 5), "mixed_float16"),
        ((6, 1), "float32"),
    ],
)
def test_gpu_precision_follows_the_compute_capability(capability, expected):
    assert precision.gpu_precision(capability) == expected


def test_cpu_flags_reads_the_flags_line(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx2 avx512_bf16\n\n"
    )
    assert precision.cpu_flags(cpuinfo) == {"fpu", "avx2", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()


def cpu_only_machine(monkeypatch, flags):
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind: [])
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset(flags))


@pytest.mark.parametrize(
    ("flags", "expected"), [({"avx512_bf16"}, "mixed_bfloat16"), ({"avx2"}, "float32")]
)
def test_auto_resolves_on_a_cpu_only_machine(monkeypatch, flags, expected):
    cpu_only_machine(monkeypatch, flags)
    assert precision.resolve_precision("auto") == expected
    assert precision.resolve_precision("float32") == "float32"  # an explicit policy is kept


def test_auto_is_the_default_and_the_trainer_applies_what_it_resolves_to(monkeypatch):
    assert TrainingConfig().precision == "auto"
    cpu_only_machine(monkeypatch, {"avx512_bf16"})
    recipe = load_recipe("quickstart", ['training.precision="auto"'])
    before = keras.mixed_precision.global_policy().name
    with _run_settings(recipe):
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == before
