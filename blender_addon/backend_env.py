"""Find and start the backend from Blender (standard library only, no ``bpy``).

Blender's Python is not the backend's: ``lagc-hand`` lives in the environment
where the backend was installed (a venv, conda env or pipx folder), usually
not on the PATH Blender was started with.  The add-on preference "Backend
environment" names that folder or the executable itself; :func:`find_executable`
turns it into the program to run.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

EXECUTABLE = "lagc-hand"
#: How long the Start backend button waits for an early exit before reporting "starting".
EARLY_EXIT_S = 3.0


class BackendEnvError(Exception):
    """The configured backend cannot be found or run; the message is for the user."""


def _candidates(folder: str) -> list[str]:
    names = [EXECUTABLE + ".exe", EXECUTABLE] if sys.platform == "win32" else [EXECUTABLE]
    subdirs = ("Scripts", "bin", "") if sys.platform == "win32" else ("bin", "")
    return [os.path.join(folder, sub, name) for sub in subdirs for name in names]


def find_executable(setting: str = "") -> str:
    """The ``lagc-hand`` program to run.

    setting: a venv/conda folder (``bin/lagc-hand`` or ``Scripts\\lagc-hand.exe``
             inside it is used), the executable itself, or empty for the PATH.
    Raises :class:`BackendEnvError` saying what was looked for.
    """
    setting = os.path.expanduser(setting.strip())
    if not setting:
        found = shutil.which(EXECUTABLE)
        if found is None:
            raise BackendEnvError(f"'{EXECUTABLE}' is not on the PATH Blender sees; set the backend environment "
                                  "(the venv folder, or the lagc-hand program) in the add-on preferences")
        return found
    if os.path.isdir(setting):
        for cand in _candidates(setting):
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                return cand
        raise BackendEnvError(f"no {EXECUTABLE} program in {setting} (looked in its bin/ and Scripts/); "
                              "is the backend installed in that environment?")
    if os.path.isfile(setting):
        if not os.access(setting, os.X_OK):
            raise BackendEnvError(f"{setting} is not executable")
        return setting
    raise BackendEnvError(f"the backend environment {setting} does not exist")


def start_argv(command: list[str], setting: str = "") -> list[str]:
    """``command`` (the start command's words) with a leading ``lagc-hand`` replaced
    by the configured environment's program; other commands run as they are."""
    if command and command[0] == EXECUTABLE:
        return [find_executable(setting), *command[1:]]
    return list(command)


def check_version(setting: str = "", timeout: float = 60.0) -> str:
    """Run ``lagc-hand --version``; returns its output (``BackendEnvError`` on failure)."""
    exe = find_executable(setting)
    try:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise BackendEnvError(f"cannot run {exe}: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise BackendEnvError(f"{exe} --version did not answer within {timeout:.0f} s") from None
    out = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0:
        raise BackendEnvError(f"{exe} --version failed (exit {proc.returncode}): {last_lines(out)}")
    return f"{out.splitlines()[-1] if out else EXECUTABLE} ({exe})"


def last_lines(text: str, n: int = 3, width: int = 300) -> str:
    """The last ``n`` non-empty lines of ``text``, joined, at most ``width`` characters."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return " | ".join(lines[-n:])[-width:]


def exit_message(proc: subprocess.Popen, log_path: str, log_offset: int = 0) -> str | None:
    """``None`` while ``proc`` runs; once it has exited, a message with its exit
    status and the last lines it wrote to ``log_path`` (from ``log_offset`` on)."""
    code = proc.poll()
    if code is None:
        return None
    try:
        with open(log_path, "rb") as f:
            f.seek(log_offset)
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        text = ""
    reason = last_lines(text) or "no output"
    return f"The backend exited at once (exit status {code}): {reason}"
