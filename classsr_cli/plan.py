"""Batch planning: which files to read and where each output goes. Paths only; no pixels, no torch.

* Inputs are files, folders (flat, or the whole tree with ``recursive``) and glob patterns (expanded here
  when the shell did not).
* One file in: the output is ``output`` (a file, or a folder when it is one or ends with a separator), or
  ``{stem}_x{scale}{suffix}`` beside the input.
* Several in (or a folder or a glob): outputs go into the folder ``output`` under the input's own name
  (mirroring the tree below each input folder with ``recursive``), or beside each input as
  ``{stem}_x{scale}{suffix}`` when there is no ``output``.
* Folders, globs and lists of files (a shell's ``*.jpg``) skip classsr's own earlier outputs lying beside their
  inputs (``photo_x4.png``, ``photo_x4_classmap.png`` next to ``photo.png``; see :func:`io.files.is_own_output`);
  a file named alone is never skipped. Files in a folder that are not images classsr reads are counted
  (:attr:`Plan.unread`).
* A glob classsr expands itself matches file names whatever their case (``*.jpg`` finds a camera's ``IMG_1.JPG``,
  as a folder does), and ``**`` any depth of folders, ``--recursive`` or not.
* GIF inputs are written as PNG. Existing outputs are refused unless ``overwrite``, or skipped with
  ``skip_existing``.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from classsr_cli.errors import ALREADY_EXISTS, ClassSRError, ConfigError, InputError, OutputExistsError
from classsr_cli.io.files import (
    files_in,
    is_image_name,
    natural_key,
    no_images,
    url_refusal,
    without_own_outputs,
)

__all__ = ["Job", "Plan", "classmap_path", "default_output_name", "plan_jobs", "scale_tag"]

GLOB_CHARS = "*?["  # a spec holding one is a pattern classsr expands


@dataclass(frozen=True)
class Job:
    """One image to upscale."""

    input: Path
    output: Path
    classmap: Path | None = None


@dataclass
class Plan:
    """The jobs; the inputs refused while planning (only collected with ``keep_going``); and the files left
    out: classsr's own earlier outputs found in folders and globs, and jobs whose outputs exist
    (``skip_existing``)."""

    jobs: list[Job] = field(default_factory=list)
    failed: list[tuple[str, ClassSRError]] = field(default_factory=list)
    own_outputs: list[Path] = field(default_factory=list)
    existing: list[Job] = field(default_factory=list)
    unread: list[Path] = field(default_factory=list)  # files in the folders given that are not images classsr reads


def scale_tag(scale: float) -> str:
    """``x4``, ``x2.5``."""
    return f"x{float(scale):g}"


def default_output_name(src: Path, scale: float, tag: str | None = None, suffix: str | None = None) -> str:
    """``{stem}_x{scale}{suffix}``, or ``tag`` (``w3000``, an output size's) in place of ``x{scale}``; ``suffix``
    (``--format``) in place of the input's. A Motion Photo's name keeps its ``.MP`` last (``PXL_1.MP.jpg``:
    ``PXL_1_x4.MP.jpg``), which its readers may ask of it (Motion Photo format 1.0, "Filename Pattern")."""
    from classsr_cli.io.files import MOTION_STEM
    from classsr_cli.io.image import output_suffix

    stem, mp = src.stem, MOTION_STEM if src.stem.endswith(MOTION_STEM) and src.stem != MOTION_STEM else ""
    return f"{stem.removesuffix(mp) if mp else stem}_{tag or scale_tag(scale)}{mp}{suffix or output_suffix(src.suffix)}"


def classmap_path(output: Path) -> Path:
    return output.with_name(f"{output.stem}_classmap.png")


def _expand(spec: str, recursive: bool) -> tuple[list[tuple[Path, Path]], bool, list[Path], list[Path]]:
    """``[(file, relative output path)]`` for one input spec, whether it names more than one file, the earlier
    classsr outputs a folder or glob held (left out), and the files of a folder that are not images classsr reads."""
    path = Path(spec)
    if (url := url_refusal(spec)) is not None:  # (a query's "?" would read as a glob's)
        raise InputError(url)
    if path.is_dir():
        every = sorted(files_in(path, recursive=recursive), key=natural_key)  # frame2 before frame10
        files, own = without_own_outputs([p for p in every if is_image_name(p)])
        unread = [p for p in every if not is_image_name(p)]
        if not files:
            raise InputError(no_images(path, unread, own=len(own), hint="" if recursive else " (try --recursive)"))
        return [(p, p.relative_to(path)) for p in files], True, own, unread
    if path.exists() or not any(c in spec for c in GLOB_CHARS):
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        return [(path, Path(path.name))], False, [], []
    matches = sorted((Path(m) for m in glob.glob(_any_case_name(spec), recursive=True)), key=natural_key)
    files, own = without_own_outputs([p for p in matches if p.is_file() and is_image_name(p)])
    if not files:
        also = f" ({len(own)} earlier classsr output(s) left out)" if own else ""
        raise InputError(f"{spec}: no image matches this pattern{also}")
    return [(p, Path(p.name)) for p in files], True, own, []


def _any_case_name(pattern: str) -> str:
    """``pattern`` with the letters of its last part (the file name) matching either case: ``shots/*.jpg`` ->
    ``shots/*.[jJ][pP][gG]``. Bracket sets are kept as they are."""
    head, sep, name = pattern.rpartition("/") if "/" in pattern else ("", "", pattern)
    if os.sep != "/" and os.sep in name:
        head2, sep, name = name.rpartition(os.sep)
        head, sep = head + "/" + head2 if head else head2, os.sep
    out, i = [], 0
    while i < len(name):
        c = name[i]
        if c == "[" and (j := name.find("]", i + 2)) != -1:  # a set ([!...] and []...] included) as it is
            out.append(name[i : j + 1])
            i = j + 1
            continue
        out.append(f"[{c.lower()}{c.upper()}]" if c.lower() != c.upper() else c)
        i += 1
    return head + sep + "".join(out)


def plan_jobs(
    specs: Sequence[str],
    output: str | os.PathLike[str] | None,
    scale: float,
    *,
    tag: str | None = None,
    recursive: bool = False,
    classmap: bool = False,
    overwrite: bool = False,
    keep_going: bool = False,
    skip_existing: bool = False,
    fail_collisions: bool = False,
    suffix: str | None = None,
) -> Plan:
    """Plan the jobs for ``specs``. Raises the first problem unless ``keep_going``, which collects them.

    With ``skip_existing`` a job whose outputs all exist is left out (:attr:`Plan.existing`) rather than refused.
    Raises :class:`ConfigError` when two inputs would write the same output, or an output would replace an input
    (unless ``fail_collisions``: then the job that would write it fails, collected with the others, and the rest
    go on), and when a single output file has a suffix classsr cannot write. ``suffix`` (``--format``, ``.jpg``)
    is every output's whose name classsr chooses; a single output file named with another is a usage error.
    """
    if skip_existing and overwrite:
        raise ConfigError("--skip-existing and --overwrite contradict each other; pass one")
    plan = Plan()
    found: list[tuple[Path, Path]] = []
    named: set[Path] = set()  # files named on their own: never left out as another input's output
    many = len(specs) > 1
    for spec in specs:
        try:
            items, several, own, unread = _expand(spec, recursive)
        except InputError as e:
            if not keep_going:
                raise
            plan.failed.append((spec, e))
            continue
        many = many or several
        found.extend(items)
        if not several:
            named.update(p.resolve() for p, _ in items)
        plan.own_outputs.extend(own)
        plan.unread.extend(unread)
    found = _unique(found)
    if output is not None and (url := url_refusal(output, output=True)) is not None:
        raise ConfigError(url)
    out = Path(output) if output is not None else None
    to_folder = out is not None and (many or out.is_dir() or str(output).endswith(("/", os.sep)))
    if out is not None and to_folder and not out.is_dir():
        from classsr_cli.io.image import WRITE_FORMATS

        if out.exists() or (many and out.suffix.lower() in WRITE_FORMATS):
            raise ConfigError(f"{out}: with several inputs, -o must be a folder, not an image file" if many else
                              f"{out}: is a file, not a folder; drop the trailing {os.sep} to write that file")
    jobs = []
    for src, rel in found:
        if out is None:
            dst = src.with_name(default_output_name(src, scale, tag, suffix))
        elif to_folder:
            from classsr_cli.io.image import output_suffix

            dst = out / rel.with_suffix(suffix or output_suffix(rel.suffix))
        else:
            dst = out
        jobs.append(Job(src, dst, classmap_path(dst) if classmap else None))
    # A list of files (a shell's *.jpg) leaves out the earlier outputs of the others, as a glob does.
    jobs, dropped = _drop_outputs_of_others(jobs, named if len(specs) == 1 else set())
    plan.own_outputs.extend(dropped)
    collisions = _collisions(jobs)
    if collisions and not fail_collisions:
        raise collisions[0][1]
    plan.failed.extend((str(job.input), e) for job, e in collisions)
    jobs = [job for job in jobs if all(job is not bad for bad, _ in collisions)]
    if not to_folder and out is not None:
        from classsr_cli.io.image import output_format

        if not out.suffix:  # most likely a folder that does not exist yet
            raise ConfigError(f"{out}: an output file needs a suffix (.png, .jpg, ...); to write into a new folder, "
                              f"end the path with {os.sep} (-o {out}{os.sep})")
        output_format(out)
        if suffix is not None and output_format(out) != output_format(Path(f"x{suffix}")):
            raise ConfigError(f"{out}: its suffix names another format than --format {suffix[1:]}; drop one of them")
    for job in jobs:
        wanted = [p for p in (job.output, job.classmap) if p is not None]
        taken = [p for p in wanted if p.exists()]
        if skip_existing and taken == wanted:
            plan.existing.append(job)
            continue
        if taken and not overwrite:
            err = OutputExistsError(f"{taken[0]}: {ALREADY_EXISTS}")
            if not keep_going:
                raise err
            plan.failed.append((str(job.input), err))
            continue
        plan.jobs.append(job)
    return plan


def _unique(items: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
    seen: set[Path] = set()
    out = []
    for src, rel in items:
        key = src.resolve()
        if key not in seen:
            seen.add(key)
            out.append((src, rel))
    return out


def _drop_outputs_of_others(jobs: list[Job], named: set[Path]) -> tuple[list[Job], list[Path]]:
    """A folder run beside its inputs would pick up ``a_x4.png`` from an earlier run of ``a.png``: skip it (the
    jobs kept, and the inputs left out). A file named on its own (resolved, in ``named``) is kept, and so is a job
    whose output is its own input: both are refused by :func:`_check_collisions` instead of skipped."""
    def outputs(j: Job) -> set[Path]:
        return {j.output.resolve()} | ({j.classmap.resolve()} if j.classmap else set())

    planned: dict[Path, int] = {}
    for j in jobs:
        for p in outputs(j):
            planned[p] = planned.get(p, 0) + 1
    kept = [j for j in jobs if (src := j.input.resolve()) in named or planned.get(src, 0) - (src in outputs(j)) == 0]
    return kept, [j.input for j in jobs if j not in kept]


def _collisions(jobs: list[Job]) -> list[tuple[Job, ConfigError]]:
    """The jobs that would write over an input or over another job's output, each with its error (the later of two
    jobs writing one file; the job whose output is another's input), in the order of ``jobs``."""
    by_output: dict[Path, Job] = {}
    bad: dict[int, ConfigError] = {}
    for job in jobs:
        if job.output.resolve() == job.input.resolve():
            bad[id(job)] = ConfigError(f"{job.output}: the output would replace its own input; choose another -o")
            continue
        for dst in (job.output, job.classmap):
            if dst is None:
                continue
            other = by_output.setdefault(dst.resolve(), job)
            if other is not job and id(job) not in bad:
                bad[id(job)] = ConfigError(
                    f"{dst}: both {other.input} and {job.input} would be written there; "
                    "upscale them into different -o folders"
                )
    inputs = {job.input.resolve(): job.input for job in jobs}
    for dst, job in by_output.items():
        if dst in inputs and inputs[dst] != job.input and id(job) not in bad:
            bad[id(job)] = ConfigError(f"{inputs[dst]}: it is an input and also the output of {job.input}; "
                                       "upscale them in separate runs or choose another -o")
    return [(job, bad[id(job)]) for job in jobs if id(job) in bad]
