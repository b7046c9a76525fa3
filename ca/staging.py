"""A ceremony's output is built beside the CA home's files and put in place only at the end.

While a ceremony runs it writes nothing where the CA home's commands look: every file goes into
``HOME/incomplete-ceremony-STAMP/``, laid out as the home is.  Only when every step has
succeeded is each file moved to its place, ``ca.toml`` last (it is what makes a folder a CA
home that ``shomei ca`` commands open), and the folder removed.  A ceremony that stops
part-way therefore leaves the CA home as it was, plus that folder, which holds the abandoned
transcript for the minutes; :func:`leftovers` finds it, and ``shomei ca status`` and the next
ceremony report it until the operator deletes it.

Files are moved with a hard link and an unlink (``link`` never replaces an existing file), so a
file that appeared in the home meanwhile is refused, not overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

from shomei.errors import AlreadyExists, Refused

PREFIX = "incomplete-ceremony-"
SETTINGS = "ca.toml"


def leftovers(home: Path) -> list[Path]:
    """The staging folders of ceremonies that did not finish in ``home`` (oldest first)."""
    if not home.is_dir():
        return []
    return sorted(p for p in home.glob(f"{PREFIX}*") if p.is_dir())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staging:
    """The staging folder of one ceremony in CA home ``home``."""

    def __init__(self, home: Path, stamp: str) -> None:
        self.home = home
        self.folder = home / f"{PREFIX}{stamp}"

    def create(self) -> None:
        """Make the (new, empty) staging folder, and the CA home if it does not exist yet."""
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self.folder.mkdir()
        except FileExistsError as exc:
            raise AlreadyExists(
                f"{self.folder} already exists (an unfinished ceremony?)",
                message_ja=f"{self.folder} は既にあります(未完了の儀式ですか)",
                path=str(self.folder),
            ) from exc
        except OSError as exc:
            raise Refused(
                f"cannot create {self.folder}: {exc.strerror}",
                message_ja=f"{self.folder} を作成できません: {exc.strerror}",
                path=str(self.folder),
            ) from exc

    def final(self, staged: Path) -> Path:
        """Where the staged file ``staged`` goes in the CA home."""
        return self.home / staged.relative_to(self.folder)

    def files(self) -> list[Path]:
        """The staged files, in the order they are put in place (``ca.toml`` last)."""
        found = [p for p in self.folder.rglob("*") if p.is_file()]
        return sorted(found, key=lambda p: (p == self.folder / SETTINGS, str(p)))

    def commit(self) -> list[Path]:
        """Move every staged file into the CA home and remove the staging folder.

        Refuses (:class:`Refused`), having moved nothing, when any target already exists.
        Returns the files now in the home.
        """
        files = self.files()
        taken = [self.final(p) for p in files if self.final(p).exists()]
        if taken:
            raise AlreadyExists(
                f"{taken[0]} appeared while the ceremony ran; nothing was put in place "
                f"(the ceremony's output is in {self.folder})",
                message_ja=f"儀式の実行中に {taken[0]} が作られました。何も配置していません"
                f"(儀式の出力は {self.folder} にあります)",
                path=str(taken[0]),
            )
        moved: list[Path] = []
        for staged in files:
            target = self.final(staged)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                _move(staged, target)
                _fsync_dir(target.parent)
            except OSError as exc:
                raise Refused(
                    f"the ceremony finished but {target} could not be put in place "
                    f"({exc.strerror}): move the rest of {self.folder} into {self.home} by "
                    f"hand, same relative paths, {SETTINGS} last",
                    message_ja=f"儀式は完了しましたが {target} を配置できません: {self.folder} "
                    f"の残りを {self.home} の同じ場所へ手で移してください({SETTINGS} は最後)",
                    path=str(target),
                ) from exc
            moved.append(target)
        for folder in sorted(
            (p for p in self.folder.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)
        ):
            folder.rmdir()
        self.folder.rmdir()
        _fsync_dir(self.home)
        return moved


def _move(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError:
        # A file system without hard links: the targets were checked free just before.
        if target.exists():
            raise FileExistsError(str(target)) from None
        os.rename(source, target)
        return
    source.unlink()


__all__ = ["PREFIX", "Staging", "leftovers"]
