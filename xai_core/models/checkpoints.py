"""Class-names files (one name per line) for user checkpoints."""

from __future__ import annotations

from pathlib import Path

from ..errors import CheckpointError


def load_class_names(source: str | Path | list[str]) -> list[str]:
    """Read class names: a list, or a text file with one name per line.

    Blank lines and ``#`` comments are ignored; a leading index (``3 Basketball`` as in
    UCF-101's classInd.txt) is dropped.
    """
    if isinstance(source, list):
        names = [str(s) for s in source]
    else:
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckpointError(f"cannot read class-names file {path.name!r}",
                                  hint="Give a UTF-8 text file with one class name per line."
                                  ) from exc
        names = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            head, _, rest = line.partition(" ")
            names.append(rest.strip() if head.isdigit() and rest.strip() else line)
    if not names:
        raise CheckpointError("the class-names file is empty",
                              hint="Give one class name per line.")
    if len(set(names)) != len(names):
        raise CheckpointError("the class-names file repeats a name",
                              hint="Each class must have a distinct name.")
    return names
