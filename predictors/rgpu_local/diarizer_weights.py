"""A real diarization pipeline assembled from weights that PyPI packages ship.

No model hub is needed: pyannote's PyanNet segmentation model (the one of pyannote's
speaker-diarization 2.x, MIT) ships inside the ``whisperx==3.8.6`` wheel
(``whisperx/assets/pytorch_model.bin``), and a pretrained GE2E speaker encoder ships inside
``Resemblyzer==0.1.4`` (``resemblyzer/pretrained.pt``, Apache-2.0). Both wheels are fetched with
``pip download --no-deps`` (whisperx itself pins an old torch; neither package is installed or
imported), the two files are extracted, the encoder is saved as a pyannote checkpoint
(:class:`rgpu_local.resemblyzer_embedding.ResemblyzerEmbedding`), and a pipeline directory in
pyannote's own layout is written::

    <cache>/diarizer-packaged-<version>/
        config.yaml                    pyannote.audio.pipelines.SpeakerDiarization
        segmentation/pytorch_model.bin PyanNet (from whisperx)
        embedding/pytorch_model.bin    Resemblyzer encoder as a pyannote model

It loads through exactly the path production pipelines take (``REFLECTOR_GPU_DIARIZER_MODEL`` or
``/mnt/models`` pointing at such a directory). ``python -m rgpu_local.diarizer_weights`` builds it and
prints its path.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .models import cache_dir

log = logging.getLogger("rgpu.diarizer")

SEGMENTATION = ("whisperx", "3.8.6", "whisperx/assets/pytorch_model.bin")
ENCODER = ("Resemblyzer", "0.1.4", "resemblyzer/pretrained.pt")
#: Bump when the config or the checkpoint format changes: a new cache directory is built.
LAYOUT_VERSION = "2"  # 2: the embedding class moved to rgpu_local
VERSION = f"wx{SEGMENTATION[1]}-rz{ENCODER[1]}-v{LAYOUT_VERSION}"

#: Hyper-parameters: the segmentation ones are pyannote's tuned values for this PyanNet model
#: (pyannote/speaker-diarization 2.1); the clustering threshold is set for Resemblyzer's
#: embeddings (euclidean distance between unit vectors: 0.5 ~ cosine similarity 0.875).
CONFIG_YAML = """\
# Speaker diarization from weights that PyPI packages ship (built by rgpu_local.diarizer_weights).
# segmentation: pyannote PyanNet from the whisperx==3.8.6 wheel (MIT)
# embedding:    Resemblyzer==0.1.4 GE2E encoder as a pyannote model (Apache-2.0)
pipeline:
  name: pyannote.audio.pipelines.SpeakerDiarization
  params:
    segmentation: $model/segmentation
    embedding: $model/embedding
    plda: null
    clustering: AgglomerativeClustering
    embedding_exclude_overlap: true
    segmentation_batch_size: 32
    embedding_batch_size: 32
params:
  segmentation:
    threshold: 0.4442333667381752
    min_duration_off: 0.5817029604921046
  clustering:
    method: centroid
    min_cluster_size: 12
    threshold: {threshold}
"""
CLUSTERING_THRESHOLD = 0.5


class PackagedWeightsMissing(FileNotFoundError):
    pass


def _installed_file(package_dir_name: str, member: str) -> Path | None:
    """The member file of an installed (not imported) package, if present."""
    spec = importlib.util.find_spec(package_dir_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))).parent
    path = root / member
    return path if path.is_file() else None


def pip_download_member(project: str, version: str, member: str, dest: Path) -> Path:
    """``pip download --no-deps project==version`` and extract ``member`` of the wheel to ``dest``."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rgpu-wheel-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--quiet",
            "--dest",
            tmp,
            f"{project}=={version}",
        ]
        log.info("fetching %s==%s from the package index (--no-deps) for %s", project, version, member)
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise PackagedWeightsMissing(
                f"could not download {project}=={version} with pip (exit {done.returncode}): "
                f"{done.stderr.strip()[-500:]}"
            )
        with zipfile.ZipFile(wheels[0]) as zf:
            fd, part = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
            with os.fdopen(fd, "wb") as out, zf.open(member) as src:
                shutil.copyfileobj(src, out, 1 << 20)
        os.replace(part, dest)  # atomic: a concurrent reader never sees half a file
    return dest


def weight_file(spec: tuple[str, str, str], cache: Path, download: bool) -> Path:
    project, version, member = spec
    installed = _installed_file(member.split("/")[0], member)
    if installed is not None:
        return installed
    cached = cache / "wheels" / f"{project.lower()}-{version}" / member
    if cached.is_file():
        return cached
    if not download:
        raise PackagedWeightsMissing(
            f"{member} from {project}=={version} is not available: run 'python -m rgpu_local.diarizer_weights' "
            f"(fetches the wheel from PyPI with --no-deps), or set REFLECTOR_GPU_DIARIZER_MODEL to a pipeline directory"
        )
    return pip_download_member(project, version, member, cached)


def build_pipeline_dir(
    target: Path, segmentation_bin: Path, encoder_pt: Path, clustering_threshold: float = CLUSTERING_THRESHOLD
) -> Path:
    """Write a pyannote pipeline directory at ``target`` (atomically) from the two weight files."""
    from rgpu_diarizer.pyannote_compat import prepare_pyannote

    prepare_pyannote()
    from .resemblyzer_embedding import ResemblyzerEmbedding

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)
    try:
        (tmp / "segmentation").mkdir()
        (tmp / "embedding").mkdir()
        shutil.copyfile(segmentation_bin, tmp / "segmentation" / "pytorch_model.bin")
        ResemblyzerEmbedding.from_resemblyzer(encoder_pt).save_pyannote_checkpoint(
            tmp / "embedding" / "pytorch_model.bin"
        )
        (tmp / "config.yaml").write_text(CONFIG_YAML.format(threshold=clustering_threshold))
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.yaml").is_file():  # someone else won the race only if complete
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def packaged_pipeline_dir(cache: Path | None = None, download: bool = False) -> Path:
    """The packaged pipeline directory, built on first use (from installed packages, the cache,
    or, when ``download`` is true, wheels fetched from the package index)."""
    cache = cache or cache_dir()
    target = cache / f"diarizer-packaged-{VERSION}"
    if (target / "config.yaml").is_file():
        return target
    segmentation = weight_file(SEGMENTATION, cache, download)
    encoder = weight_file(ENCODER, cache, download)
    return build_pipeline_dir(target, segmentation, encoder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=cache_dir(), help=f"cache directory (default {cache_dir()})")
    parser.add_argument("--no-download", action="store_true", help="fail instead of fetching wheels from PyPI")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        try:
            print(packaged_pipeline_dir(args.cache, download=not args.no_download))
            return 0
        except PackagedWeightsMissing as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    return 130


if __name__ == "__main__":
    sys.exit(main())
