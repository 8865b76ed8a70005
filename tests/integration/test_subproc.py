"""``run_bounded`` leaves nothing behind: no process, no open transport for a closed loop to trip on."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

# Each way a run can end, then the loop closes and the garbage is collected: an unclosed transport
# would print a ResourceWarning (an error under -W error) or "Event loop is closed" on stderr.
SCRIPT = textwrap.dedent(
    """
    import asyncio, gc, os
    from kiloscribe_lab.toolchain.subproc import run_bounded

    async def cancelled(env):
        task = asyncio.create_task(run_bounded(["sleep", "30"], env=env, timeout_s=10))
        await asyncio.sleep(0.2)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"

    async def main():
        env = dict(os.environ)
        exit_, held, left, stop = await asyncio.gather(
            run_bounded(["sh", "-c", "echo out; echo err >&2; exit 3"], env=env, timeout_s=5),
            run_bounded(["sh", "-c", "sleep 30 & echo $!; exit 0"], env=env, timeout_s=0.5),
            # A grandchild that left the group keeps the pipes past the grace: we stop waiting.
            run_bounded(["sh", "-c", "setsid sleep 3 & echo left"], env=env, timeout_s=0.3),
            cancelled(env),
        )
        print("exit", exit_.returncode, exit_.stdout.strip(), exit_.stderr.strip())
        print("held", held.timed_out, held.stdout.strip())
        print("left", left.timed_out, left.stdout.strip(), left.elapsed_s < 2.5)
        print(stop)

    asyncio.run(main())
    gc.collect()
    """
)


def test_every_ending_closes_the_transport_while_the_loop_runs() -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", SCRIPT], capture_output=True, text=True, timeout=30
    )
    assert proc.stderr == ""
    exit_line, held_line, left_line, cancelled = proc.stdout.splitlines()
    assert exit_line == "exit 3 out err"
    # The leader exited at once, but a grandchild held the pipes: the run lasts to the deadline
    # and the grandchild is killed with its group.
    flag, grandchild = held_line.split()[1:]
    assert flag == "True"
    stat = Path(f"/proc/{grandchild}/stat")
    assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] in {"Z", "X"}
    assert left_line == "left True left True"
    assert cancelled == "cancelled"
