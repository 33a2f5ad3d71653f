"""The pod's pinned environment (moola/pods/env.py): the lock, the install plan, and a real
install's failure over the loopback sshd. The cold install and its warm reuse run end to end in
tests/flows/test_worker.py (one cold install per session: it costs ~15 s)."""

from __future__ import annotations

import pytest

from moola.core.errors import RemotePermanent
from moola.pods.env import canonical, ensure_env, lock_digest, lock_from_environment, read_lock, to_install
from tests.fakes.pod_image import make_image_python


def test_the_lock_pins_what_this_environment_runs():
    """`make` installs with the lock as constraints: here and on a pod the gates see the same versions."""
    pins = read_lock()
    assert pins == lock_from_environment()
    assert {"sktime", "pydantic", "numba", "safetensors", "numpy", "pandas"} <= set(pins) and "torch" not in pins


def test_read_lock_names_a_bad_line(tmp_path):
    bad = tmp_path / "pod.lock"
    bad.write_text("# pins\nnumpy==2.4.6\npandas>=2\n")
    with pytest.raises(RemotePermanent, match=r"pod.lock:3: expected `name==version`, found 'pandas>=2'"):
        read_lock(bad)


def test_to_install_is_what_is_missing_or_at_another_version():
    pins = {"numpy": "2.4.6", "sktime": "1.2.0", "pydantic": "2.14.4"}
    assert to_install({"numpy": "2.4.6", "sktime": None, "pydantic": "2.9.0"}, pins) == [
        "pydantic==2.14.4", "sktime==1.2.0"]
    assert to_install({"numpy": "2.4.6", "sktime": "1.2.0", "pydantic": "2.14.4"}, pins) == []
    assert lock_digest(pins) == lock_digest(dict(reversed(list(pins.items())))) != lock_digest({**pins, "numpy": "2"})
    assert canonical("Scikit_Base") == "scikit-base"


def test_a_wheelhouse_without_a_needed_wheel_is_a_clear_error(sshd, tmp_path):  # noqa: F811
    img = tmp_path / "img"  # the image's Python, on the host's own disk
    python = make_image_python(sshd.host(img), seen_at=str(img))
    runner = sshd.runner(tmp_path / "remote", python=str(img / python.relative_to(sshd.host(img))))
    (tmp_path / "empty").mkdir()
    with pytest.raises(RemotePermanent, match=r"wheelhouse .*empty: no wheel for annotated-types==0.8.0"):
        ensure_env(runner, tmp_path / "empty")
    assert not list(sshd.host(tmp_path / "remote").glob("env/*/READY"))


def test_the_images_own_torch_must_satisfy_moolas_requirement():
    from moola.pods.env import image_requirements_met
    assert image_requirements_met({"torch": "2.8.0+cu128"}) is None
    assert image_requirements_met({"torch": "2.13.0"}) is None
    got = image_requirements_met({"torch": "2.4.0"})  # runpod/pytorch:2.4.0-py3.11-... (the old default)
    assert got.startswith("torch 2.4.0 does not satisfy torch>=2.6")
    assert image_requirements_met({}).startswith("torch missing")
