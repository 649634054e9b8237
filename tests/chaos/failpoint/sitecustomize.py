"""A failpoint for the chaos suite, loaded by a `lifecycle tick` subprocess through PYTHONPATH.

With CHAOS_STOP_AFTER_WRITTEN=N in its environment, the tick's file provider stops the whole
process (SIGSTOP) right after the batch that brings what it wrote to N messages: the files are
on disk and the ledger does not know yet. The test then kills it with SIGKILL, so the kill lands
in that window every time instead of by luck.
"""

import os
import signal

_limit = os.environ.get("CHAOS_STOP_AFTER_WRITTEN")
if _limit:
    from runner.providers.file import FileProvider

    _send_batch = FileProvider.send_batch
    _written = 0

    def _send_batch_then_stop(self, messages):  # type: ignore[no-untyped-def]
        global _written
        results = _send_batch(self, messages)
        _written += len(messages)
        if _written >= int(_limit):
            os.kill(os.getpid(), signal.SIGSTOP)
        return results

    FileProvider.send_batch = _send_batch_then_stop  # type: ignore[method-assign]
