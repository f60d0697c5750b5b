"""What every `python -m tfseq.*` entry point shares: one-line errors, exit codes, a quiet TensorFlow start-up."""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from typing import Callable

from tfseq.config import is_utf8
from tfseq.errors import UserError
from tfseq.files import decode_utf8

# Start-up chatter that TensorFlow's C++ side prints before its logging is configured (TF_CPP_MIN_LOG_LEVEL does
# not reach it): it is not about the user's job, and it would bury a one-line error message.
_NOISE = re.compile(
    r"absl::InitializeLog|oneDNN custom operations|cudart_stub|cuda_platform|cuInit|cpu_feature_guard|"
    r"rebuild TensorFlow with the appropriate compiler flags|Unable to register cu(DNN|FFT|BLAS) factory|"
    r"computation placer already registered|TF-TRT Warning"
)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (exit code 2), pointing at --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        """Parses as argparse does, then refuses arguments that are not UTF-8 text (they arrive as lone
        surrogates, which TensorFlow, TOML and JSON cannot take). Every parse_* method comes through here."""
        parsed, extras = super().parse_known_args(args, namespace)
        for name, value in vars(parsed).items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and not is_utf8(item):
                    self.error(f"argument {name} is not valid UTF-8 text: {item!r}")
        return parsed, extras


def import_tensorflow() -> None:
    """Imports TensorFlow and Keras with their start-up chatter filtered out of stderr (other output is kept)."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ errors that matter surface as exceptions
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
            import keras  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines():
                if line.strip() and not _NOISE.search(line):
                    print(line, file=sys.stderr)


def read_stdin_lines(what: str) -> list[str]:
    """Standard input as lines, read as people write it: UTF-8 with or without a BOM, LF / CRLF / CR line ends.

    Args:
        what: how to name the input in an error message.

    Returns:
        The lines without their line ends (blank lines included: the caller decides).

    Raises:
        UserError naming the line and byte that are not UTF-8.
    """
    if sys.stdin is None:
        raise UserError(f"{what} is closed; pass the texts as arguments or pipe them in")
    text = decode_utf8(sys.stdin.buffer.read(), what)
    return re.split(r"\r\n|\r|\n", text.removesuffix("\n").removesuffix("\r")) if text else []


def run_main(job: Callable[[], object], on_interrupt: str = "interrupted") -> None:
    """Runs an entry point's job: a UserError becomes one line on stderr and exit code 2; Ctrl-C exits 130.

    Args:
        job: the work, with arguments already parsed.
        on_interrupt: what to print on Ctrl-C.
    """
    try:
        job()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(on_interrupt, file=sys.stderr)
        sys.exit(130)
