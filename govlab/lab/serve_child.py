"""``govlab serve`` as the child of a notebook kernel: it ends when the kernel ends.

``ensure_server`` starts the API through this module (``python -m govlab.lab.serve_child
--parent-pid PID serve ...``). A daemon thread watches the parent: once the process
that started us is gone (a kernel shut down, culled, or killed with SIGKILL, when no
atexit handler of its own runs), it sends this process SIGTERM, and ``govlab serve``
takes its ordinary way out, which stops its workers and its embedded Redis too.
Without this, every closed lab tab left an API, a worker and a Redis behind.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

#: How often the parent is checked; the services end within about this long.
POLL_S = 0.5


def watch_parent(parent_pid: int, poll_s: float = POLL_S) -> threading.Thread:
    """Start the watchdog thread; SIGTERM to this process once ``parent_pid`` is gone.

    A child's parent pid changes (to init or a subreaper) when its parent dies, so
    ``os.getppid()`` is a check with no pid-reuse race.
    """

    def watch() -> None:
        stop = threading.Event()
        while not stop.wait(poll_s):
            if os.getppid() != parent_pid:
                os.kill(os.getpid(), signal.SIGTERM)
                return

    thread = threading.Thread(target=watch, name="govlab-parent-watch", daemon=True)
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    """``--parent-pid PID`` then the arguments of ``govlab`` (``serve ...``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] != "--parent-pid" or not args[1].isdigit():
        print("usage: python -m govlab.lab.serve_child --parent-pid PID serve ...", file=sys.stderr)
        return 2
    parent_pid, rest = int(args[1]), args[2:]
    # Until `govlab serve` installs its own handler, SIGTERM must still unwind through
    # SystemExit, so that the atexit handlers (workers, embedded Redis) run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if os.getppid() != parent_pid:  # the parent died before we got here
        return 0
    watch_parent(parent_pid)
    from govlab.cli import main as govlab_main

    return govlab_main(rest)


if __name__ == "__main__":
    sys.exit(main())
