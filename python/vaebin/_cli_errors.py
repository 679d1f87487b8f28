"""How `vaebin-rs` reports a failure, telling a problem with the input from a bug in vaebin-rs.

- Bad input, a bad option value or a failing environment (a `VaebinError`, an `OSError` such as
  a full disk, an input that is not text, running out of memory on the host or the GPU): one
  line `vaebin-rs: error: <file>: <problem>`, exit 1.
  (Click reports a wrong command line itself, with exit 2.)
- Anything else is a bug: a plain Python exception, or a Rust panic, which PyO3 raises as
  `pyo3_runtime.PanicException` (a `BaseException`, not an `Exception`). One line naming the
  exception and where to report it, exit 70 (EX_SOFTWARE of sysexits.h).
- Ctrl-C: one line, exit 130.

A bug's traceback is printed only when debugging: `vaebin-rs --debug ...` or VAEBIN_DEBUG set
to anything but "" or "0" (convenient where the command line is out of reach, as in Nextflow).
Bad input stays one line either way.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

from vaebin.errors import VaebinError

EXIT_INPUT_ERROR = 1
EXIT_BUG = 70
EXIT_INTERRUPTED = 130
DEBUG_ENV = "VAEBIN_DEBUG"
PREFIX = "vaebin-rs: error: "
BUG_PREFIX = PREFIX + "internal error (a bug in vaebin-rs, not in your input): "


def debug_requested() -> bool:
    """Whether VAEBIN_DEBUG asks for tracebacks (the Rust panic hook reads it by the same rule)."""
    return os.environ.get(DEBUG_ENV, "") not in ("", "0")


def enable_debug() -> Callable[[], None]:
    """Turn debugging on, Rust panic messages with their source line included (the panic hook
    reads the environment); returns what turns it back off, for callers that stay in-process."""
    previous = os.environ.get(DEBUG_ENV)
    os.environ[DEBUG_ENV] = "1"

    def restore() -> None:
        if previous is None:
            os.environ.pop(DEBUG_ENV, None)
        else:
            os.environ[DEBUG_ENV] = previous

    return restore


def is_panic(error: BaseException) -> bool:
    """A Rust panic, as PyO3 raises it (its class cannot be imported by name)."""
    kind = type(error)
    return kind.__name__ == "PanicException" and kind.__module__ == "pyo3_runtime"


def is_out_of_memory(error: BaseException) -> bool:
    """Python's MemoryError or PyTorch's (CUDA) OutOfMemoryError."""
    return isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError"


def is_user_error(error: BaseException) -> bool:
    """A problem with the input, the options or the environment rather than with vaebin-rs."""
    return isinstance(error, VaebinError | OSError | UnicodeDecodeError) or is_out_of_memory(error)


def issue_tracker() -> str | None:
    """The issue tracker's address from the package metadata ([project.urls]), if it names one."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("vaebin-rs").get_all("Project-URL") or []
    except PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip().lower().replace(" ", "") in ("issues", "bugtracker", "bugs", "tracker"):
            return url.strip()
    return None


def describe_user_error(error: BaseException) -> str:
    """The one line for an input problem, without the `vaebin-rs: error:` prefix."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    if isinstance(error, UnicodeDecodeError):
        return f"an input is not text: {error}"
    if is_out_of_memory(error):
        first_line = (str(error).strip().splitlines() or [""])[0]
        detail = f" ({first_line})" if first_line else ""
        return f"out of memory{detail}; try fewer --threads, a smaller --batch-size or --device cpu"
    return str(error)


def describe_bug(error: BaseException) -> str:
    """The one line for a bug, prefix included."""
    message = " ".join(str(error).split()) or "(no message)"
    url = issue_tracker()
    where = f"at {url}" if url else "to the vaebin-rs maintainers"
    return (
        f"{BUG_PREFIX}{type(error).__name__}: {message} "
        f"(please report it {where} with the command line; "
        f"--debug or {DEBUG_ENV}=1 shows the traceback)"
    )


def handles(error: BaseException) -> bool:
    """Whether `report` takes care of `error`; SystemExit, GeneratorExit and the like go on."""
    return isinstance(error, Exception | KeyboardInterrupt) or is_panic(error)


def report(error: BaseException, debug: bool = False) -> NoReturn:
    """Print what the user should see for `error` and exit with its status."""
    debug = debug or debug_requested()
    if isinstance(error, KeyboardInterrupt):
        print("vaebin-rs: interrupted", file=sys.stderr, flush=True)
        sys.exit(EXIT_INTERRUPTED)
    if is_user_error(error):
        print(PREFIX + describe_user_error(error), file=sys.stderr, flush=True)
        sys.exit(EXIT_INPUT_ERROR)
    if debug:
        traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    print(describe_bug(error), file=sys.stderr, flush=True)
    sys.exit(EXIT_BUG)
