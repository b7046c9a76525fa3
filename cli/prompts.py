"""Reading a secret typed by a person (a custodian's share, a token PIN): hidden, one line;
and custodians' shares from files.

At a terminal the input is not echoed (``click.prompt`` with ``hide_input``) and the prompt
goes to stderr.  From a pipe (scripts, tests) one line is read as bytes and decoded here, so
input that is not UTF-8 is one clear error (exit 2), never a traceback, wherever it comes from.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ca.custody.secretfile import read_share_file
from ca.custody.shares import Share, parse_share
from cli.errors import naming
from shomei.errors import MalformedInput, Refused

MAX_LINE = 4096


def _not_text() -> MalformedInput:
    return MalformedInput(
        "the input is not UTF-8 text (check the keyboard layout and input method)",
        message_ja="入力が UTF-8 のテキストではありません(キーボード配列と入力方式を確認)",
    )


def _nothing() -> Refused:
    return Refused("nothing was typed", message_ja="何も入力されませんでした")


def read_hidden(prompt: str) -> str:
    """One line typed after ``prompt``, without echo at a terminal."""
    if sys.stdin.isatty():
        try:
            text = str(click.prompt(prompt, hide_input=True, err=True))
        except UnicodeDecodeError as exc:
            raise _not_text() from exc
        except click.exceptions.Abort as exc:
            raise _nothing() from exc
    else:
        click.echo(f"{prompt}: ", nl=False, err=True)
        raw = sys.stdin.buffer.readline(MAX_LINE + 1)
        click.echo("", err=True)
        if not raw.strip():
            raise _nothing()
        if len(raw) > MAX_LINE:
            raise Refused(
                f"the input is longer than {MAX_LINE} bytes",
                message_ja=f"入力が {MAX_LINE} バイトを超えています",
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _not_text() from exc
    try:
        # Undecodable bytes read in Python's UTF-8 mode arrive as lone surrogates.
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _not_text() from exc
    return text


def read_shares(files: tuple[Path, ...]) -> list[Share]:
    """Custodian shares from files (one share per file, as the ceremony printed it)."""
    shares = []
    for path in files:
        with naming(path):  # "share has a typo": in which of the files
            shares.append(parse_share(read_share_file(path)))
    return shares
